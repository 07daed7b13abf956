"""Companies and contacts (leads are contacts in an early lifecycle stage)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, IdMixin, TimestampMixin, WorkspaceMixin, str_enum
from store.models.enums import LeadStatus, LifecycleStage
from store.types import Money


class OwnedMixin:
    """A record with an owner: the unit of visibility (see store/permissions.py)."""

    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class Company(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, Base):
    __tablename__ = "companies"
    __table_args__ = (
        # One company per domain in a workspace: how imports and emails resolve them.
        UniqueConstraint("workspace_id", "domain"),
        Index("ix_companies_workspace_name", "workspace_id", "name"),
    )

    name: Mapped[str] = mapped_column(String(300))
    domain: Mapped[str | None] = mapped_column(String(253))
    industry: Mapped[str | None] = mapped_column(String(100))
    employee_count: Mapped[int | None] = mapped_column(Integer)
    annual_revenue: Mapped[Decimal | None] = mapped_column(Money())
    phone: Mapped[str | None] = mapped_column(String(32))
    website: Mapped[str | None] = mapped_column(String(500))
    country: Mapped[str | None] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(64))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Contact(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email"),
        Index("ix_contacts_workspace_last_name", "workspace_id", "last_name"),
    )

    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    # E.164, normalized on the way in so search by any spelling finds it.
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    title: Mapped[str | None] = mapped_column(String(200))
    company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    lifecycle_stage: Mapped[LifecycleStage] = mapped_column(
        str_enum(LifecycleStage), default=LifecycleStage.lead
    )
    lead_status: Mapped[LeadStatus | None] = mapped_column(str_enum(LeadStatus))
    lead_score: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))
    linkedin_url: Mapped[str | None] = mapped_column(String(500))
    last_activity_at: Mapped[datetime | None] = mapped_column()
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()
