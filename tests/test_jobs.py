"""Jobs: claimed once, failures visible and retryable, restarts lose nothing, Celery on Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.jobs import HANDLERS, InProcessQueue, JobFailed, run_job
from store.db import unit_of_work
from store.models import Job
from store.models.enums import JobStatus
from store.services import jobs as job_service
from tests import factories as f

REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def flaky():  # type: ignore[no-untyped-def]
    """A job kind that fails on its first run and succeeds on the next; counts its runs."""
    runs: list[int] = []

    def handler(ctx):  # type: ignore[no-untyped-def]
        runs.append(1)
        ctx.progress(0.5, "halfway")
        if len(runs) == 1:
            raise JobFailed("the model directory is missing; set CRM_WHISPER_MODEL")
        return {"message": "ok", "runs": len(runs)}

    HANDLERS["test_flaky"] = handler
    yield runs
    del HANDLERS["test_flaky"]


def make_job(session, w, kind: str = "test_flaky") -> Job:  # type: ignore[no-untyped-def]
    job = job_service.create(session, workspace_id=w.ws.id, kind=kind, payload={}, requested_by_id=w.priya.id)
    session.commit()
    return job


def test_a_failed_job_says_why_and_a_retry_runs_it_again(session, session_factory, flaky) -> None:
    w = f.world(session)
    job = make_job(session, w)
    done = run_job(job.id, sessions=session_factory)
    assert done.status == JobStatus.failed and "CRM_WHISPER_MODEL" in done.error and done.attempts == 1
    with pytest.raises(Exception, match="only the person who started"):
        job_service.retry(session, actor=f.actor(w.raj), job_id=job.id)  # a teammate can see it, not retry it
    session.rollback()
    job_service.retry(session, actor=f.actor(w.priya), job_id=job.id)
    session.commit()
    done = run_job(job.id, sessions=session_factory)
    assert done.status == JobStatus.succeeded and done.result == {"message": "ok", "runs": 2}
    assert done.attempts == 2 and done.error is None and done.progress == 1.0


def test_a_job_is_claimed_once_however_often_it_is_delivered(session, session_factory, flaky) -> None:
    w = f.world(session)
    job = make_job(session, w)
    flaky.append(1)  # the next run succeeds
    first = run_job(job.id, sessions=session_factory)
    second = run_job(job.id, sessions=session_factory)  # a broker redelivery
    assert first.status == JobStatus.succeeded and second is None and len(flaky) == 2


def test_a_restart_requeues_waiting_jobs_and_fails_interrupted_ones_retryably(session, session_factory,
                                                                             flaky) -> None:
    w = f.world(session)
    flaky.append(1)
    waiting, interrupted = make_job(session, w), make_job(session, w)
    interrupted.status = JobStatus.running  # its process died mid-way
    session.commit()
    queue = InProcessQueue(session_factory, threads=1)
    try:
        queue.recover()
        queue.wait(timeout=30)
    finally:
        queue.close()
    session.expire_all()
    assert session.get(Job, waiting.id).status == JobStatus.succeeded
    stale = session.get(Job, interrupted.id)
    assert stale.status == JobStatus.failed and "retry" in stale.error


@pytest.mark.slow
def test_celery_worker_runs_a_call_job_from_redis(cli_env: Path, tmp_path: Path, monkeypatch) -> None:
    """`crm worker` (a real Celery worker process) takes a process_call job from the local Redis."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    monkeypatch.setenv("CRM_BROKER_URL", REDIS_URL)
    from channels.ingest import upload_call
    from channels.jobs import set_queue
    from store import migrate
    from store.db import get_engine, get_sessionmaker
    from store.models import Transcript
    from store.models.enums import Role, Surface
    from store.services.org import actor_for_user, create_workspace
    from store.settings import get_settings

    get_settings.cache_clear()
    migrate.upgrade(get_engine())
    with unit_of_work() as session:
        ws = create_workspace(session, name="Celery Co", slug=get_settings().default_workspace)
        priya = f.user(session, ws, role=Role.rep, name="Priya Raman")
        actor = actor_for_user(priya, Surface.api)
        deal = f.create(session, actor, "deal", name="Sync deal")
        deal_id = deal.id
    previous = set_queue(None)  # get_queue() now builds the Celery queue from CRM_BROKER_URL
    try:
        with unit_of_work() as session:
            up = upload_call(session, actor, filename="sync.vtt", content_type="text/vtt",
                             data=b"WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Ines>We will sign by Friday.\n",
                             deal_id=deal_id)
            job_id = up.job.id
    finally:
        set_queue(previous)
    assert client.llen("celery") == 1  # the job waits on the broker, not in this process

    env = {**os.environ, "CRM_BROKER_URL": REDIS_URL}
    worker = subprocess.Popen([sys.executable, "-m", "channels.cli", "worker", "--pool", "solo"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(worker.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        status = JobStatus.queued
        while time.monotonic() < deadline and status in (JobStatus.queued, JobStatus.running):
            time.sleep(0.5)
            with get_sessionmaker()() as session:
                status = session.scalar(select(Job.status).where(Job.id == job_id))
        with get_sessionmaker()() as session:
            job = session.get(Job, job_id)
            assert job.status == JobStatus.succeeded, (job.error, "".join(output)[-3000:])
            transcript = session.scalar(select(Transcript).where(Transcript.call_recording_id == uuid.UUID(
                job.payload["call_recording_id"])))
            assert transcript.segments[0]["text"] == "We will sign by Friday."
            assert job.result["approvals"]  # the ingestion agent proposed at least the call activity
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        client.flushdb()
