"""What a job's handler is given and may raise, and the registry of handlers by kind.

Apart from the queue (flows/jobs.py) so that the handlers (flows/job_handlers.py) build on this
and the queue builds on them: no import circle.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from store.db import unit_of_work
from store.services import jobs as job_service
from store.settings import Settings


class JobFailed(Exception):
    """A handler's failure whose message is for the user (what went wrong, what to do)."""


class JobInterrupted(Exception):
    """The process running the job is stopping: the job ends interrupted (retryable), not failed."""


@dataclass
class JobContext:
    job_id: uuid.UUID
    workspace_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    requested_by_id: uuid.UUID | None
    sessions: sessionmaker[Session]
    settings: Settings
    attempt: int = 0
    stopping: threading.Event | None = None
    deadline: float | None = None  # time.monotonic() past which check() fails the job
    over_budget: str = ""

    def time_limit(self, seconds: float, message: str) -> None:
        """From now on, `check()` fails the job with `message` once `seconds` have passed."""
        self.deadline, self.over_budget = time.monotonic() + seconds, message

    def check(self) -> None:
        """Raise if the job must stop: its process is stopping, or it ran past its time limit."""
        if self.stopping is not None and self.stopping.is_set():
            raise JobInterrupted("the process running it stopped before it finished")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise JobFailed(self.over_budget)

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.check()
        with unit_of_work(self.sessions) as session:
            job_service.report(session, self.job_id, progress=fraction, message=message)


Handler = Callable[[JobContext], dict[str, Any]]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register
