"""Running background jobs: in the app's own thread pool by default, on Celery workers at scale.

A job is a row (store/services/jobs.py) plus a handler registered here by kind. The queue
only carries the job's id; whoever picks it up claims the row (exactly once), runs the
handler, and records progress, the result or the error. Failed jobs stay visible and are
retried with `POST /api/v1/jobs/{id}/retry` or `crm jobs retry ID`.

    CRM_BROKER_URL unset        -> InProcessQueue (threads; `crm serve` runs them)
    CRM_BROKER_URL=redis://...  -> CeleryQueue (`crm worker` processes run them, on any machine
                                   that reaches the broker and the database; GPUs for whisper)
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from store.db import get_sessionmaker, unit_of_work
from store.models import Job
from store.services import jobs as job_service
from store.settings import Settings, get_settings

log = logging.getLogger("crm.jobs")


class JobFailed(Exception):
    """A handler's failure whose message is for the user (what went wrong, what to do)."""


@dataclass
class JobContext:
    job_id: uuid.UUID
    workspace_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    requested_by_id: uuid.UUID | None
    sessions: sessionmaker[Session]
    settings: Settings

    def progress(self, fraction: float, message: str | None = None) -> None:
        with unit_of_work(self.sessions) as session:
            job_service.report(session, self.job_id, progress=fraction, message=message)


Handler = Callable[[JobContext], dict[str, Any]]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def run_job(job_id: uuid.UUID, *, sessions: sessionmaker[Session] | None = None,
            settings: Settings | None = None) -> Job | None:
    """Claim and run one job. Returns the finished row, or None if it was not there to claim."""
    sessions = sessions or get_sessionmaker()
    settings = settings or get_settings()
    load_handlers()
    with unit_of_work(sessions) as session:
        job = job_service.claim(session, job_id)
        if job is None:
            return None
        ctx = JobContext(job_id=job.id, workspace_id=job.workspace_id, kind=job.kind, payload=dict(job.payload),
                         requested_by_id=job.requested_by_id, sessions=sessions, settings=settings)
    fn = HANDLERS.get(ctx.kind)
    try:
        if fn is None:
            raise JobFailed(f"no handler for job kind {ctx.kind!r} in this process")
        result = fn(ctx)
    except JobFailed as exc:
        _fail(sessions, job_id, str(exc))
    except Exception as exc:  # noqa: BLE001  (any failure is recorded on the job, never lost)
        log.exception("job %s (%s) failed", job_id, ctx.kind)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        _fail(sessions, job_id, f"unexpected error: {detail}")
    else:
        with unit_of_work(sessions) as session:
            job_service.succeed(session, job_id, result, message=str(result.get("message", "done")))
    with unit_of_work(sessions) as session:
        finished = session.get(Job, job_id)
    from channels import notify

    notify.job_finished(job_id)  # e.g. the Slack bot DMs the rep what the job proposed (or why it failed)
    return finished


def _fail(sessions: sessionmaker[Session], job_id: uuid.UUID, error: str) -> None:
    with unit_of_work(sessions) as session:
        job_service.fail(session, job_id, error)


class Queue(Protocol):
    def enqueue(self, job_id: uuid.UUID) -> None: ...

    def close(self) -> None: ...


class InProcessQueue:
    """A thread pool in this process. Jobs left queued or running by a previous process are
    picked up (queued) or marked failed-and-retryable (running) when it starts."""

    def __init__(self, sessions: sessionmaker[Session] | None = None, settings: Settings | None = None,
                 threads: int | None = None) -> None:
        self.sessions = sessions or get_sessionmaker()
        self.settings = settings or get_settings()
        self.pool = ThreadPoolExecutor(max_workers=threads or self.settings.job_threads,
                                       thread_name_prefix="crm-job")
        self._futures: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def enqueue(self, job_id: uuid.UUID) -> None:
        future = self.pool.submit(run_job, job_id, sessions=self.sessions, settings=self.settings)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)

    def recover(self) -> None:
        with unit_of_work(self.sessions) as session:
            stale = job_service.interrupted(session)
            waiting = job_service.queued(session)
        if stale:
            log.warning("%d job(s) were interrupted by a restart and are marked failed (retryable)", len(stale))
        for job_id in waiting:
            self.enqueue(job_id)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every job submitted so far has finished (tests, the CLI)."""
        from concurrent.futures import wait

        with self._lock:
            futures = set(self._futures)
        wait(futures, timeout=timeout)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class CeleryQueue:
    """Jobs sent to Celery workers over the broker (`crm worker` runs them)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.app = celery_app(settings or get_settings())

    def enqueue(self, job_id: uuid.UUID) -> None:
        self.app.send_task("crm.run_job", args=[str(job_id)])

    def close(self) -> None:
        pass


def celery_app(settings: Settings) -> Any:
    """The Celery application (task `crm.run_job`), configured from settings."""
    from celery import Celery

    if not settings.broker_url:
        raise JobFailed("CRM_BROKER_URL is not set: Celery needs a broker (e.g. redis://127.0.0.1:6379/0)")
    app = Celery("agent_crm", broker=settings.broker_url)
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                    task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)

    @app.task(name="crm.run_job")
    def _run(job_id: str) -> str | None:
        job = run_job(uuid.UUID(job_id), settings=settings)
        return job.status.value if job else None

    return app


def load_handlers() -> None:
    """Import the modules that register handlers (kept out of import time: they load models)."""
    from channels import job_handlers  # noqa: F401


_queue: Queue | None = None
_queue_lock = threading.Lock()


def get_queue() -> Queue:
    global _queue
    with _queue_lock:
        if _queue is None:
            settings = get_settings()
            load_handlers()
            _queue = CeleryQueue(settings) if settings.broker_url else InProcessQueue(settings=settings)
        return _queue


def set_queue(queue: Queue | None) -> Queue | None:
    """Install a queue (the app at startup, tests); returns the previous one."""
    global _queue
    with _queue_lock:
        previous, _queue = _queue, queue
    return previous


def submit(session: Session, job: Job) -> None:
    """Enqueue `job` once the caller's transaction has committed (a worker must see the row)."""
    from sqlalchemy import event

    job_id = job.id

    @event.listens_for(session, "after_commit", once=True)
    def _go(_session: Session) -> None:
        get_queue().enqueue(job_id)
