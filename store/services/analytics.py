"""Pipeline analytics for a caller's scope and period: win rate, deal size, sales cycle,
stage-to-stage conversion, days in stage, stale deals and activity counts per rep.

A period is [start, end], whole days in `tz` (UTC unless given). Deals are in a scope by
their current owner (`pipeline.scoped_deals`), activities by theirs. Amounts stay per
currency. Stage entries and stays come from DealHistory: a deal enters a stage with its
first history row and with every row that has a from_stage_id. Each result names up to
`cap` deals so an answer can cite them. Medians need the values, so the duration metrics
fetch one narrow row per closed deal or stage stay in the period; counts are aggregated in SQL.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Select, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session, aliased

from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Activity, ActivityTarget, Deal, DealHistory, Pipeline, Stage, User
from store.models.enums import StageKind
from store.services.crud import readable, spec_for
from store.services.pipeline import Scope, owner_in_scope, scoped_deals
from store.types import UTCDateTime

WinRateBy = Literal["source", "owner"] | None
CAP = 10
_CENT = Decimal("0.01")


@dataclass
class DealRef:
    id: uuid.UUID
    name: str
    amount: Decimal | None
    currency: str
    stage: str


def _bounds(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    if end < start:
        raise ValidationFailed(f"the period ends ({end}) before it starts ({start})", field="end")
    return datetime.combine(start, time.min, tz), datetime.combine(end + timedelta(days=1), time.min, tz)


def _days(a: datetime, b: datetime) -> float:
    return max((b - a).total_seconds() / 86400, 0.0)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- win rate ---------------------------------------------------------------------------

@dataclass
class WinRateLine:
    group: str  # "all", a source ("(no source)"), or an owner's name ("Unassigned")
    won: int = 0
    lost: int = 0

    @property
    def closed(self) -> int:
        return self.won + self.lost

    @property
    def rate(self) -> float | None:
        """won / (won + lost); None when nothing closed."""
        return _rate(self.won, self.closed)


@dataclass
class WinRate:
    start: date
    end: date
    scope: str
    by: str | None
    total: WinRateLine
    lines: list[WinRateLine]  # one per group, most closed deals first
    deals: list[DealRef]  # the largest deals counted, won and lost


def _closed_in(actor: Actor, scope: Scope, lo: datetime, hi: datetime) -> Any:
    return scoped_deals(actor, scope).where(Deal.closed_at >= lo, Deal.closed_at < hi).subquery()


def _closed_kinds() -> Any:
    return Stage.kind.in_([StageKind.won, StageKind.lost])


def win_rate(session: Session, *, actor: Actor, scope: Scope, start: date, end: date, by: WinRateBy = None,
             tz: tzinfo = UTC, cap: int = CAP) -> WinRate:
    """Deals won or lost in the period (by closed_at): won / (won + lost), overall and per source or owner."""
    if by not in (None, "source", "owner"):
        raise ValidationFailed("by is one of: source, owner", field="by")
    deals = _closed_in(actor, scope, *_bounds(start, end, tz))
    d = deals.c
    keys: list[Any] = {None: [], "source": [d.source], "owner": [d.owner_id, User.name]}[by]
    query = select(*keys, Stage.kind, func.count(d.id)).select_from(deals).join(Stage, Stage.id == d.stage_id)
    if by == "owner":
        query = query.outerjoin(User, User.id == d.owner_id)
    rows = session.execute(query.where(_closed_kinds()).group_by(*keys, Stage.kind)).all()
    total = WinRateLine("all")
    lines: dict[Any, WinRateLine] = {}
    for row in rows:
        *key, kind, count = row
        if by is None:
            label = "all"
        elif by == "source":
            label = key[0] or "(no source)"
        else:
            label = key[1] or "Unassigned"
        line = lines.setdefault(key[0] if key else None, WinRateLine(label))
        for target in (line, total):
            if kind == StageKind.won:
                target.won += count
            else:
                target.lost += count
    refs = session.execute(
        select(d.id, d.name, d.amount, d.currency, Stage.name).select_from(deals)
        .join(Stage, Stage.id == d.stage_id).where(_closed_kinds())
        .order_by(d.amount.desc().nulls_last(), d.id).limit(cap)
    ).all()
    ordered = sorted(lines.values(), key=lambda line: (-line.closed, line.group.lower()))
    return WinRate(start, end, str(scope), by, total, ordered, [DealRef(*r) for r in refs])


# --- deal size and sales cycle ----------------------------------------------------------

@dataclass
class AmountStats:
    currency: str
    deals: int  # won deals with an amount
    total: Decimal
    average: Decimal
    median: Decimal


@dataclass
class DaysStats:
    deals: int
    average: float | None  # days, one decimal; None when no deal
    median: float | None


def _days_stats(values: list[float]) -> DaysStats:
    if not values:
        return DaysStats(0, None, None)
    return DaysStats(len(values), round(statistics.fmean(values), 1), round(statistics.median(values), 1))


@dataclass
class DealSizeCycle:
    start: date
    end: date
    scope: str
    won_amount: list[AmountStats]  # per currency
    won_cycle: DaysStats  # created -> won
    lost_cycle: DaysStats  # created -> lost
    deals: list[DealRef]  # the largest won deals


def deal_size_and_cycle(session: Session, *, actor: Actor, scope: Scope, start: date, end: date,
                        tz: tzinfo = UTC, cap: int = CAP) -> DealSizeCycle:
    """Average and median won amount per currency, and days from created to won and to lost, for deals
    closed in the period."""
    deals = _closed_in(actor, scope, *_bounds(start, end, tz))
    d = deals.c
    rows = session.execute(
        select(Stage.kind, d.currency, d.amount, d.created_at, d.closed_at).select_from(deals)
        .join(Stage, Stage.id == d.stage_id).where(_closed_kinds())
    ).all()
    amounts: dict[str, list[Decimal]] = {}
    cycles: dict[StageKind, list[float]] = {StageKind.won: [], StageKind.lost: []}
    for kind, currency, amount, created_at, closed_at in rows:
        cycles[kind].append(_days(created_at, closed_at))
        if kind == StageKind.won and amount is not None:
            amounts.setdefault(currency, []).append(amount)
    won_amount = [
        AmountStats(currency, len(values), sum(values, Decimal(0)).quantize(_CENT),
                    (sum(values, Decimal(0)) / len(values)).quantize(_CENT),
                    Decimal(statistics.median(values)).quantize(_CENT))
        for currency, values in sorted(amounts.items())
    ]
    refs = session.execute(
        select(d.id, d.name, d.amount, d.currency, Stage.name).select_from(deals)
        .join(Stage, Stage.id == d.stage_id).where(Stage.kind == StageKind.won)
        .order_by(d.amount.desc().nulls_last(), d.id).limit(cap)
    ).all()
    return DealSizeCycle(start, end, str(scope), won_amount, _days_stats(cycles[StageKind.won]),
                         _days_stats(cycles[StageKind.lost]), [DealRef(*r) for r in refs])


# --- stage entries (shared by conversion and days in stage) -----------------------------

def _entries(actor: Actor, scope: Scope, touched: Select[Any]) -> Any:
    """Stage entries of the deals in `touched`: (deal_id, stage_id, changed_at, id), all of their history."""
    h = DealHistory
    first = func.row_number().over(partition_by=h.deal_id, order_by=(h.changed_at, h.id)).label("n")
    rows = select(h.id, h.deal_id, h.stage_id, h.from_stage_id, h.changed_at, first).where(
        h.deal_id.in_(touched), h.deal_id.in_(scoped_deals(actor, scope).with_only_columns(Deal.id))).subquery()
    return select(rows.c.id, rows.c.deal_id, rows.c.stage_id, rows.c.changed_at).where(
        or_(rows.c.n == 1, rows.c.from_stage_id.is_not(None))).subquery()


# --- stage conversion -------------------------------------------------------------------

@dataclass
class ConversionLine:
    pipeline: str
    stage: str
    entered: int  # deals that entered the stage in the period
    advanced: int  # of those, deals that later reached a later open stage or a won stage
    won: int  # of those, deals that were later won
    lost: int  # of those, deals that were later lost
    deal_ids: list[uuid.UUID] = field(default_factory=list)  # the first deals to enter it

    @property
    def conversion(self) -> float | None:
        """advanced / entered."""
        return _rate(self.advanced, self.entered)

    @property
    def win_rate(self) -> float | None:
        """won / entered."""
        return _rate(self.won, self.entered)


def stage_conversion(session: Session, *, actor: Actor, scope: Scope, start: date, end: date,
                     pipeline_id: uuid.UUID | None = None, tz: tzinfo = UTC, cap: int = CAP) -> list[ConversionLine]:
    """Per open stage: deals that entered it in the period, and how many of them later (up to now) reached
    a later stage (a higher open stage or won), were won, were lost."""
    lo, hi = _bounds(start, end, tz)
    h = DealHistory
    touched = select(h.deal_id).where(h.changed_at >= lo, h.changed_at < hi)
    all_entries = _entries(actor, scope, touched)
    e = select(all_entries).where(all_entries.c.changed_at >= lo, all_entries.c.changed_at < hi).subquery()
    es, later, ls = aliased(Stage), aliased(DealHistory), aliased(Stage)

    def reached(condition: Any) -> Any:
        return (select(later.id).join(ls, ls.id == later.stage_id)
                .where(later.deal_id == e.c.deal_id, later.changed_at > e.c.changed_at, condition).exists())

    advanced = reached(or_(ls.kind == StageKind.won, and_(ls.kind == StageKind.open, ls.position > es.position)))
    won, lost = reached(ls.kind == StageKind.won), reached(ls.kind == StageKind.lost)
    stage_filter = [es.kind == StageKind.open, es.workspace_id == actor.workspace_id]
    if pipeline_id is not None:
        stage_filter.append(es.pipeline_id == pipeline_id)
    rows = session.execute(
        select(es.id, Pipeline.name, es.name, es.position, func.count(distinct(e.c.deal_id)),
               *(func.count(distinct(case((flag, e.c.deal_id)))) for flag in (advanced, won, lost)))
        .select_from(e).join(es, es.id == e.c.stage_id).join(Pipeline, Pipeline.id == es.pipeline_id)
        .where(*stage_filter).group_by(es.id, Pipeline.name, es.name, es.position)
        .order_by(Pipeline.name, es.position)
    ).all()
    lines = {row[0]: ConversionLine(row[1], row[2], *row[4:]) for row in rows}
    if lines:
        n = func.row_number().over(partition_by=e.c.stage_id, order_by=(e.c.changed_at, e.c.id)).label("n")
        firsts = select(e.c.stage_id, e.c.deal_id, n).where(e.c.stage_id.in_(list(lines))).subquery()
        for stage_id, deal_id in session.execute(
                select(firsts.c.stage_id, firsts.c.deal_id).where(firsts.c.n <= cap * 2)):
            ids = lines[stage_id].deal_ids
            if deal_id not in ids and len(ids) < cap:
                ids.append(deal_id)
    return list(lines.values())


# --- days in stage ----------------------------------------------------------------------

@dataclass
class StageTime:
    pipeline: str
    stage: str
    stays: int  # stays in the stage that ended (the deal moved on) in the period
    average_days: float
    median_days: float
    deal_ids: list[uuid.UUID]  # the longest stays first


def days_in_stage(session: Session, *, actor: Actor, scope: Scope, start: date, end: date,
                  tz: tzinfo = UTC, cap: int = CAP) -> list[StageTime]:
    """Average and median days spent in each stage, over the stays that ended in the period (entry to the
    deal's next stage change)."""
    lo, hi = _bounds(start, end, tz)
    h = DealHistory
    touched = select(h.deal_id).where(h.changed_at >= lo, h.changed_at < hi, h.from_stage_id.is_not(None))
    e = _entries(actor, scope, touched)
    left = func.lead(e.c.changed_at, type_=UTCDateTime()).over(partition_by=e.c.deal_id,
                                                                 order_by=(e.c.changed_at, e.c.id))
    stays = select(e.c.deal_id, e.c.stage_id, e.c.changed_at.label("entered"), left.label("left")).subquery()
    rows = session.execute(
        select(Pipeline.name, Stage.name, Stage.position, stays.c.deal_id, stays.c.entered, stays.c.left)
        .join(Stage, Stage.id == stays.c.stage_id).join(Pipeline, Pipeline.id == Stage.pipeline_id)
        .where(stays.c.left >= lo, stays.c.left < hi)
    ).all()
    grouped: dict[tuple[str, int, str], list[tuple[float, uuid.UUID]]] = {}
    for pipeline, stage, position, deal_id, entered, left_at in rows:
        grouped.setdefault((pipeline, position, stage), []).append((_days(entered, left_at), deal_id))
    out = []
    for (pipeline, _position, stage), stays_ in sorted(grouped.items()):
        values = [days for days, _ in stays_]
        longest = [deal_id for _, deal_id in sorted(stays_, key=lambda s: (-s[0], str(s[1])))]
        out.append(StageTime(pipeline, stage, len(values), round(statistics.fmean(values), 1),
                             round(statistics.median(values), 1), list(dict.fromkeys(longest))[:cap]))
    return out


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
    deals = scoped_deals(actor, scope).join(Stage, Stage.id == Deal.stage_id).where(
        Stage.kind == StageKind.open).subquery()
    d = deals.c
    last = (select(ActivityTarget.deal_id, func.max(Activity.occurred_at).label("at"))
            .join(Activity, Activity.id == ActivityTarget.activity_id)
            .where(ActivityTarget.deal_id.in_(select(d.id))).group_by(ActivityTarget.deal_id).subquery())
    touch = func.coalesce(last.c.at, d.created_at)
    cutoff = datetime.combine(today - timedelta(days=days - 1), time.min, tz)
    base = select(d.id).select_from(deals).outerjoin(last, last.c.deal_id == d.id).where(touch < cutoff)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        select(d.id, d.name, User.name, Stage.name, d.amount, d.currency, last.c.at, d.created_at)
        .select_from(deals).join(Stage, Stage.id == d.stage_id).outerjoin(User, User.id == d.owner_id)
        .outerjoin(last, last.c.deal_id == d.id).where(touch < cutoff).order_by(touch, d.id).limit(cap)
    ).all()
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


def _scoped_activities(actor: Actor, scope: Scope) -> Select[Any]:
    return readable(spec_for("activity"), actor).where(owner_in_scope(actor, scope, Activity.owner_id))


def activity_counts(session: Session, *, actor: Actor, scope: Scope, start: date, end: date,
                    tz: tzinfo = UTC) -> list[RepActivity]:
    """Activities that occurred in the period, per owner (rep) and type; the busiest rep first."""
    lo, hi = _bounds(start, end, tz)
    acts = _scoped_activities(actor, scope).where(Activity.occurred_at >= lo, Activity.occurred_at < hi).subquery()
    a = acts.c
    rows = session.execute(
        select(a.owner_id, User.name, a.type, func.count(a.id)).select_from(acts)
        .outerjoin(User, User.id == a.owner_id).group_by(a.owner_id, User.name, a.type)
    ).all()
    reps: dict[uuid.UUID | None, RepActivity] = {}
    for owner_id, name, type_, count in rows:
        rep = reps.setdefault(owner_id, RepActivity(owner_id, name or "Unassigned"))
        rep.total += count
        rep.by_type[str(type_)] = count
    return sorted(reps.values(), key=lambda r: (-r.total, r.owner.lower()))
