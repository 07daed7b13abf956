"""Companies and contacts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import custom_fields, normalize
from store.actor import Actor
from store.models import Company, Contact
from store.models.enums import CustomFieldEntity
from store.services.crud import Access, EntitySpec, register


def _custom(session: Session, actor: Actor, entity: CustomFieldEntity, values: dict[str, Any],
            existing: Any) -> None:
    if "custom_fields" in values:
        values["custom_fields"] = custom_fields.validate(
            session, workspace_id=actor.workspace_id, entity=entity, values=values["custom_fields"] or {},
            existing=existing.custom_fields if existing is not None else None)
    elif existing is None:
        values["custom_fields"] = custom_fields.validate(
            session, workspace_id=actor.workspace_id, entity=entity, values={})


def _place(values: dict[str, Any], existing: Any) -> None:
    """Country as an ISO code, and the phone in E.164 read in that country."""
    if values.get("country"):
        values["country"] = values["country"].upper()
    if "phone" in values:
        region = values.get("country") or (existing.country if existing is not None else None)
        values["phone"] = normalize.phone(values["phone"], region=region)


def _prepare_company(session: Session, actor: Actor, values: dict[str, Any], existing: Any) -> dict[str, Any]:
    if "domain" in values:
        values["domain"] = normalize.domain(values["domain"])
    if values.get("website") and not values.get("domain") and (existing is None or not existing.domain):
        values["domain"] = normalize.domain(values["website"])
    _place(values, existing)
    _custom(session, actor, CustomFieldEntity.company, values, existing)
    return values


def _prepare_contact(session: Session, actor: Actor, values: dict[str, Any], existing: Any) -> dict[str, Any]:
    if "email" in values:
        values["email"] = normalize.email(values["email"])
    _place(values, existing)
    _custom(session, actor, CustomFieldEntity.contact, values, existing)
    return values


companies = register(EntitySpec(
    name="company", plural="companies", model=Company, access=Access.OWNED,
    refs={"owner_id": "user"}, unique=("domain",), search=("name", "domain"),
    default_sort="name", prepare=_prepare_company,
))
contacts = register(EntitySpec(
    name="contact", plural="contacts", model=Contact, access=Access.OWNED,
    refs={"owner_id": "user", "company_id": "company"}, unique=("email",),
    search=("first_name", "last_name", "email", "phone"), default_sort="last_name",
    prepare=_prepare_contact,
))


def best_leads(session: Session, *, workspace_id: uuid.UUID, stages: Iterable[Any],
               limit: int) -> list[tuple[Contact, str | None]]:
    """The best-scored contacts in these lifecycle stages, with their company's name."""
    return [(c, name) for c, name in session.execute(
        select(Contact, Company.name).outerjoin(Company, Company.id == Contact.company_id)
        .where(Contact.workspace_id == workspace_id, Contact.lifecycle_stage.in_(list(stages)))
        .order_by(Contact.lead_score.desc(), Contact.id).limit(limit))]
