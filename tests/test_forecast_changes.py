"""What changed in the forecast since a date, deal by deal.

The West team (manager Dana, reps Priya and Raj) and East rep Eve; Q4 2026 is the period and
"since" is Monday 2026-11-16 00:00 UTC. Deals are made and changed through the real services;
each history row the service writes then gets the time it stands for (the service stamps
the wall clock), and so does each deal's `created_at`, so the state as of "since" is known in advance.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from langchain_core.messages import HumanMessage
from sqlalchemy import select

from agents.offline.chat import OfflineModel
from store.models import Deal, DealHistory, Stage, User
from store.services import crud, spec_for
from store.services.forecast_changes import BUCKETS, forecast_changes
from store.services.pipeline import default_scope, forecast
from store.services.sales import default_pipeline, stages_of
from tests import factories as f
from tools import TOOLS, ToolContext

NOW = datetime(2026, 11, 23, 8, 50, tzinfo=ZoneInfo("Europe/Lisbon"))
SINCE = datetime(2026, 11, 16, tzinfo=UTC)
BEFORE = SINCE - timedelta(days=10)  # when the "then" states were written
AFTER = SINCE + timedelta(days=3)  # when the changes were made
Q4 = (date(2026, 10, 1), date(2026, 12, 31))


@dataclass
class Sales:
    w: f.World
    session: Any
    stage: dict[str, Any]
    ids: dict[str, Any]

    def deal(self, who: Any, name: str, amount: str, stage: str, close: date, category: str,
             at: datetime = BEFORE, currency: str = "USD") -> Any:
        deal = f.create(self.session, who, "deal", name=name, amount=amount, currency=currency,
                        stage_id=self.stage[stage], close_date=close, forecast_category=category)
        deal.created_at = at  # made then, like its first history row (deals made before `since` are unchanged)
        self._stamp(deal.id, at)
        self.ids[name] = deal.id
        return deal

    def change(self, who: Any, name: str, at: datetime = AFTER, **data: Any) -> None:
        if "stage" in data:
            data["stage_id"] = self.stage[data.pop("stage")]
        crud.update(self.session, spec_for("deal"), actor=f.actor(who), id=self.ids[name], data=data)
        self._stamp(self.ids[name], at)

    def _stamp(self, deal_id: Any, at: datetime) -> None:
        """The service stamps the wall clock; give the row it just wrote the time it stands for."""
        self.session.flush()
        row = self.session.scalars(select(DealHistory).where(DealHistory.deal_id == deal_id)
                                   .order_by(DealHistory.changed_at.desc(), DealHistory.id.desc())).first()
        row.changed_at = at
        self.session.flush()

    def changes(self, who: Any, scope: str | None = None, since: datetime = SINCE) -> Any:
        actor = f.actor(who)
        return forecast_changes(self.session, actor=actor, scope=scope or default_scope(actor), start=Q4[0],
                                end=Q4[1], since=since)

    def run(self, who: Any, **args: Any) -> str:
        ctx = ToolContext(actor=f.actor(who), session=self.session, now=NOW)
        return TOOLS["forecast_changes"].run(ctx, TOOLS["forecast_changes"].parse(args))


@pytest.fixture(autouse=True, params=["only the changed deals", "every candidate"])
def comparing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs both ways the service can go: comparing only the deals that changed since `since`
    (the rest summed in SQL), and comparing every deal that can count (when most changed)."""
    import store.services.forecast_changes as module

    monkeypatch.setattr(module, "COMPARE_ALL_AFTER", 10**9 if request.param == "only the changed deals" else 0)
    return str(request.param)


@pytest.fixture
def sales(session) -> Sales:  # type: ignore[no-untyped-def]
    w = f.world(session)
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    s = Sales(w, session, stage, {})
    # Priya
    s.deal(w.priya, "Borealis – Fleet Telematics", "62000", "Negotiation", date(2026, 12, 15), "commit")
    s.deal(w.priya, "Nordlys – Grid Analytics", "120000", "Proposal", date(2026, 11, 30), "best_case")
    s.deal(w.priya, "Halden – Depot Pilot", "30000", "Demo", date(2027, 1, 20), "pipeline")
    s.deal(w.priya, "Kestrel – Renewal", "25000", "Negotiation", date(2026, 12, 10), "commit")
    s.deal(w.priya, "Steady – No Change", "10000", "Discovery", date(2026, 12, 1), "pipeline")
    # Raj
    s.deal(w.raj, "Lumen – Route Planner", "350000", "Demo", date(2026, 12, 20), "pipeline")
    s.deal(w.raj, "Orca – Cold Chain", "40000", "Proposal", date(2026, 10, 30), "commit")
    s.deal(w.raj, "Fjord – Ferry Ops", "80000", "Proposal", date(2026, 12, 5), "best_case")
    # Eve (East)
    s.deal(w.eve, "Eastwind – Yard Ops", "90000", "Proposal", date(2026, 12, 1), "commit")

    s.change(w.priya, "Borealis – Fleet Telematics", close_date=date(2027, 1, 20))  # pushed out
    s.change(w.priya, "Halden – Depot Pilot", close_date=date(2026, 12, 28), forecast_category="best_case")  # pulled in
    s.change(w.priya, "Kestrel – Renewal", stage="Closed Won")  # won
    s.change(w.priya, "Nordlys – Grid Analytics", amount="100000", stage="Negotiation")  # amount + stage
    s.deal(w.priya, "Aurora – New Depot", "15000", "Qualification", date(2026, 12, 12), "pipeline", at=AFTER)  # new
    s.change(w.raj, "Orca – Cold Chain", stage="Closed Lost")  # lost
    s.change(w.raj, "Fjord – Ferry Ops", forecast_category="commit")  # category
    s.change(w.eve, "Eastwind – Yard Ops", amount="70000")  # another team's
    session.commit()
    return s


def by_name(changes: Any) -> dict[str, Any]:
    return {d.name: d for d in changes.deals}


def kinds(deal: Any) -> list[str]:
    return [c.kind for c in deal.changes]


def test_each_kind_of_change_is_named_with_its_effect(sales: Sales) -> None:
    fc = sales.changes(sales.w.dana)
    deals = by_name(fc)
    assert set(deals) == {"Borealis – Fleet Telematics", "Halden – Depot Pilot", "Kestrel – Renewal",
                          "Nordlys – Grid Analytics", "Aurora – New Depot", "Orca – Cold Chain", "Fjord – Ferry Ops"}
    borealis = deals["Borealis – Fleet Telematics"]
    assert kinds(borealis) == ["pushed_out"]
    assert borealis.changes[0].text == "pushed out (close 2026-12-15 -> 2027-01-20)"
    assert (borealis.old_bucket, borealis.new_bucket, borealis.delta) == ("commit", None, {"USD": Decimal("-62000")})
    assert borealis.owner == "Priya Raman"
    halden = deals["Halden – Depot Pilot"]
    assert kinds(halden) == ["pulled_in", "category_changed"]
    assert (halden.new_bucket, halden.delta) == ("best_case", {"USD": Decimal("30000")})
    kestrel = deals["Kestrel – Renewal"]
    assert kinds(kestrel) == ["won"] and (kestrel.old_bucket, kestrel.new_bucket) == ("commit", "closed_won")
    assert kestrel.delta == {"USD": Decimal("0")}
    nordlys = deals["Nordlys – Grid Analytics"]
    assert kinds(nordlys) == ["stage_moved", "amount_changed"]
    assert [c.text for c in nordlys.changes] == ["stage Proposal -> Negotiation", "amount 120,000 USD -> 100,000 USD"]
    assert nordlys.delta == {"USD": Decimal("-20000")}
    # weighted: 120,000 at 60% then, 100,000 at 80% now
    assert nordlys.weighted_delta == {"USD": Decimal("8000")}
    aurora = deals["Aurora – New Depot"]
    assert kinds(aurora) == ["new"] and aurora.delta == {"USD": Decimal(15000)}
    orca = deals["Orca – Cold Chain"]
    assert kinds(orca) == ["lost"] and (orca.old_bucket, orca.new_bucket) == ("commit", None)
    assert orca.delta == {"USD": Decimal("-40000")}
    fjord = deals["Fjord – Ferry Ops"]
    assert kinds(fjord) == ["category_changed"] and fjord.changes[0].text == "category best case -> commit"
    assert (fjord.old_bucket, fjord.new_bucket, fjord.delta) == ("best_case", "commit", {"USD": Decimal(0)})
    # largest absolute change first
    assert [d.name for d in fc.deals][:3] == ["Borealis – Fleet Telematics", "Orca – Cold Chain",
                                              "Halden – Depot Pilot"]


def test_totals_then_and_now_and_the_net_change(sales: Sales) -> None:
    fc = sales.changes(sales.w.dana)
    usd = {b: (getattr(fc.then, b).get("USD", 0), getattr(fc.now, b).get("USD", 0)) for b in BUCKETS}
    assert usd == {"commit": (62000 + 25000 + 40000, 80000), "best_case": (120000 + 80000, 100000 + 30000),
                   "pipeline": (10000 + 350000, 10000 + 15000 + 350000), "closed_won": (0, 25000)}
    # -62,000 Borealis, +30,000 Halden, -20,000 Nordlys, +15,000 Aurora, -40,000 Orca
    assert fc.net == {"USD": Decimal(-77000)}
    assert fc.now.total["USD"] - fc.then.total["USD"] == Decimal(-77000)
    # now is what the forecast says today
    now = forecast(sales.session, actor=f.actor(sales.w.dana), scope="team", start=Q4[0], end=Q4[1])
    for bucket in BUCKETS:
        assert getattr(fc.now, bucket) == getattr(now, bucket)
    assert {c: v.quantize(Decimal("0.01")) for c, v in fc.now.weighted.items()} == now.weighted


def test_a_rep_sees_only_their_own_deals_and_a_manager_their_team(sales: Sales) -> None:
    priya = by_name(sales.changes(sales.w.priya))
    assert set(priya) == {"Borealis – Fleet Telematics", "Halden – Depot Pilot", "Kestrel – Renewal",
                          "Nordlys – Grid Analytics", "Aurora – New Depot"}
    raj = sales.changes(sales.w.raj)
    assert {d.name for d in raj.deals} == {"Orca – Cold Chain", "Fjord – Ferry Ops"}
    assert raj.net == {"USD": Decimal(-40000)}
    assert "Eastwind – Yard Ops" not in by_name(sales.changes(sales.w.dana))
    # a rep asking for "all" still sees only what they may read: Eve's East deal is not Priya's team's
    assert "Eastwind – Yard Ops" not in by_name(sales.changes(sales.w.priya, scope="all"))
    everything = sales.changes(sales.w.admin, scope="all")
    assert by_name(everything)["Eastwind – Yard Ops"].delta == {"USD": Decimal(-20000)}
    assert everything.net == {"USD": Decimal(-97000)}


def test_a_reassigned_deal_leaves_one_reps_forecast_and_joins_anothers(sales: Sales) -> None:
    sales.change(sales.w.dana, "Lumen – Route Planner", owner_id=sales.w.priya.id)
    lumen = by_name(sales.changes(sales.w.priya))["Lumen – Route Planner"]
    assert kinds(lumen) == ["reassigned"] and lumen.changes[0].text == "reassigned Raj Patel -> Priya Raman"
    assert lumen.delta == {"USD": Decimal(350000)}
    assert by_name(sales.changes(sales.w.raj))["Lumen – Route Planner"].delta == {"USD": Decimal(-350000)}
    assert by_name(sales.changes(sales.w.dana))["Lumen – Route Planner"].delta == {"USD": Decimal(0)}


def test_since_a_later_moment_sees_fewer_changes(sales: Sales) -> None:
    fc = sales.changes(sales.w.dana, since=AFTER + timedelta(hours=1))
    assert fc.deals == [] and fc.net == {}
    assert fc.then == fc.now


def test_the_deltas_reconcile_with_the_totals_on_a_random_history(sales: Sales) -> None:
    rng = random.Random(6)
    w = sales.w
    owners = [w.priya, w.raj, w.eve]
    stages = list(sales.stage)
    categories = ["commit", "best_case", "pipeline", "omitted"]
    days = [date(2026, 9, 20) + timedelta(days=7 * i) for i in range(20)]  # in and out of Q4
    for i in range(30):
        who = rng.choice(owners)
        at = SINCE + timedelta(days=rng.choice([-20, -5, 2]))
        sales.deal(who, f"Random {i}", str(rng.randrange(1, 200) * 500), rng.choice(stages[:5]), rng.choice(days),
                   rng.choice(categories), at=at, currency=rng.choice(["USD", "USD", "EUR"]))
        for step in range(rng.randrange(0, 4)):
            change = rng.choice(["stage", "amount", "close_date", "forecast_category", "probability", "owner_id"])
            value: Any = {"stage": lambda: rng.choice(stages), "amount": lambda: str(rng.randrange(1, 200) * 500),
                          "close_date": lambda: rng.choice(days),
                          "forecast_category": lambda: rng.choice(categories),
                          "probability": lambda: rng.randrange(0, 101),
                          "owner_id": lambda: rng.choice(owners).id}[change]()
            sales.change(w.admin, f"Random {i}", at=at + timedelta(days=step + 1), **{change: value})
    sales.session.commit()
    for who, scope in ((w.admin, "all"), (w.dana, "team"), (w.priya, "mine"), (w.eve, "mine")):
        fc = sales.changes(who, scope=scope)
        assert fc.deals, "the random history changes something in every scope"
        for bucket in (*BUCKETS, "weighted"):
            moved: dict[str, Decimal] = {}
            for deal in fc.deals:
                if bucket == "weighted":
                    for currency, amount in deal.weighted_delta.items():
                        moved[currency] = moved.get(currency, Decimal(0)) + amount
                    continue
                if deal.old_bucket == bucket:
                    moved[deal.old_currency] = moved.get(deal.old_currency, Decimal(0)) - deal.old_amount
                if deal.new_bucket == bucket:
                    moved[deal.currency] = moved.get(deal.currency, Decimal(0)) + deal.new_amount
            then, now = getattr(fc.then, bucket), getattr(fc.now, bucket)
            for currency in set(then) | set(now) | set(moved):
                assert now.get(currency, 0) - then.get(currency, 0) == moved.get(currency, 0), (scope, bucket)
        for currency in set(fc.then.total) | set(fc.now.total):
            assert fc.now.total.get(currency, 0) - fc.then.total.get(currency, 0) == fc.net.get(currency, 0)
        today = forecast(sales.session, actor=f.actor(who), scope=scope, start=Q4[0], end=Q4[1])
        for bucket in BUCKETS:
            assert getattr(fc.now, bucket) == getattr(today, bucket), (scope, bucket)


def test_the_tool_lists_totals_then_now_and_the_deals_that_moved(sales: Sales) -> None:
    out = sales.run(sales.w.dana, since="2026-11-16")
    lines = out.splitlines()
    assert lines[0] == (f"Forecast this quarter (2026-10-01 to 2026-12-31), scope {sales.w.west.name} team: "
                        "changes since 2026-11-16 (then -> now)")
    assert "- closed won: 0 -> 25,000 USD" in lines
    assert "- commit: 127,000 USD -> 80,000 USD" in lines
    assert "- total counted: 687,000 USD -> 610,000 USD (net -77,000 USD)" in lines
    assert lines[7] == "Deals that changed (7), largest change first:"
    borealis = sales.ids["Borealis – Fleet Telematics"]
    assert lines[8] == (f"- Borealis – Fleet Telematics (Priya Raman): pushed out (close 2026-12-15 -> 2027-01-20), "
                        f"-62,000 USD from commit (id={borealis})")
    assert (f"- Kestrel – Renewal (Priya Raman): won, +0 USD (commit -> closed won) "
            f"(id={sales.ids['Kestrel – Renewal']})") in lines
    assert any(line.startswith("- Aurora – New Depot (Priya Raman): new (Qualification, closes 2026-12-12), "
                               "+15,000 USD to pipeline") for line in lines)
    # default "since": a week before today (2026-11-16 too, on this clock)
    assert sales.run(sales.w.dana) == out
    assert "Eastwind" not in out
    nothing = sales.run(sales.w.dana, since="2026-11-22")
    assert nothing.endswith("No deal in this period and scope changed since then.")


@pytest.mark.parametrize(("text", "args"), [
    ("why did the forecast drop?", {"period": "this_quarter"}),
    ("what changed in the forecast since last week?", {"period": "this_quarter"}),
    ("forecast vs last week", {"period": "this_quarter"}),
    ("which deals slipped this month?", {"period": "this_month", "since": "2026-11-01"}),
    ("why did our commit drop this quarter?", {"period": "this_quarter", "scope": "team"}),
    ("what changed in my forecast since yesterday", {"period": "this_quarter", "scope": "mine",
                                                     "since": "2026-11-22"}),
    ("how has the forecast for next quarter changed since last month?", {"period": "next_quarter",
                                                                         "since": "2026-10-23"}),
])
def test_offline_model_routes_forecast_change_questions(sales: Sales, text: str, args: dict[str, Any]) -> None:
    ctx = ToolContext(actor=f.actor(sales.w.dana), session=sales.session, now=NOW)
    reply = OfflineModel().respond([HumanMessage(text)], ctx)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("forecast_changes", args)]


def test_plain_forecast_questions_still_get_the_forecast(sales: Sales) -> None:
    ctx = ToolContext(actor=f.actor(sales.w.dana), session=sales.session, now=NOW)
    for text in ("what's our Q4 commit?", "forecast this quarter", "move Borealis close date to Jan 20"):
        reply = OfflineModel().respond([HumanMessage(text)], ctx)
        assert all(c["name"] != "forecast_changes" for c in reply.tool_calls), text


def test_an_unchanged_deal_counts_then_and_now_and_is_no_change(sales: Sales) -> None:
    before = sales.changes(sales.w.dana)
    sales.deal(sales.w.raj, "Quiet – Old Renewal", "44000", "Negotiation", date(2026, 12, 3), "commit")
    sales.deal(sales.w.raj, "Quiet – Won Early", "5000", "Demo", date(2026, 11, 2), "pipeline")
    sales.change(sales.w.raj, "Quiet – Won Early", at=BEFORE + timedelta(days=1), stage="Closed Won")
    sales.session.commit()
    fc = sales.changes(sales.w.dana)
    assert fc.deals == before.deals  # neither changed since: no change listed, nothing moves
    for totals, old in ((fc.then, before.then), (fc.now, before.now)):
        assert totals.commit["USD"] - old.commit["USD"] == Decimal(44000)
        assert totals.closed_won["USD"] - old.closed_won.get("USD", 0) == Decimal(5000)
        assert totals.weighted["USD"] - old.weighted["USD"] == Decimal(44000 * 80) / 100  # Negotiation: 80%
        assert totals.best_case == old.best_case and totals.pipeline == old.pipeline
    assert fc.net == before.net
    # changed after `since`, it is listed with what it moved
    sales.change(sales.w.raj, "Quiet – Old Renewal", close_date=date(2027, 2, 1))
    quiet = by_name(sales.changes(sales.w.dana))["Quiet – Old Renewal"]
    assert kinds(quiet) == ["pushed_out"] and quiet.delta == {"USD": Decimal(-44000)}


def test_a_deal_without_history_is_unchanged_when_made_by_then_else_new(sales: Sales) -> None:
    before = sales.changes(sales.w.priya)
    deal = sales.deal(sales.w.priya, "Legacy – Import", "12000", "Proposal", date(2026, 12, 9), "best_case")
    for row in sales.session.scalars(select(DealHistory).where(DealHistory.deal_id == deal.id)):
        sales.session.delete(row)
    sales.session.commit()
    fc = sales.changes(sales.w.priya)
    assert fc.deals == before.deals
    assert fc.then.best_case["USD"] - before.then.best_case["USD"] == 12000
    assert fc.now.best_case["USD"] - before.now.best_case["USD"] == 12000
    # made since, without history: new
    fresh = sales.deal(sales.w.priya, "Fresh – Import", "7000", "Demo", date(2026, 12, 9), "commit", at=AFTER)
    for row in sales.session.scalars(select(DealHistory).where(DealHistory.deal_id == fresh.id)):
        sales.session.delete(row)
    sales.session.commit()
    fc = sales.changes(sales.w.priya)
    assert kinds(by_name(fc)["Fresh – Import"]) == ["new"]
    assert fc.now.commit["USD"] == before.now.commit.get("USD", 0) + 7000 and fc.then.commit == before.then.commit


@dataclass
class _Then:
    """A deal's forecast fields at one moment, for the reference below."""

    stage_id: Any
    amount: Decimal | None
    currency: str
    close_date: date | None
    probability: int | None
    category: str
    owner_id: Any


def _fields(row: Any) -> _Then:
    return _Then(row.stage_id, row.amount, row.currency, row.close_date, row.probability,
                 row.forecast_category.value, row.owner_id)


def test_forecast_changes_equal_a_brute_force_reference(sales: Sales) -> None:
    """Random deals made and changed before and after `since` (some made after it, some without history,
    some in another workspace), against totals and changes worked out here from every deal and its
    history rows, as the module docstring defines them."""
    rng = random.Random(20261116)
    w, session = sales.w, sales.session
    owners = [w.priya, w.raj, w.eve, w.dana]
    stages = list(sales.stage)
    categories = ["commit", "best_case", "pipeline", "omitted"]
    days = [date(2026, 9, 20) + timedelta(days=6 * i) for i in range(22)]  # in and out of Q4
    offsets = [-30, -12, -3, -1, 0, 2, 4]  # days from `since` a deal is made (0: exactly at it)
    for i in range(40):
        at = SINCE + timedelta(days=rng.choice(offsets))
        name = f"Deal {i:02d}"
        amount = f"{rng.randrange(0, 100_000)}.{rng.choice([0, 0, rng.randrange(100)]):02d}"  # some with cents
        sales.deal(rng.choice(owners), name, amount,
                   rng.choice(stages[:5]), rng.choice(days), rng.choice(categories), at=at,
                   currency=rng.choice(["USD", "USD", "EUR", "GBP"]))
        when = at
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            when += timedelta(days=rng.choice([1, 2, 5]), hours=rng.choice([0, 0, 3]))
            if rng.random() < 0.15:
                when = SINCE  # a change exactly at `since` is part of the state then
            field_ = rng.choice(["stage", "amount", "close_date", "forecast_category", "probability", "owner_id"])
            value: Any = {"stage": lambda: rng.choice(stages), "amount": lambda: rng.choice(
                              [None, str(rng.randrange(1, 400) * 250)]),
                          "close_date": lambda: rng.choice(days),
                          "forecast_category": lambda: rng.choice(categories),
                          "probability": lambda: rng.choice([None, 0, rng.randrange(1, 101)]),
                          "owner_id": lambda: rng.choice(owners).id}[field_]()
            rows = len(session.scalars(select(DealHistory.id).where(DealHistory.deal_id == sales.ids[name])).all())
            crud.update(session, spec_for("deal"), actor=f.actor(w.admin), id=sales.ids[name],
                        data={"stage_id": sales.stage[value]} if field_ == "stage" else {field_: value})
            session.flush()
            if len(session.scalars(select(DealHistory.id)
                                   .where(DealHistory.deal_id == sales.ids[name])).all()) > rows:
                sales._stamp(sales.ids[name], max(when, at))
        if rng.random() < 0.1:  # imported before history was kept (all of it, or up to `since`)
            cut = DealHistory.changed_at <= SINCE if rng.random() < 0.5 else DealHistory.id.is_not(None)
            for row in session.scalars(select(DealHistory).where(DealHistory.deal_id == sales.ids[name], cut)):
                session.delete(row)
    # another workspace's deals never count
    other_stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.other_ws.id).id)}
    for i, at in enumerate((BEFORE, AFTER)):
        deal = f.create(session, w.other_admin, "deal", name=f"Other {i}", amount="999", currency="USD",
                        stage_id=other_stage["Proposal"], close_date=date(2026, 12, 1), forecast_category="commit")
        deal.created_at = at
        sales._stamp(deal.id, at)
    session.commit()

    stage = {s.id: s for s in session.scalars(select(Stage))}
    team_of = {u.id: u.team_id for u in session.scalars(select(User))}
    deals = session.scalars(select(Deal).where(Deal.workspace_id == w.ws.id)).all()
    history: dict[Any, list[Any]] = {}
    for row in session.scalars(select(DealHistory).order_by(DealHistory.changed_at, DealHistory.id)):
        history.setdefault(row.deal_id, []).append(row)

    def counted(state: _Then | None, in_scope: Any) -> tuple[str | None, Decimal, Decimal]:
        if state is None or not in_scope(state.owner_id) or state.close_date is None:
            return None, Decimal(0), Decimal(0)
        kind = stage[state.stage_id].kind.value
        if not Q4[0] <= state.close_date <= Q4[1] or kind == "lost":
            return None, Decimal(0), Decimal(0)
        amount = state.amount or Decimal(0)
        if kind == "won":
            return "closed_won", amount, Decimal(0)
        if state.category == "omitted":
            return None, Decimal(0), Decimal(0)
        probability = state.probability if state.probability is not None else stage[state.stage_id].probability
        bucket = state.category if state.category in ("commit", "best_case") else "pipeline"
        return bucket, amount, amount * probability / 100

    def add(totals: dict[str, dict[str, Decimal]], state: _Then, result: tuple[str | None, Decimal, Decimal]) -> None:
        bucket, amount, weighted = result
        if bucket is None:
            return
        totals[bucket][state.currency] = totals[bucket].get(state.currency, Decimal(0)) + amount
        if bucket != "closed_won":
            totals["weighted"][state.currency] = totals["weighted"].get(state.currency, Decimal(0)) + weighted

    for who, scope in ((w.admin, "all"), (w.admin, "team"), (w.dana, "team"), (w.dana, "mine"),
                       (w.priya, "mine"), (w.priya, "all"), (w.raj, "team"), (w.eve, "mine")):
        me, team = who.id, team_of[who.id]
        admin = who.role.value == "admin"

        def readable(owner: Any, me: Any = me, team: Any = team, admin: bool = admin) -> bool:
            return admin or owner is None or owner == me or (team is not None and team_of.get(owner) == team)

        def in_scope(owner: Any, me: Any = me, team: Any = team, admin: bool = admin, scope: str = scope) -> bool:
            if scope == "all":
                return True
            if scope == "team" and team is not None:
                return team_of.get(owner) == team
            return (scope == "team" and admin) or owner == me

        then: dict[str, dict[str, Decimal]] = {b: {} for b in (*BUCKETS, "weighted")}
        now: dict[str, dict[str, Decimal]] = {b: {} for b in (*BUCKETS, "weighted")}
        changed: dict[Any, tuple[Any, ...]] = {}
        unchanged_counted = 0
        for deal in deals:
            if not readable(deal.owner_id):
                continue
            current = _fields(deal)
            rows = [r for r in history.get(deal.id, []) if r.changed_at <= SINCE]
            before = _fields(rows[-1]) if rows else current if deal.created_at <= SINCE else None
            old, new = counted(before, in_scope), counted(current, in_scope)
            add(then, before, old) if before else None
            add(now, current, new)
            was_in = before is not None and in_scope(before.owner_id) and before.close_date is not None and \
                Q4[0] <= before.close_date <= Q4[1] and stage[before.stage_id].kind.value != "lost"
            is_in = in_scope(current.owner_id) and current.close_date is not None and \
                Q4[0] <= current.close_date <= Q4[1] and stage[current.stage_id].kind.value != "lost"
            if before == current:
                unchanged_counted += new[0] is not None
                continue
            if was_in or is_in:
                old_currency = before.currency if before else current.currency
                delta = {current.currency: new[1]}
                delta[old_currency] = delta.get(old_currency, Decimal(0)) - old[1]
                weighted = {current.currency: new[2]}
                weighted[old_currency] = weighted.get(old_currency, Decimal(0)) - old[2]
                changed[deal.id] = (old[0], new[0], delta, weighted)
        if who in (w.admin, w.dana) and scope != "mine":
            assert unchanged_counted and changed, (who.name, scope)  # both paths are exercised

        fc = sales.changes(who, scope=scope)
        for bucket in (*BUCKETS, "weighted"):
            assert getattr(fc.then, bucket) == then[bucket], (who.name, scope, "then", bucket)
            assert getattr(fc.now, bucket) == now[bucket], (who.name, scope, "now", bucket)
        assert {d.id: (d.old_bucket, d.new_bucket, d.delta, d.weighted_delta) for d in fc.deals} == changed
        assert [d.id for d in fc.deals] == [d.id for d in sorted(fc.deals, key=lambda d: (-d.size, d.name.lower(),
                                                                                           str(d.id)))]
        today = forecast(session, actor=f.actor(who), scope=scope, start=Q4[0], end=Q4[1])
        for bucket in BUCKETS:
            assert getattr(fc.now, bucket) == getattr(today, bucket), (who.name, scope, bucket)
