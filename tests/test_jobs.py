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

from flows.jobs import HANDLERS, InProcessQueue, JobFailed, run_job, set_queue
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


def test_a_restart_requeues_waiting_jobs_and_marks_interrupted_ones_retryable(session, session_factory,
                                                                            flaky) -> None:
    """Jobs a dead process left running end `interrupted` (they used to end `failed`: issue 15 gave
    them their own state), and a retry runs them."""
    w = f.world(session)
    flaky.append(1)
    waiting, interrupted = make_job(session, w), make_job(session, w)
    interrupted.status, interrupted.attempts = JobStatus.running, 1  # its process died mid-way
    session.commit()
    queue = InProcessQueue(session_factory, threads=1)
    try:
        queue.recover()
        queue.wait(timeout=30)
        session.expire_all()
        assert session.get(Job, waiting.id).status == JobStatus.succeeded
        stale = session.get(Job, interrupted.id)
        assert stale.status == JobStatus.interrupted and "retry" in stale.error
        job_service.retry(session, actor=f.actor(w.priya), job_id=interrupted.id)
        session.commit()
        queue.enqueue(interrupted.id)
        queue.wait(timeout=30)
    finally:
        queue.close()
    session.expire_all()
    again = session.get(Job, interrupted.id)
    assert again.status == JobStatus.succeeded and again.attempts == 2 and again.error is None


@pytest.fixture
def runaway():  # type: ignore[no-untyped-def]
    """A job kind that never reports progress (as if stuck inside a model) until released."""
    started, release = threading.Event(), threading.Event()

    def handler(ctx):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(60)
        return {"message": "finished late"}

    HANDLERS["test_runaway"] = handler
    yield started, release
    release.set()
    del HANDLERS["test_runaway"]


def test_shutdown_does_not_wait_for_a_runaway_job_which_ends_interrupted_and_retryable(
        session, session_factory, runaway, monkeypatch) -> None:
    """`crm serve` stopping (the app's lifespan) while a job holds a worker: it used to wait for the
    job (pool.shutdown(wait=True)). Now it stops within the grace, and the job can be retried."""
    from fastapi.testclient import TestClient

    from channels.api.app import create_app
    from store.services.org import create_token
    from store.settings import get_settings

    started, release = runaway
    monkeypatch.setenv("CRM_INBOX_SMTP_PORT", "0")
    monkeypatch.setenv("CRM_JOB_STOP_GRACE_SECONDS", "0.2")
    get_settings.cache_clear()
    w = f.world(session)
    job = make_job(session, w, kind="test_runaway")
    priya = create_token(session, user=w.priya)
    threading.Timer(15, release.set).start()  # the old code waits this long, then the test fails, not hangs
    try:
        with TestClient(create_app(session_factory, background=True)):
            assert started.wait(30)  # the app's queue picked it up and it is running
            stopping = time.monotonic()
        stopped_in = time.monotonic() - stopping
    finally:
        get_settings.cache_clear()
    assert stopped_in < 3, f"shutdown waited {stopped_in:.1f} s for the job"
    session.expire_all()
    stale = session.get(Job, job.id)
    assert stale.status == JobStatus.interrupted and stale.message == "interrupted"
    assert stale.error == "interrupted: the server stopped before it finished; retry it"

    release.set()  # the runaway finishes after all: it must not overwrite what the shutdown recorded
    for thread in [t for t in threading.enumerate() if t.name.startswith("crm-job-")]:
        thread.join(10)
    session.expire_all()
    assert session.get(Job, job.id).status == JobStatus.interrupted

    queue = InProcessQueue(session_factory, threads=1)  # the next start; the rep retries through the API
    previous = set_queue(queue)
    try:
        with TestClient(create_app(session_factory)) as client:
            r = client.post(f"/api/v1/jobs/{job.id}/retry", headers={"Authorization": f"Bearer {priya}"})
            assert r.status_code == 202 and r.json()["status"] == "queued", r.text
            queue.wait(timeout=30)
            done = client.get(f"/api/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {priya}"}).json()
    finally:
        set_queue(previous)
        queue.close()
    assert done["status"] == "succeeded" and done["attempts"] == 2 and done["result"]["message"] == "finished late"


STUCK_SERVER = """
import sys, time
import calls.captions as captions

def stuck(*args, **kwargs):  # never returns and never checks in: a job that will not stop by itself
    while True:
        time.sleep(0.05)

captions.parse_captions = stuck
from crm import main
sys.argv = ["crm", "serve", "--port", sys.argv[1]]
main()
"""


@pytest.mark.slow
def test_crm_serve_stops_on_sigterm_while_a_call_job_is_stuck_and_the_job_is_retried(cli_env, monkeypatch) -> None:
    """Issue 15 end to end: a server whose call job is stuck stopped only with SIGKILL. Now SIGTERM
    stops it in seconds, the job and its recording say interrupted, and `crm jobs retry` finishes it."""
    import signal
    import socket

    from typer.testing import CliRunner

    from crm import app
    from flows.uploads import upload_call
    from store.models import CallRecording
    from store.models.enums import RecordingStatus, Surface
    from store.services.org import actor_for_user, get_workspace, user_by_email
    from store.settings import get_settings
    from tests.test_calls import VTT

    monkeypatch.setenv("CRM_INBOX_SMTP_PORT", "0")
    monkeypatch.setenv("CRM_JOB_STOP_GRACE_SECONDS", "1")
    get_settings.cache_clear()
    cli = CliRunner()
    for args in (["setup", "--no-demo"], ["user", "add", "priya@acme.example", "--name", "Priya Raman"]):
        assert cli.invoke(app, args).exit_code == 0

    class Holding:  # the upload's job waits in the database for the server to pick it up
        def enqueue(self, job_id: uuid.UUID) -> None: ...

        def close(self) -> None: ...

    previous = set_queue(Holding())
    try:
        with unit_of_work() as session:
            ws = get_workspace(session, slug=get_settings().default_workspace)
            actor = actor_for_user(user_by_email(session, workspace_id=ws.id, email="priya@acme.example"), Surface.cli)
            up = upload_call(session, actor, filename="discovery.vtt", content_type="text/vtt", data=VTT.encode())
            job_id, recording_id = up.job.id, up.recording.id
    finally:
        set_queue(previous)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", STUCK_SERVER, str(port)], cwd=Path(__file__).parent.parent,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        status = JobStatus.queued
        while status != JobStatus.running and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
            with unit_of_work() as session:
                status = session.scalar(select(Job.status).where(Job.id == job_id))
        assert status == JobStatus.running, server.stdout.read() if server.poll() is not None else "not started"
        server.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("crm serve did not stop on SIGTERM within 30 s (it waits for the stuck job)")
        assert time.monotonic() - stopping < 15
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    with unit_of_work() as session:
        job = session.get(Job, job_id)
        assert job.status == JobStatus.interrupted and "retry it" in job.error, (job.status, job.error)
        rec = session.get(CallRecording, recording_id)
        assert rec.status == RecordingStatus.failed and rec.error.startswith("interrupted")

    out = cli.invoke(app, ["jobs", "list", "--failed"])
    assert str(job_id) in out.output and "interrupted" in out.output
    out = cli.invoke(app, ["jobs", "retry", str(job_id)])
    assert out.exit_code == 0, out.output
    assert "done" in out.output and "proposal(s) for review" in out.output
    with unit_of_work() as session:
        assert session.get(Job, job_id).status == JobStatus.succeeded
        assert session.get(CallRecording, recording_id).status == RecordingStatus.transcribed


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
    from flows.jobs import set_queue
    from flows.uploads import upload_call
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
    worker = subprocess.Popen([sys.executable, "-m", "crm", "worker", "--pool", "solo"], env=env,
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
