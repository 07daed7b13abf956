"""Stale deals and activity counts per rep."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import (
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Deal, Stage, User
from store.models.enums import StageKind
from store.services import activity_rollup
from store.services.analytics.base import (
    _bounds,
    _owned_by,
)
from store.services.pipeline import Scope, scoped_deals

# --- stale deals ------------------------------------------------------------------------

@dataclass
class StaleDeal:
    id: uuid.UUID
    name: str
    owner: str
    stage: str
    amount: Decimal | None
    currency: str
    last_activity: datetime | None  # None: no activity ever; the deal's creation counts instead
    days: int  # whole days since the last activity (or creation)


@dataclass
class StaleDeals:
    days: int
    today: date
    scope: str
    total: int
    deals: list[StaleDeal]  # oldest touch first, at most `cap`


def stale_deals(session: Session, *, actor: Actor, scope: Scope, today: date, days: int = 14,
                tz: tzinfo = UTC, cap: int = 20) -> StaleDeals:
    """Open deals whose latest activity (or creation, if none) is at least `days` whole days before today."""
    if days < 1:
        raise ValidationFailed("days must be at least 1", field="days")
    # The deal's latest activity is kept on the row (Deal.last_activity_at, maintained by the activity
    # service), so this reads the open deals only, not their activities. The total comes with the page.
    deals = scoped_deals(actor, scope).join(Stage, Stage.id == Deal.stage_id).where(
        Stage.kind == StageKind.open).subquery()
    d = deals.c
    touch = func.coalesce(d.last_activity_at, d.created_at)
    cutoff = datetime.combine(today - timedelta(days=days - 1), time.min, tz)
    stale = or_(d.last_activity_at < cutoff, and_(d.last_activity_at.is_(None), d.created_at < cutoff))
    if cap < 1:
        total = session.scalar(select(func.count()).select_from(deals).where(stale)) or 0
        return StaleDeals(days, today, str(scope), total, [])
    page = session.execute(
        select(d.id, d.name, User.name, Stage.name, d.amount, d.currency, d.last_activity_at, d.created_at,
               func.count().over())
        .select_from(deals).join(Stage, Stage.id == d.stage_id).outerjoin(User, User.id == d.owner_id)
        .where(stale).order_by(touch, d.id).limit(cap)
    ).all()
    total = page[0][-1] if page else 0
    rows = [row[:-1] for row in page]
    out = [StaleDeal(id_, name, owner or "Unassigned", stage, amount, currency, at,
                     (today - (at or created).astimezone(tz).date()).days)
           for id_, name, owner, stage, amount, currency, at, created in rows]
    return StaleDeals(days, today, str(scope), total, out)


# --- activity counts --------------------------------------------------------------------

@dataclass
class RepActivity:
    owner_id: uuid.UUID | None
    owner: str
    total: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def activity_counts(session: Session, *, actor: Actor, scope: Scope, start: date, end: date,
                    tz: tzinfo = UTC) -> list[RepActivity]:
    """Activities that occurred in the period, per owner (rep) and type; the busiest rep first."""
    lo, hi = _bounds(start, end, tz)
    # From the daily rollup (whole UTC days) and the activities of the partial days at either end:
    # activities are readable by owner only, so the permission and scope filters apply to the rollup.
    c = activity_rollup.counts_query(
        workspace_id=actor.workspace_id, lo=lo, hi=hi,
        owners=lambda owner: _owned_by(actor, scope, owner),
    ).subquery()
    rows = session.execute(select(c.c.owner_id, User.name, c.c.type, c.c.n).select_from(c)
                           .outerjoin(User, User.id == c.c.owner_id)).all()
    reps: dict[uuid.UUID | None, RepActivity] = {}
    for owner_id, name, type_, count in rows:
        rep = reps.setdefault(owner_id, RepActivity(owner_id, name or "Unassigned"))
        rep.total += count
        rep.by_type[str(type_)] = count
    return sorted(reps.values(), key=lambda r: (-r.total, r.owner.lower()))
