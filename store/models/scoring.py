"""Learned scores and lead routing: the stored models and every lead assignment."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, IdMixin, WorkspaceMixin
from store.types import utcnow


class ScoringModel(IdMixin, WorkspaceMixin, Base):
    """One trained model (win probability or lead score) and its evaluation report.

    Rows are never updated: retraining adds a row, and the newest row of a kind is the
    one in use, so the report that justified a model stays next to it.
    """

    __tablename__ = "scoring_models"
    __table_args__ = (Index("ix_scoring_models_workspace_kind_trained", "workspace_id", "kind", "trained_at"),)

    kind: Mapped[str] = mapped_column(String(32))  # "win_probability" | "lead_score"
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    trained_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Examples the model learned from and was tested on (held out by time).
    train_examples: Mapped[int] = mapped_column(Integer)
    test_examples: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column()  # store.ml.LogisticModel.to_dict() and feature settings
    report: Mapped[dict[str, Any]] = mapped_column()  # calibration against the baseline, as measured


class LeadAssignment(IdMixin, WorkspaceMixin, Base):
    """A lead given to a rep by the routing rules (or by hand), with the reason why."""

    __tablename__ = "lead_assignments"
    __table_args__ = (Index("ix_lead_assignments_workspace_assigned", "workspace_id", "assigned_at"),)

    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    previous_owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    territory_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("territories.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(1000))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who ran the routing (an admin's command, an approved proposal); None for the rules on their own.
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approval_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("approvals.id", ondelete="SET NULL"))
