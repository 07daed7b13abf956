"""Pipeline analytics for a caller's scope and period: win rate, deal size, sales cycle,
stage-to-stage conversion, days in stage, stale deals and activity counts per rep.

A period is [start, end], whole days in `tz` (UTC unless given). Deals are in a scope by
their current owner (`pipeline.scoped_deals`), activities by theirs. Amounts stay per
currency. Stage entries and stays come from DealHistory: a deal enters a stage with its
first history row and with every row that has a from_stage_id. Each result names up to
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
    Integer,
    Numeric,
    Select,
    String,
    Uuid,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import Over

from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Activity, Deal, DealHistory, Pipeline, Stage, User
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
    """PostgreSQL: whole microseconds from `a` to `b`, 0 when negative. The epoch of the interval is an
    exact numeric (PostgreSQL 14+); before, a double, exact to far below a microsecond at these sizes."""
    return func.greatest(cast(func.extract("epoch", b - a) * 1000000, BigInteger), 0)


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

class _LaterRows(Over[Any]):
    """A window over the rows strictly after the current one: ORDER BY ... DESC with
    `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP` (rows at the same moment are
    not later). SQLAlchemy has no EXCLUDE clause, so it is added when compiled. PostgreSQL 11+ and
    SQLite 3.28+."""

    inherit_cache = True


@compiles(_LaterRows)
def _compile_later_rows(element: _LaterRows, compiler: Any, **kw: Any) -> str:
    text = compiler.visit_over(element, **kw)
    assert text.endswith("CURRENT ROW)"), text
    return text[:-1] + " EXCLUDE GROUP)"


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
    h, hs = DealHistory, aliased(Stage)
    touched = select(h.deal_id).where(h.changed_at >= lo, h.changed_at < hi)
    # Per history row, what the deal reached after it (up to now), in the same pass over the touched deals'
    # history that finds the entries: windows over the strictly later rows. (A join of each entry to
    # its deal's later rows, grouped per entry, took 0.9-1.5 s for 77k-160k entries; three correlated
    # EXISTS per entry took 2.3-2.7 s.)
    first = func.row_number().over(partition_by=h.deal_id, order_by=(h.changed_at, h.id))

    def later(value: Any) -> Any:
        return _LaterRows(func.max(value), partition_by=h.deal_id, order_by=h.changed_at.desc(), range_=(None, 0))

    history = select(
        h.id, h.deal_id, h.stage_id, h.from_stage_id, h.changed_at, first.label("n"),
        later(case((hs.kind == StageKind.won, 1), else_=0)).label("won_later"),
        later(case((hs.kind == StageKind.lost, 1), else_=0)).label("lost_later"),
        later(case((hs.kind == StageKind.open, hs.position))).label("top_open_later"),
    ).join(hs, hs.id == h.stage_id).where(
        h.deal_id.in_(touched), h.deal_id.in_(scoped_deals(actor, scope).with_only_columns(Deal.id))).subquery()
    r = history.c
    e = select(r.id, r.deal_id, r.stage_id, r.changed_at, r.won_later, r.lost_later, r.top_open_later).where(
        or_(r.n == 1, r.from_stage_id.is_not(None)), r.changed_at >= lo, r.changed_at < hi).cte("entries")
    es = aliased(Stage)
    stage_filter = [es.kind == StageKind.open, es.workspace_id == actor.workspace_id]
    if pipeline_id is not None:
        stage_filter.append(es.pipeline_id == pipeline_id)
    # advanced: later won, or later in a higher open stage
    advanced = or_(e.c.won_later == 1, e.c.top_open_later > es.position)
    counts = (
        select(literal(0).label("part"), es.id, Pipeline.name.label("pipeline"), es.name, es.position,
               func.count(distinct(e.c.deal_id)),
               *(func.count(distinct(case((flag, e.c.deal_id)))) for flag in (
                   advanced, e.c.won_later == 1, e.c.lost_later == 1)),
               cast(null(), Uuid()).label("deal_id"), cast(null(), BigInteger()).label("n"))
        .select_from(e).join(es, es.id == e.c.stage_id).join(Pipeline, Pipeline.id == es.pipeline_id)
        .where(*stage_filter).group_by(es.id, Pipeline.name, es.name, es.position)
    )
    # The first deals to enter each stage, from the same entries (one statement: the entries are
    # computed once).
    order = func.row_number().over(partition_by=e.c.stage_id, order_by=(e.c.changed_at, e.c.id))
    ranked = (select(e.c.stage_id, e.c.deal_id, order.label("n")).join(es, es.id == e.c.stage_id)
              .where(*stage_filter).subquery())
    firsts = select(literal(1), ranked.c.stage_id, cast(null(), String()), cast(null(), String()),
                    cast(null(), Integer()), *(cast(null(), BigInteger()) for _ in range(4)), ranked.c.deal_id,
                    ranked.c.n).where(ranked.c.n <= cap * 2)
    both = union_all(counts, firsts).subquery()
    lines: dict[uuid.UUID, ConversionLine] = {}
    for part, stage_id, pipeline, stage, _position, *figures, deal_id, _n in session.execute(
            select(both).order_by(both.c.part, both.c.pipeline, both.c.position, both.c.id, both.c.n)):
        if part == 0:
            lines[stage_id] = ConversionLine(pipeline, stage, *figures)
            continue
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
    in_period = and_(stays.c.left >= lo, stays.c.left < hi)
    per_stage = None
    if session.get_bind().dialect.name == "postgresql":
        per_stage = _stay_stats_in_sql(session, stays, in_period, cap)
    if per_stage is None:
        per_stage = _stay_stats_in_python(session, stays, in_period, cap)
    if not per_stage:
        return []
    names = {row[0]: row[1:] for row in session.execute(
        select(Stage.id, Pipeline.name, Stage.position, Stage.name)
        .join(Pipeline, Pipeline.id == Stage.pipeline_id).where(Stage.id.in_(list(per_stage))))}
    # (pipeline, position, stage) is unique: pipeline names are unique in a workspace, stage names in a pipeline.
    return [StageTime(names[stage_id][0], names[stage_id][2], *per_stage[stage_id])
            for stage_id in sorted(per_stage, key=lambda stage_id: names[stage_id])]


_StayStats = tuple[int, float, float, list[uuid.UUID]]  # stays, average days, median days, longest deals


def _stay_stats_in_python(session: Session, stays: Any, in_period: Any, cap: int) -> dict[uuid.UUID, _StayStats]:
    """One row per stay, aggregated here (SQLite: no percentile or exact epoch)."""
    # Plain DateTime: the difference is the same, without UTCDateTime's astimezone per value.
    rows = session.execute(
        select(stays.c.stage_id, stays.c.deal_id, type_coerce(stays.c.entered, DateTime()),
               type_coerce(stays.c.left, DateTime())).where(in_period)
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


def _stay_stats_in_sql(session: Session, stays: Any, in_period: Any, cap: int) -> dict[uuid.UUID, _StayStats] | None:
    """PostgreSQL: per stage the count, the exact sum, the middle stay(s) and the `cap` longest deals, in
    one statement over the stays (160k in a year at 100k deals), instead of fetching them all.

    The figures are the Python path's exactly: durations are whole microseconds (an exact numeric
    epoch), turned into days as `_stay_days` does; the medians are the middle values themselves; the
    longest order on (microseconds desc, deal id), the same order as (-days, str(id)). Only the mean
    is computed from the exact sum instead of fsum over the rounded days: the two differ by far less
    than 1e-9 days, so rounding to one decimal agrees unless the exact mean is that close to a
    rounding boundary; then this returns None and the caller takes the Python path."""
    us = _microseconds(stays.c.entered, stays.c.left)
    base = select(stays.c.stage_id, stays.c.deal_id, us.label("us")).where(in_period).cte("stays")
    b = base.c
    middles = _middles(b.stage_id, b.us).add_columns(literal(0).label("part"), cast(null(), Uuid()).label("deal_id"))
    per_deal = select(b.stage_id, b.deal_id, func.max(b.us).label("us")).group_by(b.stage_id, b.deal_id).subquery()
    p = per_deal.c
    longest = select(p.stage_id, p.deal_id, p.us, func.row_number().over(
        partition_by=p.stage_id, order_by=(p.us.desc(), p.deal_id)).label("rank")).subquery()
    top = select(longest.c.stage_id, longest.c.us, longest.c.rank, cast(null(), Numeric()),
                 literal(1).label("part"), longest.c.deal_id).where(longest.c.rank <= cap)
    stats: dict[uuid.UUID, tuple[int, int, list[int]]] = {}
    deals: dict[uuid.UUID, list[tuple[int, uuid.UUID]]] = {}
    for stage_id, value, n_or_rank, total, part, deal_id in session.execute(union_all(middles, top)):
        if part == 0:
            stats.setdefault(stage_id, (int(n_or_rank), int(total), []))[2].append(int(value))
        else:
            deals.setdefault(stage_id, []).append((int(n_or_rank), deal_id))
    out = {}
    for stage_id, (n, total, middle) in stats.items():
        days = _exact_days_stats(n, total, middle)
        if days is None:
            return None
        assert days.average is not None and days.median is not None
        out[stage_id] = (n, days.average, days.median, [deal_id for _, deal_id in sorted(deals.get(stage_id, []))])
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
