"""Leads: the learned lead score and routing by territory, on histories where the answer is known."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from agents import gate
from store.errors import NotFound, PermissionDenied, ValidationFailed
from store.models import (
    Activity,
    ActivityTarget,
    AuditLog,
    Company,
    Contact,
    Deal,
    DealContact,
    Email,
    EmailParticipant,
    LeadAssignment,
    ScoringModel,
    TerritoryMember,
    User,
)
from store.models.enums import (
    ActivityType,
    ApprovalStatus,
    Direction,
    EmailParticipantRole,
    LifecycleStage,
    Surface,
)
from store.services import lead_features, lead_routing, lead_scoring
from store.services.sales import default_pipeline, stages_of
from tests import factories as f
from tools import TOOLS, ToolContext

NOW = datetime.now(UTC).replace(microsecond=0)
LEAD = LifecycleStage.lead


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


# --- helpers ---------------------------------------------------------------------------------------


def territory(session: Session, w: f.World, name: str, rules: dict[str, Any], members: list[User], *,
              priority: int = 100, capacity: int | None = None) -> Any:
    t = f.create(session, w.admin, "territory", name=name, priority=priority, rules=rules)
    for u in members:
        f.create(session, w.admin, "territory_member", territory_id=t.id, user_id=u.id, capacity=capacity)
    return t


def member(session: Session, t: Any, u: User) -> TerritoryMember:
    return session.scalar(select(TerritoryMember).where(TerritoryMember.territory_id == t.id,
                                                        TerritoryMember.user_id == u.id))


_n = iter(range(1, 10_000_000))


def company(session: Session, w: f.World, *, region: str | None = "NA", industry: str | None = "Logistics",
            employees: int | None = 100, country: str | None = None) -> Company:
    i = next(_n)
    return f.create(session, w.admin, "company", name=f"Co {i}", domain=f"co{i}.example", region=region,
                    industry=industry, employee_count=employees, country=country, owner_id=None)


def lead(session: Session, w: f.World, co: Company | None, *, owner: User | None = None,
         stage: LifecycleStage = LEAD, name: str | None = None) -> Contact:
    i = next(_n)
    return f.create(session, w.admin, "contact", first_name=name or f"Lead{i}", last_name="Test",
                    email=f"lead{i}@example.com", company_id=co.id if co else None,
                    owner_id=owner.id if owner else None, lifecycle_stage=stage)


def admin(w: f.World) -> Any:
    return f.actor(w.admin, Surface.cli)


def route(session: Session, who: User, **kw: Any) -> list[lead_routing.Assignment]:
    done = lead_routing.route_unassigned(session, actor=f.actor(who, Surface.cli), now=kw.pop("now", NOW), **kw)
    session.commit()
    return done


def owner_of(session: Session, c: Contact) -> uuid.UUID | None:
    session.refresh(c)
    return c.owner_id


# --- routing -------------------------------------------------------------------------------------------


def test_routes_by_region_industry_and_size_in_priority_order(session, w) -> None:
    territory(session, w, "Big retail", {"industries": ["Retail"], "min_employees": 1000}, [w.raj], priority=10)
    territory(session, w, "EMEA", {"regions": ["EMEA"]}, [w.priya], priority=20)
    territory(session, w, "Everyone else", {}, [w.eve], priority=100)
    emea = lead(session, w, company(session, w, region="EMEA", industry="Logistics", employees=50))
    big_retail = lead(session, w, company(session, w, region="NA", industry="Retail", employees=5000))
    emea_big_retail = lead(session, w, company(session, w, region="EMEA", industry="retail", employees=2000))
    small_retail = lead(session, w, company(session, w, region="NA", industry="Retail", employees=200))
    no_company = lead(session, w, None)
    session.commit()

    done = {a.contact_id: a for a in route(session, w.admin)}
    assert owner_of(session, emea) == w.priya.id
    assert owner_of(session, big_retail) == w.raj.id
    assert owner_of(session, emea_big_retail) == w.raj.id  # priority 10 beats EMEA's 20
    assert owner_of(session, small_retail) == w.eve.id  # under the size rule: the catch-all
    assert owner_of(session, no_company) == w.eve.id
    assert "territory EMEA (region EMEA matched)" in done[emea.id].reason
    assert "round-robin: Priya Raman was next" in done[emea.id].reason
    assert "industry Retail, 5,000 employees (>= 1000) matched" in done[big_retail.id].reason
    assert "catch-all" in done[no_company.id].reason


def test_round_robin_oldest_first_and_continues_across_runs(session, w) -> None:
    t = territory(session, w, "All", {}, [w.priya, w.raj, w.eve])
    member(session, t, w.priya).last_assigned_at = NOW - timedelta(days=1)
    member(session, t, w.raj).last_assigned_at = NOW - timedelta(days=2)  # eve: never, so first
    new = [lead(session, w, company(session, w)) for _ in range(5)]
    session.commit()

    done = route(session, w.admin)
    assert [a.contact_id for a in done] == [c.id for c in new]  # oldest lead first
    assert [a.user_id for a in done] == [w.eve.id, w.raj.id, w.priya.id, w.eve.id, w.raj.id]
    stamps = [member(session, t, u).last_assigned_at for u in (w.priya, w.eve, w.raj)]
    assert stamps[0] < stamps[1] < stamps[2]  # raj got the last one

    later = lead(session, w, company(session, w))
    session.commit()
    assert [a.user_id for a in route(session, w.admin, now=NOW + timedelta(hours=1))] == [w.priya.id]
    assert owner_of(session, later) == w.priya.id


def test_capacity_counts_open_leads_and_full_members_are_skipped(session, w) -> None:
    t = territory(session, w, "All", {}, [w.priya, w.raj])
    member(session, t, w.priya).capacity = 1
    member(session, t, w.raj).capacity = 5
    member(session, t, w.raj).last_assigned_at = NOW - timedelta(days=1)  # priya would be next
    lead(session, w, company(session, w), owner=w.priya)  # priya's one open lead
    lead(session, w, company(session, w), owner=w.raj, stage=LifecycleStage.customer)  # not a lead: not counted
    new = lead(session, w, company(session, w))
    session.commit()

    [a] = route(session, w.admin)
    assert a.user_id == w.raj.id and owner_of(session, new) == w.raj.id
    assert "Raj Patel was next; 0/5 open leads" in a.reason
    assert "skipped Priya Raman (full, 1/1 open leads)" in a.reason


def test_all_full_tries_next_territory_then_leaves_unassigned_with_reason(session, w) -> None:
    territory(session, w, "EMEA", {"regions": ["EMEA"]}, [w.priya], priority=10, capacity=0)
    territory(session, w, "Overflow", {"regions": ["EMEA", "NA"]}, [w.raj], priority=20, capacity=1)
    territory(session, w, "APAC", {"regions": ["APAC"]}, [w.eve], priority=5)
    first = lead(session, w, company(session, w, region="EMEA"))
    second = lead(session, w, company(session, w, region="EMEA"))
    nowhere = lead(session, w, company(session, w, region="LATAM", industry="Energy", employees=40))
    session.commit()

    done = {a.contact_id: a for a in route(session, w.admin)}
    assert done[first.id].user_id == w.raj.id and done[first.id].territory == "Overflow"
    assert done[first.id].reason.startswith("territory EMEA (region EMEA matched) but no one could take it: "
                                            "Priya Raman (full, 0/0 open leads); then territory Overflow")
    assert done[second.id].user_id is None and owner_of(session, second) is None
    assert "Raj Patel (full, 1/1 open leads)" in done[second.id].reason
    assert done[second.id].reason.endswith("left unassigned")
    assert done[nowhere.id].reason == ("no active territory matches (region LATAM, industry Energy, 40 employees); "
                                       "left unassigned")
    rows = session.scalars(select(LeadAssignment).where(LeadAssignment.contact_id.in_([second.id, nowhere.id]))).all()
    assert len(rows) == 2 and all(r.user_id is None and r.reason.endswith("left unassigned") for r in rows)


def test_inactive_users_and_inactive_territories_are_skipped(session, w) -> None:
    territory(session, w, "Old", {}, [w.eve], priority=1).active = False
    territory(session, w, "All", {}, [w.priya, w.raj], priority=2)
    w.priya.is_active = False
    new = lead(session, w, company(session, w))
    session.commit()
    [a] = route(session, w.admin)
    assert a.user_id == w.raj.id and owner_of(session, new) == w.raj.id
    assert "Priya Raman (inactive)" in a.reason and "Old" not in a.reason


def test_a_rep_may_not_route_and_a_manager_only_to_their_team(session, w) -> None:
    territory(session, w, "All", {}, [w.eve, w.priya])
    new = lead(session, w, company(session, w))
    session.commit()
    with pytest.raises(PermissionDenied, match="only managers and admins can route leads"):
        lead_routing.route_unassigned(session, actor=f.actor(w.priya), now=NOW)
    with pytest.raises(PermissionDenied):
        lead_routing.route_lead(session, actor=f.actor(w.raj), contact_id=new.id, now=NOW)
    assert session.scalar(select(LeadAssignment).where(LeadAssignment.contact_id == new.id)) is None

    [a] = route(session, w.dana)  # West's manager: eve (East) is not hers to assign to
    assert a.user_id == w.priya.id and "Eve East (not in your team)" in a.reason


def test_every_outcome_is_logged_with_reason_and_audited(session, w) -> None:
    territory(session, w, "NA", {"regions": ["NA"]}, [w.priya])
    na, other = lead(session, w, company(session, w)), lead(session, w, company(session, w, region="EMEA"))
    session.commit()
    route(session, w.admin)

    logged = {r.contact_id: r for r in session.scalars(select(LeadAssignment)
                                                       .where(LeadAssignment.workspace_id == w.ws.id))}
    assert set(logged) == {na.id, other.id}
    row = logged[na.id]
    assert row.user_id == w.priya.id and row.previous_owner_id is None and row.assigned_by_id == w.admin.id
    assert row.reason.startswith("territory NA (region NA matched); round-robin: Priya Raman was next")
    assert logged[other.id].user_id is None and logged[other.id].territory_id is None

    entries = session.scalars(select(AuditLog).where(AuditLog.entity_type == "lead_assignment")).all()
    assert {e.entity_id for e in entries} == {r.id for r in logged.values()}
    assert all(e.actor_id == w.admin.id and e.surface == Surface.cli and e.note for e in entries)
    owner_change = session.scalar(select(AuditLog).where(AuditLog.entity_type == "contact",
                                                         AuditLog.entity_id == na.id, AuditLog.action == "update"))
    assert owner_change.after == {"owner_id": str(w.priya.id)} and owner_change.before == {"owner_id": None}


def test_dry_run_writes_nothing_and_route_lead_refuses_non_leads(session, w) -> None:
    t = territory(session, w, "All", {}, [w.priya, w.raj])
    a, b = lead(session, w, company(session, w)), lead(session, w, company(session, w))
    customer = lead(session, w, company(session, w), stage=LifecycleStage.customer)
    session.commit()
    plan = lead_routing.route_unassigned(session, actor=admin(w), now=NOW, dry_run=True)
    assert [p.user_id for p in plan] == [w.priya.id, w.raj.id] and all(p.id is None for p in plan)
    session.commit()
    assert owner_of(session, a) is None and owner_of(session, b) is None
    assert member(session, t, w.priya).last_assigned_at is None
    assert session.scalar(select(LeadAssignment).where(LeadAssignment.workspace_id == w.ws.id)) is None

    with pytest.raises(ValidationFailed, match="not a lead"):
        lead_routing.route_lead(session, actor=admin(w), contact_id=customer.id, now=NOW)
    one = lead_routing.route_lead(session, actor=admin(w), contact_id=a.id, now=NOW)
    assert one.user_id == w.priya.id and one.id is not None


# --- lead score ----------------------------------------------------------------------------------------

EXEC_TITLES = ["CEO", "VP Operations", "Chief Financial Officer", "Head of IT", "Director of Logistics"]
OTHER_TITLES = ["Office Manager", "Data Analyst", "Fleet Coordinator", "Sales Assistant", "Intern"]


def _activity(session: Session, ws_id: uuid.UUID, contact: Contact, kind: ActivityType, at: datetime,
              owner_id: uuid.UUID) -> None:
    act = Activity(workspace_id=ws_id, type=kind, subject=kind.value, occurred_at=at, owner_id=owner_id,
                   created_at=at)
    session.add(act)
    session.flush()
    session.add(ActivityTarget(workspace_id=ws_id, activity_id=act.id, contact_id=contact.id))


def history(session: Session, ws_id: uuid.UUID, owner_id: uuid.UUID, *, n: int = 260, seed: int = 3,
            now: datetime = NOW) -> list[Contact]:
    """Contacts created over 400 days. Executives, large companies and recent meetings convert far more;
    converted contacts get a deal (their conversion) and many meetings *after* it (the leakage bait)."""
    rng = random.Random(seed)
    pipeline = default_pipeline(session, ws_id)
    stage = stages_of(session, pipeline.id)[0]
    out = []
    for i in range(n):
        created = now - timedelta(days=400) + timedelta(days=380 * i / n)
        executive, large, engaged = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5
        p = 0.04 + 0.3 * executive + 0.3 * large + 0.3 * engaged
        converted = rng.random() < p
        co = Company(workspace_id=ws_id, name=f"Hist {i}", domain=f"hist{i}-{seed}.example", created_at=created,
                     employee_count=rng.randint(2000, 20000) if large else rng.randint(5, 150),
                     industry=rng.choice(["Logistics", "Retail", "Energy"]), region=rng.choice(["NA", "EMEA"]))
        session.add(co)
        session.flush()
        c = Contact(workspace_id=ws_id, first_name=f"H{i}", last_name="Story", email=f"h{i}-{seed}@hist.example",
                    title=rng.choice(EXEC_TITLES if executive else OTHER_TITLES), company_id=co.id,
                    lifecycle_stage=LifecycleStage.opportunity if converted else LEAD, created_at=created,
                    source=rng.choice(["web", "event"]))
        session.add(c)
        session.flush()
        ref = min(created + timedelta(days=rng.randint(20, 60)), now - timedelta(days=1)) if converted else now
        if engaged:
            for _ in range(rng.randint(2, 3)):
                _activity(session, ws_id, c, ActivityType.meeting, ref - timedelta(days=rng.uniform(1, 25)), owner_id)
        for _ in range(rng.randint(0, 2)):  # noise: calls whatever happens
            _activity(session, ws_id, c, ActivityType.call, ref - timedelta(days=rng.uniform(1, 80)), owner_id)
        if converted:
            deal = Deal(workspace_id=ws_id, name=f"Deal {i}", pipeline_id=pipeline.id, stage_id=stage.id,
                        company_id=co.id, created_at=ref, owner_id=owner_id)
            session.add(deal)
            session.flush()
            session.add(DealContact(workspace_id=ws_id, deal_id=deal.id, contact_id=c.id))
            for _ in range(4):  # the deal being worked: after the conversion, must not count
                after = ref + (now - ref) * rng.uniform(0.05, 0.95)
                _activity(session, ws_id, c, ActivityType.meeting, after, owner_id)
        out.append(c)
    session.flush()
    return out


def test_leakage_engagement_counts_only_before_conversion(session, w) -> None:
    co = company(session, w)
    c = lead(session, w, co, stage=LifecycleStage.opportunity)
    c.created_at = NOW - timedelta(days=100)
    pipeline = default_pipeline(session, w.ws.id)
    converted = NOW - timedelta(days=50)
    deal = Deal(workspace_id=w.ws.id, name="D", pipeline_id=pipeline.id, stage_id=stages_of(session, pipeline.id)[0].id,
                created_at=converted)
    session.add(deal)
    session.flush()
    session.add(DealContact(workspace_id=w.ws.id, deal_id=deal.id, contact_id=c.id))
    _activity(session, w.ws.id, c, ActivityType.meeting, converted - timedelta(days=3), w.priya.id)
    for days in (40, 20, 5):
        _activity(session, w.ws.id, c, ActivityType.meeting, NOW - timedelta(days=days), w.priya.id)
    session.flush()
    xs, ys, _, counts = lead_features.training_set(session, workspace_id=w.ws.id, now=NOW)
    assert ys == [1] and counts["converted"] == 1
    assert xs[0]["eng:meetings_30d"] == 1 and "eng:meetings_90d" not in xs[0]
    assert xs[0]["eng:days_since_last"] == pytest.approx(3)
    assert xs[0]["fit:size=50-199"] == 1 and xs[0]["fit:region=NA"] == 1


def test_emails_count_once_and_inbound_is_seen(session, w) -> None:
    c = lead(session, w, company(session, w))
    c.created_at = NOW - timedelta(days=100)
    for i, (days, role, logged) in enumerate([(3, EmailParticipantRole.sender, False),
                                               (10, EmailParticipantRole.to, True), (50, EmailParticipantRole.to,
                                                                                     False)]):
        mail = Email(workspace_id=w.ws.id, message_id=f"<m{i}@x>", subject="hi", sent_at=NOW - timedelta(days=days))
        session.add(mail)
        session.flush()
        session.add(EmailParticipant(workspace_id=w.ws.id, email_id=mail.id, role=role, address=c.email,
                                     contact_id=c.id))
        if logged:  # filed as an activity too: counted once, as the activity
            act = Activity(workspace_id=w.ws.id, type=ActivityType.email, subject="hi", email_id=mail.id,
                           occurred_at=NOW - timedelta(days=days), direction=Direction.outbound)
            session.add(act)
            session.flush()
            session.add(ActivityTarget(workspace_id=w.ws.id, activity_id=act.id, contact_id=c.id))
    session.flush()
    xs, ys, _, _ = lead_features.training_set(session, workspace_id=w.ws.id, now=NOW)
    assert ys == [0]
    assert (xs[0]["eng:emails_30d"], xs[0]["eng:emails_90d"], xs[0]["eng:inbound_90d"]) == (2, 1, 1)
    assert xs[0]["eng:days_since_last"] == pytest.approx(3)


def test_lead_score_learns_who_converts_and_explains_it(session, w) -> None:
    history(session, w.ws.id, w.priya.id)
    session.commit()
    row, report = lead_scoring.train_lead_score(session, workspace_id=w.ws.id, trained_by_id=w.admin.id, now=NOW)
    session.commit()
    assert row.kind == "lead_score" and row.trained_by_id == w.admin.id
    assert row.train_examples + row.test_examples == 260 and row.test_examples == 65
    model, base = report["model"], report["baseline"]
    assert model["auc"] > 0.75 and base["auc"] == 0.5
    assert model["brier"] < base["brier"]
    assert sum(b["examples"] for b in model["reliability"]) == 65
    assert [b["examples"] for b in base["reliability"] if b["examples"]] == [65]  # one constant
    top = {wt["feature"] for wt in report["weights"][:4]}
    assert {"fit:title_executive", "eng:meetings_30d"} <= top

    hot_co = company(session, w, employees=8000)
    hot = lead(session, w, hot_co, name="Hot")
    hot.title = "VP Operations"
    for days in (2, 6, 12):
        _activity(session, w.ws.id, hot, ActivityType.meeting, NOW - timedelta(days=days), w.priya.id)
    cold = lead(session, w, company(session, w, employees=12), name="Cold")
    cold.title = "Office Manager"
    customer = lead(session, w, company(session, w), stage=LifecycleStage.customer)
    customer.lead_score = 7
    session.commit()

    hot_x = lead_scoring.explain_lead(session, f.actor(w.admin), hot.id, now=NOW)
    cold_x = lead_scoring.explain_lead(session, f.actor(w.admin), cold.id, now=NOW)
    assert hot_x.score > 70 and cold_x.score < 30
    assert hot_x.fit > 0 and hot_x.engagement > 0 and cold_x.fit < 0
    top3 = [str(r) for r in hot_x.reasons[:3]]
    assert any(r.startswith("VP Operations title (executive) (+") for r in top3), top3
    assert any(r.startswith("3 meetings in 30 days (+") for r in top3), top3
    assert any(r.startswith("company of 8,000 employees (+") for r in top3), top3
    text = hot_x.text()
    assert f"lead score {hot_x.score}/100" in text and "Fit +" in text and "engagement +" in text

    before = session.scalar(select(Contact.updated_at).where(Contact.id == hot.id))
    counts = lead_scoring.score_leads(session, workspace_id=w.ws.id, now=NOW)
    session.commit()
    session.refresh(hot), session.refresh(cold), session.refresh(customer)
    assert (hot.lead_score, cold.lead_score) == (hot_x.score, cold_x.score)
    assert customer.lead_score == 7  # not a lead: left alone
    assert hot.updated_at == before  # derived data: not an edit
    assert counts["leads"] >= 2

    # Read permissions: East's rep cannot see a West rep's contact, nor its score.
    hot.owner_id = w.priya.id
    session.commit()
    with pytest.raises(NotFound):
        lead_scoring.explain_lead(session, f.actor(w.eve), hot.id, now=NOW)
    assert lead_scoring.explain_lead(session, f.actor(w.raj), hot.id, now=NOW).score == hot_x.score


def test_too_little_history_is_a_clear_error(session, w) -> None:
    history(session, w.ws.id, w.priya.id, n=20)
    session.commit()
    with pytest.raises(ValidationFailed, match=r"needs at least 10 converted and 10 unconverted contacts; "
                                               r"found \d+ converted and \d+ unconverted"):
        lead_scoring.train_lead_score(session, workspace_id=w.ws.id, now=NOW)
    with pytest.raises(NotFound, match="crm leads train"):
        lead_scoring.score_leads(session, workspace_id=w.ws.id)
    assert session.scalar(select(ScoringModel).where(ScoringModel.workspace_id == w.ws.id)) is None


# --- the agent's tools -------------------------------------------------------------------------------


def _ctx(session: Session, u: User) -> ToolContext:
    return ToolContext(actor=f.actor(u, Surface.agent), session=session, thread_id="leads", now=NOW)


def test_route_leads_is_a_proposal_until_approved(session, w) -> None:
    territory(session, w, "West", {}, [w.priya, w.raj])
    a, b = lead(session, w, company(session, w), name="Ana"), lead(session, w, company(session, w), name="Ben")
    session.commit()

    refused = gate.propose(_ctx(session, w.priya), tool_name="route_leads", raw_args={}, tool_call_id="r0",
                           evidence=[])
    assert refused.approval is None and "only managers and admins can route leads" in refused.message

    p = gate.propose(_ctx(session, w.dana), tool_name="route_leads", raw_args={}, tool_call_id="r1",
                     evidence=[{"source": "chat", "quote": "route the new leads"}])
    session.commit()
    assert p.pending and p.approval.summary.startswith("Route 2 unassigned leads by the territory rules: 2 to reps")
    rows = {d["field"]: d for d in p.approval.diff}
    ana_row = rows[f"Ana Test ({session.get(Company, a.company_id).name})"]
    assert ana_row["after"].startswith("Priya Raman: territory West (catch-all: no rules); round-robin: "
                                       "Priya Raman was next")
    assert all(d["before"] == "unassigned" for d in p.approval.diff)
    assert owner_of(session, a) is None and owner_of(session, b) is None  # nothing written yet
    assert session.scalar(select(LeadAssignment).where(LeadAssignment.workspace_id == w.ws.id)) is None

    approval = gate.decide(session, actor=f.actor(w.dana), approval_id=p.approval.id, kind="approve")
    session.commit()
    assert approval.status == ApprovalStatus.executed, approval.error
    assert approval.result["assigned"] == 2
    assert (owner_of(session, a), owner_of(session, b)) == (w.priya.id, w.raj.id)
    logged = session.scalars(select(LeadAssignment).where(LeadAssignment.workspace_id == w.ws.id)).all()
    assert len(logged) == 2 and all(r.approval_id == approval.id and r.assigned_by_id == w.dana.id for r in logged)
    audited = session.scalars(select(AuditLog).where(AuditLog.approval_id == approval.id)).all()
    assert {e.entity_type for e in audited} == {"contact", "lead_assignment"} and len(audited) == 4


def test_lead_score_read_tool(session, w) -> None:
    history(session, w.ws.id, w.priya.id, n=120, seed=5)
    c = lead(session, w, company(session, w, employees=9000))
    session.commit()
    tool = TOOLS["lead_score"]
    assert tool.kind == "read"
    with pytest.raises(NotFound, match="no lead score model yet"):
        tool.run(_ctx(session, w.admin), tool.parse({"contact_id": str(c.id)}))
    lead_scoring.train_lead_score(session, workspace_id=w.ws.id, now=NOW)
    out = tool.run(_ctx(session, w.admin), tool.parse({"contact_id": str(c.id)}))
    assert out.startswith(f"{c.full_name}: lead score ") and "Top reasons:" in out and "Fit " in out


# --- the CLI ----------------------------------------------------------------------------------------------


def test_cli_train_score_route_explain(cli_env) -> None:
    from crm import app
    from store.db import unit_of_work
    from store.services.org import get_workspace

    runner = CliRunner()

    def crm(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output + repr(result.exception)
        return result.output

    crm("setup", "--no-demo")
    crm("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin")
    crm("user", "add", "lena@acme.example", "--name", "Lena Fischer", "--team", "EMEA")
    assert "no lead score model yet" in crm("leads", "score", code=1)
    with unit_of_work() as session:
        ws = get_workspace(session, slug="default")
        sam = session.scalar(select(User).where(User.email == "sam@acme.example"))
        lena = session.scalar(select(User).where(User.email == "lena@acme.example"))
        history(session, ws.id, sam.id, n=200, seed=11, now=datetime.now(UTC))
        t = f.create(session, sam, "territory", name="EMEA", rules={"regions": ["EMEA"]})
        f.create(session, sam, "territory_member", territory_id=t.id, user_id=lena.id, capacity=1000)
        before = session.scalar(select(Contact).where(Contact.email == "h0-11@hist.example")).owner_id

    out = crm("leads", "train")
    for words in ("Brier score", "ROC AUC", "baseline", "Reliability", "model: leads", "title_executive"):
        assert words in out, words
    assert "scored" in crm("leads", "score")
    dry = crm("leads", "route", "--dry-run")
    assert "-> Lena Fischer: territory EMEA (region EMEA matched); round-robin: Lena Fischer was next" in dry
    assert "dry run: nothing was written" in dry
    with unit_of_work() as session:
        assert session.scalar(select(LeadAssignment)) is None
        assert session.scalar(select(Contact).where(Contact.email == "h0-11@hist.example")).owner_id == before
    done = crm("leads", "route")
    assert "-> Lena Fischer" in done and "-> unassigned: no active territory matches (region NA" in done
    with unit_of_work() as session:
        assert session.scalar(select(LeadAssignment).where(LeadAssignment.user_id.is_not(None))) is not None
    explained = crm("leads", "explain", "h1-11@hist.example")
    assert "lead score" in explained and "Top reasons:" in explained
    assert "no contact with email" in crm("leads", "explain", "nobody@x.example", code=1)
    def flat(text: str) -> str:  # help is wrapped in a box: words only
        return " ".join(text.replace("│", " ").split())

    assert "Admin commands: they write directly" in flat(crm("leads", "--help"))
    assert "Writes directly (admin command)" in flat(crm("leads", "route", "--help"))
