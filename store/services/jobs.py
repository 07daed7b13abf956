"""Background jobs as rows: queued -> running -> succeeded | failed | interrupted, and retry.

Whoever runs a job (the app's thread pool or a Celery worker) claims it with one
conditional UPDATE, so a job delivered twice (a broker redelivery, two workers) runs once.
Progress and errors are written as the job goes, in their own short transactions, so
the person who uploaded a call sees "transcribing 40%" and, when it fails, why.

A job whose process stops under it (a shutdown that does not wait for it, a crash) is
`interrupted`; a failed or interrupted job can be retried. The end of a run is written only
while the row is still that run's (running, same attempt): a runaway thread that finishes
after its job was marked interrupted, or retried, changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import Conflict, PermissionDenied
from store.models import CallRecording, Job
from store.models.enums import JobStatus, RecordingStatus, Role
from store.services.crud import Access, EntitySpec, get, register
from store.types import utcnow

jobs = register(EntitySpec(
    name="job", plural="jobs", model=Job, access=Access.OWNED, owner_field="requested_by_id",
    default_sort="-created_at", creatable=False, updatable=False, deletable=False,
))


def job_by_id(session: Session, job_id: uuid.UUID) -> Job | None:
    """A job by id (its runner, or the door that queued it and waits for it)."""
    return session.get(Job, job_id)


def create(session: Session, *, workspace_id: uuid.UUID, kind: str, payload: dict[str, Any],
           requested_by_id: uuid.UUID | None, subject: tuple[str, uuid.UUID] | None = None,
           message: str = "queued") -> Job:
    job = Job(workspace_id=workspace_id, kind=kind, payload=payload, requested_by_id=requested_by_id,
              subject_type=subject[0] if subject else None, subject_id=subject[1] if subject else None,
              message=message)
    session.add(job)
    session.flush()
    return job


def claim(session: Session, job_id: uuid.UUID) -> Job | None:
    """Queued -> running, once. None when someone else has it or it is not queued."""
    claimed = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.running, attempts=Job.attempts + 1, started_at=utcnow(), finished_at=None,
                error=None, progress=0.0, message="started")
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return None
    return session.get(Job, job_id, populate_existing=True)


def report(session: Session, job_id: uuid.UUID, *, progress: float | None = None, message: str | None = None) -> None:
    values: dict[str, Any] = {}
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    if message is not None:
        values["message"] = message[:500]
    if values:
        session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.running).values(**values)
                        .execution_options(synchronize_session=False))


def _this_run(job_id: uuid.UUID, attempt: int | None) -> ColumnElement[bool]:
    """The row is still the run that is ending: running, and (when given) the same attempt."""
    where = and_(Job.id == job_id, Job.status == JobStatus.running)
    return and_(where, Job.attempts == attempt) if attempt is not None else where


def succeed(session: Session, job_id: uuid.UUID, result: dict[str, Any], message: str = "done", *,
            attempt: int | None = None) -> bool:
    """Running -> succeeded. False when the run is no longer the job's (interrupted meanwhile)."""
    return bool(session.execute(update(Job).where(_this_run(job_id, attempt)).values(
        status=JobStatus.succeeded, progress=1.0, message=message[:500], result=result, error=None,
        finished_at=utcnow()).execution_options(synchronize_session=False)).rowcount)


def fail(session: Session, job_id: uuid.UUID, error: str, *, attempt: int | None = None) -> bool:
    """Running -> failed with the reason. False when the run is no longer the job's."""
    return bool(session.execute(update(Job).where(_this_run(job_id, attempt)).values(
        status=JobStatus.failed, message="failed", error=error[:10000], finished_at=utcnow(),
    ).execution_options(synchronize_session=False)).rowcount)


def retry(session: Session, *, actor: Actor, job_id: uuid.UUID) -> Job:
    """A failed or interrupted job back to queued (the caller then enqueues it). Who may see it may retry it."""
    job = get(session, jobs, actor=actor, id=job_id)
    if job.requested_by_id not in (None, actor.user_id) and actor.role == Role.rep:
        raise PermissionDenied("only the person who started this job, their manager or an admin can retry it")
    moved = session.execute(update(Job).where(Job.id == job_id,
                                              Job.status.in_((JobStatus.failed, JobStatus.interrupted)))
                            .values(status=JobStatus.queued, message="queued again", progress=0.0, error=None)
                            .execution_options(synchronize_session=False)).rowcount
    if not moved:
        raise Conflict(f"job {job_id} is {job.status.value}; only a failed or interrupted job can be retried")
    session.refresh(job)
    return job


def interrupt(session: Session, *, job_ids: Iterable[uuid.UUID] | None = None, reason: str,
              attempt: int | None = None) -> list[uuid.UUID]:
    """Running jobs -> interrupted, with `reason` as their error: `job_ids` (those a stopping process
    was running; with `attempt`, only that run of one job), or every running job (None: at start, the
    ones a dead process left). Returns the ids it moved. A call being transcribed says so too."""
    where: ColumnElement[bool] = Job.status == JobStatus.running
    if job_ids is not None:
        wanted = list(job_ids)
        if not wanted:
            return []
        where = and_(where, Job.id.in_(wanted))
    if attempt is not None:
        where = and_(where, Job.attempts == attempt)
    stale = session.execute(select(Job.id, Job.subject_type, Job.subject_id).where(where)).all()
    ids = [row.id for row in stale]
    if not ids:
        return []
    session.execute(update(Job).where(Job.id.in_(ids), Job.status == JobStatus.running).values(
        status=JobStatus.interrupted, message="interrupted", error=reason[:10000], finished_at=utcnow(),
    ).execution_options(synchronize_session=False))
    recordings = [row.subject_id for row in stale if row.subject_type == "call_recording" and row.subject_id]
    if recordings:
        session.execute(update(CallRecording).where(CallRecording.id.in_(recordings),
                                                    CallRecording.status == RecordingStatus.transcribing)
                        .values(status=RecordingStatus.failed, error=reason[:2000])
                        .execution_options(synchronize_session=False))
    return ids


def queued(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(Job.id).where(Job.status == JobStatus.queued).order_by(Job.created_at)))


def latest(session: Session, *, workspace_id: uuid.UUID, failed_only: bool = False, limit: int = 30) -> list[Job]:
    """The workspace's latest jobs, newest first (only failed or interrupted ones if asked)."""
    query = select(Job).where(Job.workspace_id == workspace_id).order_by(Job.created_at.desc()).limit(limit)
    if failed_only:
        query = query.where(Job.status.in_((JobStatus.failed, JobStatus.interrupted)))
    return list(session.scalars(query))


def in_order(session: Session, *, workspace_id: uuid.UUID) -> list[Job]:
    """Every job of the workspace, oldest first (the evals read what each one replied)."""
    return list(session.scalars(select(Job).where(Job.workspace_id == workspace_id).order_by(Job.created_at)))
