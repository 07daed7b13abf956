"""The approval gate: a write tool call becomes a stored proposal; a human decision runs it once.

Decisions: approve; edit (changed arguments, validated again before anything happens);
reject (with a reason the agent is told); respond (free text back to the agent, nothing
written). The write runs as the user who asked (never with more rights), inside a
savepoint of the deciding transaction, so the write, its audit entries (naming the
proposal) and the proposal's outcome commit together or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session

from store import normalize
from store.actor import Actor
from store.audit import jsonable
from store.errors import CRMError, ValidationFailed
from store.models import Approval
from store.models.enums import ApprovalStatus
from store.services import approvals as approval_service
from store.services.org import actor_for_user, user_by_id
from tools import TOOLS, ToolContext, error_sentence

DecisionKind = Literal["approve", "edit", "reject", "respond"]


@dataclass
class Proposed:
    tool_call_id: str
    approval: Approval | None  # None when the call was refused before becoming a proposal
    message: str  # what the agent is told now (an error, or that it awaits approval)

    @property
    def pending(self) -> bool:
        return self.approval is not None and self.approval.status == ApprovalStatus.pending


def propose(ctx: ToolContext, *, tool_name: str, raw_args: dict[str, Any], tool_call_id: str,
            evidence: list[dict[str, Any]]) -> Proposed:
    """Validate and preview a write; store it as a proposal. Idempotent per (thread, tool call)."""
    tool = TOOLS.get(tool_name)
    if tool is None or tool.kind != "write":
        return Proposed(tool_call_id, None, f"Error: there is no write tool '{tool_name}'.")
    try:
        args = tool.parse(raw_args)
        normalize.storable(args.model_dump(mode="json"))  # the rule every door applies, before it is stored
        preview = tool.preview(ctx, args)  # type: ignore[misc]
    except (ValidationError, CRMError) as exc:
        return Proposed(tool_call_id, None, error_sentence(exc))
    except Exception as exc:  # noqa: BLE001  (the model gets a sentence, the user no crash)
        return Proposed(tool_call_id, None, error_sentence(exc))
    needs_manager = preview.needs_role == "manager"
    approval = approval_service.propose(
        ctx.session, actor=ctx.actor, tool=tool.name, args=jsonable(args.model_dump(mode="json", exclude_none=True)),
        summary=preview.summary + (f" (needs a manager: {preview.reason})" if needs_manager else ""),
        diff=preview.diff, evidence=evidence, thread_id=ctx.thread_id, tool_call_id=tool_call_id,
        needs_manager=needs_manager,
        source_ref={"record": preview.record} if preview.record else None,
    )
    if approval.status == ApprovalStatus.pending and approval_service.may_auto_approve(
            ctx.session, workspace_id=ctx.actor.workspace_id, tool=tool.name, approver_role=approval.approver_role):
        decide(ctx.session, actor=ctx.actor, approval_id=approval.id, kind="approve", auto=True)
    return Proposed(tool_call_id, approval, outcome_message(ctx.session, approval))


def decide(session: Session, *, actor: Actor, approval_id: uuid.UUID, kind: DecisionKind,
           args: dict[str, Any] | None = None, reason: str | None = None, message: str | None = None,
           auto: bool = False) -> Approval:
    """Apply a human decision. Raises Conflict if already decided, PermissionDenied if not theirs."""
    approval = approval_service.get_to_decide(session, actor=actor, id=approval_id)
    if kind in ("reject", "respond"):
        text = (reason if kind == "reject" else message) or ""
        if kind == "respond" and not text.strip():
            raise ValidationFailed("a response needs a message for the agent", field="message")
        approval_service.claim(session, actor=actor, approval=approval, status=ApprovalStatus.rejected,
                               decision={"kind": kind, "text": text})
        return approval
    if kind not in ("approve", "edit"):
        raise ValidationFailed(f"unknown decision '{kind}': approve, edit, reject or respond", field="kind")
    approval_service.check_may_decide(session, actor=actor, approval=approval)  # before parsing edits
    tool = TOOLS[approval.tool]
    final = {**approval.args, **(args or {})} if kind == "edit" else approval.args
    try:
        parsed = tool.parse(final)  # an edit is validated before anything is claimed or written
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValidationFailed(f"the edited values are not valid ({problems}); nothing was changed",
                               field="args") from exc
    requester = approval.requester
    as_requester = (Actor(**{**actor_for_user(requester, approval.surface).__dict__, "approval_id": approval.id})
                    if requester is not None else None)
    decision: dict[str, Any] = {"kind": "auto" if auto else kind}
    if kind == "edit" and as_requester is not None:
        # What is approved is what the card now shows: preview the edited arguments again.
        try:
            preview = tool.preview(ToolContext(actor=as_requester, session=session,  # type: ignore[misc]
                                               thread_id=approval.thread_id), parsed)
        except CRMError as exc:
            raise ValidationFailed(f"the edit cannot be applied: {exc.message}; nothing was changed",
                                   field="args") from exc
        approval_service.check_edit(session, actor=actor, approval=approval, needs_role=preview.needs_role,
                                    reason=preview.reason)
        decision |= {"args": jsonable(parsed.model_dump(mode="json", exclude_none=True)),
                     "original_args": approval.args, "original_summary": approval.summary}
    approval_service.claim(session, actor=actor, approval=approval, status=ApprovalStatus.approved,
                           decision=decision)
    if kind == "edit" and as_requester is not None:
        approval.summary, approval.diff = preview.summary, preview.diff
    if requester is None or as_requester is None or not requester.is_active:
        approval_service.finish(session, approval=approval, error="the user who asked for it is no longer active")
        return approval
    ctx = ToolContext(actor=as_requester, session=session, thread_id=approval.thread_id)
    savepoint = session.begin_nested()
    try:
        result = tool.run(ctx, parsed)
        savepoint.commit()
    except Exception as exc:  # noqa: BLE001  (any failure is recorded on the proposal, not lost)
        savepoint.rollback()
        approval_service.finish(session, approval=approval, error=error_sentence(exc))
        return approval
    approval_service.finish(session, approval=approval, result=jsonable(result))
    return approval


def outcome_message(session: Session, approval: Approval) -> str:
    """What the agent is told about a proposal, in one or two sentences."""
    decider = user_by_id(session, approval.decided_by_id)
    who = decider.name if decider else "the user"
    kind = approval.decision.get("kind")
    if approval.status == ApprovalStatus.pending:
        waits = "a manager" if approval.approver_role == "manager" else "the user"
        return f"Proposed, waiting for approval by {waits}: {approval.summary}"
    if approval.status == ApprovalStatus.executed:
        edited = " (with the user's edits)" if kind == "edit" else " (auto-approved)" if kind == "auto" else ""
        label = approval.result.get("label")
        return f"Done{edited}: {approval.summary}" + (f" -> {label}" if label and label not in approval.summary else "")
    if approval.status == ApprovalStatus.failed:
        return f"Approved but it failed: {approval.error} Nothing was changed."
    if kind == "respond":
        return f"{who} did not approve '{approval.summary}' and replied: {approval.decision.get('text')}"
    reason = approval.decision.get("text") or "no reason given"
    return f"Rejected by {who}: {approval.summary}. Reason: {reason}. Nothing was changed."
