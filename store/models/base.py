"""Declarative base, naming convention and the columns every row carries."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from store.types import UTCDateTime, utcnow, uuid7

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Column info for what stays on the server: where a file lies on its disk. Read schemas and
# audit snapshots leave these columns out, so no response ever shows a server path.
SERVER_ONLY: dict[str, Any] = {"server_only": True}


def is_server_only(column: Any) -> bool:
    return bool(column.info.get("server_only"))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


def str_enum(cls: type[enum.Enum]) -> Enum:
    """Store an enum as its string value (VARCHAR), validated in Python.

    No CHECK constraint: adding a value later is then a code change, not a
    table rewrite on a large PostgreSQL table.
    """
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkspaceMixin:
    """Every row belongs to one workspace (the tenant, and at scale the shard key)."""

    @declared_attr
    def workspace_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805
        return mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
