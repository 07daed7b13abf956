"""The approval gate without a model: proposals, policy, decisions, exactly once."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from agents import gate
from store.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from store.models import Activity, AuditLog, Deal, Quote, QuoteLineItem, Task, Workspace
from store.models.enums import ApprovalStatus, QuoteStatus, Surface
from store.services import approvals as approval_service
from tests import factories as f
from tools import ToolContext


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


@pytest.fixture
def deal(session, w):  # type: ignore[no-untyped-def]
    co = f.create(session, w.priya, "company", name="Borealis Logistics", domain="borealis.example")
    d = f.create(session, w.priya, "deal", name="Borealis fleet", amount=Decimal("48000"), company_id=co.id)
    session.commit()
    return d


def ctx_for(session, user, thread="t") -> ToolContext:  # type: ignore[no-untyped-def]
    return ToolContext(actor=f.actor(user, Surface.agent), session=session, thread_id=thread)


def propose(session, user, tool, args, call="c1", thread="t"):  # type: ignore[no-untyped-def]
    proposed = gate.propose(ctx_for(session, user, thread), tool_name=tool, raw_args=args, tool_call_id=call,
                            evidence=[{"source": "chat", "quote": "borealis is 62k now"}])
    session.commit()
    return proposed


def test_a_write_is_only_a_proposal_until_approved(session, w, deal) -> None:
    p = propose(session, w.priya, "update_deal", {"deal_id": str(deal.id), "amount": "62000", "next_step": "quote"})
    assert p.pending and p.approval.summary.startswith("Update deal Borealis fleet")
    assert {"field": "amount", "before": "48,000", "after": "62,000"} in p.approval.diff
    assert p.approval.evidence[0]["quote"] == "borealis is 62k now"
    session.refresh(deal)
    assert deal.amount == Decimal("48000.00")  # nothing written yet

    approval = gate.decide(session, actor=f.actor(w.priya), approval_id=p.approval.id, kind="approve")
    session.commit()
    session.refresh(deal)
    assert approval.status == ApprovalStatus.executed and deal.amount == Decimal("62000.00")
    entry = session.scalar(select(AuditLog).where(AuditLog.entity_id == deal.id, AuditLog.action == "update"))
    assert entry.approval_id == approval.id and entry.actor_id == w.priya.id
    assert entry.after == {"amount": "62000", "next_step": "quote"}

    with pytest.raises(Conflict, match="already decided"):
        gate.decide(session, actor=f.actor(w.priya), approval_id=approval.id, kind="approve")
    assert session.scalars(select(AuditLog).where(AuditLog.approval_id == approval.id)).all() == [entry]


def test_proposing_is_idempotent_per_tool_call(session, w, deal) -> None:
    first = propose(session, w.priya, "create_task", {"title": "Send quote"}, call="same")
    again = propose(session, w.priya, "create_task", {"title": "Send quote"}, call="same")
    assert first.approval.id == again.approval.id


def test_edit_is_revalidated_and_recorded(session, w, deal) -> None:
    p = propose(session, w.priya, "create_task", {"title": "Send revised quote", "deal_id": str(deal.id),
                                                  "due_date": "2026-11-26"})
    with pytest.raises(ValidationFailed, match="due_date"):
        gate.decide(session, actor=f.actor(w.priya), approval_id=p.approval.id, kind="edit",
                    args={"due_date": "Wednesday-ish"})
    assert p.approval.status == ApprovalStatus.pending  # a bad edit changes nothing
    approval = gate.decide(session, actor=f.actor(w.priya), approval_id=p.approval.id, kind="edit",
                           args={"due_date": "2026-11-25"})
    session.commit()
    assert approval.status == ApprovalStatus.executed, approval.error
    task = session.scalar(select(Task).where(Task.title == "Send revised quote"))
    assert task.due_at.date().isoformat() == "2026-11-25" and task.deal_id == deal.id
    assert approval.decision["kind"] == "edit" and approval.decision["original_args"]["due_date"] == "2026-11-26"
    assert "with the user's edits" in gate.outcome_message(session, approval)
    # The proposal now reads as what was approved; the original is kept in the decision.
    assert "due Wed 2026-11-25" in approval.summary and "Thu" in approval.decision["original_summary"]


def test_reject_and_respond_write_nothing_and_tell_the_agent(session, w, deal) -> None:
    p1 = propose(session, w.priya, "update_deal", {"deal_id": str(deal.id), "stage": "Closed Lost"}, call="a")
    p2 = propose(session, w.priya, "update_deal", {"deal_id": str(deal.id), "amount": "1"}, call="b")
    gate.decide(session, actor=f.actor(w.priya), approval_id=p1.approval.id, kind="reject", reason="not lost yet")
    gate.decide(session, actor=f.actor(w.priya), approval_id=p2.approval.id, kind="respond",
                message="the amount is 62k, not 1")
    session.commit()
    session.refresh(deal)
    assert deal.amount == Decimal("48000.00") and deal.closed_at is None
    assert "Reason: not lost yet" in gate.outcome_message(session, p1.approval)
    assert "the amount is 62k, not 1" in gate.outcome_message(session, p2.approval)
    with pytest.raises(ValidationFailed):
        p3 = propose(session, w.priya, "create_task", {"title": "x"}, call="c")
        gate.decide(session, actor=f.actor(w.priya), approval_id=p3.approval.id, kind="respond", message=" ")


def test_only_an_allowed_approver_decides(session, w, deal) -> None:
    p = propose(session, w.priya, "update_deal", {"deal_id": str(deal.id), "amount": "62000"})
    for outsider in (w.raj, w.eve):  # a teammate, another team
        with pytest.raises(PermissionDenied, match="not yours to approve"):
            gate.decide(session, actor=f.actor(outsider), approval_id=p.approval.id, kind="approve")
    with pytest.raises(NotFound):  # another workspace does not even find it
        gate.decide(session, actor=f.actor(w.other_admin), approval_id=p.approval.id, kind="approve")
    with pytest.raises(NotFound):  # and reading its details is for those who asked or decide
        approval_service.get(session, actor=f.actor(w.eve), id=p.approval.id)
    assert [a.id for a in approval_service.pending(session, actor=f.actor(w.dana))] == [p.approval.id]
    gate.decide(session, actor=f.actor(w.dana), approval_id=p.approval.id, kind="approve")  # her team
    session.commit()
    assert p.approval.status == ApprovalStatus.executed and p.approval.decided_by_id == w.dana.id


def test_large_discount_waits_for_a_manager(session, w, deal) -> None:
    # "Platform" is the catalogue's: its price is the list price (a free-text price would be an override).
    f.create(session, w.admin, "product", name="Platform", unit_price=Decimal("48000"))
    args = {"deal_id": str(deal.id), "discount_percent": "30",
            "line_items": [{"description": "Platform", "quantity": "1", "unit_price": "48000"}]}
    p = propose(session, w.priya, "create_quote", args)
    assert p.pending and p.approval.approver_role == "manager" and "needs a manager" in p.approval.summary
    assert approval_service.pending(session, actor=f.actor(w.priya)) == []  # not hers to approve
    with pytest.raises(PermissionDenied):
        gate.decide(session, actor=f.actor(w.priya), approval_id=p.approval.id, kind="approve")
    gate.decide(session, actor=f.actor(w.dana), approval_id=p.approval.id, kind="approve")
    session.commit()
    assert p.approval.status == ApprovalStatus.executed
    assert Decimal(p.approval.result["total"]) == Decimal("33600.00")
    # Dana approved the proposal, so the quote is approved (ready to send), not waiting again.
    assert session.get(Quote, uuid.UUID(p.approval.result["id"])).status == QuoteStatus.approved
    small = propose(session, w.priya, "create_quote", {**args, "discount_percent": "10"}, call="c2")
    assert small.approval.approver_id == w.priya.id and small.approval.approver_role is None
    # Priya cannot edit her small-discount quote past the threshold and approve it herself.
    with pytest.raises(PermissionDenied, match="needs a manager"):
        gate.decide(session, actor=f.actor(w.priya), approval_id=small.approval.id, kind="edit",
                    args={"discount_percent": "40"})
    assert small.approval.status == ApprovalStatus.pending
    gate.decide(session, actor=f.actor(w.dana), approval_id=small.approval.id, kind="edit",
                args={"discount_percent": "40"})  # her manager may
    assert small.approval.status == ApprovalStatus.executed


def test_a_price_below_the_catalogue_is_a_discount_that_needs_a_manager(session, w, deal) -> None:
    api_addon = f.create(session, w.admin, "product", name="API access", sku="API-ADD", unit_price=Decimal("6000"))
    cheap = {"deal_id": str(deal.id),
             "line_items": [{"product_id": str(api_addon.id), "quantity": "2", "unit_price": "1"}]}
    p = propose(session, w.priya, "create_quote", cheap)
    assert p.pending and p.approval.approver_role == "manager"
    assert "99.98% off the list price 12,000.00" in p.approval.summary
    assert "not the catalogue's 6,000.00" in p.approval.summary
    with pytest.raises(PermissionDenied, match="not yours to approve"):
        gate.decide(session, actor=f.actor(w.priya), approval_id=p.approval.id, kind="approve")
    assert session.scalar(select(func.count()).select_from(Quote)) == 0
    gate.decide(session, actor=f.actor(w.dana), approval_id=p.approval.id, kind="approve")
    session.commit()
    quote = session.get(Quote, uuid.UUID(p.approval.result["id"]))
    assert quote.total == Decimal("2.00") and quote.status == QuoteStatus.approved  # Dana's call, made knowingly
    line = session.scalars(select(QuoteLineItem).where(QuoteLineItem.quote_id == quote.id)).one()
    assert (line.list_price, line.unit_price) == (Decimal("6000.00"), Decimal("1.00"))


def test_an_edit_that_lowers_a_price_needs_a_manager(session, w, deal) -> None:
    api_addon = f.create(session, w.admin, "product", name="API access", sku="API-ADD", unit_price=Decimal("6000"))
    at_list = {"deal_id": str(deal.id), "line_items": [{"product_id": str(api_addon.id), "quantity": "2"}]}
    p = propose(session, w.priya, "create_quote", at_list)
    assert p.approval.approver_id == w.priya.id and p.approval.approver_role is None
    lowered = {"line_items": [{"product_id": str(api_addon.id), "quantity": "2", "unit_price": "1"}]}
    with pytest.raises(PermissionDenied, match="not the catalogue's 6,000.00"):
        gate.decide(session, actor=f.actor(w.priya), approval_id=p.approval.id, kind="edit", args=lowered)
    assert "12,000.00 USD (0% off the list price 12,000.00)" in p.approval.summary
    assert p.approval.status == ApprovalStatus.pending
    assert session.scalar(select(func.count()).select_from(Quote)) == 0
    gate.decide(session, actor=f.actor(w.priya), approval_id=p.approval.id, kind="approve")  # as proposed
    quote = session.get(Quote, uuid.UUID(p.approval.result["id"]))
    assert quote.total == Decimal("12000.00") and quote.status == QuoteStatus.approved


def test_the_quote_service_holds_when_a_proposal_was_approved_by_someone_without_the_right(session, w, deal) -> None:
    # A workspace auto-approves quotes; a rep's quote over the threshold still waits for a manager
    # (the gate does not auto-approve it), and one approved by the rep herself does not get past the store.
    ws = session.get(Workspace, w.ws.id)
    ws.settings = {"approvals": {"auto_approve": ["create_quote"]}}
    platform = f.create(session, w.admin, "product", name="Platform", unit_price=Decimal("1000"))
    session.commit()
    big = propose(session, w.priya, "create_quote", {"deal_id": str(deal.id), "discount_percent": "30",
                                                     "line_items": [{"product_id": str(platform.id)}]})
    assert big.pending and big.approval.approver_role == "manager"
    ws.settings = {"approvals": {"manager_discount_percent": 40}}  # within Priya's limit when proposed...
    session.commit()
    later = propose(session, w.priya, "create_quote", {"deal_id": str(deal.id), "discount_percent": "30",
                                                       "line_items": [{"product_id": str(platform.id)}]}, call="c2")
    assert later.approval.approver_id == w.priya.id
    ws.settings = {}  # ...and not any more when she approves it
    session.commit()
    gate.decide(session, actor=f.actor(w.priya), approval_id=later.approval.id, kind="approve")
    quote = session.get(Quote, uuid.UUID(later.approval.result["id"]))
    assert quote.status == QuoteStatus.pending_approval  # created, and waiting for Dana
    (waiting,) = [a for a in approval_service.pending(session, actor=f.actor(w.dana)) if a.tool == "approve_quote"]
    assert waiting.args == {"quote_id": str(quote.id)} and "needs a manager" in waiting.summary


def test_approving_a_quote_through_the_agent_follows_the_same_rules(session, w, deal) -> None:
    from store.services import quotes as quotes_service

    platform = f.create(session, w.admin, "product", name="Platform", unit_price=Decimal("1000"))
    quote = f.create(session, w.priya, "quote", deal_id=deal.id, discount_percent=Decimal(30),
                     line_items=[{"product_id": platform.id, "quantity": 10}])
    session.commit()
    p = propose(session, w.priya, "approve_quote", {"quote_id": str(quote.id)})
    assert p.pending and p.approval.approver_role == "manager" and "needs a manager" in p.approval.summary
    gate.decide(session, actor=f.actor(w.dana), approval_id=p.approval.id, kind="approve")
    session.commit()
    session.refresh(quote)
    assert p.approval.status == ApprovalStatus.executed and quote.status == QuoteStatus.approved
    quotes_service.transition(session, actor=f.actor(w.priya), id=quote.id, to=QuoteStatus.sent)
    late = propose(session, w.priya, "approve_quote", {"quote_id": str(quote.id)}, call="c2")
    assert late.approval is None and "is sent: it can move to accepted, declined, expired" in late.message


def test_auto_approve_only_what_the_workspace_names(session, w, deal) -> None:
    ws = session.get(Workspace, w.ws.id)
    ws.settings = {"approvals": {"auto_approve": ["create_task"]}}
    session.commit()
    task = propose(session, w.priya, "create_task", {"title": "Call back"}, call="t1")
    assert task.approval.status == ApprovalStatus.executed and "auto-approved" in task.message
    other = propose(session, w.priya, "update_deal", {"deal_id": str(deal.id), "amount": "1"}, call="t2")
    assert other.pending


def test_bad_calls_become_sentences_not_proposals(session, w, deal) -> None:
    theirs = f.create(session, w.eve, "deal", name="East deal")
    session.commit()
    cases = [
        ("update_deal", {"deal_id": str(theirs.id), "amount": "1"}, "no deal with id"),  # another team's
        ("update_deal", {"deal_id": str(deal.id), "stage": "Heaven"}, "Qualification"),
        ("update_deal", {"deal_id": "not-a-uuid", "amount": "1"}, "deal_id: Input should be a valid UUID"),
        ("create_task", {}, "Invalid arguments: title"),
        ("log_activity", {"type": "call", "subject": "x"}, "at least one contact"),
        ("drop_database", {}, "no write tool"),
        ("update_deal", {"deal_id": str(deal.id), "amount": "48000"}, "nothing would change"),
    ]
    for i, (tool, args, needle) in enumerate(cases):
        p = propose(session, w.priya, tool, args, call=f"bad{i}")
        assert p.approval is None and needle in p.message, (tool, p.message)
    assert session.scalar(select(Deal.amount).where(Deal.id == theirs.id)) is None


def test_a_failed_execution_leaves_nothing_half_written(session, w, deal) -> None:
    p = propose(session, w.priya, "log_activity", {"type": "call", "subject": "Call", "deal_ids": [str(deal.id)]})
    session.delete(session.get(Deal, deal.id))  # the deal goes away before approval
    session.commit()
    approval = gate.decide(session, actor=f.actor(w.priya), approval_id=p.approval.id, kind="approve")
    session.commit()
    assert approval.status == ApprovalStatus.failed and "deal" in approval.error
    assert session.scalars(select(Activity)).all() == []
    assert "Nothing was changed" in gate.outcome_message(session, approval)


def test_unknown_proposal_is_not_found(session, w) -> None:
    with pytest.raises(NotFound):
        gate.decide(session, actor=f.actor(w.priya), approval_id=uuid.uuid4(), kind="approve")
