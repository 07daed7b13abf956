"""Custom field definitions and territories (admin-managed workspace configuration)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import Duplicate, ValidationFailed
from store.models import CustomFieldDefinition, Territory, TerritoryMember
from store.models.enums import CustomFieldType
from store.services.crud import Access, EntitySpec, register

RULE_KEYS = {"countries", "regions", "industries", "min_employees", "max_employees"}


def _prepare_definition(session: Session, actor: Actor, values: dict[str, Any],
                        existing: CustomFieldDefinition | None) -> dict[str, Any]:
    key = values.get("key") or (existing.key if existing else "")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", key):
        raise ValidationFailed("key must be lowercase letters, digits and underscores, starting with a letter",
                               field="key")
    kind = values.get("type") or (existing.type if existing else None)
    options = values.get("options", existing.options if existing else [])
    if kind in (CustomFieldType.select, CustomFieldType.multiselect) and not options:
        raise ValidationFailed(f"a {kind.value} field needs options", field="options")
    entity = values.get("entity") or (existing.entity if existing else None)
    clash = session.scalar(select(CustomFieldDefinition).where(
        CustomFieldDefinition.workspace_id == actor.workspace_id, CustomFieldDefinition.entity == entity,
        CustomFieldDefinition.key == key))
    if clash is not None and clash is not existing:
        raise Duplicate(f"{entity} already has a custom field '{key}'", entity="custom_field",
                        existing_id=str(clash.id))
    return values


def _prepare_territory(session: Session, actor: Actor, values: dict[str, Any], existing: Any) -> dict[str, Any]:
    unknown = set(values.get("rules") or {}) - RULE_KEYS
    if unknown:
        raise ValidationFailed(f"unknown territory rule(s) {sorted(unknown)}; known: {sorted(RULE_KEYS)}",
                               field="rules")
    return values


custom_fields = register(EntitySpec(
    name="custom_field", plural="custom-fields", model=CustomFieldDefinition, access=Access.WORKSPACE,
    search=("key", "label"), default_sort="key", prepare=_prepare_definition,
))
territories = register(EntitySpec(
    name="territory", plural="territories", model=Territory, access=Access.WORKSPACE,
    refs={"team_id": "team"}, unique=("name",), search=("name",), default_sort="priority",
    prepare=_prepare_territory,
))
territory_members = register(EntitySpec(
    name="territory_member", plural="territory-members", model=TerritoryMember, access=Access.WORKSPACE,
    refs={"territory_id": "territory", "user_id": "user"}, default_sort="id",
))
