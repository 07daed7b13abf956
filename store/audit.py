"""The audit log: every write, through any surface, with before -> after."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from store.actor import Actor
from store.models import AuditLog
from store.models.base import is_server_only
from store.models.enums import AuditAction


def jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        # 48000 and 48000.00 are the same amount: one spelling, so a diff never shows a non-change.
        return format(value.normalize(), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


# Bookkeeping columns that change on every write and say nothing to a reader.
_SKIP = {"updated_at", "workspace_id"}


def snapshot(obj: Any) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return {c.key: jsonable(getattr(obj, c.key)) for c in mapper.column_attrs
            if c.key not in _SKIP and not is_server_only(c.columns[0])}


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    session: Session,
    actor: Actor,
    *,
    action: AuditAction,
    entity_type: str,
    entity_id: uuid.UUID,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    approval_id: uuid.UUID | None = None,
    note: str | None = None,
) -> AuditLog:
    """Add an audit entry to the caller's transaction (it commits with the write or not at all)."""
    entry = AuditLog(
        workspace_id=actor.workspace_id,
        actor_id=actor.user_id,
        surface=actor.surface,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
        approval_id=approval_id,
        note=note,
    )
    session.add(entry)
    return entry
