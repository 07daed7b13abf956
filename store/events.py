"""Record events after commit: what changed, for whoever keeps derived data in step.

Services call `emit()` while they write; once the unit of work commits, subscribers get
the events of that transaction in one list (a rolled-back transaction sends nothing).
The vector memory subscribes (channels wire it) so that deleting a note deletes its
vectors, without the store knowing the memory exists.

Subscribers run in the committing thread and must not raise; one that does is logged
and the others still run. Keep them quick: hand slow work to a job.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

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


Subscriber = Callable[[list[RecordEvent]], None]
_subscribers: list[Subscriber] = []
_lock = threading.Lock()
_KEY = "crm_record_events"


def subscribe(fn: Subscriber) -> Callable[[], None]:
    """Call `fn(events)` after every commit that emitted some; returns an unsubscribe function."""
    with _lock:
        _subscribers.append(fn)

    def unsubscribe() -> None:
        with _lock:
            if fn in _subscribers:
                _subscribers.remove(fn)

    return unsubscribe


def emit(session: Session, kind: str, record_id: uuid.UUID, action: Action, workspace_id: uuid.UUID) -> None:
    session.info.setdefault(_KEY, []).append(RecordEvent(kind, record_id, action, workspace_id))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    events: list[RecordEvent] = session.info.pop(_KEY, [])
    if not events:
        return
    with _lock:
        subscribers = list(_subscribers)
    for fn in subscribers:
        try:
            fn(events)
        except Exception:  # noqa: BLE001  (derived data can be rebuilt; the commit stands)
            log.exception("record event subscriber %r failed", fn)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)

