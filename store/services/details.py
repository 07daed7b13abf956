"""What the tools show about a record beyond its own columns: its company, stage, people and tasks.

Reads only: the record itself was already read through `crud.get` / `crud.readable` by the caller,
so these follow its references as the record shows them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.actor import Actor
from store.models import Company, Contact, Deal, DealContact, Stage, Task
from store.models.enums import DealContactRole, TaskStatus
from store.services.crud import readable, spec_for


def company_by_id(session: Session, company_id: uuid.UUID | None) -> Company | None:
    return session.get(Company, company_id) if company_id is not None else None


def stage_by_id(session: Session, stage_id: uuid.UUID | None) -> Stage | None:
    return session.get(Stage, stage_id) if stage_id is not None else None


def deal_people(session: Session, deal_id: uuid.UUID) -> list[tuple[Contact, DealContactRole]]:
    """The people on a deal with their roles."""
    return [(c, role) for c, role in session.execute(
        select(Contact, DealContact.role).join(DealContact, DealContact.contact_id == Contact.id)
        .where(DealContact.deal_id == deal_id))]


def deal_roles(session: Session, deal_id: uuid.UUID) -> set[DealContactRole]:
    return set(session.scalars(select(DealContact.role).where(DealContact.deal_id == deal_id)))


def company_deals(session: Session, *, actor: Actor, company_id: uuid.UUID) -> list[Deal]:
    """The company's deals the actor may read, soonest close date first."""
    return list(session.scalars(readable(spec_for("deal"), actor).where(Deal.company_id == company_id)
                                .order_by(Deal.close_date)))


def my_tasks(session: Session, *, actor: Actor, status: TaskStatus, due_before: datetime | None = None,
             limit: int = 25) -> list[Task]:
    """The actor's own tasks in a status, soonest due first (no due date last)."""
    query = readable(spec_for("task"), actor).where(Task.owner_id == actor.user_id, Task.status == status)
    if due_before is not None:
        query = query.where(Task.due_at <= due_before)
    return list(session.scalars(query.order_by(Task.due_at.asc().nulls_last()).limit(limit)))
