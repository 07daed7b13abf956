"""Validation of custom field values against the workspace's definitions."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import normalize
from store.errors import ValidationFailed
from store.models import CustomFieldDefinition
from store.models.enums import CustomFieldEntity, CustomFieldType


def _coerce(defn: CustomFieldDefinition, value: Any) -> Any:
    where = f"custom field '{defn.key}' ({defn.type.value})"
    kind = defn.type
    try:
        if kind in (CustomFieldType.text, CustomFieldType.url):
            return str(value)
        if kind == CustomFieldType.number:
            if isinstance(value, bool):
                raise ValueError
            number = Decimal(str(value))
            return int(number) if number == number.to_integral_value() else float(number)
        if kind == CustomFieldType.boolean:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"true", "yes", "1"}:
                return True
            if text in {"false", "no", "0"}:
                return False
            raise ValueError
        if kind == CustomFieldType.date:
            return date.fromisoformat(str(value)).isoformat()
        if kind == CustomFieldType.email:
            return normalize.email(str(value))
        if kind == CustomFieldType.select:
            if value not in defn.options:
                raise ValidationFailed(f"{where} must be one of {defn.options}, not {value!r}", field=defn.key)
            return value
        if kind == CustomFieldType.multiselect:
            values = value if isinstance(value, list) else [v.strip() for v in str(value).split(";")]
            bad = [v for v in values if v not in defn.options]
            if bad:
                raise ValidationFailed(f"{where}: {bad} not among {defn.options}", field=defn.key)
            return values
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise ValidationFailed(f"{where} cannot hold {value!r}", field=defn.key) from exc
    raise AssertionError(kind)


def validate(
    session: Session,
    *,
    workspace_id: uuid.UUID,
    entity: CustomFieldEntity,
    values: dict[str, Any],
    existing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge `values` into `existing`, checking each against its definition. None clears a field."""
    defs = {
        d.key: d
        for d in session.scalars(
            select(CustomFieldDefinition).where(
                CustomFieldDefinition.workspace_id == workspace_id, CustomFieldDefinition.entity == entity
            )
        )
    }
    unknown = sorted(set(values) - set(defs))
    if unknown:
        known = ", ".join(sorted(defs)) or "none defined yet"
        raise ValidationFailed(
            f"unknown custom field(s) {unknown} on {entity.value}; defined: {known}", field="custom_fields"
        )
    merged = dict(existing or {})
    for key, value in values.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = _coerce(defs[key], value)
    missing = [k for k, d in defs.items() if d.required and k not in merged]
    if missing:
        raise ValidationFailed(f"required custom field(s) missing on {entity.value}: {missing}", field="custom_fields")
    return merged
