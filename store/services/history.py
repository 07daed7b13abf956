"""Reading the audit log: a record's history for whoever may read the record, the whole log for admins.

Every door that shows who changed what (the HTTP history and audit-log routes, the agent's
`record_history`) reads it here, so they answer the same person the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import PermissionDenied
from store.models import Approval, AuditLog, Company, Stage, User
from store.services import approvals, crud


def of_record(session: Session, *, actor: Actor, entity: str, id: uuid.UUID) -> Sequence[AuditLog]:
    """Who changed this record, when, through which door, before -> after, oldest first. NotFound
    (revealing nothing) when the actor may not read the record."""
    crud.get(session, crud.spec_for(entity), actor=actor, id=id)
    return session.scalars(select(AuditLog).where(
        AuditLog.workspace_id == actor.workspace_id, AuditLog.entity_type == entity,
        AuditLog.entity_id == id).order_by(AuditLog.created_at, AuditLog.id)).all()


@dataclass
class Change:
    """One audit entry as a person reads it: names instead of ids, and the proposal behind it
    when the reader may see that proposal (`from_proposal` says there was one either way)."""

    at: datetime
    action: str
    surface: str
    by: str
    fields: dict[str, tuple[Any, Any]]  # field -> (before, after), ids of stages and people as names
    note: str | None
    from_proposal: bool
    proposal: Approval | None
    approved_by: str | None


# Foreign keys a person reads as names, not ids.
_NAMED: dict[str, Any] = {"stage_id": Stage, "owner_id": User, "company_id": Company}


def _named(session: Session, key: str, value: Any) -> Any:
    model = _NAMED.get(key)
    if model is None or value in (None, ""):
        return value
    try:
        row = session.get(model, uuid.UUID(str(value)))
    except ValueError:
        row = None
    return getattr(row, "name", value) if row is not None else value


def changes(session: Session, *, actor: Actor, entity: str, id: uuid.UUID, field: str | None = None) -> list[Change]:
    """"Why is this here?": the record's history (only the entries touching `field`, if given) with
    who made each change, who approved it, and the proposal's evidence when the actor may see it."""
    entries = [e for e in of_record(session, actor=actor, entity=entity, id=id)
               if field is None or field in (e.after or {}) or field in (e.before or {})]
    ids = {e.approval_id for e in entries if e.approval_id is not None}
    proposals = {a.id: a for a in session.scalars(select(Approval).where(
        Approval.id.in_(ids), approvals.visible_to(actor)))} if ids else {}
    people = ({e.actor_id for e in entries} | {p.decided_by_id for p in proposals.values()}) - {None}
    names = {uid: name for uid, name in session.execute(select(User.id, User.name).where(User.id.in_(people)))}
    out = []
    for e in entries:
        keys = [field] if field else sorted(set(e.after or {}) | set(e.before or {}))
        proposal = proposals.get(e.approval_id) if e.approval_id else None
        out.append(Change(
            at=e.created_at, action=e.action.value, surface=e.surface.value,
            by=names.get(e.actor_id, "the system") if e.actor_id else "the system",
            fields={k: (_named(session, k, (e.before or {}).get(k)), _named(session, k, (e.after or {}).get(k)))
                    for k in keys},
            note=e.note, from_proposal=e.approval_id is not None, proposal=proposal,
            approved_by=names.get(proposal.decided_by_id) if proposal and proposal.decided_by_id else None))
    return out


def workspace_log(session: Session, *, actor: Actor, entity_type: str | None = None,
                  actor_id: uuid.UUID | None = None, limit: int = 100, offset: int = 0) -> Sequence[AuditLog]:
    """The whole workspace's audit log, newest first: admins only (it names every record)."""
    if not actor.is_admin:
        raise PermissionDenied("only admins read the whole audit log; anyone can read "
                               "GET /api/v1/<entity>/<id>/history of what they can see")
    query = select(AuditLog).where(AuditLog.workspace_id == actor.workspace_id)
    if entity_type:
        query = query.where(AuditLog.entity_type == entity_type)
    if actor_id:
        query = query.where(AuditLog.actor_id == actor_id)
    return session.scalars(query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
                           .limit(limit).offset(offset)).all()
