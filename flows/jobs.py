"""Running background jobs: in the app's own worker threads by default, on Celery workers at scale.

A job is a row (store/services/jobs.py) plus a handler registered by kind (flows/job_context.py). The queue
only carries the job's id; whoever picks it up claims the row (exactly once), runs the
handler, and records progress, the result or the error. Failed and interrupted jobs stay
visible and are retried with `POST /api/v1/jobs/{id}/retry` or `crm jobs retry ID`.

    CRM_BROKER_URL unset        -> InProcessQueue (threads; `crm serve` runs them)
    CRM_BROKER_URL=redis://...  -> CeleryQueue (`crm worker` processes run them, on any machine
                                   that reaches the broker and the database; GPUs for whisper)

A handler calls `ctx.progress()` (or `ctx.check()`) as it goes: that is where a job over its
time budget fails and where a job whose process is stopping gives up (interrupted).
"""

from __future__ import annotations

import logging
import queue as queues
import threading
import time
import traceback
import uuid
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from flows.job_context import HANDLERS, JobContext, JobFailed, JobInterrupted
from store import events
from store.db import get_sessionmaker, unit_of_work
from store.models import Job
from store.services import jobs as job_service
from store.services.jobs import job_by_id
from store.settings import Settings, get_settings

log = logging.getLogger("crm.jobs")


def run_job(job_id: uuid.UUID, *, sessions: sessionmaker[Session] | None = None,
            settings: Settings | None = None, stopping: threading.Event | None = None) -> Job | None:
    """Claim and run one job. Returns the finished row, or None if it was not there to claim."""
    sessions = sessions or get_sessionmaker()
    settings = settings or get_settings()
    load_handlers()
    if stopping is not None and stopping.is_set():
        return None  # left queued: the next start runs it
    with unit_of_work(sessions) as session:
        job = job_service.claim(session, job_id)
        if job is None:
            return None
        ctx = JobContext(job_id=job.id, workspace_id=job.workspace_id, kind=job.kind, payload=dict(job.payload),
                         requested_by_id=job.requested_by_id, sessions=sessions, settings=settings,
                         attempt=job.attempts, stopping=stopping)
    fn = HANDLERS.get(ctx.kind)
    try:
        if fn is None:
            raise JobFailed(f"no handler for job kind {ctx.kind!r} in this process")
        result = fn(ctx)
    except JobInterrupted as exc:
        with unit_of_work(sessions) as session:
            job_service.interrupt(session, job_ids=[job_id], attempt=ctx.attempt, reason=f"interrupted: {exc}; "
                                  "retry it")
    except JobFailed as exc:
        _fail(sessions, ctx, str(exc))
    except Exception as exc:  # noqa: BLE001  (any failure is recorded on the job, never lost)
        log.exception("job %s (%s) failed", job_id, ctx.kind)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        _fail(sessions, ctx, f"unexpected error: {detail}")
    else:
        with unit_of_work(sessions) as session:
            job_service.succeed(session, job_id, result, message=str(result.get("message", "done")),
                                attempt=ctx.attempt)
    with unit_of_work(sessions) as session:
        finished = job_by_id(session, job_id)
    # e.g. the Slack bot DMs the rep what the job proposed (or why it failed)
    events.announce(events.JOB_FINISHED, job_id=job_id)
    return finished


def _fail(sessions: sessionmaker[Session], ctx: JobContext, error: str) -> None:
    with unit_of_work(sessions) as session:
        job_service.fail(session, ctx.job_id, error, attempt=ctx.attempt)


class Queue(Protocol):
    def enqueue(self, job_id: uuid.UUID) -> None: ...

    def close(self) -> None: ...


class InProcessQueue:
    """Worker threads in this process. Jobs left queued by a previous process are picked up, and
    jobs it left running are marked interrupted (retryable), when it starts (`recover`).

    The threads are daemons and `close()` does not wait for a job that will not stop: it tells
    them to stop, gives them `job_stop_grace_seconds` to do so at their next check, marks the
    jobs still running interrupted, and returns; the process can then exit. (A
    ThreadPoolExecutor cannot: the interpreter joins its threads at exit, so one runaway job
    kept `crm serve` from stopping on SIGTERM.)"""

    def __init__(self, sessions: sessionmaker[Session] | None = None, settings: Settings | None = None,
                 threads: int | None = None) -> None:
        self.sessions = sessions or get_sessionmaker()
        self.settings = settings or get_settings()
        self.stopping = threading.Event()
        self._inbox: queues.SimpleQueue[uuid.UUID | None] = queues.SimpleQueue()
        self._changed = threading.Condition()
        self._waiting = 0  # enqueued and not finished
        self._running: set[uuid.UUID] = set()
        self._threads = [threading.Thread(target=self._work, name=f"crm-job-{i}", daemon=True)
                         for i in range(threads or self.settings.job_threads)]
        for thread in self._threads:
            thread.start()

    def enqueue(self, job_id: uuid.UUID) -> None:
        with self._changed:
            self._waiting += 1
        self._inbox.put(job_id)

    def _work(self) -> None:
        while (job_id := self._inbox.get()) is not None:
            with self._changed:
                self._running.add(job_id)
            try:
                if not self.stopping.is_set():
                    run_job(job_id, sessions=self.sessions, settings=self.settings, stopping=self.stopping)
            except Exception:  # noqa: BLE001  (run_job records failures; this is the database itself failing)
                log.exception("job %s could not be run", job_id)
            finally:
                with self._changed:
                    self._running.discard(job_id)
                    self._waiting -= 1
                    self._changed.notify_all()

    def recover(self) -> None:
        with unit_of_work(self.sessions) as session:
            stale = job_service.interrupt(session, reason="interrupted: the process running it stopped before it "
                                                          "finished; retry it")
            waiting = job_service.queued(session)
        if stale:
            log.warning("%d job(s) were interrupted by a restart and are marked interrupted (retry them)", len(stale))
        for job_id in waiting:
            self.enqueue(job_id)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every job submitted so far has finished (tests, the CLI)."""
        with self._changed:
            self._changed.wait_for(lambda: self._waiting <= 0, timeout=timeout)

    def close(self, grace: float | None = None) -> list[uuid.UUID]:
        """Stop without waiting for runaway jobs; returns the ids of the jobs marked interrupted."""
        self.stopping.set()
        for _ in self._threads:
            self._inbox.put(None)
        grace = self.settings.job_stop_grace_seconds if grace is None else grace
        deadline = time.monotonic() + max(grace, 0.0)
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        with self._changed:
            left = set(self._running)
        if not left:
            return []
        with unit_of_work(self.sessions) as session:
            ids = job_service.interrupt(session, job_ids=left, reason="interrupted: the server stopped before it "
                                                                      "finished; retry it")
        if ids:
            log.warning("stopped without waiting for %d running job(s), marked interrupted: %s", len(ids),
                        ", ".join(map(str, ids)))
        return ids


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
    from flows import job_handlers  # noqa: F401


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
