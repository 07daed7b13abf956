"""Stage analytics from the stage stays: stage-to-stage conversion and days in stage."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, tzinfo
from typing import Any

from sqlalchemy import (
    DateTime,
    case,
    func,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from store.actor import Actor
from store.models import DealStageStay, Pipeline, Stage
from store.models.enums import StageKind
from store.services.analytics.base import (
    CAP,
    _bounds,
    _exact_days_stats,
    _microseconds,
    _owned_by,
    _rate,
)
from store.services.pipeline import Scope

# --- stage stays (shared by conversion and days in stage) -------------------------------

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
