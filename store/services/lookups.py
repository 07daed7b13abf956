"""Look-ups by id for code that resolves names to records (the offline model): what a found record is
(its company, title, stage), a company's open deals and contacts, the actor's open tasks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from store.actor import Actor
from store.models import Company, Contact, Deal, Stage, Task
from store.models.enums import TaskStatus
from store.services.crud import readable, spec_for


@dataclass(frozen=True)
class RecordFacts:
    """What tells two records of the same name apart: the company, a contact's title and email,
    a deal's stage and whether it is open."""

    company_id: uuid.UUID | None
    company_name: str | None
    title: str | None = None
    email: str | None = None
    stage_name: str | None = None
    is_open: bool = True
    pipeline_id: uuid.UUID | None = None


def record_facts(session: Session, *, kind: str, id: uuid.UUID) -> RecordFacts | None:
    """The facts of a contact or deal already found by a scoped search (None if it is gone)."""
    obj: Contact | Deal | None = session.get(Contact if kind == "contact" else Deal, id)
    if obj is None:
        return None
    company = session.get(Company, obj.company_id) if obj.company_id else None
    company_id, company_name = (company.id, company.name) if company else (None, None)
    if isinstance(obj, Contact):
        return RecordFacts(company_id, company_name, title=obj.title, email=obj.email)
    stage = session.get(Stage, obj.stage_id)
    return RecordFacts(company_id, company_name, stage_name=stage.name if stage else None,
                       is_open=obj.closed_at is None, pipeline_id=obj.pipeline_id)


def deal_pipeline(session: Session, *, deal_id: uuid.UUID) -> uuid.UUID | None:
    """The pipeline of a deal already found by a scoped search."""
    deal = session.get(Deal, deal_id)
    return deal.pipeline_id if deal else None


def open_deals_of(session: Session, *, actor: Actor, company_id: uuid.UUID) -> list[Deal]:
    """The open deals of a company the actor may read, by close date then name."""
    query = readable(spec_for("deal"), actor).where(Deal.company_id == company_id, Deal.closed_at.is_(None))
    return list(session.scalars(query.order_by(Deal.close_date, Deal.name)))


def contacts_of(session: Session, *, actor: Actor, company_id: uuid.UUID, limit: int) -> list[Contact]:
    """The contacts at a company the actor may read, by last then first name."""
    query = readable(spec_for("contact"), actor).where(Contact.company_id == company_id)
    return list(session.scalars(query.order_by(Contact.last_name, Contact.first_name).limit(limit)))


def my_open_tasks(session: Session, *, actor: Actor) -> list[Task]:
    """The actor's own open tasks, soonest due first."""
    query = readable(spec_for("task"), actor).where(Task.owner_id == actor.user_id, Task.status == TaskStatus.open)
    return list(session.scalars(query.order_by(Task.due_at)))
