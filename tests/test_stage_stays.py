"""Deal stage stays (deal_stage_stays): derived from the deal history and kept exact through every
way the history changes (the deal service, history rows restamped or deleted, an owner change, a
stage reordered or turned into another kind, a deal deleted), backfilled by migration 0006.

The reference here is computed in Python from the history rows, by the definition in
store/services/stage_stays.py, not by the SQL that fills the table."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import migrate
from store.db import make_engine
from store.models import Deal, DealHistory, DealStageStay, Stage
from store.models.enums import StageKind
from store.services import crud, spec_for, stage_stays
from store.services.sales import default_pipeline, stages_of
from tests import factories as f

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
Stay = tuple[Any, ...]


def expected(session: Session, workspace_id: uuid.UUID) -> dict[uuid.UUID, Stay]:
    """The stays by definition, from the history rows, the stages and the deals' owners."""
    stages = {s.id: s for s in session.scalars(select(Stage).where(Stage.workspace_id == workspace_id))}
    owners = dict(session.execute(select(Deal.id, Deal.owner_id).where(Deal.workspace_id == workspace_id)).all())
    by_deal: dict[uuid.UUID, list[DealHistory]] = {}
    for row in session.scalars(select(DealHistory).where(DealHistory.workspace_id == workspace_id)):
        by_deal.setdefault(row.deal_id, []).append(row)
    out: dict[uuid.UUID, Stay] = {}
    for deal_id, rows in by_deal.items():
        rows.sort(key=lambda r: (r.changed_at, r.id))
        entries = [r for i, r in enumerate(rows) if i == 0 or r.from_stage_id is not None]
        for i, entry in enumerate(entries):
            later = [stages[r.stage_id] for r in rows if r.changed_at > entry.changed_at]
            before_same = [e.changed_at for e in entries[:i] if e.stage_id == entry.stage_id]
            open_later = [s.position for s in later if s.kind == StageKind.open]
            out[entry.id] = (deal_id, owners[deal_id], entry.stage_id, entry.changed_at,
                             entries[i + 1].changed_at if i + 1 < len(entries) else None,
                             before_same[-1] if before_same else None,
                             any(s.kind == StageKind.won for s in later), any(s.kind == StageKind.lost for s in later),
                             max(open_later) if open_later else None)
    return out


def stored(session: Session, workspace_id: uuid.UUID) -> dict[uuid.UUID, Stay]:
    s = DealStageStay
    return {r.history_id: (r.deal_id, r.owner_id, r.stage_id, r.entered_at, r.left_at, r.prev_entered_at,
                           r.won_later, r.lost_later, r.top_open_later)
            for r in session.scalars(select(s).where(s.workspace_id == workspace_id))}


def test_stays_follow_every_kind_of_history_change(session: Session) -> None:
    rng = random.Random(20261124)
    w = f.world(session)
    pipeline = default_pipeline(session, w.ws.id)
    stages = list(stages_of(session, pipeline.id))
    admin = f.actor(w.admin)
    owners = [w.priya.id, w.raj.id, w.eve.id, None]
    deals: list[uuid.UUID] = []
    moments = [T0 + timedelta(days=d) for d in range(0, 120, 3)]  # few distinct moments: ties happen

    def restamp(deal_id: uuid.UUID) -> None:
        """Give the deal's newest history row (the service stamps the wall clock) a moment of its own."""
        session.flush()
        row = session.scalars(select(DealHistory).where(DealHistory.deal_id == deal_id)
                              .order_by(DealHistory.changed_at.desc(), DealHistory.id.desc())).first()
        assert row is not None
        row.changed_at = rng.choice(moments)
        session.flush()

    for step in range(120):
        op = rng.random()
        if op < 0.2 or len(deals) < 3:
            deal = crud.create(session, spec_for("deal"), actor=admin, data={
                "name": f"Deal {step}", "amount": "1000", "owner_id": rng.choice(owners),
                "stage_id": rng.choice(stages).id})
            deals.append(deal.id)
            restamp(deal.id)
        elif op < 0.7:  # a stage move (forward, back, won, lost, re-opened)
            deal_id = rng.choice(deals)
            crud.update(session, spec_for("deal"), actor=admin, id=deal_id, data={"stage_id": rng.choice(stages).id})
            restamp(deal_id)
        elif op < 0.8:  # a change that is not a move, and an owner change
            deal_id = rng.choice(deals)
            crud.update(session, spec_for("deal"), actor=admin, id=deal_id,
                        data=rng.choice([{"amount": str(rng.randint(1, 90) * 1000)}, {"owner_id": rng.choice(owners)}]))
            restamp(deal_id)
        elif op < 0.83:  # an owner set on the row directly, without a history row (a bulk reassignment)
            deal = session.get(Deal, rng.choice(deals))
            assert deal is not None
            deal.owner_id = rng.choice(owners)
            session.flush()
        elif op < 0.87:  # a history row deleted by hand
            rows = session.scalars(select(DealHistory).where(DealHistory.deal_id == rng.choice(deals))).all()
            if len(rows) > 1:
                session.delete(rng.choice(rows))
                session.flush()
        elif op < 0.93:  # a stage reordered, or an open stage turned into another kind and back
            stage = rng.choice(stages)
            if rng.random() < 0.5:
                crud.update(session, spec_for("stage"), actor=admin, id=stage.id,
                            data={"position": rng.randint(0, 20)})
            else:
                was = stage.kind
                stage.kind = rng.choice([k for k in StageKind if k != was])
                session.flush()
                assert stored(session, w.ws.id) == expected(session, w.ws.id), f"kind changed at step {step}"
                stage.kind = was
                session.flush()
        else:
            gone = deals.pop(rng.randrange(len(deals)))
            crud.delete(session, spec_for("deal"), actor=admin, id=gone)
            session.flush()
        if step % 10 == 9:
            assert stored(session, w.ws.id) == expected(session, w.ws.id), f"after step {step}"
    session.commit()
    want = expected(session, w.ws.id)
    assert stored(session, w.ws.id) == want
    # the run produced the cases that matter
    stays = list(want.values())
    assert any(s[4] is None for s in stays) and any(s[5] is not None for s in stays)  # still there; re-entered
    assert any(s[6] for s in stays) and any(s[7] for s in stays) and any(s[1] is None for s in stays)
    assert not stored(session, w.other_ws.id)


def test_rebuild_recomputes_a_workspace_from_its_history(session: Session) -> None:
    w = f.world(session)
    stages = list(stages_of(session, default_pipeline(session, w.ws.id).id))
    deal = f.create(session, w.priya, "deal", name="Rebuilt", amount="5000", stage_id=stages[0].id)
    crud.update(session, spec_for("deal"), actor=f.actor(w.priya), id=deal.id, data={"stage_id": stages[2].id})
    session.flush()
    want = expected(session, w.ws.id)
    assert len(want) == 2
    stage_stays.rebuild(session.connection(), w.ws.id)
    assert stored(session, w.ws.id) == want
    stage_stays.rebuild(session.connection())  # every workspace
    assert stored(session, w.ws.id) == want


def test_migration_0006_backfills_the_stays(fresh_database_url: str) -> None:
    engine = make_engine(fresh_database_url)
    try:
        migrate.upgrade(engine)
        with Session(engine) as session:
            w = f.world(session)
            stages = list(stages_of(session, default_pipeline(session, w.ws.id).id))
            rng = random.Random(6)
            for i in range(8):
                deal = f.create(session, w.admin, "deal", name=f"Backfill {i}", stage_id=stages[0].id,
                                owner_id=rng.choice([w.priya.id, w.raj.id]))
                for _ in range(rng.randint(0, 4)):
                    crud.update(session, spec_for("deal"), actor=f.actor(w.admin), id=deal.id,
                                data={"stage_id": rng.choice(stages).id})
            ws_id = w.ws.id
            want = expected(session, ws_id)
            session.commit()
        assert len(want) > 8
        migrate.downgrade(engine, "0005")  # the table goes...
        migrate.upgrade(engine)  # ...and comes back filled from the history
        with Session(engine) as session:
            assert stored(session, ws_id) == want
    finally:
        engine.dispose()


def test_the_stays_an_actor_sees_are_those_of_the_deals_they_see(session: Session) -> None:
    """The analytics filter stays by the deal owner kept on them; that must be exactly the deals'
    own permission and scope filter (`pipeline.scoped_deals`), for every actor and scope."""
    from store.services.analytics.stages import _stays
    from store.services.pipeline import scoped_deals

    w = f.world(session)
    stages = list(stages_of(session, default_pipeline(session, w.ws.id).id))
    for i, owner in enumerate([w.priya, w.raj, w.dana, w.eve, w.admin, None]):
        deal = f.create(session, w.admin, "deal", name=f"Seen {i}", stage_id=stages[0].id,
                        owner_id=owner.id if owner else None)
        crud.update(session, spec_for("deal"), actor=f.actor(w.admin), id=deal.id, data={"stage_id": stages[1].id})
    session.flush()
    for user in (w.priya, w.raj, w.dana, w.eve, w.admin, w.other_admin):
        actor = f.actor(user)
        for scope in ("mine", "team", "all"):
            if scope == "mine" and actor.user_id is None:
                continue
            seen = set(session.scalars(_stays(actor, scope).with_only_columns(DealStageStay.deal_id)))
            deals = set(session.scalars(scoped_deals(actor, scope).with_only_columns(Deal.id)))
            assert seen == deals, (user.name, scope)


def test_the_demo_fills_the_stays(tmp_path: Any) -> None:
    """The demo writes its deal history with the ORM directly, not through the deal service."""
    with f.demo(tmp_path, datetime(2026, 10, 1).date()) as (session, workspace):
        want = expected(session, workspace.id)
        assert len(want) > 100
        assert stored(session, workspace.id) == want
