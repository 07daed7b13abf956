"""Stored scoring models: save a trained model with its report, load the one in use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.ml import LogisticModel
from store.models import ScoringModel


@dataclass
class Stored:
    id: uuid.UUID
    kind: str
    trained_at: datetime
    model: LogisticModel
    params: dict[str, Any]
    report: dict[str, Any]


def save(session: Session, *, workspace_id: uuid.UUID, kind: str, model: LogisticModel, report: dict[str, Any],
         train_examples: int, test_examples: int, trained_by_id: uuid.UUID | None = None,
         settings: dict[str, Any] | None = None) -> ScoringModel:
    """Add a model row; it becomes the one in use for its kind (older rows stay, with their reports)."""
    row = ScoringModel(workspace_id=workspace_id, kind=kind, trained_by_id=trained_by_id,
                       train_examples=train_examples, test_examples=test_examples,
                       params={"model": model.to_dict(), "settings": settings or {}}, report=report)
    session.add(row)
    session.flush()
    return row


def latest(session: Session, *, workspace_id: uuid.UUID, kind: str) -> Stored | None:
    """The model in use for `kind` (the newest), or None before the first training."""
    row = session.scalars(
        select(ScoringModel).where(ScoringModel.workspace_id == workspace_id, ScoringModel.kind == kind)
        .order_by(ScoringModel.trained_at.desc(), ScoringModel.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return Stored(row.id, row.kind, row.trained_at, LogisticModel.from_dict(row.params["model"]),
                  row.params, row.report)
