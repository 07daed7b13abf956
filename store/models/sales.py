"""Pipelines, stages, deals, the people on a deal, and each deal's history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, IdMixin, TimestampMixin, WorkspaceMixin, str_enum
from store.models.crm import OwnedMixin
from store.models.enums import DealContactRole, ForecastCategory, StageKind
from store.types import Money


class Pipeline(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(default=False)


class Stage(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("pipeline_id", "name"),)

    pipeline_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    # Default win probability, percent 0-100; a deal may override it.
    probability: Mapped[int] = mapped_column(Integer)
    kind: Mapped[StageKind] = mapped_column(str_enum(StageKind), default=StageKind.open)


class Deal(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_workspace_close_date", "workspace_id", "close_date"),
        Index("ix_deals_workspace_stage", "workspace_id", "stage_id"),
        Index("ix_deals_workspace_created", "workspace_id", "created_at"),  # the default list order
        Index("ix_deals_workspace_last_activity", "workspace_id", "last_activity_at"),  # stale deals
    )

    name: Mapped[str] = mapped_column(String(300))
    pipeline_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipelines.id"), index=True)
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stages.id"))
    amount: Mapped[Decimal | None] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    close_date: Mapped[date | None] = mapped_column(Date)
    # Percent 0-100. None means "use the stage's probability".
    probability: Mapped[int | None] = mapped_column(Integer)
    forecast_category: Mapped[ForecastCategory] = mapped_column(
        str_enum(ForecastCategory), default=ForecastCategory.pipeline
    )
    next_step: Mapped[str | None] = mapped_column(String(500))
    company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    # When the deal entered its current stage, and when it was won or lost.
    stage_entered_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    # The latest occurred_at of the activities that target the deal (None: none do). Kept exact by
    # the activity service (engagement._set_targets / _before_delete_activity).
    last_activity_at: Mapped[datetime | None] = mapped_column()
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DealContact(IdMixin, WorkspaceMixin, Base):
    """A contact on a deal, with their role in the buying decision."""

    __tablename__ = "deal_contacts"
    __table_args__ = (UniqueConstraint("deal_id", "contact_id"),)

    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[DealContactRole] = mapped_column(
        str_enum(DealContactRole), default=DealContactRole.other
    )
    is_primary: Mapped[bool] = mapped_column(default=False)


class DealHistory(IdMixin, WorkspaceMixin, Base):
    """A snapshot of a deal's forecast fields, written whenever one of them changes.

    One row per change (and one at creation) makes both questions cheap: "when did
    it enter each stage" (the deal's first row, then the rows with a from_stage_id)
    and "what did the forecast look like on date X" (the latest row per deal before X).
    A row without from_stage_id after the first changed amount, date or category only.
    """

    __tablename__ = "deal_history"
    __table_args__ = (
        Index("ix_deal_history_deal_changed", "deal_id", "changed_at"),
        Index("ix_deal_history_workspace_close_date", "workspace_id", "close_date"),  # forecast changes
        # forecast changes: which deals changed since a moment, from the index alone
        Index("ix_deal_history_workspace_changed_deal", "workspace_id", "changed_at", "deal_id"),
    )

    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    changed_at: Mapped[datetime] = mapped_column(index=True)
    changed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Set only when this change moved the deal between stages (None at creation).
    from_stage_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stages.id"))
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stages.id"))
    amount: Mapped[Decimal | None] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3))
    close_date: Mapped[date | None] = mapped_column(Date)
    probability: Mapped[int | None] = mapped_column(Integer)
    forecast_category: Mapped[ForecastCategory] = mapped_column(str_enum(ForecastCategory))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class DealStageStay(WorkspaceMixin, Base):
    """A deal's stay in a stage: one row per stage entry in its history, derived from `deal_history`.

    An entry is a deal's first history row or a row with a from_stage_id; the stay lasts until the
    deal's next entry (`left_at`, None while it is still there). The `*_later` columns say what the
    deal reached in the history rows strictly after the entry (up to now), judged by the stages'
    current kind and position. Stage conversion and days in stage read these rows instead of running
    windows over the history. `store/services/stage_stays.py` keeps them exact: it recomputes a
    deal's stays whenever its history, its owner or a stage's kind or position is written.
    """

    __tablename__ = "deal_stage_stays"
    __table_args__ = (
        Index("ix_deal_stage_stays_workspace_entered", "workspace_id", "entered_at"),  # stage conversion
        Index("ix_deal_stage_stays_stage_entered", "stage_id", "entered_at"),  # the first deals per stage
        Index("ix_deal_stage_stays_workspace_left", "workspace_id", "left_at"),  # days in stage
    )

    # The entry's history row: one stay per entry, gone with it.
    history_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deal_history.id", ondelete="CASCADE"),
                                                  primary_key=True)
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))  # the deal's now
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stages.id"))
    entered_at: Mapped[datetime] = mapped_column()
    left_at: Mapped[datetime | None] = mapped_column()
    # When the deal last entered this same stage before (None: the first time). An entry is a deal's
    # first in the stage over a period when this is None or before the period: conversion counts deals.
    prev_entered_at: Mapped[datetime | None] = mapped_column()
    won_later: Mapped[bool] = mapped_column()
    lost_later: Mapped[bool] = mapped_column()
    top_open_later: Mapped[int | None] = mapped_column(Integer)  # the highest open stage position reached later
