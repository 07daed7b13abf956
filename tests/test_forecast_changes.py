"""What changed in the forecast since a date, deal by deal.

The West team (manager Dana, reps Priya and Raj) and East rep Eve; Q4 2026 is the period and
"since" is Monday 2026-11-16 00:00 UTC. Deals are made and changed through the real services;
each history row the service writes then gets the time it stands for (the service stamps
the wall clock), so the state as of "since" is known in advance.
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

from agents.offline import OfflineModel
from store.models import DealHistory
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
    assert lines[0] == ("Forecast this quarter (2026-10-01 to 2026-12-31), scope team: "
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
