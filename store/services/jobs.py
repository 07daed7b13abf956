"""Background jobs as rows: queued -> running -> succeeded | failed, and retry.

Whoever runs a job (the app's thread pool or a Celery worker) claims it with one
conditional UPDATE, so a job delivered twice (a broker redelivery, two workers) runs once.
Progress and errors are written as the job goes, in their own short transactions, so
the person who uploaded a call sees "transcribing 40%" and, when it fails, why.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import Conflict, PermissionDenied
from store.models import Job
from store.models.enums import JobStatus, Role
from store.services.crud import Access, EntitySpec, get, register
from store.types import utcnow

jobs = register(EntitySpec(
    name="job", plural="jobs", model=Job, access=Access.OWNED, owner_field="requested_by_id",
    default_sort="-created_at", creatable=False, updatable=False, deletable=False,
))


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


def succeed(session: Session, job_id: uuid.UUID, result: dict[str, Any], message: str = "done") -> None:
    session.execute(update(Job).where(Job.id == job_id).values(
        status=JobStatus.succeeded, progress=1.0, message=message[:500], result=result, error=None,
        finished_at=utcnow()).execution_options(synchronize_session=False))


def fail(session: Session, job_id: uuid.UUID, error: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(
        status=JobStatus.failed, message="failed", error=error[:10000], finished_at=utcnow(),
    ).execution_options(synchronize_session=False))


def retry(session: Session, *, actor: Actor, job_id: uuid.UUID) -> Job:
    """A failed job back to queued (the caller then enqueues it). Who may see it may retry it."""
    job = get(session, jobs, actor=actor, id=job_id)
    if job.requested_by_id not in (None, actor.user_id) and actor.role == Role.rep:
        raise PermissionDenied("only the person who started this job, their manager or an admin can retry it")
    moved = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.failed)
                            .values(status=JobStatus.queued, message="queued again", progress=0.0, error=None)
                            .execution_options(synchronize_session=False)).rowcount
    if not moved:
        raise Conflict(f"job {job_id} is {job.status.value}; only a failed job can be retried")
    session.refresh(job)
    return job


def interrupted(session: Session) -> list[uuid.UUID]:
    """Jobs left running by a process that died: failed, with a reason, so they can be retried."""
    ids = list(session.scalars(select(Job.id).where(Job.status == JobStatus.running)))
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids)).values(
            status=JobStatus.failed, message="failed",
            error="interrupted: the process running it stopped; retry it", finished_at=utcnow(),
        ).execution_options(synchronize_session=False))
    return ids


def queued(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(Job.id).where(Job.status == JobStatus.queued).order_by(Job.created_at)))

