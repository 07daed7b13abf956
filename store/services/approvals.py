"""Proposals waiting for a human, and the one conditional UPDATE that makes deciding exactly-once.

Who may decide a proposal:
- `approver_id` set: that user (normally the rep who asked), or their manager, or an admin;
- `approver_role` "manager" (a named case, e.g. a large quote discount): a manager of the
  requester's team or an admin, never a rep who asked.

The workspace's policy lives in its settings: `{"approvals": {"auto_approve": [tool, ...],
"manager_discount_percent": 20}}` (the threshold itself is applied by store/services/quotes.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, update
from sqlalchemy.orm import Session, selectinload

from store import normalize
from store.actor import Actor
from store.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from store.models import Approval, User, Workspace
from store.models.enums import ApprovalStatus, Role
from store.types import utcnow

# tool -> hook(session, decider, proposal), run when a pending proposal of that tool is rejected or
# answered, so that the record waiting on it follows (a submitted quote goes back to draft).
AFTER_REJECT: dict[str, Callable[[Session, Actor, Approval], None]] = {}


# Every proposal this service hands out comes with who asked and who decided (the relationships raise
# when a query did not load them).
PEOPLE = (selectinload(Approval.requester), selectinload(Approval.decider))


def _reload(session: Session, approval: Approval) -> None:
    """Read the proposal again after a conditional UPDATE, with its people."""
    session.scalar(select(Approval).where(Approval.id == approval.id).options(*PEOPLE)
                   .execution_options(populate_existing=True))


def policy(workspace: Workspace | None) -> dict[str, Any]:
    """The workspace's approval settings (an empty policy: every write asks its requester)."""
    settings = (workspace.settings if workspace else None) or {}
    value = settings.get("approvals") if isinstance(settings, dict) else None
    return dict(value) if isinstance(value, dict) else {}


def percent(value: Any) -> Decimal:
    """A percentage from the approval settings, or a sentence saying what to fix."""
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or not Decimal(0) <= number <= Decimal(100):
        raise ValidationFailed(f"settings.approvals.manager_discount_percent must be a number from 0 to 100, "
                               f"not {value!r}; an admin sets it with PATCH /api/v1/workspace", field="settings")
    return number


def check_policy(settings: dict[str, Any]) -> None:
    """Refuse approval settings that the gate and the quote policy could not apply."""
    value = settings.get("approvals")
    if value is None:
        return
    if not isinstance(value, dict):
        raise ValidationFailed('settings.approvals must be an object, e.g. {"auto_approve": ["create_task"], '
                               '"manager_discount_percent": 20}', field="settings")
    if value.get("manager_discount_percent") is not None:
        percent(value["manager_discount_percent"])
    auto = value.get("auto_approve", [])
    if not isinstance(auto, list) or not all(isinstance(t, str) for t in auto):
        raise ValidationFailed("settings.approvals.auto_approve must be a list of tool names", field="settings")


def may_auto_approve(session: Session, *, workspace_id: uuid.UUID, tool: str, approver_role: str | None) -> bool:
    """Only tools the workspace named run without asking, and never a proposal that needs a manager."""
    if approver_role is not None:
        return False
    return tool in (policy(session.get(Workspace, workspace_id)).get("auto_approve") or [])


def propose(session: Session, *, actor: Actor, tool: str, args: dict[str, Any], summary: str,
            diff: list[dict[str, Any]], evidence: list[dict[str, Any]], thread_id: str | None,
            tool_call_id: str | None, needs_manager: bool = False, approver_id: uuid.UUID | None = None,
            source_ref: dict[str, Any] | None = None) -> Approval:
    """Store a proposal. The same (thread, tool call) twice returns the first one.

    Who decides it is set here: a manager of the requester's team (or an admin) when it
    `needs_manager`, else `approver_id` (default: the requester herself)."""
    if thread_id and tool_call_id:
        existing = session.scalar(select(Approval).where(Approval.thread_id == thread_id,
                                                         Approval.tool_call_id == tool_call_id))
        if existing is not None:
            return existing
    approval = Approval(
        workspace_id=actor.workspace_id, thread_id=thread_id, tool_call_id=tool_call_id, tool=tool, args=args,
        summary=summary, diff=diff, evidence=evidence, surface=actor.surface, source_ref=source_ref or {},
        requested_by_id=actor.user_id, approver_id=None if needs_manager else (approver_id or actor.user_id),
        approver_role="manager" if needs_manager else None,
    )
    session.add(approval)
    session.flush()
    return approval


def _team_of(user_id: Any) -> Any:
    return select(User.team_id).where(User.id == user_id).scalar_subquery()


def decidable_by(actor: Actor) -> ColumnElement[bool]:
    """SQL: proposals this actor may decide."""
    if actor.is_admin:
        return Approval.workspace_id == actor.workspace_id
    if actor.user_id is None:
        return false()
    clauses: list[Any] = [and_(Approval.approver_id == actor.user_id, Approval.approver_role.is_(None))]
    if actor.role == Role.manager and actor.team_id is not None:
        in_my_team = _team_of(Approval.requested_by_id) == actor.team_id
        clauses.append(in_my_team)
    return and_(Approval.workspace_id == actor.workspace_id, or_(*clauses))


def visible_to(actor: Actor) -> ColumnElement[bool]:
    """SQL: proposals this actor may see: what they asked for and what they may decide."""
    return or_(decidable_by(actor), and_(Approval.workspace_id == actor.workspace_id,
                                         Approval.requested_by_id == actor.user_id))


def approval_by_id(session: Session, approval_id: uuid.UUID) -> Approval | None:
    """A proposal by id, for the door that already holds it (a card, a job's result); no visibility
    check: deciding it goes through `get_to_decide` and `claim`."""
    return session.scalar(select(Approval).where(Approval.id == approval_id).options(*PEOPLE))


def get(session: Session, *, actor: Actor, id: uuid.UUID) -> Approval:
    approval = session.scalar(select(Approval).where(Approval.id == id, visible_to(actor)).options(*PEOPLE))
    if approval is None:
        raise NotFound(f"no proposal with id {id}", entity="approval", id=str(id))
    return approval


def get_to_decide(session: Session, *, actor: Actor, id: uuid.UUID) -> Approval:
    """A proposal in the actor's workspace; whether they may decide it is checked by `claim`,
    so whoever holds a card they may not decide hears "not yours to approve", not "not found"."""
    approval = session.scalar(select(Approval).where(Approval.id == id, Approval.workspace_id == actor.workspace_id)
                              .options(*PEOPLE))
    if approval is None:
        raise NotFound(f"no proposal with id {id}", entity="approval", id=str(id))
    return approval


def pending(session: Session, *, actor: Actor, thread_id: str | None = None) -> Sequence[Approval]:
    """The actor's approval queue: pending proposals they may decide, oldest first."""
    query = select(Approval).where(decidable_by(actor), Approval.status == ApprovalStatus.pending)
    if thread_id is not None:
        query = query.where(Approval.thread_id == thread_id)
    return session.scalars(query.options(*PEOPLE).order_by(Approval.created_at, Approval.id)).all()


def pending_in_workspace(session: Session, *, workspace_id: uuid.UUID) -> Sequence[Approval]:
    """Every pending proposal of the workspace, oldest first: the evals' stand-in for the humans who
    decide them, never a door's (a door lists `pending` for its actor)."""
    return session.scalars(select(Approval).where(Approval.workspace_id == workspace_id,
                                                  Approval.status == ApprovalStatus.pending)
                           .options(*PEOPLE).order_by(Approval.created_at, Approval.id)).all()


def for_thread(session: Session, *, actor: Actor, thread_id: str,
               tool_call_ids: Sequence[str] | None = None) -> Sequence[Approval]:
    """The proposals of a conversation that the actor may see (its own user's: all of them)."""
    query = select(Approval).where(visible_to(actor), Approval.thread_id == thread_id)
    if tool_call_ids is not None:
        query = query.where(Approval.tool_call_id.in_(tool_call_ids))
    return session.scalars(query.options(*PEOPLE).order_by(Approval.created_at, Approval.id)).all()


def managers_to_ask(session: Session, *, approval: Approval) -> list[uuid.UUID]:
    """The active managers who may decide a pending proposal that needs a manager (each gets it
    brought to them); none for a proposal its requester decides."""
    if approval.approver_role != "manager" or approval.status != ApprovalStatus.pending \
            or approval.requested_by_id is None:
        return []
    return list(session.scalars(select(User.id).where(
        User.workspace_id == approval.workspace_id, User.team_id == _team_of(approval.requested_by_id),
        User.role == Role.manager, User.is_active.is_(True)).order_by(User.name)))


def check_may_decide(session: Session, *, actor: Actor, approval: Approval) -> None:
    allowed = session.scalar(select(Approval.id).where(Approval.id == approval.id, decidable_by(actor)))
    if allowed is None:
        who = "a manager of the requester's team" if approval.approver_role == "manager" else "the requester"
        raise PermissionDenied(f"not yours to approve: this proposal waits for {who} (or an admin)")


def check_edit(session: Session, *, actor: Actor, approval: Approval, needs_role: str | None,
               reason: str | None) -> None:
    """An edit must not turn a proposal its decider may approve into one they may not (a rep
    raising her own quote's discount past the manager threshold and approving it herself)."""
    if needs_role == "manager" and approval.approver_role != "manager" and not (
            actor.is_admin or actor.role == Role.manager):
        raise PermissionDenied(f"with this edit the proposal needs a manager ({reason}); "
                               "nothing was changed: reject it and ask again, or approve it as it was")


def claim(session: Session, *, actor: Actor, approval: Approval, status: ApprovalStatus,
          decision: dict[str, Any]) -> None:
    """Move a pending proposal to `status`, or raise Conflict if someone already decided it.

    A conditional UPDATE, so of two clicks (or a retried webhook) racing, exactly one wins:
    the other's WHERE status='pending' matches no row.
    """
    check_may_decide(session, actor=actor, approval=approval)
    normalize.storable(decision)  # a rejection's reason or a response is free text from the person
    result = session.execute(
        update(Approval).where(Approval.id == approval.id, Approval.status == ApprovalStatus.pending)
        .values(status=status, decision=decision, decided_by_id=actor.user_id, decided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        _reload(session, approval)
        raise Conflict(f"this proposal was already decided ({approval.status.value})",
                       status=approval.status.value, id=str(approval.id))
    _reload(session, approval)
    hook = AFTER_REJECT.get(approval.tool) if status == ApprovalStatus.rejected else None
    if hook is not None:
        hook(session, actor, approval)


def settle(session: Session, *, actor: Actor, approval: Approval, executed: bool, note: str) -> bool:
    """Close a pending proposal whose record was decided on the record itself (a quote approved or
    withdrawn there): exactly once, as `claim`, and nothing runs. False if it was already decided."""
    now = utcnow()
    result = session.execute(
        update(Approval).where(Approval.id == approval.id, Approval.status == ApprovalStatus.pending)
        .values(status=ApprovalStatus.executed if executed else ApprovalStatus.rejected,
                decision={"kind": "approve" if executed else "reject", "text": note},
                decided_by_id=actor.user_id, decided_at=now, executed_at=now if executed else None)
        .execution_options(synchronize_session=False)
    )
    _reload(session, approval)
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def finish(session: Session, *, approval: Approval, result: dict[str, Any] | None = None,
           error: str | None = None) -> None:
    approval.status = ApprovalStatus.failed if error else ApprovalStatus.executed
    approval.executed_at = None if error else utcnow()
    approval.result = result or {}
    approval.error = error
    session.flush()
