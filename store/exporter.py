"""CSV export of contacts, companies and deals, in the columns `store.importer` reads back.

Relations are written as what a person (and another workspace) can resolve: emails,
domains and names, never ids. Only what the actor may read is written, page by page.
"""

from __future__ import annotations

import csv
import enum
import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import ValidationFailed
from store.import_formats import neutralize
from store.models import Company, Contact, DealContact, Pipeline, Stage, User
from store.services import crud

PAGE_SIZE = 1000

COLUMNS: dict[str, list[str]] = {
    "contacts": ["first_name", "last_name", "email", "phone", "title", "company_name", "company_domain",
                 "lifecycle_stage", "lead_status", "lead_score", "source", "country", "timezone", "linkedin_url",
                 "owner_email"],
    "companies": ["name", "domain", "industry", "employee_count", "annual_revenue", "phone", "website", "country",
                  "region", "city", "description", "source", "owner_email"],
    "deals": ["name", "pipeline", "stage", "amount", "currency", "close_date", "probability", "forecast_category",
              "next_step", "company_name", "company_domain", "contact_emails", "lost_reason", "source",
              "description", "owner_email"],
}
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def export_csv(session: Session, *, actor: Actor, entity: str, out: TextIO,
               filters: dict[str, Any] | None = None) -> int:
    """Write the readable records of `entity` (optionally filtered) as CSV; return how many."""
    if entity not in COLUMNS:
        raise ValidationFailed(f"cannot export '{entity}'; export one of: {', '.join(COLUMNS)}", field="entity")
    spec = crud.spec_for(_SINGULAR[entity])
    model: Any = spec.model
    base = crud.apply_filters(spec, crud.readable(spec, actor), filters or {})
    owners = dict(session.execute(select(User.id, User.email).where(User.workspace_id == actor.workspace_id)).all())
    stages: dict[uuid.UUID, str] = {}
    pipelines: dict[uuid.UUID, str] = {}
    if entity == "deals":
        stages = dict(session.execute(select(Stage.id, Stage.name)
                                      .where(Stage.workspace_id == actor.workspace_id)).all())
        pipelines = dict(session.execute(select(Pipeline.id, Pipeline.name)
                                         .where(Pipeline.workspace_id == actor.workspace_id)).all())
    writer = csv.DictWriter(out, fieldnames=COLUMNS[entity])
    writer.writeheader()
    written, last_id = 0, None
    while True:
        # Keyset paging on the time-ordered id: each page is one indexed range scan.
        query = base.order_by(model.id).limit(PAGE_SIZE)
        if last_id is not None:
            query = query.where(model.id > last_id)
        page = session.scalars(query).all()
        if not page:
            return written
        companies = _companies(session, actor, {o.company_id for o in page if getattr(o, "company_id", None)})
        people = _deal_people(session, actor, [o.id for o in page]) if entity == "deals" else {}
        for obj in page:
            row = {c: _text(getattr(obj, c, None)) for c in COLUMNS[entity]}
            row["owner_email"] = owners.get(obj.owner_id, "")
            if entity != "companies":
                row["company_name"], row["company_domain"] = companies.get(obj.company_id, ("", ""))
            if entity == "deals":
                row["stage"], row["pipeline"] = stages.get(obj.stage_id, ""), pipelines.get(obj.pipeline_id, "")
                row["contact_emails"] = "; ".join(people.get(obj.id, []))
            # A spreadsheet would run a cell starting with =, +, -, @ (a name, a phone number):
            # each is written with a leading ', which `crm import` takes off again.
            writer.writerow({c: neutralize(v) for c, v in row.items()})
        written += len(page)
        last_id = page[-1].id


def _companies(session: Session, actor: Actor, ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    """Name and domain of the companies among `ids` that the actor may read (others stay blank)."""
    if not ids:
        return {}
    query = crud.readable(crud.spec_for("company"), actor).where(Company.id.in_(ids))
    return {c.id: (c.name, c.domain or "") for c in session.scalars(query)}


def _deal_people(session: Session, actor: Actor, deal_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """The readable contacts on each deal, primary first, as emails (or names when they have none)."""
    visible = crud.readable(crud.spec_for("contact"), actor).with_only_columns(Contact.id)
    rows = session.execute(
        select(DealContact.deal_id, Contact.email, Contact.first_name, Contact.last_name)
        .join(Contact, Contact.id == DealContact.contact_id)
        .where(DealContact.deal_id.in_(deal_ids), Contact.id.in_(visible))
        .order_by(DealContact.is_primary.desc(), Contact.email))
    out: dict[uuid.UUID, list[str]] = {}
    for deal_id, email, first, last in rows:
        out.setdefault(deal_id, []).append(email or f"{first} {last}".strip())
    return out
