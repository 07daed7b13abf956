"""The event bus: what happened, told to whoever keeps something else in step.

Two kinds of event travel on it, each to the listeners of its topic:

- record events (topic `records`): services call `emit()` while they write; once the unit of
  work commits, `subscribe()`rs get the events of that transaction in one list (a rolled-back
  transaction sends nothing). The vector memory subscribes (flows/background.py wires it) so
  that deleting a note deletes its vectors, without the store knowing the memory exists.
- application events, `announce()`d by the flows once their work has committed: a background
  job finished (`JOB_FINISHED`), a proposal was decided (`APPROVAL_DECIDED`). The Slack bot
  listens (`on()`): it DMs a rep what a job proposed and redraws a decided proposal's cards.

Listeners run in the thread that emits and must not raise; one that does is logged and the
others still run (a surface's failure to tell someone never undoes the work). Keep them quick:
hand slow work to a job or a thread of your own.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("crm.events")

Action = Literal["created", "updated", "deleted"]


@dataclass(frozen=True)
class RecordEvent:
    kind: str  # an entity spec name: "note", "email", "call_recording"...
    id: uuid.UUID
    action: Action
    workspace_id: uuid.UUID


RECORDS = "records"  # listener(events: list[RecordEvent])
JOB_FINISHED = "job_finished"  # listener(job_id=)
APPROVAL_DECIDED = "approval_decided"  # listener(approval_id=, turn=, decided_on=)
TOPICS = (RECORDS, JOB_FINISHED, APPROVAL_DECIDED)

Listener = Callable[..., None]
_listeners: dict[str, list[Listener]] = {topic: [] for topic in TOPICS}
_lock = threading.Lock()
_KEY = "crm_record_events"


def on(topic: str, listener: Listener) -> Callable[[], None]:
    """Call `listener` on every event of `topic`; returns a function that stops it."""
    with _lock:
        _listeners[topic].append(listener)

    def stop() -> None:
        with _lock:
            if listener in _listeners[topic]:
                _listeners[topic].remove(listener)

    return stop


def subscribe(fn: Callable[[list[RecordEvent]], None]) -> Callable[[], None]:
    """Call `fn(events)` after every commit that emitted some; returns an unsubscribe function."""
    return on(RECORDS, fn)


def announce(topic: str, **details: Any) -> None:
    """Tell `topic`'s listeners `details` now (the caller has committed what it tells)."""
    _tell(topic, **details)


def _tell(topic: str, *args: Any, **details: Any) -> None:
    with _lock:
        listeners = list(_listeners[topic])
    for listener in listeners:
        try:
            listener(*args, **details)
        except Exception:  # noqa: BLE001  (derived data can be rebuilt, a surface redrawn; the work stands)
            log.exception("a %s listener (%r) failed", topic, listener)


def emit(session: Session, kind: str, record_id: uuid.UUID, action: Action, workspace_id: uuid.UUID) -> None:
    session.info.setdefault(_KEY, []).append(RecordEvent(kind, record_id, action, workspace_id))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    events: list[RecordEvent] = session.info.pop(_KEY, [])
    if events:
        _tell(RECORDS, events)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)

