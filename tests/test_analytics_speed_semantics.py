"""What the faster analytics rely on: deals.last_activity_at is exactly the latest activity that
targets the deal (after creating, retargeting, moving and deleting activities; as migration 0004
backfills it; as the demo sets it), stale deals read it with the same meaning as the old aggregate,
and the PostgreSQL paths of days in stage and deal size / cycle give the Python paths' figures."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import migrate
from store.db import make_engine
from store.models import Activity, ActivityTarget, Deal
from store.services import analytics, crud, spec_for
from store.services.pipeline import default_scope
from store.services.sales import default_pipeline, stages_of
from tests import factories as f
from tests.conftest import BACKEND
from tests.test_analytics import Q3
from tests.test_analytics import sales as sales  # noqa: F401  (the fixture: test_analytics' generated history)

TODAY = date(2026, 10, 1)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def latest(session: Any, deal_id: Any) -> datetime | None:
    """The old definition: max(occurred_at) over the deal's activity targets."""
    return session.scalar(select(func.max(Activity.occurred_at)).join(
        ActivityTarget, ActivityTarget.activity_id == Activity.id).where(ActivityTarget.deal_id == deal_id))


def kept(session: Any, deal_id: Any) -> datetime | None:
    session.expire_all()
    return session.get(Deal, deal_id).last_activity_at


def test_deal_last_activity_is_kept_exact(session: Any) -> None:
    w = f.world(session)
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    a = f.create(session, w.priya, "deal", name="A", amount="1000", stage_id=stage["Qualification"])
    b = f.create(session, w.priya, "deal", name="B", amount="1000", stage_id=stage["Qualification"])
    updated = a.updated_at
    assert kept(session, a.id) is None

    call = f.create(session, w.priya, "activity", type="call", subject="c", occurred_at=at(8, 1), deal_ids=[a.id])
    assert kept(session, a.id) == latest(session, a.id) == at(8, 1)
    assert session.get(Deal, a.id).updated_at == updated  # a derived column: not an edit of the deal
    email = f.create(session, w.priya, "activity", type="email", subject="e", occurred_at=at(7, 1),
                     deal_ids=[a.id, b.id])
    assert kept(session, a.id) == at(8, 1) and kept(session, b.id) == at(7, 1)

    actor = f.actor(w.priya)
    crud.update(session, spec_for("activity"), actor=actor, id=call.id, data={"occurred_at": at(6, 1)})
    assert kept(session, a.id) == latest(session, a.id) == at(7, 1)  # moved earlier: back to the email
    crud.update(session, spec_for("activity"), actor=actor, id=email.id, data={"deal_ids": [b.id]})
    assert kept(session, a.id) == latest(session, a.id) == at(6, 1)  # untargeted
    assert kept(session, b.id) == at(7, 1)
    crud.delete(session, spec_for("activity"), actor=actor, id=email.id)
    assert kept(session, b.id) is None and latest(session, b.id) is None
    crud.delete(session, spec_for("activity"), actor=actor, id=call.id)
    assert kept(session, a.id) is None


def test_stale_deals_read_the_kept_column(session: Any) -> None:
    w = f.world(session)
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    deals = {}
    for name, created in (("Old", at(6, 1)), ("Quiet", at(6, 1)), ("Busy", at(6, 1)), ("New", at(9, 25)),
                          ("Edge", at(9, 18)), ("Won", at(6, 1))):
        deal = f.create(session, w.priya, "deal", name=name, amount="100",
                        stage_id=stage["Closed Won" if name == "Won" else "Qualification"])
        deal.created_at = created
        deals[name] = deal.id
    session.flush()
    for name, when in (("Quiet", at(8, 1)), ("Busy", at(9, 30)), ("Busy", at(7, 1)), ("Won", at(7, 1))):
        f.create(session, w.priya, "activity", type="call", subject=name, occurred_at=when, deal_ids=[deals[name]])
    actor = f.actor(w.priya)
    stale = analytics.stale_deals(session, actor=actor, scope=default_scope(actor), today=TODAY, days=14)
    # Edge was created Sep 18: 13 whole days before Oct 1, not stale; ties order by id.
    assert stale.total == 2
    assert [(d.name, d.days, d.last_activity) for d in stale.deals] == [("Old", 122, None),
                                                                          ("Quiet", 61, at(8, 1))]
    capped = analytics.stale_deals(session, actor=actor, scope=default_scope(actor), today=TODAY, days=14, cap=1)
    assert capped.total == 2 and [d.name for d in capped.deals] == ["Old"]
    none = analytics.stale_deals(session, actor=actor, scope=default_scope(actor), today=TODAY, days=200)
    assert none.total == 0 and none.deals == []
    counted = analytics.stale_deals(session, actor=actor, scope=default_scope(actor), today=TODAY, days=14, cap=0)
    assert counted.total == 2 and counted.deals == []


def test_exact_day_stats_are_the_python_ones() -> None:
    """The PostgreSQL paths' days (count, exact sum, middle values) against `_days_stats` over the values."""
    rng = random.Random(7)
    checked = 0
    for _ in range(2000):
        us = [rng.choice((rng.randrange(0, 400 * 86400) * 10**6, rng.randrange(-10**9, 400 * 86400 * 10**6)))
              for _ in range(rng.randrange(1, 40))]
        ordered = sorted(max(v, 0) for v in us)
        n = len(ordered)
        exact = analytics.base._exact_days_stats(n, sum(ordered), ordered[(n - 1) // 2:n // 2 + 1])
        if exact is not None:
            checked += 1
            assert exact == analytics.base._days_stats([analytics.base._stay_days(v) for v in us])
    assert checked > 1900
    day = 86400 * 10**6
    assert analytics.base._exact_days_stats(2, day + day * 3 // 2, [day, day * 3 // 2]) is None  # mean 1.25: a tie
    assert analytics.base._exact_days_stats(2, 2 * day, [day, day]) == analytics.DaysStats(2, 1.0, 1.0)


@pytest.mark.skipif(BACKEND != "postgres", reason="the SQL paths run on PostgreSQL only")
def test_sql_paths_give_the_python_paths_figures(sales: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    w = sales.w
    calls = [(who, scope, start, end) for who, scope in ((w.dana, None), (w.admin, "all"), (w.priya, None))
             for start, end in (Q3, (date(2026, 7, 1), date(2026, 7, 31)), (date(2026, 1, 1), date(2026, 12, 31)))]

    def run() -> list[Any]:
        return [(analytics.days_in_stage(sales.session, **sales.kw(who, scope), start=start, end=end, cap=2),
                 analytics.deal_size_and_cycle(sales.session, **sales.kw(who, scope), start=start, end=end))
                for who, scope, start, end in calls]

    in_sql = run()
    monkeypatch.setattr(analytics.stages, "_stay_stats_in_sql", lambda *a, **k: None)
    monkeypatch.setattr(analytics.closed, "_size_cycle_in_sql", lambda *a, **k: None)
    assert run() == in_sql


def test_migration_0004_backfills_deals_last_activity(fresh_database_url: str) -> None:
    engine = make_engine(fresh_database_url)
    try:
        migrate.upgrade(engine)
        with Session(engine) as session:
            w = f.world(session)
            stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
            a, b, quiet = (f.create(session, w.priya, "deal", name=name, amount="10", stage_id=stage["Qualification"])
                           for name in ("A", "B", "Quiet"))
            f.create(session, w.priya, "activity", type="call", subject="1", occurred_at=at(8, 1), deal_ids=[a.id])
            f.create(session, w.priya, "activity", type="call", subject="2", occurred_at=at(9, 2),
                     deal_ids=[a.id, b.id])
            f.create(session, w.priya, "activity", type="call", subject="3", occurred_at=at(7, 3), deal_ids=[b.id])
            ids = {"A": a.id, "B": b.id, "Quiet": quiet.id}
            session.commit()
        migrate.downgrade(engine, "0003")
        migrate.upgrade(engine)
        with Session(engine) as session:
            kept_now = {name: session.scalar(select(Deal.last_activity_at).where(Deal.id == id_))
                        for name, id_ in ids.items()}
        assert kept_now == {"A": at(9, 2), "B": at(9, 2), "Quiet": None}
    finally:
        engine.dispose()


def test_demo_deals_carry_their_last_activity(tmp_path: Any) -> None:
    with f.demo(tmp_path, TODAY) as (session, _):
        deals = session.execute(select(Deal.id, Deal.last_activity_at)).all()
        assert sum(at is not None for _, at in deals) > 10
        assert all(at == latest(session, id_) for id_, at in deals)
