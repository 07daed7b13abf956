"""Workspace configuration: custom field definitions and territories."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, IdMixin, TimestampMixin, WorkspaceMixin, str_enum
from store.models.enums import CustomFieldEntity, CustomFieldType


class CustomFieldDefinition(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    """A field an admin adds to contacts, companies or deals.

    Values live in the record's `custom_fields` JSON under `key` and are validated
    against this definition by store/custom_fields.py on every write.
    """

    __tablename__ = "custom_field_definitions"
    __table_args__ = (UniqueConstraint("workspace_id", "entity", "key"),)

    entity: Mapped[CustomFieldEntity] = mapped_column(str_enum(CustomFieldEntity))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[CustomFieldType] = mapped_column(str_enum(CustomFieldType))
    options: Mapped[list[Any]] = mapped_column(default=list)
    required: Mapped[bool] = mapped_column(default=False)
    description: Mapped[str | None] = mapped_column(String(500))


class Territory(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    """Routing rules for new leads: who gets a lead from which region/industry/size.

    `rules` holds {"countries": [...], "regions": [...], "industries": [...],
    "min_employees": n, "max_employees": n}; an empty rule matches everything.
    Lower `priority` is tried first.
    """

    __tablename__ = "territories"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(default=True)


class TerritoryMember(IdMixin, WorkspaceMixin, Base):
    """A user who receives leads from a territory, round-robin up to a capacity."""

    __tablename__ = "territory_members"
    __table_args__ = (UniqueConstraint("territory_id", "user_id"),)

    territory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("territories.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Open leads this user may hold at once; None is unlimited.
    capacity: Mapped[int | None] = mapped_column(Integer)
    last_assigned_at: Mapped[datetime | None] = mapped_column()
