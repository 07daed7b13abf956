"""What the vector memory reads from SQL: the records it indexes and who may see its hits.

The memory (memory/) holds no SQL: it asks this service for the emails, notes and call
transcripts to chunk, for a workspace's reindex plan, and for the visibility of its hits,
which is the store's one rule (`store.permissions`: `owner_readable` through `crud.readable`, and
`readable_owner_ids` for the index's own filter).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session

from store.actor import Actor
from store.models import (
    Activity,
    ActivityTarget,
    CallRecording,
    Contact,
    Deal,
    Email,
    EmailAttachment,
    EmailParticipant,
    Note,
    Transcript,
    User,
    Workspace,
)
from store.models.enums import EmailParticipantRole
from store.services.crud import readable, spec_for


@dataclass
class MemoryRecord:
    """One email, note or call as the memory chunks it: what its chunk metadata says, and its text."""

    kind: str  # email, note, call
    workspace_id: uuid.UUID
    source_id: uuid.UUID
    owner_id: uuid.UUID | None
    date: datetime | None
    title: str = ""
    author: str = ""
    contact_ids: list[uuid.UUID] = field(default_factory=list)
    company_ids: list[uuid.UUID] = field(default_factory=list)
    deal_ids: list[uuid.UUID] = field(default_factory=list)
    body: str | None = None  # email body text / note body / transcript text
    attachments: list[tuple[uuid.UUID, str, str | None]] = field(default_factory=list)  # (id, filename, text)
    segments: list[dict[str, Any]] | None = None  # a call's transcript segments; None: no transcript yet
    transcript_id: uuid.UUID | None = None


def readable_sources(session: Session, actor: Actor, wanted: dict[str, set[uuid.UUID]]) -> set[tuple[str, uuid.UUID]]:
    """Which of the (entity, id) pairs exist and the actor may read now, per `crud.readable`.
    `wanted`: entity name ("email", "note", "call_recording") -> ids. One query (UNION ALL)."""
    selects = []
    for entity, ids in sorted(wanted.items()):
        if not ids:
            continue
        spec = spec_for(entity)
        model: Any = spec.model
        selects.append(readable(spec, actor).with_only_columns(literal(entity).label("entity"), model.id.label("id"))
                       .where(model.id.in_(sorted(ids))))
    if not selects:
        return set()
    query = selects[0] if len(selects) == 1 else union_all(*selects)
    return {(entity, _as_uuid(rid)) for entity, rid in session.execute(query)}


def calls_of_transcripts(session: Session, transcript_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The call recordings these transcripts belong to."""
    return list(session.scalars(select(Transcript.call_recording_id).where(Transcript.id.in_(list(transcript_ids)))))


def reindex_plan(session: Session, *, workspace_id: uuid.UUID | None = None,
                 ) -> tuple[list[uuid.UUID], list[tuple[uuid.UUID, str, list[uuid.UUID]]]]:
    """(workspaces, [(workspace, kind, ids)]): every email, note and transcribed call to index."""
    workspaces = [workspace_id] if workspace_id else list(session.scalars(select(Workspace.id).order_by(Workspace.id)))
    plan: list[tuple[uuid.UUID, str, list[uuid.UUID]]] = []
    for ws in workspaces:
        plan.append((ws, "email", list(session.scalars(
            select(Email.id).where(Email.workspace_id == ws).order_by(Email.id)))))
        plan.append((ws, "note", list(session.scalars(
            select(Note.id).where(Note.workspace_id == ws).order_by(Note.id)))))
        plan.append((ws, "call", list(session.scalars(
            select(CallRecording.id).join(Transcript, Transcript.call_recording_id == CallRecording.id)
            .where(CallRecording.workspace_id == ws).order_by(CallRecording.id)))))
    return workspaces, plan


def load_records(session: Session, kind: str, ids: Sequence[uuid.UUID]) -> list[MemoryRecord]:
    """The records of `kind` (email, note, call) with these ids that exist, with their links."""
    if not ids:
        return []
    if kind == "email":
        return _emails(session, ids)
    if kind == "note":
        return _notes(session, ids)
    if kind == "call":
        return _calls(session, ids)
    raise ValueError(f"unknown memory kind {kind!r}")


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


@dataclass
class _Links:
    contacts: set[uuid.UUID] = field(default_factory=set)
    companies: set[uuid.UUID] = field(default_factory=set)
    deals: set[uuid.UUID] = field(default_factory=set)

    def fill(self, record: MemoryRecord) -> MemoryRecord:
        record.contact_ids, record.company_ids, record.deal_ids = \
            sorted(self.contacts), sorted(self.companies), sorted(self.deals)
        return record


def _companies_of(session: Session, contact_ids: set[uuid.UUID],
                  deal_ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """record id -> its company id, for the contacts and deals given."""
    out: dict[uuid.UUID, uuid.UUID] = {}
    if contact_ids:
        out.update({cid: comp for cid, comp in session.execute(
            select(Contact.id, Contact.company_id)
            .where(Contact.id.in_(contact_ids), Contact.company_id.is_not(None)))})
    if deal_ids:
        out.update({did: comp for did, comp in session.execute(
            select(Deal.id, Deal.company_id).where(Deal.id.in_(deal_ids), Deal.company_id.is_not(None)))})
    return out


def _activity_links(session: Session, column: Any, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, _Links]:
    """Links of the activities pointing at these emails / call recordings (by `column`)."""
    out: dict[uuid.UUID, _Links] = defaultdict(_Links)
    rows = session.execute(select(column, ActivityTarget.contact_id, ActivityTarget.company_id, ActivityTarget.deal_id)
                           .join(ActivityTarget, ActivityTarget.activity_id == Activity.id)
                           .where(column.in_(ids)))
    for source, contact, company, deal in rows:
        links = out[source]
        if contact:
            links.contacts.add(contact)
        if company:
            links.companies.add(company)
        if deal:
            links.deals.add(deal)
    return out


def _expand(session: Session, links: dict[uuid.UUID, _Links]) -> None:
    """Add the companies of linked contacts and deals (a note on a contact is about their company)."""
    companies = _companies_of(session, {c for v in links.values() for c in v.contacts},
                              {d for v in links.values() for d in v.deals})
    for v in links.values():
        v.companies.update(companies[x] for x in v.contacts | v.deals if x in companies)


def _owner_names(session: Session, owner_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    ids = {o for o in owner_ids if o}
    if not ids:
        return {}
    return {uid: name for uid, name in session.execute(select(User.id, User.name).where(User.id.in_(ids)))}


def _emails(session: Session, ids: Sequence[uuid.UUID]) -> list[MemoryRecord]:
    emails = list(session.scalars(select(Email).where(Email.id.in_(ids))))
    if not emails:
        return []
    email_ids = [e.id for e in emails]
    links: dict[uuid.UUID, _Links] = defaultdict(_Links)
    senders: dict[uuid.UUID, str] = {}
    for p in session.scalars(select(EmailParticipant).where(EmailParticipant.email_id.in_(email_ids))):
        if p.contact_id:
            links[p.email_id].contacts.add(p.contact_id)
        if p.role == EmailParticipantRole.sender:
            senders[p.email_id] = p.name or p.address
    for email_id, extra in _activity_links(session, Activity.email_id, email_ids).items():
        links[email_id].contacts |= extra.contacts
        links[email_id].companies |= extra.companies
        links[email_id].deals |= extra.deals
    for e in emails:
        if e.deal_id:
            links[e.id].deals.add(e.deal_id)
    _expand(session, links)
    attachments: dict[uuid.UUID, list[tuple[uuid.UUID, str, str | None]]] = defaultdict(list)
    for att_id, email_id, filename, text in session.execute(
            select(EmailAttachment.id, EmailAttachment.email_id, EmailAttachment.filename, EmailAttachment.text)
            .where(EmailAttachment.email_id.in_(email_ids), EmailAttachment.text.is_not(None))
            .order_by(EmailAttachment.email_id, EmailAttachment.filename, EmailAttachment.id)):
        attachments[email_id].append((att_id, filename, text))
    return [(links.get(e.id) or _Links()).fill(MemoryRecord(
        kind="email", workspace_id=e.workspace_id, source_id=e.id, owner_id=e.owner_id,
        date=e.sent_at or e.created_at, title=e.subject or "", author=senders.get(e.id) or e.from_address or "",
        body=e.body_text, attachments=attachments.get(e.id, []))) for e in emails]


def _notes(session: Session, ids: Sequence[uuid.UUID]) -> list[MemoryRecord]:
    notes = list(session.scalars(select(Note).where(Note.id.in_(ids))))
    links: dict[uuid.UUID, _Links] = defaultdict(_Links)
    for n in notes:
        lk = links[n.id]
        lk.contacts.update(x for x in [n.contact_id] if x)
        lk.companies.update(x for x in [n.company_id] if x)
        lk.deals.update(x for x in [n.deal_id] if x)
    _expand(session, links)
    names = _owner_names(session, (n.owner_id for n in notes))
    return [links[n.id].fill(MemoryRecord(
        kind="note", workspace_id=n.workspace_id, source_id=n.id, owner_id=n.owner_id, date=n.created_at,
        author=names.get(n.owner_id, "") if n.owner_id else "", body=n.body)) for n in notes]


def _calls(session: Session, ids: Sequence[uuid.UUID]) -> list[MemoryRecord]:
    query = (select(CallRecording, Transcript)
             .outerjoin(Transcript, Transcript.call_recording_id == CallRecording.id)
             .where(CallRecording.id.in_(ids)))
    rows: list[tuple[CallRecording, Transcript | None]] = [(rec, tr) for rec, tr in session.execute(query)]
    if not rows:
        return []
    rec_ids = [r.id for r, _ in rows]
    links = _activity_links(session, Activity.call_recording_id, rec_ids)
    titles: dict[uuid.UUID, tuple[str, datetime]] = {}
    for rec_id, subject, occurred in session.execute(
            select(Activity.call_recording_id, Activity.subject, Activity.occurred_at)
            .where(Activity.call_recording_id.in_(rec_ids)).order_by(Activity.occurred_at)):
        titles.setdefault(rec_id, (subject, occurred))
    for r, _ in rows:
        lk = links[r.id]
        lk.contacts.update(x for x in [r.contact_id] if x)
        lk.companies.update(x for x in [r.company_id] if x)
        lk.deals.update(x for x in [r.deal_id] if x)
    _expand(session, links)
    out = []
    for rec, transcript in rows:
        subject, occurred = titles.get(rec.id, ("", None))
        record = MemoryRecord(kind="call", workspace_id=rec.workspace_id, source_id=rec.id, owner_id=rec.owner_id,
                              date=occurred or rec.created_at, title=subject or rec.filename)
        if transcript is not None:
            record.segments, record.body, record.transcript_id = \
                transcript.segments or [], transcript.text, transcript.id
        out.append(links[rec.id].fill(record))
    return out
