"""Pipeline analytics for a caller's scope and period: win rate, deal size, sales cycle,
stage-to-stage conversion, days in stage, stale deals and activity counts per rep.

A period is [start, end], whole days in `tz` (UTC unless given). Deals are in a scope by
their current owner (`pipeline.scoped_deals`), activities by theirs. Amounts stay per
currency. Stage entries and stays come from DealStageStay, one row per entry in DealHistory (a
deal enters a stage with its first history row and with every row that has a from_stage_id),
kept by `stage_stays`. Each result names up to
`cap` deals so an answer can cite them. Counts are aggregated in SQL. Medians need the values:
on PostgreSQL the duration and amount metrics take counts, exact sums and the middle values in
SQL; on SQLite they fetch one narrow row per closed deal or stage stay in the period. Both
give the same figures (see `_exact_days_stats`).
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    DateTime,
    Numeric,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Deal, DealStageStay, Pipeline, Stage, User
from store.models.enums import StageKind
from store.permissions import owner_readable
from store.services import activity_rollup
from store.services.pipeline import Scope, owner_in_scope, scoped_deals

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
    refs = session.execute(
        select(d.id, d.name, d.amount, d.currency, Stage.name).select_from(deals)
        .join(Stage, Stage.id == d.stage_id).where(Stage.kind == StageKind.won)
        .order_by(d.amount.desc().nulls_last(), d.id).limit(cap)
    ).all()
    stats = None
    if session.get_bind().dialect.name == "postgresql":
        stats = _size_cycle_in_sql(session, deals)
    won_amount, won_cycle, lost_cycle = stats or _size_cycle_in_python(session, deals)
    return DealSizeCycle(start, end, str(scope), won_amount, won_cycle, lost_cycle, [DealRef(*r) for r in refs])


def _amount_stats(currency: str, n: int, total: Decimal, median: Decimal) -> AmountStats:
    return AmountStats(currency, n, total.quantize(_CENT), (total / n).quantize(_CENT), Decimal(median).quantize(_CENT))


def _size_cycle_in_python(session: Session, deals: Any) -> tuple[list[AmountStats], DaysStats, DaysStats]:
    """One row per closed deal, aggregated here (SQLite)."""
    d = deals.c
    # Plain DateTime: the same differences, without UTCDateTime's astimezone per value.
    rows = session.execute(
        select(Stage.kind, d.currency, d.amount, type_coerce(d.created_at, DateTime()),
               type_coerce(d.closed_at, DateTime())).select_from(deals)
        .join(Stage, Stage.id == d.stage_id).where(_closed_kinds())
    ).all()
    amounts: dict[str, list[Decimal]] = {}
    won_cycle: list[float] = []
    lost_cycle: list[float] = []
    for kind, currency, amount, created_at, closed_at in rows:
        days = (closed_at - created_at).total_seconds() / 86400  # days between, 0 if negative (below)
        if kind == StageKind.won:
            won_cycle.append(days if days > 0 else 0.0)
            if amount is not None:
                amounts.setdefault(currency, []).append(amount)
        else:
            lost_cycle.append(days if days > 0 else 0.0)
    won_amount = [_amount_stats(currency, len(values), sum(values, Decimal(0)), statistics.median(values))
                  for currency, values in sorted(amounts.items())]
    return won_amount, _days_stats(won_cycle), _days_stats(lost_cycle)


def _size_cycle_in_sql(session: Session, deals: Any) -> tuple[list[AmountStats], DaysStats, DaysStats] | None:
    """PostgreSQL: counts, exact sums and the middle values per currency (won amounts) and per outcome
    (cycles) in one statement, instead of a row per closed deal (41k in a year at 100k deals). The
    same figures as the Python path (see `_exact_days_stats`); None where that cannot be promised."""
    d = deals.c
    base = (select(cast(Stage.kind, String).label("kind"), d.currency, d.amount,
                   _microseconds(d.created_at, d.closed_at).label("us"))
            .select_from(deals).join(Stage, Stage.id == d.stage_id).where(_closed_kinds()).cte("closed"))
    b = base.c
    amounts = _middles(b.currency, cast(b.amount, Numeric()), b.kind == StageKind.won.value, b.amount.is_not(None))
    cycles = _middles(b.kind, cast(b.us, Numeric()))
    by_currency: dict[str, tuple[int, Decimal, list[Decimal]]] = {}
    by_kind: dict[str, tuple[int, int, list[int]]] = {}
    for key, value, n, total, part in session.execute(union_all(amounts.add_columns(literal(0).label("part")),
                                                                cycles.add_columns(literal(1).label("part")))):
        if part == 0:
            by_currency.setdefault(key, (n, total, []))[2].append(value.quantize(_CENT))
        else:
            by_kind.setdefault(key, (n, int(total), []))[2].append(int(value))
    won_amount = []
    for currency, (n, total, middle) in sorted(by_currency.items()):
        middle.sort()
        median = middle[0] if n % 2 else (middle[0] + middle[-1]) / 2
        won_amount.append(_amount_stats(currency, n, total.quantize(_CENT), median))
    cycles_out = []
    for kind in (StageKind.won, StageKind.lost):
        if kind.value not in by_kind:
            cycles_out.append(DaysStats(0, None, None))
            continue
        stats = _exact_days_stats(*by_kind[kind.value])
        if stats is None:
            return None
        cycles_out.append(stats)
    return won_amount, cycles_out[0], cycles_out[1]


def _microseconds(a: Any, b: Any) -> Any:
    """PostgreSQL: whole microseconds from `a` to `b`, 0 when negative. `date_part` gives the interval's
    seconds as a double, within a few nanoseconds for spans under a century, so rounding its microseconds
    gives the exact count; about 40% cheaper than `extract`'s numeric over 158k stays."""
    return func.greatest(cast(func.round(func.date_part("epoch", b - a) * 1000000), BigInteger), 0)


def _middles(key: Any, value: Any, *where: Any) -> Select[Any]:
    """Per key: (key, value, n, total) for the middle value(s) by value, with the key's count and sum."""
    per_key = {"partition_by": key}
    ranked = select(key.label("key"), value.label("value"), func.row_number().over(**per_key, order_by=value)
                    .label("rn"), func.count().over(**per_key).label("n"), func.sum(value).over(**per_key)
                    .label("total")).where(*where).subquery()
    r = ranked.c
    return select(r.key, r.value, r.n, r.total).where(r.rn.in_([(r.n + 1) // 2, r.n // 2 + 1]))


def _stay_days(us: int) -> float:
    """Days in `us` microseconds (0 if negative), as `(b - a).total_seconds() / 86400` gives them."""
    return (us if us > 0 else 0) / 10**6 / 86400


def _exact_days_stats(n: int, total_us: int, middle_us: list[int]) -> DaysStats | None:
    """`_days_stats` from the count, the exact sum and the middle value(s), in microseconds.

    The median is the middle values' own, so it is the same. The mean is taken from the exact sum
    instead of fsum over the rounded days: the two differ by far less than 1e-9 days, so rounding
    to one decimal agrees unless the exact mean is that close to a rounding boundary (x.x5); then
    None, and the caller takes the Python path."""
    mean = Fraction(total_us, n * 86400 * 10**6)
    below = (mean * 20 - 1) // 2  # rounding to one decimal turns at (2k + 1) / 20
    if min(abs(mean - Fraction(2 * k + 1, 20)) for k in (below, below + 1)) < Fraction(1, 10**9):
        return None
    values = sorted(_stay_days(v) for v in middle_us)
    median = values[0] if n % 2 else (values[0] + values[-1]) / 2
    return DaysStats(n, round(float(mean), 1), round(median, 1))


# --- stage stays (shared by conversion and days in stage) -------------------------------

def _owned_by(actor: Actor, scope: Scope, owner: Any) -> Any:
    """Rows whose owner the actor may read, in the scope: for deals and activities, whose permissions go by
    their owner only (`crud.readable` less the workspace), applied to a derived table's owner column."""
    return and_(owner_readable(actor, owner), owner_in_scope(actor, scope, owner))


def _stays(actor: Actor, scope: Scope, *where: Any) -> Any:
    """The stays (`DealStageStay`, one per stage entry) of the deals the actor may read in the scope.
    A stay carries the deal's current owner, so the deals' permission and scope filters apply to it."""
    s = DealStageStay
    return select(s).where(s.workspace_id == actor.workspace_id, _owned_by(actor, scope, s.owner_id), *where)


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
    # The entries in the period, with what each deal reached after them, are stored per stay (see
    # store/services/stage_stays.py): no window over the deals' history here. A deal counts once per
    # stage, by its first entry into the stage in the period (any earlier entry into the same stage is
    # before the period). That entry is also the one that saw the most afterwards (everything after a
    # later entry is after it too), so its flags are the deal's.
    st = DealStageStay
    period = [st.entered_at >= lo, st.entered_at < hi, or_(st.prev_entered_at.is_(None), st.prev_entered_at < lo)]
    e = _stays(actor, scope, *period).subquery()
    stage_filter = [Stage.kind == StageKind.open, Stage.workspace_id == actor.workspace_id]
    if pipeline_id is not None:
        stage_filter.append(Stage.pipeline_id == pipeline_id)
    # advanced: later won, or later in a higher open stage
    advanced = or_(e.c.won_later, e.c.top_open_later > Stage.position)
    rows = session.execute(
        select(Stage.id, Pipeline.name, Stage.name, func.count(),
               *(func.sum(case((flag, 1), else_=0)) for flag in (advanced, e.c.won_later, e.c.lost_later)))
        .select_from(e).join(Stage, Stage.id == e.c.stage_id).join(Pipeline, Pipeline.id == Stage.pipeline_id)
        .where(*stage_filter).group_by(Stage.id, Pipeline.name, Stage.name, Stage.position)
        .order_by(Pipeline.name, Stage.position, Stage.id)
    ).all()
    lines = {stage_id: ConversionLine(pipeline, stage, *(int(n) for n in figures))
             for stage_id, pipeline, stage, *figures in rows}
    if lines and cap > 0:
        # The first deals to enter each stage: per stage the first `cap` entries in time, through the
        # (stage_id, entered_at) index, instead of numbering every entry of the period.
        firsts = [_stays(actor, scope, st.stage_id == stage_id, *period)
                  .with_only_columns(st.stage_id, st.deal_id, st.entered_at, st.history_id)
                  .order_by(st.entered_at, st.history_id).limit(cap).subquery() for stage_id in lines]
        both = union_all(*(select(f) for f in firsts)).subquery()
        for stage_id, deal_id in session.execute(
                select(both.c.stage_id, both.c.deal_id).order_by(both.c.stage_id, both.c.entered_at,
                                                                  both.c.history_id)):
            lines[stage_id].deal_ids.append(deal_id)
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
    st = DealStageStay
    # Stays that ended in the period, stored per stage entry (see store/services/stage_stays.py).
    stays = (_stays(actor, scope, st.left_at >= lo, st.left_at < hi)
             .with_only_columns(st.deal_id, st.stage_id, st.entered_at.label("entered"), st.left_at.label("left"))
             .subquery())
    per_stage = None
    if session.get_bind().dialect.name == "postgresql":
        per_stage = _stay_stats_in_sql(session, stays, cap)
    if per_stage is None:
        per_stage = _stay_stats_in_python(session, stays, cap)
    if not per_stage:
        return []
    names = {row[0]: row[1:] for row in session.execute(
        select(Stage.id, Pipeline.name, Stage.position, Stage.name)
        .join(Pipeline, Pipeline.id == Stage.pipeline_id).where(Stage.id.in_(list(per_stage))))}
    # (pipeline, position, stage) is unique: pipeline names are unique in a workspace, stage names in a pipeline.
    return [StageTime(names[stage_id][0], names[stage_id][2], *per_stage[stage_id])
            for stage_id in sorted(per_stage, key=lambda stage_id: names[stage_id])]


_StayStats = tuple[int, float, float, list[uuid.UUID]]  # stays, average days, median days, longest deals


def _stay_stats_in_python(session: Session, stays: Any, cap: int) -> dict[uuid.UUID, _StayStats]:
    """One row per stay, aggregated here (SQLite: no percentile or exact epoch)."""
    # Plain DateTime: the difference is the same, without UTCDateTime's astimezone per value.
    rows = session.execute(
        select(stays.c.stage_id, stays.c.deal_id, type_coerce(stays.c.entered, DateTime()),
               type_coerce(stays.c.left, DateTime()))
    ).all()
    grouped: dict[uuid.UUID, list[tuple[float, uuid.UUID]]] = {}
    for stage_id, deal_id, entered, left_at in rows:
        days = (left_at - entered).total_seconds() / 86400
        grouped.setdefault(stage_id, []).append((days if days > 0 else 0.0, deal_id))
    out = {}
    for stage_id, stays_ in grouped.items():
        values = [days for days, _ in stays_]
        # A UUID orders like its hex string: the same order as sorting on str(deal_id), without the strings.
        longest = [deal_id for _, deal_id in sorted(stays_, key=lambda s: (-s[0], s[1]))]
        out[stage_id] = (len(values), round(statistics.fmean(values), 1), round(statistics.median(values), 1),
                         list(dict.fromkeys(longest))[:cap])
    return out


def _stay_stats_in_sql(session: Session, stays: Any, cap: int) -> dict[uuid.UUID, _StayStats] | None:
    """PostgreSQL: per stage the count, the exact sum, the middle stay(s) and the `cap` longest deals, from
    one sort of the stays (158k in a year at 100k deals) instead of fetching them all.

    The figures are the Python path's exactly: durations are whole microseconds (an exact numeric
    epoch), turned into days as `_stay_days` does; the medians are the middle values themselves; the
    longest order on (microseconds desc, deal id), the same order as (-days, str(id)), and a deal's
    first stay in that order is its longest. Only the mean is computed from the exact sum instead of
    fsum over the rounded days: the two differ by far less than 1e-9 days, so rounding to one decimal
    agrees unless the exact mean is that close to a rounding boundary. Then, or when the top rows
    repeat a deal so often that they name fewer than `cap` deals, this returns None and the caller
    takes the Python path."""
    us = _microseconds(stays.c.entered, stays.c.left)
    base = select(stays.c.stage_id, stays.c.deal_id, us.label("us")).subquery()
    b = base.c
    # One order serves both: the longest are its first rows; the middle values sit at the ascending
    # positions (n + 1) // 2 and n // 2 + 1, i.e. n + 1 - p counted from the top.
    ranked = select(b.stage_id, b.deal_id, b.us,
                    func.row_number().over(partition_by=b.stage_id, order_by=(b.us.desc(), b.deal_id)).label("rn"),
                    func.count().over(partition_by=b.stage_id).label("n"),
                    func.sum(b.us).over(partition_by=b.stage_id).label("total")).subquery()
    r = ranked.c
    top = cap * 3
    rows = session.execute(select(r.stage_id, r.deal_id, r.us, r.rn, r.n, r.total).where(
        or_(r.rn <= top, r.rn == r.n + 1 - (r.n + 1) // 2, r.rn == r.n + 1 - (r.n // 2 + 1)))).all()
    stats: dict[uuid.UUID, tuple[int, int, list[int]]] = {}
    longest: dict[uuid.UUID, list[tuple[int, uuid.UUID]]] = {}
    for stage_id, deal_id, value, rn, n, total in rows:
        n, rn = int(n), int(rn)
        middle = stats.setdefault(stage_id, (n, int(total), []))[2]
        if rn in (n + 1 - (n + 1) // 2, n + 1 - (n // 2 + 1)):
            middle.append(int(value))
        if rn <= top:
            longest.setdefault(stage_id, []).append((rn, deal_id))
    out = {}
    for stage_id, (n, total, middle) in stats.items():
        days = _exact_days_stats(n, total, middle if n % 2 == 0 else middle[:1])
        deal_ids = list(dict.fromkeys(deal_id for _, deal_id in sorted(longest.get(stage_id, []))))[:cap]
        if days is None or (len(deal_ids) < cap and n > top):
            return None
        assert days.average is not None and days.median is not None
        out[stage_id] = (n, days.average, days.median, deal_ids)
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
