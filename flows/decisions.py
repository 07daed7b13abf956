"""Deciding a proposal, whatever the door: the HTTP API and web page, Slack's buttons, `crm chat`
and the evals all call `decide_proposal`, the one place where a decision is made and committed,
the conversation goes on, and the surfaces showing the proposal hear of it.

The conversation goes on as the user who asked (whoever decided), on the proposal's own
surface, once none of its proposals waits any more. The door that decided shows the outcome
itself (the returned `Decided`); every other surface hears `APPROVAL_DECIDED` on the event bus
(store/events.py): the Slack bot redraws the proposal's cards and, for a Slack conversation,
posts how it went on into its thread. The web page's approval queue ("Waiting for you") reads the
store, so it is right at its next look.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agents import gate
from agents.gate import DecisionKind
from agents.runner import AgentRunner, Turn
from store import events
from store.actor import Actor
from store.db import unit_of_work
from store.models import Approval, User
from store.services.org import actor_for_user


@dataclass
class Decided:
    approval: Approval  # as decided, detached from its session
    requester: User | None  # who asked: the conversation went on as them
    turn: Turn | None  # how the conversation went on; None while other proposals of it still wait


def decide_proposal(runner: AgentRunner, *, actor: Actor, approval_id: uuid.UUID, kind: DecisionKind,
                    args: dict[str, Any] | None = None, reason: str | None = None, message: str | None = None,
                    sessions: sessionmaker[Session] | None = None,
                    around_resume: Callable[[Approval], AbstractContextManager[Any]] | None = None,
                    show: Callable[[Decided], None] | None = None,
                    defer: Callable[[Callable[[], None]], Any] | None = None) -> Decided:
    """Decide `approval_id` as `actor` (at most once: the gate) and commit; then go on with its
    conversation and tell every surface (`APPROVAL_DECIDED`, `decided_on=actor.surface`). Raises
    CRMError, and then nothing changed, when the decision is refused (not theirs, decided already).

    `around_resume(approval)` is entered after the commit and left once the conversation went on:
    Slack redraws the clicked card there and holds the conversation's lock; the evals snapshot the
    store (what the agent does next must not write). `show(decided)`: the deciding door shows how
    it went on. `defer(go_on)`: the conversation goes on later, e.g. on the Slack bot's threads once
    the Edit modal is answered (Slack gives it 3 seconds); the returned `turn` is then None."""
    with unit_of_work(sessions or runner.sessions) as session:
        approval = gate.decide(session, actor=actor, approval_id=approval_id, kind=kind, args=args, reason=reason,
                               message=message)
        requester = approval.requester  # loaded with the proposal by the approvals service
    decided = Decided(approval, requester, None)

    def go_on() -> None:
        try:
            with around_resume(approval) if around_resume is not None else nullcontext():
                if approval.thread_id and requester is not None:
                    decided.turn = runner.resume(actor=actor_for_user(requester, approval.surface),
                                                 thread_id=approval.thread_id)
        finally:  # the decision stands even when the agent fails to go on: the surfaces show it
            events.announce(events.APPROVAL_DECIDED, approval_id=approval.id, turn=decided.turn,
                            decided_on=actor.surface)
        if show is not None:
            show(decided)

    if defer is None:
        go_on()
    else:
        defer(go_on)
    return decided
