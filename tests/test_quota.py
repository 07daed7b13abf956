"""Quota attainment in the forecast: whose quota counts for a scope, prorated to the period."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from store.models.enums import Surface
from store.services import pipeline
from store.services.sales import default_pipeline, stages_of
from tests import factories as f
from tools import TOOLS, ToolContext

Q4 = (date(2026, 10, 1), date(2026, 12, 31))


@pytest.fixture
def team(session):  # type: ignore[no-untyped-def]
    w = f.world(session)
    w.priya.quota, w.raj.quota, w.eve.quota = Decimal("300000"), Decimal("150000"), Decimal("999000")
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    f.create(session, w.priya, "deal", name="Kestrel – Renewal", amount=Decimal("90000"), stage_id=stage["Closed Won"],
             close_date=date(2026, 11, 10))
    f.create(session, w.priya, "deal", name="Borealis – Fleet", amount=Decimal("60000"), close_date=date(2026, 12, 15),
             forecast_category="commit")
    f.create(session, w.raj, "deal", name="Orca – Cold Chain", amount=Decimal("45000"), stage_id=stage["Closed Won"],
             close_date=date(2026, 10, 20))
    session.commit()
    return w


def quota(session, who, scope, start, end):  # type: ignore[no-untyped-def]
    return pipeline.quota(session, actor=f.actor(who), scope=scope, start=start, end=end)


def test_whose_quota_counts_for_each_scope(session, team) -> None:
    assert quota(session, team.priya, "mine", *Q4) == Decimal("300000.00")
    assert quota(session, team.dana, "team", *Q4) == Decimal("450000.00")  # Priya + Raj; Dana has none
    assert quota(session, team.admin, "all", *Q4) == Decimal("1449000.00")  # both teams
    assert quota(session, team.priya, "all", *Q4) is None  # a rep's "all" is not one set of people
    assert quota(session, team.admin, "mine", *Q4) is None  # no quota of her own


def test_quota_is_prorated_to_the_period(session, team) -> None:
    assert quota(session, team.priya, "mine", date(2026, 11, 1), date(2026, 11, 30)) == Decimal("100000.00")
    assert quota(session, team.priya, "mine", date(2026, 1, 1), date(2026, 12, 31)) == Decimal("1200000.00")
    half_month = quota(session, team.priya, "mine", date(2026, 11, 1), date(2026, 11, 15))
    assert half_month == (Decimal(300000) * 15 / Decimal("91.3125")).quantize(Decimal("0.01"))


def test_the_forecast_answer_gives_attainment_against_quota(session, team) -> None:
    fc = pipeline.forecast(session, actor=f.actor(team.dana), scope="team", start=Q4[0], end=Q4[1])
    assert (fc.quota, fc.quota_currency) == (Decimal("450000.00"), "USD")
    ctx = ToolContext(actor=f.actor(team.priya, Surface.agent), session=session)
    ctx.now = ctx.now.replace(year=2026, month=11, day=23)
    text = str(TOOLS["forecast_summary"].run(ctx, TOOLS["forecast_summary"].parse({"period": "this_quarter"})))
    # Priya: 90k won of a 300k quota; with the 60k commit, 150k.
    assert "- quota: 300,000 USD; attainment 30% (closed won), 50% with commit" in text
