"""One visibility rule for proposals (store/services/approvals.py `visible_to`), at every door that
lists or reads them: a proposal is seen by who asked for it and who may decide it (her manager, an
admin), never by her teammates, whatever the team-read rule of owned records says. And the audit
log read through one service: a record's history for whoever reads the record, the whole log for
admins only."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents import gate
from store.errors import NotFound, PermissionDenied
from store.models.enums import Surface
from store.services import approvals as approval_service
from store.services import history as history_service
from tests import factories as f
from tools import TOOLS, ToolContext

EVIDENCE = "Ines wrote: the board cut our budget, keep it quiet until Friday"


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


@pytest.fixture
def deal(session, w):  # type: ignore[no-untyped-def]
    d = f.create(session, w.priya, "deal", name="Borealis fleet", amount=Decimal("48000"))
    session.commit()
    return d


def propose(session, user, deal, thread="t"):  # type: ignore[no-untyped-def]
    """Priya's agent proposes a change to her deal, quoting a private email as its evidence."""
    ctx = ToolContext(actor=f.actor(user, Surface.agent), session=session, thread_id=thread)
    proposed = gate.propose(ctx, tool_name="update_deal", tool_call_id="c1",
                            raw_args={"deal_id": str(deal.id), "amount": "30000", "stage": "Negotiation"},
                            evidence=[{"source": "email", "quote": EVIDENCE}])
    session.commit()
    assert proposed.pending
    return proposed.approval


def test_over_http_a_teammate_never_sees_a_reps_proposal_pending_or_decided(session, http, w, deal) -> None:
    approval = propose(session, w.priya, deal)
    pid = str(approval.id)
    clients = {name: f.api(session, http, getattr(w, name))
               for name in ("priya", "raj", "dana", "eve", "admin", "other_admin")}

    def listed(name: str, **params: str) -> list[str]:
        r = clients[name].get("/approvals", params={"limit": 200, **params})
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    for decided in (False, True):
        for name in ("priya", "dana", "admin"):  # who asked, her manager, an admin
            assert pid in listed(name), name
            got = clients[name].get(f"/approvals/{pid}")
            assert got.status_code == 200 and got.json()["evidence"][0]["quote"] == EVIDENCE
            assert clients[name].get(f"/approvals/{pid}/history").status_code == 200
        for name in ("raj", "eve", "other_admin"):  # her teammate, another team, another workspace
            assert pid not in listed(name), name
            assert pid not in listed(name, requested_by_id=str(w.priya.id)), name
            assert clients[name].get(f"/approvals/{pid}").status_code == 404, name
            assert clients[name].get(f"/approvals/{pid}/history").status_code == 404, name
            assert pid not in [a["id"] for a in clients[name].get("/approvals/waiting").json()], name
        if not decided:
            assert pid in [a["id"] for a in clients["priya"].get("/approvals/waiting").json()]
            assert pid in [a["id"] for a in clients["dana"].get("/approvals/waiting").json()]
            r = clients["priya"].post(f"/approvals/{pid}/decision", json={"kind": "approve"})
            assert r.status_code == 200, r.text


def test_the_old_inbox_path_answers_as_a_deprecated_alias_of_approvals_waiting(session, app, http, w, deal) -> None:
    """GET /api/v1/inbox was the approval queue's path; "inbox" now means the mail inbox only, and the
    old path stays so no client breaks: the same answer for each reader, marked deprecated in the API docs."""
    pid = str(propose(session, w.priya, deal).id)
    for name in ("priya", "dana", "raj"):
        client = f.api(session, http, getattr(w, name))
        new, old = client.get("/approvals/waiting"), client.get("/inbox")
        assert new.status_code == old.status_code == 200, name
        assert old.json() == new.json(), name
        assert (pid in [a["id"] for a in new.json()]) == (name != "raj"), name
    paths = app.openapi()["paths"]
    assert not paths["/api/v1/approvals/waiting"]["get"].get("deprecated")
    assert paths["/api/v1/inbox"]["get"]["deprecated"] is True
    assert "/approvals/waiting" in paths["/api/v1/inbox"]["get"]["summary"]


def test_a_conversation_shows_only_the_proposals_its_reader_may_see(session, w, deal) -> None:
    approval = propose(session, w.priya, deal, thread="api:priya:t")

    def seen(user) -> list:  # type: ignore[no-untyped-def]
        return [a.id for a in approval_service.for_thread(session, actor=f.actor(user), thread_id="api:priya:t")]

    assert seen(w.priya) == seen(w.dana) == seen(w.admin) == [approval.id]
    assert seen(w.raj) == seen(w.eve) == []
    with pytest.raises(NotFound):
        approval_service.get(session, actor=f.actor(w.raj), id=approval.id)


def test_crm_chat_waiting_shows_a_teammate_nothing_and_the_manager_the_proposal(session, w, deal, ingestion) -> None:
    from channels.cli_chat import ChatSession

    approval = propose(session, w.priya, deal)

    def waiting(user) -> str:  # type: ignore[no-untyped-def]
        said: list[str] = []
        script = iter(["/waiting", "s", "/quit"])
        ChatSession(runner=ingestion.runner, actor=f.actor(user, Surface.cli), thread="t", ask=lambda _: next(script),
                    say=lambda text: said.append(str(text))).run()
        return "\n".join(said)

    assert "nothing waits for your decision" in waiting(w.raj) and approval.summary not in waiting(w.raj)
    shown = waiting(w.dana)
    assert "1 proposal(s) wait for your decision" in shown and approval.summary in shown and EVIDENCE in shown


def test_why_is_it_here_answers_the_rep_with_the_evidence_and_a_teammate_without(session, w, deal) -> None:
    approval = propose(session, w.priya, deal)
    gate.decide(session, actor=f.actor(w.priya), approval_id=approval.id, kind="approve")
    session.commit()

    def why(user) -> str:  # type: ignore[no-untyped-def]
        ctx = ToolContext(actor=f.actor(user, Surface.agent), session=session)
        tool = TOOLS["record_history"]
        return str(tool.run(ctx, tool.parse({"kind": "deal", "id": str(deal.id), "field": "stage_id"})))

    mine = why(w.priya)
    assert "stage_id: Qualification -> Negotiation" in mine
    assert "approved by Priya Raman" in mine and EVIDENCE in mine
    assert EVIDENCE in why(w.dana)  # her manager may decide her proposals: he reads them
    teammate = why(w.raj)  # Raj reads Priya's deal (team read), not her proposal's evidence
    assert "stage_id: Qualification -> Negotiation" in teammate
    assert "made from a proposal you cannot see" in teammate and EVIDENCE not in teammate
    with pytest.raises(NotFound):
        why(w.eve)


def test_the_whole_audit_log_is_for_admins_at_every_door(session, http, w, deal) -> None:
    for user in (w.priya, w.dana):
        with pytest.raises(PermissionDenied, match="only admins"):
            history_service.workspace_log(session, actor=f.actor(user))
        r = f.api(session, http, user).get("/audit-log")
        assert r.status_code == 403 and "history" in r.json()["message"]
    entries = f.api(session, http, w.admin).get("/audit-log", params={"entity_type": "deal"}).json()
    assert [e["entity_id"] for e in entries] == [str(deal.id)]
    assert [e.entity_id for e in history_service.of_record(session, actor=f.actor(w.raj), entity="deal",
                                                           id=deal.id)] == [deal.id]
