"""The demo workspace: believable (the numbers say something) and deterministic."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from store.db import make_engine
from store.demo import DemoSummary, seed_demo
from store.models import (
    Activity,
    ActivityTarget,
    Base,
    Company,
    Contact,
    Deal,
    DealContact,
    DealHistory,
    Quote,
    QuoteLineItem,
    Stage,
    Task,
    Team,
    User,
    Workspace,
)
from store.models.enums import DealContactRole, ForecastCategory, Role, StageKind, TaskStatus

TODAY = date(2025, 10, 14)  # a Tuesday
NOW = datetime(2025, 10, 14, tzinfo=UTC)


def _engine(path: Path) -> Engine:
    engine = make_engine("sqlite:///" + str(path))
    Base.metadata.create_all(engine)
    return engine


def _seed(engine: Engine, **kwargs: object) -> DemoSummary:
    with Session(engine) as session:
        workspace = Workspace(name="Demo", slug="demo")
        session.add(workspace)
        session.flush()
        summary = seed_demo(session, workspace=workspace, **kwargs)  # type: ignore[arg-type]
        session.commit()
    return summary


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, DemoSummary]:
    engine = _engine(tmp_path_factory.mktemp("demo") / "d.db")
    summary = _seed(engine, seed=7, today=TODAY)
    yield engine, summary
    engine.dispose()


@pytest.fixture
def session(demo: tuple[Engine, DemoSummary]) -> Session:
    with Session(demo[0]) as s:
        yield s


def _stages(session: Session) -> dict[uuid.UUID, Stage]:
    return {s.id: s for s in session.scalars(select(Stage))}


def test_summary_counts_match_the_tables(demo: tuple[Engine, DemoSummary], session: Session) -> None:
    _, summary = demo
    assert summary.counts["companies"] == 300
    assert summary.counts["deals"] == session.scalar(select(func.count()).select_from(Deal))
    assert summary.counts["activities"] >= 2000
    assert ("priya@demo.agentcrm.dev", "Priya Raman", "rep") in summary.users
    workspace = session.get(Workspace, summary.workspace_id)
    assert workspace is not None and workspace.own_domains == ["demo.agentcrm.dev"]


def test_every_row_belongs_to_the_workspace(demo: tuple[Engine, DemoSummary], session: Session) -> None:
    ws = demo[1].workspace_id
    for model in (Company, Contact, Deal, DealHistory, DealContact, Activity, ActivityTarget, Task, Quote):
        other = session.scalar(select(func.count()).select_from(model).where(model.workspace_id != ws))
        assert other == 0, model.__name__


def test_team_with_manager_and_reps(session: Session) -> None:
    users = session.scalars(select(User)).all()
    teams = {t.id: t.name for t in session.scalars(select(Team))}
    by_team: dict[str, list[User]] = defaultdict(list)
    for u in users:
        by_team[teams.get(u.team_id, "")].append(u)
    west = by_team["West"]
    assert [u.name for u in west if u.role == Role.manager] == ["Dana Whitfield"]
    reps = [u for u in west if u.role == Role.rep]
    assert len(reps) >= 3 and "Priya Raman" in {u.name for u in reps}
    assert all(u.quota and u.quota > 0 and u.timezone != "UTC" for u in reps)
    assert any(u.role == Role.admin and u.email == "sam@demo.agentcrm.dev" for u in users)
    assert len([t for t in by_team if t and t != "West"]) >= 1  # a second team


def test_pipeline_stages_and_every_stage_has_deals(session: Session) -> None:
    stages = sorted(_stages(session).values(), key=lambda s: s.position)
    assert [(s.name, s.probability, s.kind) for s in stages] == [
        ("Qualification", 10, StageKind.open),
        ("Discovery", 20, StageKind.open),
        ("Demo", 40, StageKind.open),
        ("Proposal", 60, StageKind.open),
        ("Negotiation", 80, StageKind.open),
        ("Closed Won", 100, StageKind.won),
        ("Closed Lost", 0, StageKind.lost),
    ]
    per_stage = dict(session.execute(select(Deal.stage_id, func.count()).group_by(Deal.stage_id)).all())
    assert all(per_stage.get(s.id, 0) > 0 for s in stages)


def test_win_rate_is_plausible_and_varies(session: Session) -> None:
    stages = _stages(session)
    deals = session.scalars(select(Deal)).all()
    won = [d for d in deals if stages[d.stage_id].kind == StageKind.won]
    lost = [d for d in deals if stages[d.stage_id].kind == StageKind.lost]
    assert won and lost
    assert 0.15 <= len(won) / (len(won) + len(lost)) <= 0.5
    assert 0.45 <= (len(won) + len(lost)) / len(deals) <= 0.75  # roughly 60% closed
    rates = {}
    for source in ("referral", "outbound"):
        w = sum(1 for d in won if d.source == source)
        n = w + sum(1 for d in lost if d.source == source)
        rates[source] = w / n
    assert rates["referral"] > rates["outbound"]
    assert all(d.lost_reason for d in lost) and not any(d.lost_reason for d in won)
    assert all(d.closed_at is not None for d in won + lost)
    assert all(d.forecast_category == ForecastCategory.closed for d in won)
    assert all(d.forecast_category == ForecastCategory.omitted for d in lost)


def test_amounts_and_dates(session: Session) -> None:
    stages = _stages(session)
    for deal in session.scalars(select(Deal)):
        assert isinstance(deal.amount, Decimal) and Decimal(5000) <= deal.amount <= Decimal(250000)
        assert deal.currency == "USD" and deal.close_date is not None
        assert deal.created_at < NOW
        if stages[deal.stage_id].kind == StageKind.open:
            assert deal.closed_at is None
            if not deal.name.startswith("Borealis"):  # Borealis closes in January, whenever today is
                assert deal.close_date <= TODAY + timedelta(days=200)
        else:
            assert deal.close_date <= TODAY and deal.closed_at < NOW


def test_history_tells_a_consistent_story(session: Session) -> None:
    stages = _stages(session)
    history: dict[uuid.UUID, list[DealHistory]] = defaultdict(list)
    for row in session.scalars(select(DealHistory).order_by(DealHistory.deal_id, DealHistory.changed_at)):
        history[row.deal_id].append(row)
    deals = session.scalars(select(Deal)).all()
    assert set(history) == {d.id for d in deals}
    for deal in deals:
        rows = history[deal.id]
        assert rows[0].from_stage_id is None and rows[0].changed_at == deal.created_at
        assert all(a.changed_at < b.changed_at for a, b in zip(rows, rows[1:], strict=False))
        assert rows[-1].changed_at < NOW
        for prev, row in zip(rows, rows[1:], strict=False):
            if row.from_stage_id is not None:
                assert row.from_stage_id == prev.stage_id != row.stage_id
            else:
                assert row.stage_id == prev.stage_id
                assert (row.amount, row.close_date) != (prev.amount, prev.close_date)
        last = rows[-1]
        assert (last.stage_id, last.amount, last.close_date, last.forecast_category, last.owner_id) == (
            deal.stage_id,
            deal.amount,
            deal.close_date,
            deal.forecast_category,
            deal.owner_id,
        )
        moves = [r for r in rows if r.from_stage_id is not None]
        assert deal.stage_entered_at == (moves[-1].changed_at if moves else rows[0].changed_at)
        if stages[deal.stage_id].kind != StageKind.open:
            assert deal.closed_at == moves[-1].changed_at


def test_some_deals_slipped(session: Session) -> None:
    rows = session.scalars(select(DealHistory).order_by(DealHistory.deal_id, DealHistory.changed_at)).all()
    slipped = {
        b.deal_id
        for a, b in zip(rows, rows[1:], strict=False)
        if a.deal_id == b.deal_id and b.from_stage_id is None and b.close_date > a.close_date
    }
    assert len(slipped) >= 20


def test_stale_open_deals_exist(session: Session) -> None:
    stages = _stages(session)
    last_activity = dict(
        session.execute(
            select(ActivityTarget.deal_id, func.max(Activity.occurred_at))
            .join(Activity, Activity.id == ActivityTarget.activity_id)
            .where(ActivityTarget.deal_id.is_not(None))
            .group_by(ActivityTarget.deal_id)
        ).all()
    )
    open_deals = [d for d in session.scalars(select(Deal)) if stages[d.stage_id].kind == StageKind.open]
    stale = [d for d in open_deals if last_activity[d.id] < NOW - timedelta(days=30)]
    fresh = [d for d in open_deals if last_activity[d.id] > NOW - timedelta(days=14)]
    assert len(stale) >= 10 and len(fresh) > len(stale)


def test_activities_targets_and_contacts(session: Session) -> None:
    assert session.scalar(select(func.max(Activity.occurred_at))) < NOW
    types = set(session.scalars(select(Activity.type).distinct()))
    assert {"call", "meeting", "email", "note"} <= {t.value for t in types}
    with_activity = session.scalar(
        select(func.count()).select_from(Contact).where(Contact.last_activity_at.is_not(None))
    )
    assert with_activity > 300
    contacts = session.scalars(select(Contact)).all()
    emails = [c.email for c in contacts]
    assert len(emails) == len(set(emails))
    assert all(c.phone and c.phone.startswith("+") and c.phone[1:].isdigit() for c in contacts)
    assert all(0 <= (c.lead_score or 0) <= 100 for c in contacts)
    domains = session.scalars(select(Company.domain)).all()
    assert len(domains) == len(set(domains)) and all(d == d.lower() for d in domains)


def test_tasks_open_done_overdue(session: Session) -> None:
    tasks = session.scalars(select(Task)).all()
    open_ = [t for t in tasks if t.status == TaskStatus.open]
    assert any(t.status == TaskStatus.done and t.completed_at for t in tasks)
    assert any(t.due_at < NOW for t in open_)
    assert any(NOW <= t.due_at < NOW + timedelta(days=7) for t in open_)


def test_borealis_story(session: Session) -> None:
    borealis = session.scalars(select(Company).where(Company.name == "Borealis Logistics")).one()
    priya = session.scalars(select(User).where(User.email == "priya@demo.agentcrm.dev")).one()
    assert borealis.domain == "borealis-logistics.example" and borealis.owner_id == priya.id
    people = {c.full_name: c for c in session.scalars(select(Contact).where(Contact.company_id == borealis.id))}
    assert people["Ines Duarte"].title == "Head of Operations"
    assert people["Marco Bellini"].title == "VP Engineering"
    deal = session.scalars(select(Deal).where(Deal.name == "Borealis – Fleet Telematics")).one()
    stage = session.get(Stage, deal.stage_id)
    assert stage is not None and stage.name == "Negotiation"
    assert deal.amount == Decimal("48000.00") and deal.owner_id == priya.id
    assert deal.close_date is not None and (deal.close_date.year, deal.close_date.month) == (
        TODAY.year + 1,
        1,
    )
    roles = {
        dc.contact_id: dc.role for dc in session.scalars(select(DealContact).where(DealContact.deal_id == deal.id))
    }
    assert roles == {
        people["Ines Duarte"].id: DealContactRole.champion,
        people["Marco Bellini"].id: DealContactRole.technical_buyer,
    }
    quote = session.scalars(select(Quote).where(Quote.deal_id == deal.id)).one()
    lines = session.scalars(select(QuoteLineItem).where(QuoteLineItem.quote_id == quote.id)).all()
    assert sum(li.line_total for li in lines) == quote.subtotal and quote.total == Decimal("48000.00")
    titles = {t.title for t in session.scalars(select(Task).where(Task.owner_id == priya.id))}
    assert "Send revised quote to Borealis" in titles
    last_three = session.scalars(
        select(Activity)
        .join(ActivityTarget, ActivityTarget.activity_id == Activity.id)
        .where(ActivityTarget.deal_id == deal.id)
        .order_by(Activity.occurred_at.desc())
        .limit(3)
    ).all()
    assert len(last_three) == 3 and all(a.occurred_at > NOW - timedelta(days=30) for a in last_three)


def _fingerprint(engine: Engine) -> tuple[list[tuple[object, ...]], ...]:
    with Session(engine) as s:
        stage_names = {st.id: st.name for st in s.scalars(select(Stage))}
        companies = sorted(s.execute(select(Company.name, Company.domain, Company.employee_count)).all())
        deals = sorted(
            (d.name, d.amount, stage_names[d.stage_id], d.close_date, d.created_at) for d in s.scalars(select(Deal))
        )
        activities = sorted(s.execute(select(Activity.subject, Activity.occurred_at)).all())
        contacts = sorted(s.execute(select(Contact.email, Contact.phone, Contact.lead_score)).all())
    return companies, deals, activities, contacts


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    a, b, c = (_engine(tmp_path / f"{n}.db") for n in "abc")
    _seed(a, seed=11, today=TODAY, companies=60)
    _seed(b, seed=11, today=TODAY, companies=60)
    _seed(c, seed=12, today=TODAY, companies=60)
    fa, fb, fc = _fingerprint(a), _fingerprint(b), _fingerprint(c)
    assert fa == fb
    assert fa[0] != fc[0] and fa[1] != fc[1]
    for engine in (a, b, c):
        engine.dispose()


def test_seed_flushes_but_never_commits(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "r.db")
    with Session(engine) as session:
        workspace = Workspace(name="Demo", slug="demo")
        session.add(workspace)
        session.flush()
        summary = seed_demo(session, workspace=workspace, today=TODAY, companies=20)
        assert session.scalar(select(func.count()).select_from(Company)) == summary.counts["companies"] == 20
        session.rollback()
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Company)) == 0
        assert session.scalar(select(func.count()).select_from(Workspace)) == 0
    engine.dispose()


def test_seeds_a_workspace_made_by_the_service_reusing_its_pipeline(tmp_path: Path) -> None:
    from store.services.org import create_workspace

    engine = _engine(tmp_path / "s.db")
    with Session(engine) as session:
        workspace = create_workspace(session, name="Acme", slug="acme", own_domains=["acme.example"])
        summary = seed_demo(session, workspace=workspace, today=TODAY, companies=30)
        session.commit()
        assert "pipelines" not in summary.counts and "stages" not in summary.counts
        assert session.scalar(select(func.count()).select_from(Stage)) == 7
        assert workspace.own_domains == ["acme.example", "demo.agentcrm.dev"]
        assert session.scalar(select(func.count()).select_from(Deal)) == summary.counts["deals"] > 0
    engine.dispose()


def test_the_30_percent_quote_waits_in_danas_approval_queue_and_her_approval_approves_it(tmp_path: Path) -> None:
    """STORIES.md: "A rep's quote with a 30% discount waits for her approval; she approves from Slack"
    (Slack's "waiting" shows the same proposals as the web and the API: tests/test_slack.py)."""
    from agents import gate
    from store.models.enums import ApprovalStatus, QuoteStatus, Surface
    from store.services import approvals as approval_service
    from store.services.org import actor_for_user
    from tests import factories as f

    with f.demo(tmp_path, TODAY) as (session, _):
        quote = session.scalars(select(Quote).where(Quote.number == "Q-1002")).one()
        users = {u.email.split("@")[0]: u for u in session.scalars(select(User))}
        dana, owner = users["dana"], session.get(User, quote.owner_id)
        assert quote.status == QuoteStatus.pending_approval and owner.role == Role.rep
        assert approval_service.pending(session, actor=actor_for_user(owner, Surface.slack)) == []  # not his call
        (waiting,) = approval_service.pending(session, actor=actor_for_user(dana, Surface.slack))
        assert "Q-1002" in waiting.summary and "needs a manager" in waiting.summary
        assert "30% off list is above the 20% a rep may give alone" in waiting.summary
        decided = gate.decide(session, actor=actor_for_user(dana, Surface.slack), approval_id=waiting.id,
                              kind="approve")
        session.commit()
        assert decided.status == ApprovalStatus.executed, decided.error
        session.refresh(quote)
        assert quote.status == QuoteStatus.approved
