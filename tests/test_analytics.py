"""Pipeline analytics on a generated history whose right numbers are known in advance.

The West team (manager Dana, reps Priya and Raj) and East rep Eve; the period is Q3 2026.
Deals, moves and activities are made through the real services; each history row, creation
and close then gets the time it stands for (the services stamp the wall clock).

    deal     owner  source    currency amount  history (2026)                                   outcome
    Alpha    Priya  inbound   USD   10,000  Jul 1 Qualification, Jul 11 Discovery,          won Aug 10
                                            Jul 20 close date only, Jul 31 Proposal
    Bravo    Priya  inbound   USD   30,000  Jul 1 Qualification, Jul 21 Discovery            lost Aug 20
    Charlie  Priya  referral  USD   20,000  Jun 1 Qualification                              won Jul 1
    Golf     Priya  -         USD    5,000  Sep 1 Qualification                              open, no activity
    India    Priya  -         USD    7,000  Jul 1 Demo; calls Aug 1 and Sep 17               open
    Delta    Raj    referral  USD   50,000  Jul 1 Qualification, Aug 1 Demo                  won Sep 1
    Hotel    Raj    -         EUR    9,000  Jul 1 Qualification                              won Jul 17
    Echo     Raj    -         EUR    8,000  Jul 1 Discovery; call Sep 20                      open
    Foxtrot  Eve    inbound   USD  100,000  Jul 1 Qualification                              lost Jul 6
    Juliet   Eve    -         USD    1,000  Jun 1 Qualification                              open, no activity
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from store.errors import ValidationFailed
from store.models import Deal, DealHistory
from store.services import analytics, crud, spec_for
from store.services.pipeline import default_scope
from store.services.sales import default_pipeline, stages_of
from tests import factories as f
from tools import TOOLS, ToolContext

Q3 = (date(2026, 7, 1), date(2026, 9, 30))
TODAY = date(2026, 10, 1)
NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


@dataclass
class Sales:
    w: f.World
    session: Any
    stage: dict[str, Any]
    ids: dict[str, Any]

    def deal(self, who: Any, name: str, amount: str, stage: str, created: datetime, source: str | None = None,
             currency: str = "USD") -> None:
        deal = f.create(self.session, who, "deal", name=name, amount=amount, currency=currency, source=source,
                        stage_id=self.stage[stage])
        self.ids[name] = deal.id
        deal.created_at = created
        self._stamp(name, created)

    def move(self, name: str, stage: str | None, when: datetime, **data: Any) -> None:
        if stage:
            data["stage_id"] = self.stage[stage]
        crud.update(self.session, spec_for("deal"), actor=f.actor(self.w.admin), id=self.ids[name], data=data)
        self._stamp(name, when)

    def activity(self, who: Any, name: str, type_: str, when: datetime) -> None:
        f.create(self.session, who, "activity", type=type_, subject=f"{type_} on {name}", occurred_at=when,
                 deal_ids=[self.ids[name]])

    def _stamp(self, name: str, when: datetime) -> None:
        """Give the history row the service just wrote (and the deal's stage and close times) `when`."""
        self.session.flush()
        row = self.session.scalars(select(DealHistory).where(DealHistory.deal_id == self.ids[name])
                                   .order_by(DealHistory.changed_at.desc(), DealHistory.id.desc())).first()
        row.changed_at = when
        deal = self.session.get(Deal, self.ids[name])
        if row.from_stage_id is not None or deal.created_at == when:
            deal.stage_entered_at = when
            if deal.closed_at is not None:
                deal.closed_at = when
        self.session.flush()

    def kw(self, who: Any, scope: str | None = None) -> dict[str, Any]:
        actor = f.actor(who)
        return {"actor": actor, "scope": scope or default_scope(actor)}

    def run(self, who: Any, **args: Any) -> str:
        ctx = ToolContext(actor=f.actor(who), session=self.session, now=NOW)
        return TOOLS["pipeline_analytics"].run(ctx, TOOLS["pipeline_analytics"].parse(args))


@pytest.fixture
def sales(session) -> Sales:  # type: ignore[no-untyped-def]
    w = f.world(session)
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    s = Sales(w, session, stage, {})
    s.deal(w.priya, "Alpha", "10000", "Qualification", at(7, 1), "inbound")
    s.move("Alpha", "Discovery", at(7, 11))
    s.move("Alpha", None, at(7, 20), close_date=date(2026, 8, 31))  # not a stage change
    s.move("Alpha", "Proposal", at(7, 31))
    s.move("Alpha", "Closed Won", at(8, 10))
    s.deal(w.priya, "Bravo", "30000", "Qualification", at(7, 1), "inbound")
    s.move("Bravo", "Discovery", at(7, 21))
    s.move("Bravo", "Closed Lost", at(8, 20))
    s.deal(w.priya, "Charlie", "20000", "Qualification", at(6, 1), "referral")
    s.move("Charlie", "Closed Won", at(7, 1))
    s.deal(w.priya, "Golf", "5000", "Qualification", at(9, 1))
    s.deal(w.priya, "India", "7000", "Demo", at(7, 1))
    s.deal(w.raj, "Delta", "50000", "Qualification", at(7, 1), "referral")
    s.move("Delta", "Demo", at(8, 1))
    s.move("Delta", "Closed Won", at(9, 1))
    s.deal(w.raj, "Hotel", "9000", "Qualification", at(7, 1), currency="EUR")
    s.move("Hotel", "Closed Won", at(7, 17))
    s.deal(w.raj, "Echo", "8000", "Discovery", at(7, 1), currency="EUR")
    s.deal(w.eve, "Foxtrot", "100000", "Qualification", at(7, 1), "inbound")
    s.move("Foxtrot", "Closed Lost", at(7, 6))
    s.deal(w.eve, "Juliet", "1000", "Qualification", at(6, 1))
    s.activity(w.priya, "India", "call", at(8, 1))
    s.activity(w.priya, "India", "call", at(9, 17))
    s.activity(w.priya, "Alpha", "email", at(7, 5))
    s.activity(w.priya, "Alpha", "meeting", at(7, 8))
    s.activity(w.raj, "Echo", "call", at(9, 20))
    s.activity(w.raj, "Delta", "note", at(10, 2))  # after the period
    s.activity(w.eve, "Foxtrot", "email", at(7, 2))
    session.commit()
    return s


def test_win_rate_overall_and_by_source_and_owner(sales: Sales) -> None:
    wr = analytics.win_rate(sales.session, **sales.kw(sales.w.dana), start=Q3[0], end=Q3[1])
    assert (wr.total.won, wr.total.lost, wr.total.rate) == (4, 1, 0.8)
    ids = sales.ids
    assert [d.id for d in wr.deals] == [ids["Delta"], ids["Bravo"], ids["Charlie"], ids["Alpha"], ids["Hotel"]]
    by_source = analytics.win_rate(sales.session, **sales.kw(sales.w.dana), start=Q3[0], end=Q3[1], by="source")
    assert [(x.group, x.won, x.lost, x.rate) for x in by_source.lines] == [
        ("inbound", 1, 1, 0.5), ("referral", 2, 0, 1.0), ("(no source)", 1, 0, 1.0)]
    by_owner = analytics.win_rate(sales.session, **sales.kw(sales.w.dana), start=Q3[0], end=Q3[1], by="owner")
    assert [(x.group, x.won, x.lost) for x in by_owner.lines] == [("Priya Raman", 2, 1), ("Raj Patel", 2, 0)]
    # August only: Alpha won, Bravo lost
    aug = analytics.win_rate(sales.session, **sales.kw(sales.w.dana), start=date(2026, 8, 1), end=date(2026, 8, 31))
    assert (aug.total.won, aug.total.lost) == (1, 1)
    everything = analytics.win_rate(sales.session, **sales.kw(sales.w.admin, "all"), start=Q3[0], end=Q3[1])
    assert (everything.total.won, everything.total.lost) == (4, 2)


def test_deal_size_and_sales_cycle(sales: Sales) -> None:
    dc = analytics.deal_size_and_cycle(sales.session, **sales.kw(sales.w.dana), start=Q3[0], end=Q3[1])
    assert [(s.currency, s.deals, s.total, s.average, s.median) for s in dc.won_amount] == [
        ("EUR", 1, Decimal("9000.00"), Decimal("9000.00"), Decimal("9000.00")),
        ("USD", 3, Decimal("80000.00"), Decimal("26666.67"), Decimal("20000.00"))]
    # won: Alpha 40 days, Charlie 30, Delta 62, Hotel 16; lost: Bravo 50
    assert dc.won_cycle == analytics.DaysStats(4, 37.0, 35.0)
    assert dc.lost_cycle == analytics.DaysStats(1, 50.0, 50.0)
    assert [d.id for d in dc.deals] == [sales.ids[n] for n in ("Delta", "Charlie", "Alpha", "Hotel")]


def test_stage_conversion(sales: Sales) -> None:
    lines = analytics.stage_conversion(sales.session, **sales.kw(sales.w.dana), start=Q3[0], end=Q3[1])
    got = {line.stage: (line.entered, line.advanced, line.won, line.lost) for line in lines}
    # Qualification: Alpha, Bravo, Delta, Hotel, Golf (Charlie entered in June); Golf has not moved on
    # Discovery: Alpha, Bravo (moves) and Echo (created there); Demo: Delta and India; Proposal: Alpha
    assert got == {"Qualification": (5, 4, 3, 1), "Discovery": (3, 1, 1, 1), "Demo": (2, 1, 1, 0),
                   "Proposal": (1, 1, 1, 0)}
    assert [line.stage for line in lines] == ["Qualification", "Discovery", "Demo", "Proposal"]
    qualification = lines[0]
    assert qualification.conversion == 0.8 and qualification.win_rate == 0.6
    assert set(qualification.deal_ids) == {sales.ids[n] for n in ("Alpha", "Bravo", "Delta", "Hotel", "Golf")}
    # entries in August only: Delta into Demo
    aug = analytics.stage_conversion(sales.session, **sales.kw(sales.w.dana), start=date(2026, 8, 1),
                                     end=date(2026, 8, 31))
    assert [(x.stage, x.entered, x.advanced, x.deal_ids) for x in aug] == [("Demo", 1, 1, [sales.ids["Delta"]])]


def test_days_in_stage(sales: Sales) -> None:
    times = analytics.days_in_stage(sales.session, **sales.kw(sales.w.dana), start=Q3[0], end=Q3[1])
    ids = sales.ids
    # Qualification: Alpha 10, Bravo 20, Charlie 30 (entered in June, left Jul 1), Delta 31, Hotel 16
    assert [(t.stage, t.stays, t.average_days, t.median_days) for t in times] == [
        ("Qualification", 5, 21.4, 20.0), ("Discovery", 2, 25.0, 25.0), ("Demo", 1, 31.0, 31.0),
        ("Proposal", 1, 10.0, 10.0)]
    assert times[0].deal_ids == [ids["Delta"], ids["Charlie"], ids["Bravo"], ids["Hotel"], ids["Alpha"]]
    # stays that ended in July only
    july = analytics.days_in_stage(sales.session, **sales.kw(sales.w.dana), start=date(2026, 7, 1),
                                   end=date(2026, 7, 31))
    assert [(t.stage, t.stays, t.average_days) for t in july] == [("Qualification", 4, 19.0),
                                                                   ("Discovery", 1, 20.0)]


def test_stale_deals(sales: Sales) -> None:
    stale = analytics.stale_deals(sales.session, **sales.kw(sales.w.dana), today=TODAY, days=14)
    assert stale.total == 2
    # Golf: created Sep 1, never touched; India: last call Sep 17 (14 days); Echo's call was 11 days ago
    assert [(s.name, s.days, s.last_activity) for s in stale.deals] == [("Golf", 30, None),
                                                                       ("India", 14, at(9, 17))]
    assert [s.name for s in analytics.stale_deals(sales.session, **sales.kw(sales.w.dana), today=TODAY,
                                                  days=15).deals] == ["Golf"]
    everything = analytics.stale_deals(sales.session, **sales.kw(sales.w.admin, "all"), today=TODAY, days=10)
    assert [(s.name, s.days) for s in everything.deals] == [("Juliet", 122), ("Golf", 30), ("India", 14),
                                                           ("Echo", 11)]
    capped = analytics.stale_deals(sales.session, **sales.kw(sales.w.admin, "all"), today=TODAY, days=10, cap=1)
    assert capped.total == 4 and [s.name for s in capped.deals] == ["Juliet"]


def test_activity_counts_per_rep(sales: Sales) -> None:
    reps = analytics.activity_counts(sales.session, **sales.kw(sales.w.dana), start=Q3[0], end=Q3[1])
    assert [(r.owner, r.total, r.by_type) for r in reps] == [
        ("Priya Raman", 4, {"call": 2, "email": 1, "meeting": 1}), ("Raj Patel", 1, {"call": 1})]
    everything = analytics.activity_counts(sales.session, **sales.kw(sales.w.admin, "all"), start=Q3[0],
                                           end=date(2026, 10, 31))
    assert [(r.owner, r.total) for r in everything] == [("Priya Raman", 4), ("Raj Patel", 2), ("Eve East", 1)]


def test_a_rep_sees_only_their_own_numbers_and_a_manager_their_team(sales: Sales) -> None:
    w, s = sales.w, sales.session
    period = {"start": Q3[0], "end": Q3[1]}
    priya = analytics.win_rate(s, **sales.kw(w.priya), **period)
    assert (priya.scope, priya.total.won, priya.total.lost) == ("mine", 2, 1)
    assert {d.id for d in priya.deals} == {sales.ids[n] for n in ("Alpha", "Bravo", "Charlie")}
    raj = analytics.win_rate(s, **sales.kw(w.raj), **period)
    assert (raj.total.won, raj.total.lost) == (2, 0)
    eve = analytics.win_rate(s, **sales.kw(w.eve), **period)
    assert (eve.total.won, eve.total.lost) == (0, 1)
    # a rep asking for "all" still sees only what they may read: not the East team's deals
    assert analytics.win_rate(s, **sales.kw(w.priya, "all"), **period).total.closed == 5
    assert [r.owner for r in analytics.activity_counts(s, **sales.kw(w.raj), **period)] == ["Raj Patel"]
    assert [r.owner for r in analytics.activity_counts(s, **sales.kw(w.priya, "all"), **period)] == [
        "Priya Raman", "Raj Patel"]
    assert [x.stage for x in analytics.stage_conversion(s, **sales.kw(w.eve), **period)] == ["Qualification"]
    assert [(t.stage, t.stays) for t in analytics.days_in_stage(s, **sales.kw(w.eve), **period)] == [
        ("Qualification", 1)]
    assert [d.name for d in analytics.stale_deals(s, **sales.kw(w.eve), today=TODAY).deals] == ["Juliet"]
    assert [d.name for d in analytics.stale_deals(s, **sales.kw(w.raj), today=TODAY, days=10).deals] == ["Echo"]
    assert analytics.deal_size_and_cycle(s, **sales.kw(w.eve), **period).won_amount == []
    # the other workspace sees nothing
    assert analytics.win_rate(s, **sales.kw(w.other_admin, "all"), **period).total.closed == 0


def test_the_tool_gives_the_numbers_and_the_deals(sales: Sales) -> None:
    ids = sales.ids
    out = sales.run(sales.w.dana, metric="win_rate", period="last_quarter", by="source")
    lines = out.splitlines()
    assert lines[:4] == [f"Win rate, last quarter (2026-07-01 to 2026-09-30), scope {sales.w.west.name} team: "
                         "80% (4 won, 1 lost of 5 closed)",
                         "- inbound: 50% (1 won, 1 lost)", "- referral: 100% (2 won, 0 lost)",
                         "- (no source): 100% (1 won, 0 lost)"]
    assert lines[4] == "Largest deals counted:"
    assert lines[5] == f"  - Delta: 50,000 USD, Closed Won (id={ids['Delta']})"
    assert "Foxtrot" not in out
    assert sales.run(sales.w.dana, metric="win_rate", start="2026-07-01", end="2026-09-30",
                     by="source").replace("2026-07-01 to 2026-09-30", "") == out.replace(
        "last quarter (2026-07-01 to 2026-09-30)", "")
    size = sales.run(sales.w.dana, metric="deal_size", period="last_quarter")
    assert "- USD: average 26,666.67, median 20,000.00, total 80,000.00 (3 deals)" in size.splitlines()
    cycle = sales.run(sales.w.dana, metric="sales_cycle", period="last_quarter")
    assert "- created to won: average 37.0 days, median 35.0 days (4 deals)" in cycle.splitlines()
    conv = sales.run(sales.w.dana, metric="stage_conversion", period="last_quarter")
    assert "- Qualification (Sales): 5 entered, 4 moved on (80%), 3 won (60%), 1 lost" in conv
    days = sales.run(sales.w.dana, metric="days_in_stage", period="last_quarter")
    assert (f"- Demo (Sales): average 31.0 days, median 31.0 days (1 stays); longest: ids {ids['Delta']}"
            in days.splitlines())
    stale = sales.run(sales.w.dana, metric="stale_deals")
    assert stale.splitlines() == [
        f"Stale deals, scope {sales.w.west.name} team: 2 open deals with no activity for 14+ days:",
        f"- Golf (Priya Raman, Qualification, 5,000 USD): 30 days since created, no activity (id={ids['Golf']})",
        f"- India (Priya Raman, Demo, 7,000 USD): 14 days since last activity (id={ids['India']})"]
    acts = sales.run(sales.w.priya, metric="activity_counts", period="last_quarter")
    assert acts.splitlines() == ["Activity counts, last quarter (2026-07-01 to 2026-09-30), scope Priya Raman: "
                                 "4 activities",
                                 "- Priya Raman: 4 (2 call, 1 email, 1 meeting)"]
    with pytest.raises(ValidationFailed, match="a custom period needs both start and end dates"):  # told to the model
        sales.run(sales.w.dana, metric="win_rate", start="2026-07-01")


@pytest.mark.parametrize(("text", "args"), [
    ("win rate by source this year?", {"metric": "win_rate", "period": "this_year", "by": "source"}),
    ("what's my win rate last quarter", {"metric": "win_rate", "period": "last_quarter", "scope": "mine"}),
    ("average deal size this quarter", {"metric": "deal_size", "period": "this_quarter"}),
    ("how long is our sales cycle?", {"metric": "sales_cycle", "period": "this_quarter", "scope": "team"}),
    ("stage conversion last month", {"metric": "stage_conversion", "period": "last_month"}),
    ("days in stage for the team", {"metric": "days_in_stage", "period": "this_quarter", "scope": "team"}),
    ("which deals have gone quiet for 30 days?", {"metric": "stale_deals", "period": "this_quarter",
                                                  "days": 30}),
    ("activity counts per rep this month", {"metric": "activity_counts", "period": "this_month"}),
])
def test_the_offline_model_routes_analytics_questions(sales: Sales, text: str, args: dict[str, Any]) -> None:
    from langchain_core.messages import HumanMessage

    from agents.offline.chat import OfflineModel

    ctx = ToolContext(actor=f.actor(sales.w.dana), session=sales.session, now=NOW)
    reply = OfflineModel().respond([HumanMessage(text)], ctx)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("pipeline_analytics", args)]
    answer = TOOLS["pipeline_analytics"].run(ctx, TOOLS["pipeline_analytics"].parse(args))
    assert str(answer).strip()
