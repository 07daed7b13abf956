"""What the ingestion agent reads about an email or a call before it proposes anything.

agents/ingest.py builds its input from these; every read is scoped to the rep's workspace and,
for CRM records, to what the rep may read (`store.permissions.owner_readable`).
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import NotFound
from store.models import CallRecording, Contact, Deal, DealContact, Email, Task, Transcript
from store.models.enums import TaskStatus
from store.permissions import owner_readable


def email(session: Session, actor: Actor, email_id: uuid.UUID) -> Email:
    """The email in the actor's workspace (NotFound otherwise)."""
    found = session.get(Email, email_id)
    if found is None or found.workspace_id != actor.workspace_id:
        raise NotFound(f"no email with id {email_id}")
    return found


def recording(session: Session, actor: Actor, recording_id: uuid.UUID) -> tuple[CallRecording, Transcript]:
    """The call recording in the actor's workspace and its transcript (NotFound when either is missing)."""
    rec = session.get(CallRecording, recording_id)
    if rec is None or rec.workspace_id != actor.workspace_id:
        raise NotFound(f"no call recording with id {recording_id}")
    transcript = session.scalar(select(Transcript).where(Transcript.call_recording_id == rec.id))
    if transcript is None:
        raise NotFound(f"call recording {recording_id} has no transcript yet")
    return rec, transcript


def readable_deal(session: Session, actor: Actor, deal_id: uuid.UUID | None) -> Deal | None:
    if deal_id is None:
        return None
    return session.scalar(select(Deal).where(Deal.id == deal_id, Deal.workspace_id == actor.workspace_id,
                                             owner_readable(actor, Deal.owner_id)))


def deals_of_contacts(session: Session, actor: Actor, contact_ids: list[uuid.UUID], *, limit: int = 5) -> list[Deal]:
    """Readable deals these people are on (for people without a company record)."""
    return list(session.scalars(select(Deal).join(DealContact, DealContact.deal_id == Deal.id).where(
        DealContact.contact_id.in_(contact_ids), owner_readable(actor, Deal.owner_id)).limit(limit)))


def deal_contact_ids(session: Session, deal_id: uuid.UUID) -> list[uuid.UUID]:
    return list(session.scalars(select(DealContact.contact_id).where(DealContact.deal_id == deal_id)))


def readable_contacts(session: Session, actor: Actor, contact_ids: list[uuid.UUID]) -> list[Contact]:
    return list(session.scalars(select(Contact).where(Contact.id.in_(contact_ids),
                                                      owner_readable(actor, Contact.owner_id))))


def companies_of_contacts(session: Session, contact_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
    """contact id -> its company id (None when it has none)."""
    if not contact_ids:
        return {}
    return dict(session.execute(select(Contact.id, Contact.company_id).where(Contact.id.in_(contact_ids))).all())


def open_task_titles(session: Session, actor: Actor, deal_ids: list[uuid.UUID],
                     contact_ids: list[uuid.UUID]) -> list[str]:
    """The rep's own open tasks on these deals or people (so a proposal does not repeat one)."""
    if not deal_ids and not contact_ids:
        return []
    about = [Task.deal_id.in_(deal_ids)] if deal_ids else []
    about += [Task.contact_id.in_(contact_ids)] if contact_ids else []
    return list(session.scalars(select(Task.title).where(
        Task.workspace_id == actor.workspace_id, Task.owner_id == actor.user_id, Task.status == TaskStatus.open,
        or_(*about)).limit(50)))
