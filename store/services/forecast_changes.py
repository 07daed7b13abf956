"""What changed in a forecast since a given moment, deal by deal ("why did the forecast drop?").

A deal's state at `since` is its latest DealHistory row at or before it; its state now is
the deal row. A deal counts in a period at a moment when its close date then was in the
period and it was not lost, and its owner then was in the scope; what it counts for
follows `pipeline.forecast()`: closed won, or its forecast category when open (omitted:
nothing). Each deal's delta is what it counts now minus what it counted then, so the
deltas add up exactly to the change in the totals. Deals deleted since are not seen.

Only the deals that changed since `since` are fetched and compared one by one: those with a
history row after it, and those created after it with none by then. Every other deal's state
then is its state now, exactly: the deal service writes a history row (a snapshot of every
tracked field, `sales.TRACKED`) when it creates a deal and whenever one of them changes, so a
deal row equals its latest history row; with none after `since`, that row is also the one at
`since`. (A deal with no history at all, made by then, counts as unchanged, as it always did.)
Such a deal changes nothing and counts the same then and now, so the totals are: now,
everything counted now (one aggregate in SQL, as `pipeline.forecast()` sums it); then, that
less what the fetched deals count now, plus what they counted then. This rests on the deal
row agreeing with its latest history row: a tracked field written behind the service's back
(raw SQL, no history row) would be seen as unchanged, at its value now, in both totals.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Exists, Integer, Numeric, and_, cast, exists, func, or_, select, type_coerce, union, union_all
from sqlalchemy.orm import Session, aliased

from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Deal, DealHistory, Stage, User
from store.models.enums import ForecastCategory, StageKind
from store.services.crud import readable, spec_for
from store.services.pipeline import Scope, owner_in_scope

BUCKETS = ("commit", "best_case", "pipeline", "closed_won")
_CATEGORY_BUCKET = {ForecastCategory.commit: "commit", ForecastCategory.best_case: "best_case"}
# History rows after `since`, per deal closing in the period now, from which on every candidate is compared
# rather than only the changed ones. Measured at 100k deals as the admin: over a quarter (12k deals closing
# in it), filtering paid 2.6x at 7 days back (10k rows), broke even at 30 (30k) and cost 1.4x at 90 (65k),
# when nearly every candidate had changed; over the year (45k deals) it paid 2-5x at 7 to 90 days back.
COMPARE_ALL_AFTER = 2


@dataclass
class Totals:
    """Per currency: what the period's deals counted for at one moment."""

    commit: dict[str, Decimal] = field(default_factory=dict)
    best_case: dict[str, Decimal] = field(default_factory=dict)
    pipeline: dict[str, Decimal] = field(default_factory=dict)
    closed_won: dict[str, Decimal] = field(default_factory=dict)
    weighted: dict[str, Decimal] = field(default_factory=dict)  # open deals counted, amount x probability

    @property
    def total(self) -> dict[str, Decimal]:
        """Everything counted: closed won + commit + best case + pipeline."""
        out: dict[str, Decimal] = {}
        for bucket in BUCKETS:
            for currency, amount in getattr(self, bucket).items():
                _add(out, currency, amount)
        return out


@dataclass
class Change:
    kind: str  # new, won, lost, pulled_in, pushed_out, close_date_changed, stage_moved, amount_changed,
    # category_changed, probability_changed, reassigned
    text: str  # in words: "pushed out (close 2026-12-15 -> 2027-01-20)"
    before: Any = None
    after: Any = None


@dataclass
class DealChange:
    id: uuid.UUID
    name: str
    owner: str
    changes: list[Change]
    old_bucket: str | None  # what it counted for then: commit, best_case, pipeline, closed_won; None: nothing
    new_bucket: str | None
    old_amount: Decimal  # counted then, in old_currency (0 when it counted for nothing)
    new_amount: Decimal  # counted now, in currency
    old_currency: str
    currency: str
    delta: dict[str, Decimal]  # per currency: counted now - counted then
    weighted_delta: dict[str, Decimal]

    @property
    def size(self) -> Decimal:
        return max((abs(v) for v in self.delta.values()), default=Decimal(0))


@dataclass
class ForecastChanges:
    start: date
    end: date
    scope: str
    since: datetime
    then: Totals
    now: Totals
    deals: list[DealChange]  # the deals that changed, largest absolute delta first

    @property
    def net(self) -> dict[str, Decimal]:
        """The change in everything counted, per currency: the sum of the deals' deltas."""
        out: dict[str, Decimal] = {}
        for deal in self.deals:
            for currency, amount in deal.delta.items():
                _add(out, currency, amount)
        return out


@dataclass
class _State:
    stage_id: uuid.UUID
    stage: str
    kind: StageKind
    stage_probability: int
    amount: Decimal | None
    currency: str
    close_date: date | None
    probability: int | None
    category: ForecastCategory
    owner_id: uuid.UUID | None
    owner: str
    in_scope: bool

    def in_period(self, start: date, end: date) -> bool:
        return self.close_date is not None and start <= self.close_date <= end and self.kind != StageKind.lost

    def counted(self, start: date, end: date) -> tuple[str | None, Decimal, Decimal]:
        """(bucket, amount, weighted) this state counts for in [start, end]."""
        if not self.in_scope or not self.in_period(start, end):
            return None, Decimal(0), Decimal(0)
        amount = self.amount or Decimal(0)
        if self.kind == StageKind.won:
            return "closed_won", amount, Decimal(0)
        if self.category == ForecastCategory.omitted:
            return None, Decimal(0), Decimal(0)
        probability = self.probability if self.probability is not None else self.stage_probability
        return _CATEGORY_BUCKET.get(self.category, "pipeline"), amount, amount * probability / 100


def forecast_changes(session: Session, *, actor: Actor, scope: Scope, start: date, end: date,
                     since: datetime) -> ForecastChanges:
    """Deals whose forecast in [start, end] changed since `since`, with the totals then and now."""
    if start > end:
        raise ValidationFailed("the period starts after it ends", field="start")
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    h = DealHistory
    postgres = session.get_bind().dialect.name == "postgresql"
    # The deals that can count in the period then or now: closing in it now with an owner in the scope, or
    # with a history row by then closing in it with an owner in the scope (the state then is such a row
    # whenever it counts). Others count at neither moment, so they change nothing. (A window over the
    # whole history sorted every row.) Of those, only the ones that changed since `since` (see the module
    # docstring): with a history row after it, or created after it with none by then. Each test is an
    # EXISTS in a conjunction, so that the planner makes it a semi- (anti-) join: hashing the rows after
    # `since` (through the index on changed_at), or probing each candidate's (through (deal_id,
    # changed_at)) when the scope is small. (The changed deals as a list of their own took 70 ms at
    # 90 days back, 28k of 100k deals.)
    now_in_period = select(Deal.id).where(Deal.workspace_id == actor.workspace_id, Deal.close_date.between(start, end),
                                          owner_in_scope(actor, scope, Deal.owner_id))
    then_in_period = select(h.deal_id).where(h.workspace_id == actor.workspace_id, h.changed_at <= since,
                                             h.close_date.between(start, end), owner_in_scope(actor, scope, h.owner_id))
    can_count = union_all(now_in_period, then_in_period).subquery("can_count")  # the union below drops repeats
    # When most deals changed since `since` (a quarter back, say), filtering them costs more than it saves:
    # then every deal that can count is compared, as before, and nothing is left for the aggregate.
    # (Counted through indexes: the deals closing in the period now, and the history rows after `since` up
    # to the point where the answer is known.)
    in_period = session.scalar(select(func.count()).where(Deal.workspace_id == actor.workspace_id,
                                                          Deal.close_date.between(start, end))) or 0
    limit = COMPARE_ALL_AFTER * max(in_period, 1)
    recent = select(h.id).where(h.workspace_id == actor.workspace_id, h.changed_at > since).limit(limit)
    only_changed = (session.scalar(select(func.count()).select_from(recent.subquery())) or 0) < limit
    candidates: Any = union(
        select(can_count.c.id).where(_history(can_count.c.id, since, after=True)),
        now_in_period.where(Deal.created_at > since, ~_history(Deal.id, since, after=False)),
    ) if only_changed else union(now_in_period, then_in_period)
    then: Any
    if postgres:
        # The candidates once (a CTE), joined rather than `IN`: the semi-join's estimate (7 rows for 15k)
        # had the planner probe every deal once per stage. The state then: the latest row at `since` of
        # the candidates' history only, by a window over those rows. (Joining on `id = (latest id per
        # deal)` hashed all of deal_history and ran the subquery twice per candidate; a LATERAL
        # `LIMIT 1` per candidate sorted each one's rows.) The candidates' deal rows and their rows then
        # are each materialized: inlined, the planner misjudged the window's output (180 rows for 2.4k)
        # and joined it to the deals first (110 -> 92 ms as the admin, a quarter, 7 days back, 100k deals).
        cand = candidates.cte("candidates")
        # (When every candidate is compared, plain subqueries, as before, plan better.)
        deal_rows = readable(spec_for("deal"), actor).join(cand, cand.c.id == Deal.id)
        deal = deal_rows.cte("deal").prefix_with("MATERIALIZED") if only_changed else deal_rows.subquery()
        d = deal.c
        latest_first = func.row_number().over(partition_by=h.deal_id, order_by=(h.changed_at.desc(), h.id.desc()))
        ranked = (select(h, latest_first.label("rn"))
                  .where(h.deal_id.in_(select(cand.c.id)), h.changed_at <= since).subquery())
        then_rows = select(ranked).where(ranked.c.rn == 1)
        then = then_rows.cte("then").prefix_with("MATERIALIZED") if only_changed else then_rows.subquery("then")
        then_on = then.c.deal_id == d.id
        t = then.c
    else:
        # SQLite: for each candidate its latest row at `since`, through the (deal_id, changed_at) index.
        latest = (select(h.id).where(h.deal_id == Deal.id, h.changed_at <= since)
                  .order_by(h.changed_at.desc(), h.id.desc()).limit(1).scalar_subquery())
        deal = (readable(spec_for("deal"), actor).where(Deal.id.in_(candidates))
                .add_columns(latest.label("then_id")).subquery())
        d = deal.c
        then = t = aliased(DealHistory)
        then_on = then.id == d.then_id
    now_stage, then_stage = aliased(Stage), aliased(Stage)
    now_owner, then_owner = aliased(User), aliased(User)
    now_in, then_in = owner_in_scope(actor, scope, d.owner_id), owner_in_scope(actor, scope, t.owner_id)
    rows = session.execute(
        select(d.id, d.name, d.created_at, now_stage.id, now_stage.name, now_stage.kind, now_stage.probability,
               d.amount, d.currency, d.close_date, d.probability, d.forecast_category, d.owner_id, now_owner.name,
               now_in.label("now_in"),
               t.deal_id, then_stage.id, then_stage.name, then_stage.kind, then_stage.probability,
               t.amount, t.currency, t.close_date, t.probability, t.forecast_category, t.owner_id, then_owner.name,
               then_in.label("then_in"))
        .select_from(deal)
        .join(now_stage, now_stage.id == d.stage_id)
        .outerjoin(now_owner, now_owner.id == d.owner_id)
        .outerjoin(then, then_on)
        .outerjoin(then_stage, then_stage.id == t.stage_id)
        .outerjoin(then_owner, then_owner.id == t.owner_id)
        .where(or_(now_in, and_(t.deal_id.is_not(None), then_in)),
               or_(d.close_date.between(start, end), t.close_date.between(start, end)))
    ).all()
    result = ForecastChanges(start=start, end=end, scope=str(scope), since=since, then=Totals(), now=Totals(), deals=[])
    states: list[tuple[Any, _State | None, _State]] = []
    for row in rows:
        now = _State(*row[3:13], row[13] or "Unassigned", bool(row[14]))
        if row[15] is not None:
            before: _State | None = _State(*row[16:26], row[26] or "Unassigned", bool(row[27]))
        elif row[2] <= since:
            before = now  # older than its history (imported before history was kept): no change known
        else:
            before = None
        states.append((row, before, now))
    # A deal not fetched did not change (see the module docstring) or counts at neither moment, so what
    # those count, the same then and now, is everything counted now less what the fetched deals count now.
    # (Two statements: a deal written in between skews the totals of this one answer, never an error.)
    unchanged = _counted_now(session, actor, scope, start, end, postgres) if only_changed else {}
    for _, _, now in states:
        bucket, amount, weighted = now.counted(start, end)
        if bucket is not None:
            group = unchanged.setdefault((bucket, now.currency), [0, Decimal(0), Decimal(0)])  # (a write between)
            group[0] -= 1
            group[1] -= amount
            group[2] -= weighted
    for (bucket, currency), (deals, amount, weighted) in unchanged.items():
        if deals > 0:  # as `_count` does for each deal: its currency is there, even when the sum is 0
            for totals in (result.then, result.now):
                _add(getattr(totals, bucket), currency, amount)
                if bucket != "closed_won":
                    _add(totals.weighted, currency, weighted)
    for row, before, now in states:
        change = _compare(row[0], row[1], before, now, start, end)
        _count(result.now, now, start, end)
        if before is not None:
            _count(result.then, before, start, end)
        if change is not None:
            result.deals.append(change)
    result.deals.sort(key=lambda c: (-c.size, c.name.lower(), str(c.id)))
    return result


def _history(deal_id: Any, since: datetime, *, after: bool) -> Exists:
    """Whether the deal has a history row after `since` (or at or before it)."""
    h = aliased(DealHistory)
    return exists().where(h.deal_id == deal_id, h.changed_at > since if after else h.changed_at <= since)


def _counted_now(session: Session, actor: Actor, scope: Scope, start: date, end: date,
                 postgres: bool) -> dict[tuple[str, str], list[Any]]:
    """(bucket, currency) -> [deals, amount, weighted] counted now by the deals readable and in scope: what
    `_State.counted` gives the deal rows (closing in [start, end], not lost; won: closed won, weighted 0;
    open: by forecast category, omitted: nothing), summed in SQL, exactly."""
    if postgres:
        cents: Any = type_coerce(func.coalesce(Deal.amount, 0) * 100, Numeric(asdecimal=True))
    else:
        # SQLite keeps money as REAL: in whole cents (as `Money` reads each amount back) it sums exactly.
        cents = cast(func.round(func.coalesce(Deal.amount, 0) * 100), Integer)
    won = Stage.kind == StageKind.won
    rows = session.execute(
        readable(spec_for("deal"), actor)
        .join(Stage, Stage.id == Deal.stage_id)
        .where(owner_in_scope(actor, scope, Deal.owner_id), Deal.close_date.between(start, end),
               Stage.kind != StageKind.lost)
        .with_only_columns(won.label("won"), Deal.forecast_category, Deal.currency, func.count(),
                           func.sum(cents), func.sum(cents * func.coalesce(Deal.probability, Stage.probability)))
        .group_by(won, Deal.forecast_category, Deal.currency)
    ).all()
    out: dict[tuple[str, str], list[Any]] = {}
    for is_won, category, currency, deals, amount_cents, weighted_cents in rows:
        if is_won:
            bucket, weighted = "closed_won", Decimal(0)
        elif category == ForecastCategory.omitted:
            continue
        else:
            bucket, weighted = _CATEGORY_BUCKET.get(category, "pipeline"), Decimal(weighted_cents) / 10000
        group = out.setdefault((bucket, currency), [0, Decimal(0), Decimal(0)])
        group[0] += deals
        group[1] += Decimal(amount_cents) / 100
        group[2] += weighted
    return out


def _count(totals: Totals, state: _State, start: date, end: date) -> None:
    bucket, amount, weighted = state.counted(start, end)
    if bucket is None:
        return
    _add(getattr(totals, bucket), state.currency, amount)
    if bucket != "closed_won":
        _add(totals.weighted, state.currency, weighted)


def _compare(deal_id: uuid.UUID, name: str, before: _State | None, now: _State, start: date,
             end: date) -> DealChange | None:
    was_counted = before is not None and before.in_scope and before.in_period(start, end)
    is_counted = now.in_scope and now.in_period(start, end)
    if not was_counted and not is_counted:
        return None  # in the period and scope at neither moment (a lost deal, another rep's, another period)
    changes = _changes(before, now, start, end)
    if not changes:
        return None
    old_bucket, old_amount, old_weighted = before.counted(start, end) if before else (None, Decimal(0), Decimal(0))
    new_bucket, new_amount, new_weighted = now.counted(start, end)
    old_currency = before.currency if before else now.currency
    delta: dict[str, Decimal] = {}
    weighted: dict[str, Decimal] = {}
    _add(delta, now.currency, new_amount)
    _add(delta, old_currency, -old_amount)
    _add(weighted, now.currency, new_weighted)
    _add(weighted, old_currency, -old_weighted)
    return DealChange(id=deal_id, name=name, owner=now.owner, changes=changes, old_bucket=old_bucket,
                      new_bucket=new_bucket, old_amount=old_amount, new_amount=new_amount,
                      old_currency=old_currency, currency=now.currency, delta=delta, weighted_delta=weighted)


def _changes(before: _State | None, now: _State, start: date, end: date) -> list[Change]:
    if before is None:
        return [Change("new", f"new ({now.stage}, closes {now.close_date})", None, now.close_date)]
    out: list[Change] = []
    closed = False
    if now.kind == StageKind.won and before.kind != StageKind.won:
        out.append(Change("won", "won", before.stage, now.stage))
        closed = True
    elif now.kind == StageKind.lost and before.kind != StageKind.lost:
        out.append(Change("lost", "lost", before.stage, now.stage))
        closed = True
    elif now.stage_id != before.stage_id:
        out.append(Change("stage_moved", f"stage {before.stage} -> {now.stage}", before.stage, now.stage))
    if now.close_date != before.close_date:
        dates = f"(close {before.close_date or 'none'} -> {now.close_date or 'none'})"
        was_in = before.close_date is not None and start <= before.close_date <= end
        is_in = now.close_date is not None and start <= now.close_date <= end
        kind = "pulled_in" if is_in and not was_in else "pushed_out" if was_in and not is_in else "close_date_changed"
        words = {"pulled_in": "pulled in", "pushed_out": "pushed out", "close_date_changed": "close date moved"}
        out.append(Change(kind, f"{words[kind]} {dates}", before.close_date, now.close_date))
    if now.amount != before.amount or now.currency != before.currency:
        out.append(Change("amount_changed", f"amount {_money(before.amount, before.currency)} -> "
                                            f"{_money(now.amount, now.currency)}", before.amount, now.amount))
    if now.category != before.category and not closed:
        out.append(Change("category_changed", f"category {_label(before.category.value)} -> "
                                              f"{_label(now.category.value)}", before.category.value,
                          now.category.value))
    if now.probability != before.probability and not closed and now.stage_id == before.stage_id:
        out.append(Change("probability_changed", f"probability {_pct(before)} -> {_pct(now)}",
                          before.probability, now.probability))
    if now.owner_id != before.owner_id:
        out.append(Change("reassigned", f"reassigned {before.owner} -> {now.owner}", before.owner, now.owner))
    return out


def _money(amount: Decimal | None, currency: str) -> str:
    return "none" if amount is None else f"{amount:,.0f} {currency}"


def _pct(state: _State) -> str:
    return f"{state.probability}%" if state.probability is not None else f"stage default {state.stage_probability}%"


def _label(category: str) -> str:
    return category.replace("_", " ")


def _add(bucket: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    bucket[currency] = bucket.get(currency, Decimal(0)) + amount
