"""Tell the channels what happened elsewhere: a background job finished, a proposal was decided.

The Slack bot listens (it DMs a rep the proposals made from their forwarded email, and
redraws a card decided on the web page). Listeners run in the thread that emits, after the
emitter's transaction has committed; a failing listener is logged and never undoes the work.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger("crm.notify")

Listener = Callable[..., None]
_listeners: dict[str, list[Listener]] = {"job_finished": [], "approval_decided": []}
_lock = threading.Lock()


def on(event: str, listener: Listener) -> Callable[[], None]:
    """Call `listener(**details)` on `event`; returns a function that stops it."""
    with _lock:
        _listeners[event].append(listener)

    def stop() -> None:
        with _lock:
            if listener in _listeners[event]:
                _listeners[event].remove(listener)

    return stop


def emit(event: str, **details: Any) -> None:
    with _lock:
        listeners = list(_listeners[event])
    for listener in listeners:
        try:
            listener(**details)
        except Exception:  # noqa: BLE001  (a channel's failure to tell someone never undoes the work)
            log.exception("a %s listener failed", event)


def job_finished(job_id: uuid.UUID) -> None:
    emit("job_finished", job_id=job_id)


def approval_decided(approval_id: uuid.UUID, turn: Any = None) -> None:
    """`turn`: how the conversation went on after the decision (agents.runner.Turn), if it did."""
    emit("approval_decided", approval_id=approval_id, turn=turn)
