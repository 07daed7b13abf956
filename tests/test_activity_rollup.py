"""The daily activity rollup (activity_day_counts): kept exact by every activity write through the
crud service, backfilled by migration 0005, refilled by `rebuild` (and the demo), and read by
`activity_rollup.counts` (so analytics.activity_counts) with the same answers as a plain GROUP BY of
the activities, in any time zone and scope."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store import migrate
from store.actor import Actor
from store.db import make_engine
from store.models import Activity, ActivityDayCount, User
from store.models.enums import ActivityType
from store.services import activity_rollup, analytics, crud, spec_for
from store.services.pipeline import Scope, owner_in_scope
from tests import factories as f

TYPES = [t.value for t in ActivityType]
LISBON, KOLKATA = ZoneInfo("Europe/Lisbon"), ZoneInfo("Asia/Kolkata")

Cells = dict[tuple[date, uuid.UUID | None, str], int]


def rollup(session: Any, workspace_id: uuid.UUID) -> Cells:
    """The rollup's cells (rows of a cell summed; cells of 0 left out)."""
    t = ActivityDayCount
    rows = session.execute(select(t.day, t.owner_id, t.type, func.sum(t.n)).where(t.workspace_id == workspace_id)
                           .group_by(t.day, t.owner_id, t.type)).all()
    return {(d, o, str(ty)): int(n) for d, o, ty, n in rows if n}


def truth(session: Any, workspace_id: uuid.UUID) -> Cells:
    """The same cells counted from the activities themselves."""
    rows = session.execute(select(Activity.occurred_at, Activity.owner_id, Activity.type)
                           .where(Activity.workspace_id == workspace_id)).all()
    return dict(Counter((at.astimezone(UTC).date(), o, str(ty)) for at, o, ty in rows))


def group_by_activity_counts(session: Session, *, actor: Actor, scope: Scope, start: date, end: date,
                             tz: tzinfo = UTC) -> list[analytics.RepActivity]:
    """The reference: what analytics.activity_counts computed before the rollup, a plain GROUP BY of
    the activities the actor may read in the scope."""
    lo, hi = analytics.base._bounds(start, end, tz)
    acts = (crud.readable(spec_for("activity"), actor).where(owner_in_scope(actor, scope, Activity.owner_id))
            .where(Activity.occurred_at >= lo, Activity.occurred_at < hi).subquery())
    rows = session.execute(select(acts.c.owner_id, User.name, acts.c.type, func.count(acts.c.id)).select_from(acts)
                           .outerjoin(User, User.id == acts.c.owner_id)
                           .group_by(acts.c.owner_id, User.name, acts.c.type)).all()
    reps: dict[uuid.UUID | None, analytics.RepActivity] = {}
    for owner_id, name, type_, count in rows:
        rep = reps.setdefault(owner_id, analytics.RepActivity(owner_id, name or "Unassigned"))
        rep.total += count
        rep.by_type[str(type_)] = count
    return sorted(reps.values(), key=lambda r: (-r.total, r.owner.lower()))


def _near_midnight(rng: random.Random, day: date) -> datetime:
    """An instant within two hours of a UTC midnight, or anywhere in the day."""
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if rng.random() < 0.6:
        return base + timedelta(minutes=rng.choice([-1, 1]) * rng.randint(0, 120))
    return base + timedelta(seconds=rng.randrange(86400))


def test_rollup_is_kept_exact_through_the_crud_service(session: Any) -> None:
    rng = random.Random(20261125)
    w = f.world(session)
    admin, priya = f.actor(w.admin), f.actor(w.priya)
    company = f.create(session, w.admin, "company", name="Rollup Co", owner_id=None)  # all may see it
    owners = [w.priya.id, w.raj.id, w.dana.id, w.eve.id, w.admin.id, None]
    days = [date(2026, 3, 28) + timedelta(days=i) for i in range(4)]
    spec = spec_for("activity")
    live: list[uuid.UUID] = []
    for step in range(160):
        op = rng.random()
        if op < 0.45 or not live:
            at = _near_midnight(rng, rng.choice(days))
            if rng.random() < 0.3:  # given in another zone: the UTC day is what counts
                at = at.astimezone(rng.choice([LISBON, KOLKATA]))
            who, data = admin, {"owner_id": rng.choice(owners)}
            if rng.random() < 0.2:
                who, data = priya, {}  # the default owner: the actor
            act = crud.create(session, spec, actor=who, data=data | {
                "type": rng.choice(TYPES), "subject": f"a{step}", "occurred_at": at, "company_ids": [company.id]})
            live.append(act.id)
        elif op < 0.85:
            change: dict[str, Any] = {}
            for key in rng.sample(["owner_id", "type", "occurred_at", "subject"], rng.randint(1, 3)):
                change[key] = {"owner_id": lambda: rng.choice(owners), "type": lambda: rng.choice(TYPES),
                               "occurred_at": lambda: _near_midnight(rng, rng.choice(days)),
                               "subject": lambda: f"edited {rng.random()}"}[key]()
            crud.update(session, spec, actor=admin, id=rng.choice(live), data=change)
        else:
            gone = live.pop(rng.randrange(len(live)))
            crud.delete(session, spec, actor=admin, id=gone)
        if step % 40 == 39:
            assert rollup(session, w.ws.id) == truth(session, w.ws.id), f"after step {step}"
    session.commit()
    assert rollup(session, w.ws.id) == truth(session, w.ws.id)
    assert len(live) > 20 and sum(truth(session, w.ws.id).values()) == len(live)
    assert any(o is None for _, o, _ in truth(session, w.ws.id))  # NULL owners are counted too


def test_moving_an_activity_across_midnight_moves_its_count(session: Any) -> None:
    w = f.world(session)
    company = f.create(session, w.priya, "company", name="Midnight Co")
    act = f.create(session, w.priya, "activity", type="call", subject="late",
                   occurred_at=datetime(2026, 5, 1, 23, 59, tzinfo=UTC), company_ids=[company.id])
    assert rollup(session, w.ws.id) == {(date(2026, 5, 1), w.priya.id, "call"): 1}
    crud.update(session, spec_for("activity"), actor=f.actor(w.priya), id=act.id,
                data={"occurred_at": datetime(2026, 5, 2, 0, 1, tzinfo=UTC)})
    assert rollup(session, w.ws.id) == {(date(2026, 5, 2), w.priya.id, "call"): 1}
    crud.update(session, spec_for("activity"), actor=f.actor(w.priya), id=act.id,  # same UTC day: no write
                data={"occurred_at": datetime(2026, 5, 2, 5, 0, tzinfo=KOLKATA)})  # 2026-05-01 23:30 UTC
    assert rollup(session, w.ws.id) == {(date(2026, 5, 1), w.priya.id, "call"): 1}
    crud.delete(session, spec_for("activity"), actor=f.actor(w.priya), id=act.id)
    assert rollup(session, w.ws.id) == {}


@pytest.fixture
def year(session: Any) -> Any:
    """A year of activities for every owner (and none), through the crud service."""
    rng = random.Random(7)
    w = f.world(session)
    company = f.create(session, w.admin, "company", name="Year Co")
    other_company = f.create(session, w.other_admin, "company", name="Elsewhere")
    owners = [w.priya.id, w.raj.id, w.dana.id, w.eve.id, w.admin.id, None]
    # DST changes in Lisbon (Mar 29, Oct 25) and the period edges get extra activities near midnight
    edges = [date(2026, 3, 29), date(2026, 10, 25), date(2026, 3, 1), date(2026, 4, 1), date(2026, 2, 1),
             date(2026, 6, 15), date(2026, 6, 16), date(2026, 1, 1), date(2027, 1, 1)]
    for i in range(240):
        if i % 3:
            at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(365 * 86400))
        else:
            at = _near_midnight(rng, rng.choice(edges)) + timedelta(minutes=rng.choice([0, 30, -30, 330, -330]))
        f.create(session, w.admin, "activity", type=rng.choice(TYPES), subject=f"y{i}", occurred_at=at,
                 owner_id=rng.choice(owners), company_ids=[company.id])
    f.create(session, w.other_admin, "activity", type="call", subject="not ours",
             occurred_at=datetime(2026, 6, 15, 12, tzinfo=UTC), company_ids=[other_company.id])
    session.commit()
    return w


PERIODS = [
    (UTC, date(2026, 1, 1), date(2026, 12, 31)),
    (UTC, date(2026, 6, 15), date(2026, 6, 15)),
    (LISBON, date(2026, 3, 1), date(2026, 4, 30)),  # WET -> WEST on Mar 29
    (LISBON, date(2026, 10, 1), date(2026, 12, 31)),  # WEST -> WET on Oct 25
    (LISBON, date(2026, 3, 29), date(2026, 3, 29)),  # a 23-hour day
    (KOLKATA, date(2026, 2, 1), date(2026, 3, 31)),  # +5:30: partial UTC days at both ends
    (KOLKATA, date(2026, 6, 15), date(2026, 6, 15)),  # one day: no whole UTC day inside
    (KOLKATA, date(2026, 1, 1), date(2026, 12, 31)),
]


@pytest.mark.parametrize("tz,start,end", PERIODS, ids=[f"{tz}-{s}-{e}" for tz, s, e in PERIODS])
def test_counts_equal_the_plain_group_by(session: Any, year: Any, tz: tzinfo, start: date, end: date) -> None:
    w = year
    checked = 0
    for user in (w.priya, w.dana, w.admin):
        actor = f.actor(user)
        for scope in ("mine", "team", "all"):
            old = group_by_activity_counts(session, actor=actor, scope=scope, start=start, end=end, tz=tz)
            new = analytics.activity_counts(session, actor=actor, scope=scope, start=start, end=end, tz=tz)
            assert new == old, (user.name, scope)
            checked += sum(r.total for r in old)
    assert checked > 0


def test_counts_without_a_filter_is_the_workspace_group_by(session: Any, year: Any) -> None:
    w = year
    for tz, start, end in PERIODS:
        lo, hi = analytics.base._bounds(start, end, tz)
        got = {(o, str(t)): n for o, t, n in activity_rollup.counts(session, workspace_id=w.ws.id, lo=lo, hi=hi)}
        rows = session.execute(select(Activity.owner_id, Activity.type, func.count())
                               .where(Activity.workspace_id == w.ws.id, Activity.occurred_at >= lo,
                                      Activity.occurred_at < hi).group_by(Activity.owner_id, Activity.type)).all()
        assert got == {(o, str(t)): n for o, t, n in rows}
    # an empty period, and one that starts after it ends, count nothing
    at = datetime(2026, 6, 15, 12, tzinfo=UTC)
    assert activity_rollup.counts(session, workspace_id=w.ws.id, lo=at, hi=at) == []
    assert activity_rollup.counts(session, workspace_id=w.ws.id, lo=at, hi=at - timedelta(days=3)) == []


def test_groups_that_sum_to_zero_are_left_out(session: Any) -> None:
    w = f.world(session)
    company = f.create(session, w.priya, "company", name="Zero Co")
    act = f.create(session, w.priya, "activity", type="sms", subject="x",
                   occurred_at=datetime(2026, 7, 1, 9, tzinfo=UTC), company_ids=[company.id])
    crud.delete(session, spec_for("activity"), actor=f.actor(w.priya), id=act.id)
    assert session.scalar(select(func.count()).select_from(ActivityDayCount)
                          .where(ActivityDayCount.workspace_id == w.ws.id)) == 1  # a row of 0 stays
    assert activity_rollup.counts(session, workspace_id=w.ws.id, lo=datetime(2026, 1, 1, tzinfo=UTC),
                                  hi=datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_rebuild_refills_one_workspace_or_all(session: Any, year: Any) -> None:
    w = year
    expected, other = truth(session, w.ws.id), truth(session, w.other_ws.id)
    session.execute(delete(ActivityDayCount).where(ActivityDayCount.workspace_id == w.ws.id))
    session.add(ActivityDayCount(workspace_id=w.ws.id, day=date(2026, 1, 1), owner_id=None,
                                 type=ActivityType.note, n=5))  # wrong, and must go
    session.flush()
    assert activity_rollup.rebuild(session, w.ws.id) == len(expected)
    assert rollup(session, w.ws.id) == expected
    assert rollup(session, w.other_ws.id) == other
    assert activity_rollup.rebuild(session) >= len(expected) + len(other)
    assert rollup(session, w.ws.id) == expected and rollup(session, w.other_ws.id) == other
    # rebuilt rows take upserts like any others
    company = f.create(session, w.admin, "company", name="After Co", owner_id=None)
    f.create(session, w.priya, "activity", type="call", subject="after",
             occurred_at=datetime(2026, 6, 15, 1, tzinfo=UTC), company_ids=[company.id])
    f.create(session, w.admin, "activity", type="call", subject="after", owner_id=None,
             occurred_at=datetime(2026, 6, 15, 1, tzinfo=UTC), company_ids=[company.id])
    assert rollup(session, w.ws.id) == truth(session, w.ws.id)


def test_migration_0005_backfills_the_rollup(fresh_database_url: str) -> None:
    engine = make_engine(fresh_database_url)
    try:
        migrate.upgrade(engine)
        with Session(engine) as session:
            w = f.world(session)
            company = f.create(session, w.admin, "company", name="Backfill Co")
            rng = random.Random(5)
            for i in range(40):
                f.create(session, w.admin, "activity", type=rng.choice(TYPES), subject=f"b{i}",
                         owner_id=rng.choice([w.priya.id, w.eve.id, None]), company_ids=[company.id],
                         occurred_at=_near_midnight(rng, date(2026, 4, 1) + timedelta(days=rng.randrange(3))))
            ws_id = w.ws.id
            expected = truth(session, ws_id)
            session.commit()
        migrate.downgrade(engine, "0004")  # the table goes...
        migrate.upgrade(engine)  # ...and comes back filled from the activities
        with Session(engine) as session:
            assert rollup(session, ws_id) == expected
            assert sum(expected.values()) == 40
            # one row per cell, with the key the upsert needs: a new activity adds to its cell
            n_rows = session.scalar(select(func.count()).select_from(ActivityDayCount))
            assert n_rows == len(expected)
            day, owner, type_ = next(k for k in expected if k[1] is not None)
            activity_rollup.count_activity(session, ws_id, owner, type_, datetime.combine(day, time(12), UTC), 1)
            assert session.scalar(select(func.count()).select_from(ActivityDayCount)) == n_rows
            assert rollup(session, ws_id)[(day, owner, type_)] == expected[(day, owner, type_)] + 1
    finally:
        engine.dispose()


def test_the_demo_fills_the_rollup(tmp_path: Any) -> None:
    with f.demo(tmp_path, date(2026, 10, 1)) as (session, workspace):
        expected = truth(session, workspace.id)
        assert sum(expected.values()) > 50
        assert rollup(session, workspace.id) == expected
