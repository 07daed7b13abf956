"""Win probability on a generated history whose lesson is known in advance.

Every deal sits in Proposal (the stage says 60%) for its 60 days of life. Worked deals get
an activity every 5 days until they close and win 85% of the time; deals that go quiet get
activities only in their first 20 days and lose 85% of the time. Stage alone cannot tell
them apart, so a model that learned anything must beat the stage baseline on the deals it
never saw, and must name the activity as the reason.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from store import ml
from store.errors import NotFound, PermissionDenied
from store.models import Activity, ActivityTarget, Deal, DealHistory, ScoringModel
from store.models.enums import ActivityType, ForecastCategory
from store.services import scoring_models, winprob
from store.services.pipeline import Rep, forecast, rep_scope
from store.services.sales import default_pipeline, stages_of
from tests import factories as f
from tools import TOOLS, ToolContext, error_sentence

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def _deal(session: Any, w: Any, owner: Any, name: str, stage: Any, created: datetime, activity: list[datetime], *,
          closed: tuple[Any, datetime] | None = None, amount: int = 20000, close_date: date | None = None) -> Deal:
    """A deal written as rows: its history (creation, and the close), its activities."""
    final_stage = closed[0] if closed else stage
    deal = Deal(workspace_id=w.ws.id, name=name, pipeline_id=stage.pipeline_id, stage_id=final_stage.id,
                amount=Decimal(amount), currency="USD", owner_id=owner.id, source="inbound",
                close_date=close_date or (closed[1].date() if closed else created.date() + timedelta(days=60)),
                forecast_category=ForecastCategory.pipeline, created_at=created, stage_entered_at=created,
                closed_at=closed[1] if closed else None)
    session.add(deal)
    session.flush()
    first_close = created.date() + timedelta(days=60)
    session.add(DealHistory(workspace_id=w.ws.id, deal_id=deal.id, changed_at=created, stage_id=stage.id,
                            amount=deal.amount, currency="USD", close_date=first_close,
                            forecast_category=ForecastCategory.pipeline, owner_id=owner.id))
    if closed:
        session.add(DealHistory(workspace_id=w.ws.id, deal_id=deal.id, changed_at=closed[1], from_stage_id=stage.id,
                                stage_id=closed[0].id, amount=deal.amount, currency="USD", close_date=closed[1].date(),
                                forecast_category=ForecastCategory.closed, owner_id=owner.id))
    for at in activity:
        act = Activity(workspace_id=w.ws.id, type=ActivityType.call, subject=f"call on {name}", occurred_at=at,
                       owner_id=owner.id)
        session.add(act)
        session.flush()
        session.add(ActivityTarget(workspace_id=w.ws.id, activity_id=act.id, deal_id=deal.id))
    return deal


@pytest.fixture
def history(session: Any) -> Any:
    w = f.world(session)
    stage = {s.name: s for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    rng = random.Random(3)
    start = NOW - timedelta(days=720)
    for i in range(160):
        created = start + timedelta(days=4 * i)
        worked = rng.random() < 0.5
        won = rng.random() < (0.85 if worked else 0.15)
        closes = created + timedelta(days=60)
        acts = [created + timedelta(days=d) for d in range(2, 60 if worked else 20, 5)]
        owner = (w.priya, w.raj, w.eve)[i % 3]
        _deal(session, w, owner, f"Closed {i:03d}", stage["Proposal"], created, acts,
              closed=(stage["Closed Won" if won else "Closed Lost"], closes))
    recent = [NOW - timedelta(days=d) for d in (2, 7, 12, 17, 22, 27, 32, 37)]
    ids = {
        "Active": _deal(session, w, w.priya, "Active", stage["Proposal"], NOW - timedelta(days=40), recent).id,
        "Quiet": _deal(session, w, w.priya, "Quiet", stage["Proposal"], NOW - timedelta(days=40),
                       [NOW - timedelta(days=38), NOW - timedelta(days=33)]).id,
        "Eve's": _deal(session, w, w.eve, "Eve's", stage["Proposal"], NOW - timedelta(days=40), recent).id,
    }
    session.commit()
    return w, ids


def _ctx(session: Any, who: Any) -> ToolContext:
    return ToolContext(actor=f.actor(who), session=session, now=NOW)


def _say(name: str, session: Any, who: Any, **args: Any) -> str:
    """A read tool's answer as the agent gets it: failures become the sentence the model reads."""
    tool = TOOLS[name]
    try:
        return str(tool.run(_ctx(session, who), tool.parse(args)))
    except Exception as exc:  # noqa: BLE001  (exactly what agents/graph.py does)
        return error_sentence(exc)


def test_learns_what_stage_cannot_see_and_beats_the_baseline(session: Any, history: Any) -> None:
    w, ids = history
    row, report = winprob.train(session, workspace_id=w.ws.id, now=NOW)
    h, split, test = report["history"], report["split"], report["test"]
    assert h["closed_deals"] == 160 and h["won"] + h["lost"] == 160
    assert split["learning_deals"] == 120 and split["test_deals"] == 40  # the most recent quarter held out
    assert test["model"]["brier"] < test["baseline"]["brier"] - 0.05
    assert test["model"]["auc"] > 0.8 and test["baseline"]["auc"] == 0.5  # one stage: no ranking at all
    assert report["use_model"] is True and report["verdict"].startswith("in use")
    assert len(report["reliability"]) == 10
    assert sum(r["model_deals"] for r in report["reliability"]) == pytest.approx(40, abs=0.5)
    stored = scoring_models.latest(session, workspace_id=w.ws.id, kind=winprob.KIND)
    assert stored is not None and stored.id == row.id and stored.report == report

    active = winprob.deal_chance(session, actor=f.actor(w.priya), deal_id=ids["Active"], now=NOW)
    quiet = winprob.deal_chance(session, actor=f.actor(w.priya), deal_id=ids["Quiet"], now=NOW)
    assert active is not None and quiet is not None
    assert active.baseline == quiet.baseline == 0.6
    assert active.probability > 0.6 > 0.3 > quiet.probability
    assert any("activit" in r.text and r.effect < 0 for r in quiet.reasons), quiet.reasons
    assert any("activit" in r.text and r.effect > 0 for r in active.reasons), active.reasons

    text = winprob.format_report(report)
    assert "| Brier score (lower is better) |" in text and "| 0.0-0.1 |" in text and "Verdict: in use" in text


def test_retraining_adds_a_model_and_the_newest_is_used(session: Any, history: Any) -> None:
    w, _ = history
    first, _ = winprob.train(session, workspace_id=w.ws.id, now=NOW)
    second, _ = winprob.train(session, workspace_id=w.ws.id, now=NOW + timedelta(days=1))
    count = session.scalar(select(func.count()).select_from(ScoringModel).where(ScoringModel.workspace_id == w.ws.id))
    assert count == 2
    latest = scoring_models.latest(session, workspace_id=w.ws.id, kind=winprob.KIND)
    assert latest is not None and latest.id == second.id != first.id
    assert scoring_models.latest(session, workspace_id=w.other_ws.id, kind=winprob.KIND) is None


def test_permissions_and_scopes(session: Any, history: Any) -> None:
    w, ids = history
    winprob.train(session, workspace_id=w.ws.id, now=NOW)
    with pytest.raises(NotFound):  # Eve's deal, East team: Priya may not read it, nor learn it exists
        winprob.deal_chance(session, actor=f.actor(w.priya), deal_id=ids["Eve's"], now=NOW)
    mine = winprob.scope_chances(session, actor=f.actor(w.priya), scope="mine", now=NOW)
    assert mine is not None and {c.name for c in mine} == {"Active", "Quiet"}
    team = winprob.scope_chances(session, actor=f.actor(w.dana), scope="team", now=NOW)
    assert team is not None and {c.name for c in team} == {"Active", "Quiet"}
    every = winprob.scope_chances(session, actor=f.actor(w.admin), scope="all", now=NOW)
    assert every is not None and {c.name for c in every} == {"Active", "Quiet", "Eve's"}


def test_the_tool_explains_and_says_when_there_is_no_model(session: Any, history: Any) -> None:
    w, ids = history
    tool = TOOLS["win_probability"]
    assert "No win-probability model" in tool.run(_ctx(session, w.priya), tool.parse({"deal_id": str(ids["Quiet"])}))
    winprob.train(session, workspace_id=w.ws.id, now=NOW)
    one = tool.run(_ctx(session, w.priya), tool.parse({"deal_id": str(ids["Quiet"])}))
    assert "Quiet" in one and "its stage alone says 60%" in one and "Top reasons:" in one and "activit" in one
    listing = tool.run(_ctx(session, w.dana), tool.parse({}))
    assert f"scope {w.west.name} team: 2 deals" in listing and "Active: learned" in listing and "Eve's" not in listing
    assert "At risk" in listing and "Quiet" in listing.split("At risk")[1]
    named = tool.run(_ctx(session, w.dana), tool.parse({"rep": "Priya"}))
    assert "scope Priya Raman: 2 deals" in named
    refused = _say("win_probability", session, w.priya, rep="Raj")
    assert refused.startswith("Error:") and "your own numbers" in refused


def test_not_enough_history_says_what_is_needed(session: Any) -> None:
    w = f.world(session)
    stage = {s.name: s for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    for i in range(6):
        created = NOW - timedelta(days=200 - 10 * i)
        _deal(session, w, w.priya, f"D{i}", stage["Discovery"], created, [],
              closed=(stage["Closed Won" if i % 2 else "Closed Lost"], created + timedelta(days=30)))
    with pytest.raises(winprob.NotEnoughHistory, match=r"at least 30 closed deals .* this workspace has 6 \(3 won"):
        winprob.train(session, workspace_id=w.ws.id, now=NOW)


def test_a_model_that_loses_to_the_stage_is_reported_and_not_trusted(session: Any) -> None:
    """Outcomes that are pure chance: nothing to learn, so the model cannot beat the stage baseline;
    it is reported as not used, and the tool answers with the stage's probability."""
    w = f.world(session)
    stage = {s.name: s for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    rng = random.Random(11)
    for i in range(200):
        created = NOW - timedelta(days=700 - 3 * i)
        acts = [created + timedelta(days=rng.randint(1, 50)) for _ in range(rng.randint(0, 6))]
        _deal(session, w, w.priya, f"C{i}", stage["Discovery"], created, sorted(acts), amount=rng.randint(5, 90) * 1000,
              closed=(stage["Closed Won" if rng.random() < 0.3 else "Closed Lost"], created + timedelta(days=55)))
    open_id = _deal(session, w, w.priya, "Open", stage["Discovery"], NOW - timedelta(days=10), []).id
    _, report = winprob.train(session, workspace_id=w.ws.id, now=NOW)
    assert report["use_model"] is False  # seeded: on these 50 held-out deals the model scores worse
    assert report["test"]["model"]["brier"] >= report["test"]["baseline"]["brier"]
    assert report["verdict"].startswith("not used")
    text = TOOLS["win_probability"].run(_ctx(session, w.priya), TOOLS["win_probability"].parse(
        {"deal_id": str(open_id)}))
    assert "Chance to win: 20% (the stage's probability" in text and "the learned model says" in text


def test_named_rep_scope_and_custom_periods_in_the_forecast(session: Any) -> None:
    w = f.world(session)
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    f.create(session, w.priya, "deal", name="P1", amount="10000", stage_id=stage["Proposal"],
             close_date=date(2026, 10, 20), forecast_category="commit")
    f.create(session, w.raj, "deal", name="R1", amount="40000", stage_id=stage["Proposal"],
             close_date=date(2026, 10, 25), forecast_category="commit")
    f.create(session, w.priya, "deal", name="P2", amount="5000", stage_id=stage["Demo"],
             close_date=date(2026, 12, 5), forecast_category="best_case")
    session.commit()
    dana = f.actor(w.dana)
    priya_scope = rep_scope(session, actor=dana, user_id=w.priya.id)
    assert priya_scope == Rep(w.priya.id, "Priya Raman") and str(priya_scope) == "Priya Raman"
    named = forecast(session, actor=dana, scope=priya_scope, start=date(2026, 10, 1), end=date(2026, 10, 31))
    own = forecast(session, actor=f.actor(w.priya), scope="mine", start=date(2026, 10, 1), end=date(2026, 10, 31))
    assert named.commit == own.commit == {"USD": Decimal("10000.00")}
    with pytest.raises(PermissionDenied, match="your own numbers"):
        rep_scope(session, actor=f.actor(w.priya), user_id=w.raj.id)
    with pytest.raises(PermissionDenied, match="not in your team"):
        rep_scope(session, actor=dana, user_id=w.eve.id)
    assert rep_scope(session, actor=f.actor(w.admin), user_id=w.eve.id).name == "Eve East"

    tool = TOOLS["forecast_summary"]
    text = tool.run(_ctx(session, w.dana), tool.parse({"rep": "priya", "start": "2026-10-15", "end": "2026-12-31"}))
    assert text.startswith("Forecast 2026-10-15 to 2026-12-31, scope Priya Raman:")
    assert "- commit: 10,000 USD" in text and "- best case: 5,000 USD" in text and "R1" not in text
    assert "the period ends" in _say("forecast_summary", session, w.dana, start="2026-12-01", end="2026-11-01")
    assert "both start and end" in _say("forecast_summary", session, w.dana, start="2026-12-01")
    unknown = _say("forecast_summary", session, w.dana, rep="Zed")
    assert unknown.startswith("Error:") and "nobody called 'Zed'" in unknown
    year = tool.run(_ctx(session, w.dana), tool.parse({"period": "this_year"}))
    assert year.startswith(f"Forecast this year (2026-01-01 to 2026-12-31), scope {w.west.name} team:")


def test_logistic_model_recovers_known_weights_and_explains_exactly() -> None:
    rng = np.random.default_rng(0)
    examples, labels = [], []
    for _ in range(5000):
        a, group = rng.normal(), rng.choice(["x", "y"])
        logit = -0.5 + 1.5 * a + (1.0 if group == "y" else 0.0)
        examples.append({"a": a, f"g={group}": 1.0})
        labels.append(int(rng.random() < 1 / (1 + np.exp(-logit))))
    model = ml.LogisticModel.fit(examples, labels, l2=0.01)
    raw = dict(zip(model.features, np.array(model.coef) / np.array(model.scale), strict=True))
    assert raw["a"] == pytest.approx(1.5, abs=0.1)
    assert raw["g=y"] - raw["g=x"] == pytest.approx(1.0, abs=0.15)
    p = model.predict(examples[:1])[0]
    parts = model.explain(examples[0])
    assert model.intercept + sum(c.logit for c in parts) == pytest.approx(np.log(p / (1 - p)))
    again = ml.LogisticModel.from_dict(model.to_dict())
    assert np.allclose(again.predict(examples[:50]), model.predict(examples[:50]))
    with pytest.raises(ValueError, match="both outcomes"):
        ml.LogisticModel.fit([{"a": 1.0}], [1])


def test_calibration_measures_on_hand_computed_cases() -> None:
    assert ml.brier([0.5, 0.5], [0, 1]) == 0.25
    assert ml.brier([1.0, 0.0], [1, 0]) == 0.0
    assert ml.brier([0.8, 0.2], [1, 1], weights=[3, 1]) == pytest.approx((3 * 0.04 + 0.64) / 4)
    assert ml.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert ml.auc([0.5, 0.5], [0, 1]) == 0.5 and ml.auc([0.3], [1]) is None
    table = ml.reliability([0.05, 0.15, 0.15, 0.95], [0, 1, 0, 1], bins=10)
    assert [(b.examples, b.predicted, b.observed) for b in table if b.examples] == [
        (1, 0.05, 0.0), (2, 0.15, 0.5), (1, 0.95, 1.0)]
    assert ml.expected_calibration_error(table) == pytest.approx((0.05 + 2 * 0.35 + 0.05) / 4)


def test_a_named_manager_means_their_team(session: Any) -> None:
    w = f.world(session)
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    f.create(session, w.priya, "deal", name="P1", amount="10000", stage_id=stage["Proposal"],
             close_date=date(2026, 10, 20), forecast_category="commit")
    f.create(session, w.raj, "deal", name="R1", amount="40000", stage_id=stage["Proposal"],
             close_date=date(2026, 10, 25), forecast_category="commit")
    f.create(session, w.eve, "deal", name="E1", amount="7000", stage_id=stage["Proposal"],
             close_date=date(2026, 10, 25), forecast_category="commit")
    session.commit()
    text = _say("forecast_summary", session, w.admin, rep="Dana", period="this_month")
    assert "scope Dana Manager's team:" in text and "- commit: 50,000 USD" in text and "E1" not in text
    assert _say("forecast_summary", session, w.dana, rep="Dana", period="this_month") == _say(
        "forecast_summary", session, w.dana, scope="team", period="this_month").replace(
        f"scope {w.west.name} team", "scope Dana Manager's team")
