"""Forecast and analytics query speed on SQLite and PostgreSQL, side by side, at a chosen data size.

    .venv/bin/python -m bench.pipeline_queries --deals 10000 --activities 100000
    .venv/bin/python -m bench.pipeline_queries --deals 100000 --activities 1000000

Loads the data of bench/loader.py (the store bench's loader), plus what the analytics read:
a deal history (a creation row, stage moves, close-date slips, amount changes and
reassignments per deal, over two years), deals that are won and lost with `closed_at` and
`stage_entered_at` consistent with that history, sources, close dates around today,
activities over the past year and quarterly quotas. Then it times the services of
store/services/pipeline.py, forecast_changes.py and analytics.py, and the data paths of
tools/charts.py, as a rep (scope mine), a manager (team) and an admin (all), each next to a
reference measured in the same run: the same aggregate as one hand-written Core statement
with the scope as a literal owner list (no permission clauses, no ORM, no Python after
the fetch). The references read the source tables (the deal history, the activities), so where
a service reads stored data (deals.last_activity_at, deal_stage_stays, activity_day_counts) its
check column also confirms that data against its source. Target: p50 under 200 ms on PostgreSQL.
See bench/README.md.

PostgreSQL: the script works in its own database (--pg-db, default crm_bench_pipeline),
created if missing; it never touches the test database named in --pg-url. SQLite: a file
under .bench/ (git-ignored). Both are emptied at the end unless --keep.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Table, distinct, func, or_, select, true, update
from sqlalchemy.orm import Session

import store.services  # noqa: F401  (registers every entity spec)
from bench import loader as store_loader
from bench.loader import (
    BATCH,
    BENCH_DIR,
    DEAL_THEMES,
    ROOT,
    SOURCES,
    Generator,
    World,
    calibrate,
    load_world,
    ms,
    print_load,
    table,
)
from bench.store_queries import Capture, Result, explain_calls
from store.actor import Actor
from store.models import Activity, ActivityTarget, Deal, DealHistory, Stage, User
from store.models.enums import ForecastCategory, Role, StageKind, Surface
from store.services import analytics, forecast_changes, pipeline
from store.services.org import actor_for_user
from store.services.pipeline import Scope, quarter_bounds
from store.types import uuid7

TARGET_MS = 200.0  # the target: p50 under 200 ms on PostgreSQL
STAGE_WEIGHTS = [30, 25, 20, 15, 10]  # where open deals stand, Qualification..Negotiation
CATEGORY_AT = [ForecastCategory.pipeline, ForecastCategory.pipeline, ForecastCategory.best_case,
               ForecastCategory.best_case, ForecastCategory.commit]


# --- data ---------------------------------------------------------------------------------


class PipelineGenerator(Generator):
    """store_queries' data with deals that move through the pipeline, and their history rows."""

    def __init__(self, world: World, deals: int, activities: int, seed: int, today: date) -> None:
        super().__init__(world, deals, activities, seed)
        self.now = datetime.combine(today, dtime(12), UTC)
        self.activity_days = 365
        self.history: list[dict[str, Any]] = []
        self.outcomes = {"open": 0, "won": 0, "lost": 0}

    def deals(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rng, w = self.rng, self.w
        opens = [i for i, k in enumerate(w.stage_kinds) if k == "open"]
        won_pos, lost_pos = w.stage_kinds.index("won"), w.stage_kinds.index("lost")
        rows, links = [], []
        busy_deals = min(40, self.n_deals)
        for i in range(self.n_deals):
            co = 0 if i < busy_deals else rng.randrange(self.n_companies)
            owner = w.rep.user_id if i == 0 else self._owner()
            created = self._ago(730)
            age = (self.now - created).total_seconds()
            p_open = 0.9 if age < 60 * 86400 else 0.6 if age < 180 * 86400 else 0.08
            outcome = "open" if rng.random() < p_open else "won" if rng.random() < 0.4 else "lost"
            self.outcomes[outcome] += 1
            if outcome == "open":
                path = opens[:rng.choices(range(len(opens)), STAGE_WEIGHTS)[0] + 1]
                end = self.now
            else:
                if outcome == "won":
                    path = list(opens)
                    if rng.random() < 0.2:  # skipped a stage
                        path.pop(rng.randrange(1, len(path)))
                    path.append(won_pos)
                else:
                    path = opens[:rng.randrange(len(opens)) + 1] + [lost_pos]
                # 2 weeks to 9 months, and never past today: young deals close young
                cycle = min(rng.uniform(14, 270) * 86400, age * rng.uniform(0.2, 1.0))
                end = created + timedelta(seconds=cycle)
            span = max(1, int((end - created).total_seconds()))
            moves = sorted(created + timedelta(seconds=rng.randrange(1, span + 1)) for _ in path[1:])
            if outcome != "open" and moves:
                moves[-1] = end  # the close is the last move
            # (at, what): stage moves, close-date slips, amount changes, a reassignment
            events: list[tuple[datetime, str, Any]] = [(t, "stage", p) for t, p in zip(moves, path[1:], strict=True)]
            last = moves[-1] if moves else created
            slips = [rng.randint(14, 45) for _ in range(rng.choices([0, 1, 2], [60, 28, 12])[0])]
            for days in slips:
                events.append((created + timedelta(seconds=rng.randrange(1, span + 1)), "slip", days))
            amount = Decimal(rng.randrange(1000, 500_000))
            if rng.random() < 0.15:
                events.append((created + timedelta(seconds=rng.randrange(1, span + 1)), "amount",
                               Decimal(int(amount * Decimal(rng.uniform(0.6, 1.4))))))
            first_owner = owner
            if owner is not None and rng.random() < 0.05:
                first_owner = rng.choice(w.owner_ids)
                events.append((created + timedelta(seconds=rng.randrange(1, span + 1)), "owner", owner))
            events.sort(key=lambda e: e[0])
            final_close = self.now.date() + timedelta(days=rng.randint(-20, 200)) if outcome == "open" else end.date()
            close = final_close - timedelta(days=sum(slips)) if outcome == "open" else (
                final_close + timedelta(days=rng.randint(-10, 30) - sum(slips)))
            probability = rng.choice([25, 40, 50, 70, 90]) if rng.random() < 0.1 else None
            omitted = rng.random() < 0.05
            currency = rng.choices(["USD", "EUR", "GBP"], [88, 8, 4])[0]
            deal_id = uuid7()
            state = {"stage": path[0], "owner": first_owner, "amount": amount, "close": close}
            self._snap(deal_id, created, None, state, currency, probability, omitted)
            for at, what, value in events:
                moved_from = w.stage_ids[state["stage"]] if what == "stage" else None
                if what == "slip":
                    state["close"] += timedelta(days=value)
                else:
                    state[what] = value
                if what == "stage" and value in (won_pos, lost_pos):
                    state["close"] = final_close
                self._snap(deal_id, at, moved_from, state, currency, probability, omitted)
            pos, close = state["stage"], state["close"]
            closed = outcome != "open"
            row = self._base(created) | {
                "owner_id": owner,
                "name": f"{self.company_names[co]} - {rng.choice(DEAL_THEMES)}",
                "pipeline_id": w.pipeline_id, "stage_id": w.stage_ids[pos],
                "amount": state["amount"], "currency": currency, "close_date": close,
                "probability": probability if not closed else None,
                "forecast_category": self._category(pos, omitted),
                "next_step": None, "company_id": self.company_ids[co],
                "lost_reason": "price" if outcome == "lost" else None,
                "source": None if rng.random() < 0.1 else rng.choice(SOURCES), "description": None,
                "stage_entered_at": last, "closed_at": end if closed else None,
                "custom_fields": {},
            }
            row["id"], row["updated_at"] = deal_id, events[-1][0] if events else created
            rows.append(row)
            self.deal_ids.append(deal_id)
            self.deals_of.setdefault(co, []).append(i)
            people = self.contacts_of.get(co)
            if people:
                links.append({"id": uuid7(), "workspace_id": w.workspace_id, "deal_id": deal_id,
                              "contact_id": self.contact_ids[rng.choice(people)], "role": "champion",
                              "is_primary": True})
        w.busy_company, w.busy_contact, w.busy_deal = self.company_ids[0], self.contact_ids[0], self.deal_ids[0]
        return rows, links

    def _category(self, pos: int, omitted: bool) -> ForecastCategory:
        if self.w.stage_kinds[pos] != "open":
            return ForecastCategory.closed
        return ForecastCategory.omitted if omitted else CATEGORY_AT[pos]

    def _snap(self, deal_id: uuid.UUID, at: datetime, from_stage: uuid.UUID | None, state: dict[str, Any],
              currency: str, probability: int | None, omitted: bool) -> None:
        """One history row: the deal's forecast fields after the change at `at`."""
        pos = state["stage"]
        is_open = self.w.stage_kinds[pos] == "open"
        self.history.append({
            "id": uuid7(), "workspace_id": self.w.workspace_id, "deal_id": deal_id, "changed_at": at,
            "changed_by_id": state["owner"], "from_stage_id": from_stage, "stage_id": self.w.stage_ids[pos],
            "amount": state["amount"], "currency": currency, "close_date": state["close"],
            "probability": probability if is_open else None, "forecast_category": self._category(pos, omitted),
            "owner_id": state["owner"]})

    def extra(self) -> Iterator[tuple[str, Table, list[dict[str, Any]], float]]:
        table_ = DealHistory.__table__
        for start in range(0, len(self.history), BATCH):
            yield "deal_history", table_, self.history[start:start + BATCH], 0.0  # type: ignore[misc]


QUOTAS = [Decimal(q) for q in (150_000, 200_000, 250_000, 300_000)]


def set_quotas(engine: Engine, world: World) -> tuple[Actor, list[uuid.UUID]]:
    """Quarterly quotas for every rep and manager; the manager of team 1 as an actor, and team 1's ids."""
    with Session(engine) as s:
        users = s.scalars(select(User).where(User.workspace_id == world.workspace_id).order_by(User.email)).all()
        for i, user in enumerate(users):
            if user.role in (Role.rep, Role.manager):
                s.execute(update(User).where(User.id == user.id).values(quota=QUOTAS[i % len(QUOTAS)]))
        s.commit()
        manager = s.scalars(select(User).where(User.email == "manager1@bench-co.example")).one()
        team = list(s.scalars(select(User.id).where(User.team_id == manager.team_id)))
        return actor_for_user(manager, Surface.api), team


# --- queries --------------------------------------------------------------------------------


@dataclass
class Who:
    label: str  # rep, manager, admin
    actor: Actor
    scope: Scope
    owners: list[uuid.UUID] | None  # the scope as a literal list for the reference; None: everyone

    def own(self, column: Any) -> Any:
        return true() if self.owners is None else column.in_(self.owners)


@dataclass
class Ctx:
    world: World
    today: date
    periods: dict[str, tuple[date, date]]
    since: datetime


@dataclass
class Q:
    name: str
    run: Callable[[Session, Who], Any]
    ref: Callable[[Connection, Who], Any]
    size: Callable[[Any], str]
    # (service result, reference result) -> the figure both give, or "DIFF"; "" when not comparable
    check: Callable[[Any, Any], str] = lambda result, ref: ""


def _lohi(period: tuple[date, date]) -> tuple[datetime, datetime]:
    return (datetime.combine(period[0], dtime.min, UTC),
            datetime.combine(period[1] + timedelta(days=1), dtime.min, UTC))


def same(a: Any, b: Any) -> str:
    return f"= {a}" if a == b else f"DIFF {a} vs {b}"


D, ST, H = Deal.__table__.c, Stage.__table__.c, DealHistory.__table__.c
A, AT, U = Activity.__table__.c, ActivityTarget.__table__.c, User.__table__.c
DEALS, STAGES, HISTORY = Deal.__table__, Stage.__table__, DealHistory.__table__
ACTIVITIES, TARGETS, USERS = Activity.__table__, ActivityTarget.__table__, User.__table__
CLOSED_KINDS = [StageKind.won, StageKind.lost]


def queries(c: Ctx) -> list[Q]:
    ws = c.world.workspace_id
    quarter = c.periods["this quarter"]
    prob = func.coalesce(D.probability, ST.probability)
    deals_stages = DEALS.join(STAGES, ST.id == D.stage_id)

    # --- pipeline.py
    def ref_by_stage(conn: Connection, w: Who) -> Any:
        return conn.execute(
            select(ST.name, D.currency, func.count(), func.sum(D.amount), func.sum(D.amount * prob / 100))
            .select_from(deals_stages).where(D.workspace_id == ws, ST.kind == StageKind.open, w.own(D.owner_id))
            .group_by(ST.name, ST.position, D.currency).order_by(ST.position)).all()

    def ref_by_owner(conn: Connection, w: Who) -> Any:
        return conn.execute(
            select(D.owner_id, U.name, D.currency, func.count(), func.sum(D.amount), func.sum(D.amount * prob / 100))
            .select_from(deals_stages.outerjoin(USERS, U.id == D.owner_id))
            .where(D.workspace_id == ws, ST.kind == StageKind.open, w.own(D.owner_id))
            .group_by(D.owner_id, U.name, D.currency)).all()

    def ref_quota(conn: Connection, w: Who) -> Any:
        return conn.scalar(select(func.sum(U.quota)).where(U.workspace_id == ws, U.is_active.is_(True),
                                                           w.own(U.id)))

    def ref_forecast(conn: Connection, w: Who, period: tuple[date, date] = quarter) -> Any:
        where = [D.workspace_id == ws, D.close_date >= period[0], D.close_date <= period[1],
                 ST.kind != StageKind.lost, w.own(D.owner_id)]
        totals = conn.execute(
            select(D.currency, D.forecast_category, ST.kind, func.count(), func.sum(D.amount),
                   func.sum(D.amount * prob / 100))
            .select_from(deals_stages).where(*where).group_by(D.currency, D.forecast_category, ST.kind)).all()
        top = conn.execute(select(D.id, D.name, D.amount, ST.name).select_from(deals_stages).where(*where)
                           .order_by(D.amount.desc(), D.id).limit(10)).all()
        return totals, top, ref_quota(conn, w)

    def forecast_check(fc: pipeline.Forecast, ref: Any) -> str:
        counted = sum(n for _cur, cat, _kind, n, *_ in ref[0] if cat != ForecastCategory.omitted)
        return same(fc.open_deals + fc.won_deals, counted)

    # --- forecast_changes.py
    def ref_changes(conn: Connection, w: Who) -> Any:
        rn = func.row_number().over(partition_by=H.deal_id, order_by=(H.changed_at.desc(), H.id.desc()))
        ranked = select(H.deal_id, H.stage_id, H.amount, H.close_date, H.owner_id, rn.label("rn")).where(
            H.workspace_id == ws, H.changed_at <= c.since).subquery()
        then = select(ranked).where(ranked.c.rn == 1).subquery()
        return conn.execute(
            select(D.id, D.stage_id, D.amount, D.close_date, D.owner_id, then.c.stage_id, then.c.amount,
                   then.c.close_date, then.c.owner_id)
            .select_from(DEALS.outerjoin(then, then.c.deal_id == D.id))
            .where(D.workspace_id == ws, or_(w.own(D.owner_id), w.own(then.c.owner_id)),
                   or_(D.close_date.between(*quarter), then.c.close_date.between(*quarter)))).all()

    # --- analytics.py
    def closed_in(period: tuple[date, date], w: Who) -> list[Any]:
        lo, hi = _lohi(period)
        return [D.workspace_id == ws, D.closed_at >= lo, D.closed_at < hi, ST.kind.in_(CLOSED_KINDS),
                w.own(D.owner_id)]

    def ref_win_rate(by: str | None, period: tuple[date, date]) -> Callable[[Connection, Who], Any]:
        def ref(conn: Connection, w: Who) -> Any:
            keys = {None: [], "source": [D.source], "owner": [D.owner_id, U.name]}[by]
            joined = deals_stages.outerjoin(USERS, U.id == D.owner_id) if by == "owner" else deals_stages
            rows = conn.execute(select(*keys, ST.kind, func.count()).select_from(joined)
                                .where(*closed_in(period, w)).group_by(*keys, ST.kind)).all()
            top = conn.execute(select(D.id, D.name, D.amount, D.currency, ST.name).select_from(deals_stages)
                               .where(*closed_in(period, w)).order_by(D.amount.desc(), D.id).limit(10)).all()
            return rows, top
        return ref

    def win_check(wr: analytics.WinRate, ref: Any) -> str:
        won = sum(r[-1] for r in ref[0] if r[-2] == StageKind.won)
        lost = sum(r[-1] for r in ref[0] if r[-2] == StageKind.lost)
        return same(f"{wr.total.won}/{wr.total.lost}", f"{won}/{lost}")

    def ref_size_cycle(period: tuple[date, date]) -> Callable[[Connection, Who], Any]:
        def ref(conn: Connection, w: Who) -> Any:
            rows = conn.execute(select(ST.kind, D.currency, D.amount, D.created_at, D.closed_at)
                                .select_from(deals_stages).where(*closed_in(period, w))).all()
            top = conn.execute(select(D.id, D.name, D.amount, D.currency, ST.name).select_from(deals_stages)
                               .where(*closed_in(period, w)[:-2], ST.kind == StageKind.won, w.own(D.owner_id))
                               .order_by(D.amount.desc(), D.id).limit(10)).all()
            return rows, top
        return ref

    def entries(period: tuple[date, date], w: Who, moves_only: bool) -> Any:
        """Stage entries (first row, or a row with from_stage_id) of the deals in scope touched in the period."""
        lo, hi = _lohi(period)
        touched = select(H.deal_id).where(H.changed_at >= lo, H.changed_at < hi,
                                          H.from_stage_id.is_not(None) if moves_only else true())
        n = func.row_number().over(partition_by=H.deal_id, order_by=(H.changed_at, H.id)).label("n")
        rows = (select(H.id, H.deal_id, H.stage_id, H.from_stage_id, H.changed_at, n)
                .select_from(HISTORY.join(DEALS, D.id == H.deal_id))
                .where(H.deal_id.in_(touched), D.workspace_id == ws, w.own(D.owner_id)).subquery())
        return select(rows.c.id, rows.c.deal_id, rows.c.stage_id, rows.c.changed_at).where(
            or_(rows.c.n == 1, rows.c.from_stage_id.is_not(None))).subquery()

    def ref_conversion(period: tuple[date, date]) -> Callable[[Connection, Who], Any]:
        def ref(conn: Connection, w: Who) -> Any:
            lo, hi = _lohi(period)
            e = entries(period, w, False)
            return conn.execute(
                select(ST.name, func.count(distinct(e.c.deal_id))).select_from(e.join(STAGES, ST.id == e.c.stage_id))
                .where(e.c.changed_at >= lo, e.c.changed_at < hi, ST.kind == StageKind.open)
                .group_by(ST.name, ST.position).order_by(ST.position)).all()
        return ref

    def ref_days_in_stage(period: tuple[date, date]) -> Callable[[Connection, Who], Any]:
        def ref(conn: Connection, w: Who) -> Any:
            lo, hi = _lohi(period)
            e = entries(period, w, True)
            left = func.lead(e.c.changed_at).over(partition_by=e.c.deal_id, order_by=(e.c.changed_at, e.c.id))
            stays = select(e.c.deal_id, e.c.stage_id, e.c.changed_at.label("entered"), left.label("left")).subquery()
            return conn.execute(select(stays.c.stage_id, stays.c.deal_id, stays.c.entered, stays.c.left)
                                .where(stays.c.left >= lo, stays.c.left < hi)).all()
        return ref

    def ref_stale(conn: Connection, w: Who) -> Any:
        open_deals = (select(D.id, D.name, D.owner_id, D.stage_id, D.amount, D.currency, D.created_at)
                      .select_from(deals_stages)
                      .where(D.workspace_id == ws, ST.kind == StageKind.open, w.own(D.owner_id)).subquery())
        o = open_deals.c
        last = (select(AT.deal_id, func.max(A.occurred_at).label("at"))
                .select_from(TARGETS.join(ACTIVITIES, A.id == AT.activity_id))
                .where(AT.deal_id.in_(select(o.id))).group_by(AT.deal_id).subquery())
        touch = func.coalesce(last.c.at, o.created_at)
        cutoff = datetime.combine(c.today - timedelta(days=13), dtime.min, UTC)
        joined = open_deals.outerjoin(last, last.c.deal_id == o.id)
        total = conn.scalar(select(func.count()).select_from(joined).where(touch < cutoff))
        top = conn.execute(select(o.id, o.name, o.amount, last.c.at).select_from(joined).where(touch < cutoff)
                           .order_by(touch, o.id).limit(20)).all()
        return total, top

    def ref_activity_counts(period: tuple[date, date]) -> Callable[[Connection, Who], Any]:
        def ref(conn: Connection, w: Who) -> Any:
            lo, hi = _lohi(period)
            return conn.execute(
                select(A.owner_id, U.name, A.type, func.count())
                .select_from(ACTIVITIES.outerjoin(USERS, U.id == A.owner_id))
                .where(A.workspace_id == ws, A.occurred_at >= lo, A.occurred_at < hi, w.own(A.owner_id))
                .group_by(A.owner_id, U.name, A.type)).all()
        return ref

    def n_deals(lines: list[Any]) -> str:
        return f"{len(lines)} lines, {sum(x.deals for x in lines)} deals"

    out = [
        Q("pipeline_by_stage", lambda s, w: pipeline.pipeline_by_stage(s, actor=w.actor, scope=w.scope),
          ref_by_stage, n_deals, lambda r, ref: same(sum(x.deals for x in r), sum(x[2] for x in ref))),
        Q("pipeline_by_owner", lambda s, w: pipeline.pipeline_by_owner(s, actor=w.actor, scope=w.scope),
          ref_by_owner, n_deals, lambda r, ref: same(sum(x.deals for x in r), sum(x[3] for x in ref))),
        Q("forecast (quarter)", lambda s, w: pipeline.forecast(s, actor=w.actor, scope=w.scope, start=quarter[0],
                                                                end=quarter[1]),
          ref_forecast, lambda r: f"{r.open_deals} open, {r.won_deals} won", forecast_check),
        Q("quota (quarter)", lambda s, w: pipeline.quota(s, actor=w.actor, scope=w.scope, start=quarter[0],
                                                         end=quarter[1]),
          ref_quota, lambda r: "-" if r is None else f"{r:,.0f}",
          lambda r, ref: same(r, None if ref is None else Decimal(ref).quantize(Decimal("0.01")))),
        Q("forecast_changes (quarter, 7 days)", lambda s, w: forecast_changes.forecast_changes(
            s, actor=w.actor, scope=w.scope, start=quarter[0], end=quarter[1], since=c.since),
          ref_changes, lambda r: f"{len(r.deals)} changed"),
        Q("stale_deals (14 days)", lambda s, w: analytics.stale_deals(s, actor=w.actor, scope=w.scope, today=c.today),
          ref_stale, lambda r: f"{r.total} stale", lambda r, ref: same(r.total, ref[0])),
    ]
    for label, period in c.periods.items():
        def win(by: str | None, p: tuple[date, date] = period) -> Callable[[Session, Who], Any]:
            return lambda s, w: analytics.win_rate(s, actor=w.actor, scope=w.scope, start=p[0], end=p[1],
                                                   by=by)  # type: ignore[arg-type]

        def call(fn: Callable[..., Any], p: tuple[date, date] = period) -> Callable[[Session, Who], Any]:
            return lambda s, w: fn(s, actor=w.actor, scope=w.scope, start=p[0], end=p[1])

        out += [
            Q(f"win_rate ({label})", win(None), ref_win_rate(None, period),
              lambda r: f"{r.total.closed} closed", win_check),
            Q(f"win_rate by source ({label})", win("source"), ref_win_rate("source", period),
              lambda r: f"{len(r.lines)} sources", win_check),
            Q(f"win_rate by owner ({label})", win("owner"), ref_win_rate("owner", period),
              lambda r: f"{len(r.lines)} owners", win_check),
            Q(f"deal_size_and_cycle ({label})", call(analytics.deal_size_and_cycle), ref_size_cycle(period),
              lambda r: f"{r.won_cycle.deals} won, {r.lost_cycle.deals} lost",
              lambda r, ref: same(r.won_cycle.deals + r.lost_cycle.deals, len(ref[0]))),
            Q(f"stage_conversion ({label})", call(analytics.stage_conversion), ref_conversion(period),
              lambda r: f"{sum(x.entered for x in r)} entries",
              lambda r, ref: same([x.entered for x in r], [x[1] for x in ref])),
            Q(f"days_in_stage ({label})", call(analytics.days_in_stage), ref_days_in_stage(period),
              lambda r: f"{sum(x.stays for x in r)} stays", lambda r, ref: same(sum(x.stays for x in r), len(ref))),
            Q(f"activity_counts ({label})", call(analytics.activity_counts), ref_activity_counts(period),
              lambda r: f"{sum(x.total for x in r)} activities",
              lambda r, ref: same(sum(x.total for x in r), sum(x[3] for x in ref))),
        ]
    return out


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Row:
    service: Result
    ref: list[float] = field(default_factory=list)

    @property
    def ref_p50(self) -> float:
        return statistics.median(self.ref)

    @property
    def ref_p95(self) -> float:
        return Result("", "", self.ref, "").p95

    @property
    def ratio(self) -> float:
        return self.service.p50 / self.ref_p50


def measure(engine: Engine, c: Ctx, whos: list[Who], args: argparse.Namespace) -> list[Row]:
    """Each query and actor: warm-up runs, then service and reference runs alternated, so load from
    other processes falls on both alike."""
    rows = []
    only = [x.strip() for x in args.only.split(",")] if args.only else None
    for q in queries(c):
        if only and not any(o in q.name for o in only):
            continue
        for w in whos:
            result: Any = None
            ref: Any = None
            for _ in range(args.warmup):
                with Session(engine) as s:
                    result = q.run(s, w)
                with engine.connect() as conn:
                    ref = q.ref(conn, w)
            times: list[float] = []
            ref_times: list[float] = []
            spent, stopped = 0.0, False
            for _ in range(args.repeat):
                with Session(engine) as s:
                    t0 = time.perf_counter()
                    result = q.run(s, w)
                    times.append(time.perf_counter() - t0)
                with engine.connect() as conn:
                    t0 = time.perf_counter()
                    ref = q.ref(conn, w)
                    ref_times.append(time.perf_counter() - t0)
                spent += times[-1] + ref_times[-1]
                if spent > args.budget_s and len(times) < args.repeat:
                    stopped = True
                    break
            check = q.check(result, ref)
            rows.append(Row(Result(q.name, w.label, times, q.size(result), check, stopped), ref_times))
            if args.progress:
                print(f"  {q.name} [{w.label}]: p50 {ms(rows[-1].service.p50)} ms, ref {ms(rows[-1].ref_p50)} ms"
                      f" {check}", flush=True)
    return rows


def print_rows(backend: str, rows: list[Row]) -> None:
    out = []
    for r in rows:
        s = r.service
        target = ("met" if s.p50 * 1000 < TARGET_MS else "MISSED") if backend == "postgres" else ""
        out.append([s.query, s.actor, s.size, ms(s.p50), ms(s.p95), ms(r.ref_p50), ms(r.ref_p95), f"{r.ratio:.2f}",
                    f"{len(s.times)}{'*' if s.stopped_early else ''}", s.note, *([target] if target else [])])
    head = ["query", "as", "result", "p50 ms", "p95 ms", "ref p50", "ref p95", "/ref", "runs", "check (= ref)"]
    print(table(head + (["< 200 ms"] if backend == "postgres" else []), out))
    if any(r.service.stopped_early for r in rows):
        print("* stopped before --repeat runs: its runs (service + reference) took more than --budget-s in all")
    if any(r.service.note.startswith("DIFF") for r in rows):
        print("DIFF: the service and the reference disagree on the figure checked: the reference is wrong"
              " or the service is")


def print_side_by_side(by_backend: dict[str, list[Row]]) -> None:
    lite, pg = by_backend.get("sqlite", []), by_backend.get("postgres", [])
    keyed = {(r.service.query, r.service.actor): r for r in pg}
    rows = []
    for r in lite:
        other = keyed.get((r.service.query, r.service.actor))
        if other is None:
            continue
        rows.append([f"{r.service.query} [{r.service.actor}]", ms(r.service.p50), ms(r.service.p95),
                     f"{r.ratio:.2f}", ms(other.service.p50), ms(other.service.p95), f"{other.ratio:.2f}",
                     "met" if other.service.p50 * 1000 < TARGET_MS else "MISSED"])
    print(table(["query", "sqlite p50", "sqlite p95", "/ref", "postgres p50", "postgres p95", "/ref",
                 "pg < 200 ms"], rows))


def print_target(pg: list[Row]) -> None:
    missed = [r for r in pg if r.service.p50 * 1000 >= TARGET_MS]
    print(f"\ntarget p50 < {TARGET_MS:.0f} ms on PostgreSQL: {len(pg) - len(missed)} of {len(pg)} met"
          + ("" if not missed else "; missed: " + ", ".join(
              f"{r.service.query} [{r.service.actor}] {ms(r.service.p50)} ms" for r in missed)))


# --- main --------------------------------------------------------------------------------------


def pg_database(args: argparse.Namespace) -> str | None:
    return store_loader.pg_database(args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--deals", type=int, default=10_000, help="N deals; N/4 companies, N/2 contacts")
    p.add_argument("--activities", type=int, default=100_000,
                   help="M activities over the past year (1-3 targets each); M/10 notes and M/10 tasks")
    store_loader.add_backend_args(p, pg_db="crm_bench_pipeline")
    p.add_argument("--today", type=date.fromisoformat, default=date(2025, 11, 14),
                   help="the day the data is generated around and the periods are taken from")
    p.add_argument("--repeat", type=int, default=20, help="timed runs per query and actor (and as many of the ref)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before them")
    p.add_argument("--budget-s", type=float, default=10.0,
                   help="stop repeating a query (and say so) once its timed runs, service and ref, took this long")
    p.add_argument("--teams", type=int, default=2,
                   help="teams of a manager + 10 reps owning the records; the rep and manager benched are in team 1")
    p.add_argument("--explain-over-ms", type=float, default=TARGET_MS,
                   help="print plans for queries whose p50 is over this on any backend")
    p.add_argument("--only", default="", help="comma-separated substrings: bench only the queries named so")
    p.add_argument("--progress", action="store_true", help="print each query's figures as it finishes")
    return store_loader.parse_backend_args(p, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    BENCH_DIR.mkdir(exist_ok=True)
    started = time.perf_counter()
    n, m = args.deals, args.activities
    load = os.getloadavg()
    print(f"pipeline query bench: {n:,} deals (with their history), {n // 4:,} companies, {n // 2:,} contacts,"
          f" {m:,} activities, {m // 10:,} notes, {m // 10:,} tasks; {args.teams} team(s) of a manager + 10 reps;"
          f" today {args.today}; repeat {args.repeat}; {os.cpu_count()} CPUs,"
          f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    quarter = quarter_bounds(args.today)
    periods = {"this year": (date(args.today.year, 1, 1), date(args.today.year, 12, 31)), "this quarter": quarter}
    since = datetime.combine(args.today, dtime(12), UTC) - timedelta(days=7)
    engines: dict[str, Engine] = {}
    cleanup: list[Callable[[], None]] = []
    by_backend: dict[str, list[Row]] = {}
    ctxs: dict[str, tuple[Ctx, list[Who]]] = {}
    captures: dict[str, Capture] = {}
    tag = f"{args.deals}x{args.activities}"
    try:
        for backend in args.backends:
            engine = store_loader.open_backend(backend, args, "pipeline_queries", cleanup, pg_database)
            if engine is None:
                continue
            engines[backend] = engine
            gens: list[PipelineGenerator] = []

            def make(world: World, deals: int, activities: int, seed: int,
                     gens: list[PipelineGenerator] = gens) -> Generator:
                gens.append(PipelineGenerator(world, deals, activities, seed, args.today))
                return gens[-1]

            world, loader, total_s = load_world(engine, backend, args, make)
            manager, team = set_quotas(engine, world)
            gen = gens[0]
            print(f"deals: {gen.outcomes['open']:,} open, {gen.outcomes['won']:,} won, {gen.outcomes['lost']:,} lost;"
                  f" {len(gen.history):,} history rows ({len(gen.history) / max(1, n):.1f} per deal)")
            gen.history.clear()
            print_load(backend, loader, total_s, calibrate(engine, backend))
            whos = [Who("rep", world.rep, "mine", [world.rep.user_id]),  # type: ignore[list-item]
                    Who("manager", manager, "team", team), Who("admin", world.admin, "all", None)]
            c = Ctx(world, args.today, periods, since)
            ctxs[backend] = (c, whos)
            captures[backend] = Capture(engine)
            # The load leaves millions of Python objects behind (a server process has none of them): a
            # full garbage collection then took 0.1-0.3 s, charged to whichever call happened to set it off
            # (forecast_changes as the admin, which builds thousands of objects: 295-456 ms here against
            # 150-180 ms in a fresh process). Freed and frozen out of the collector's way.
            del gen
            gens.clear()
            gc.collect()
            gc.freeze()
            t0 = time.perf_counter()
            by_backend[backend] = measure(engine, c, whos, args)
            print(f"\nqueries ({time.perf_counter() - t0:.0f} s; ms per call, through the services, a new Session"
                  " each; ref: the same aggregate as one Core statement, run alternately with it)")
            print_rows(backend, by_backend[backend])
        if len(by_backend) == 2:
            print("\n## side by side (p50 and p95 in ms; /ref: service p50 over its reference's p50)")
            print_side_by_side(by_backend)
        if "postgres" in by_backend:
            print_target(by_backend["postgres"])
        slow = sorted({(r.service.query, r.service.actor) for rs in by_backend.values() for r in rs
                       if r.service.p50 * 1000 > args.explain_over_ms})
        if slow:
            print(f"\n## plans of queries over {args.explain_over_ms:.0f} ms p50 on any backend")
            for backend, engine in engines.items():
                if backend not in by_backend:
                    continue
                c, whos = ctxs[backend]
                qs, ws_ = {q.name: q for q in queries(c)}, {w.label: w for w in whos}
                calls = [(f"{name} [{label}]", lambda s, q=qs[name], w=ws_[label]: q.run(s, w))
                         for name, label in slow]
                out = BENCH_DIR / f"explain-pipeline-{backend}-{tag}.txt"
                explain_calls(engine, backend, captures[backend], calls, out)
                print(f"(full plans: {out.relative_to(ROOT)})")
    finally:
        for engine in engines.values():
            engine.dispose()
        for step in cleanup:
            try:
                step()
            except Exception as exc:  # cleanup must not hide the run's own error
                print(f"cleanup failed: {exc}")
        for engine in engines.values():
            engine.dispose()
    load = os.getloadavg()
    print(f"\ndone in {time.perf_counter() - started:.0f} s; load average now {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          + ("" if not args.keep else f"; kept the databases ({', '.join(engines)})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
