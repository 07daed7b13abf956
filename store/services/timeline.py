"""The timeline of a contact, company or deal: activities, notes and tasks in one query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, cast, literal, or_, select, union_all
from sqlalchemy.orm import Session

from store.actor import Actor
from store.models import Activity, ActivityTarget, Contact, Deal, Note, Task
from store.services.crud import get, spec_for


@dataclass
class TimelineItem:
    kind: str  # activity | note | task
    id: uuid.UUID
    at: datetime
    type: str  # call, meeting, email, note, task...
    title: str
    body: str | None
    owner_id: uuid.UUID | None
    status: str | None


@dataclass
class Targets:
    """The records whose events make up a timeline."""

    contact_ids: list[uuid.UUID]
    company_ids: list[uuid.UUID]
    deal_ids: list[uuid.UUID]

    def clause(self, contact_col: Any, company_col: Any, deal_col: Any) -> Any:
        parts = [col.in_(ids) for col, ids in ((contact_col, self.contact_ids), (company_col, self.company_ids),
                                                (deal_col, self.deal_ids)) if ids]
        return or_(*parts)


def targets_of(session: Session, kind: str, record_id: uuid.UUID) -> Targets:
    if kind == "contact":
        return Targets([record_id], [], [])
    if kind == "deal":
        return Targets([], [], [record_id])
    # A company's timeline includes what happened with its people and on its deals. The ids
    # are fetched first: an OR of IN-subqueries defeats PostgreSQL's indexes (bench/README.md).
    return Targets(list(session.scalars(select(Contact.id).where(Contact.company_id == record_id))), [record_id],
                   list(session.scalars(select(Deal.id).where(Deal.company_id == record_id))))


def timeline_query(targets: Targets, workspace_id: uuid.UUID) -> Select[Any]:
    t = ActivityTarget
    activity_ids = select(t.activity_id).where(
        t.workspace_id == workspace_id, targets.clause(t.contact_id, t.company_id, t.deal_id))
    activities = select(
        literal("activity").label("kind"), Activity.id, Activity.occurred_at.label("at"),
        cast(Activity.type, String).label("type"), Activity.subject.label("title"), Activity.body,
        Activity.owner_id, literal(None, String).label("status"),
    ).where(Activity.workspace_id == workspace_id, Activity.id.in_(activity_ids))
    notes = select(
        literal("note").label("kind"), Note.id, Note.created_at.label("at"), literal("note").label("type"),
        literal("").label("title"), Note.body, Note.owner_id, literal(None, String).label("status"),
    ).where(Note.workspace_id == workspace_id, targets.clause(Note.contact_id, Note.company_id, Note.deal_id))
    tasks = select(
        literal("task").label("kind"), Task.id, Task.due_at.label("at"), literal("task").label("type"),
        Task.title, Task.description.label("body"), Task.owner_id, cast(Task.status, String).label("status"),
    ).where(Task.workspace_id == workspace_id, Task.due_at.is_not(None),
            targets.clause(Task.contact_id, Task.company_id, Task.deal_id))
    return union_all(activities, notes, tasks)  # type: ignore[return-value]


def timeline(session: Session, *, actor: Actor, kind: str, record_id: uuid.UUID, limit: int = 50,
             offset: int = 0) -> list[TimelineItem]:
    """Newest first. Whoever can read the record reads its whole timeline."""
    get(session, spec_for(kind), actor=actor, id=record_id)
    union = timeline_query(targets_of(session, kind, record_id), actor.workspace_id).subquery()
    rows = session.execute(select(union).order_by(union.c.at.desc(), union.c.id.desc())
                           .limit(limit).offset(offset)).all()
    return [TimelineItem(kind=r.kind, id=r.id, at=_aware(r.at), type=r.type, title=r.title or "",
                         body=r.body, owner_id=r.owner_id, status=r.status) for r in rows]


def _aware(value: Any) -> datetime:
    from store.types import UTCDateTime

    # Through a UNION the column type is lost on SQLite; put the UTC zone back.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type,return-value]
