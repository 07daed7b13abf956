"""`crm ingest-email`, `crm ingest-call`, `crm brief`, `crm reindex`, `crm worker`, `crm jobs`.

Registered in channels/cli.py. Uploads run their job right here (with a progress bar)
unless CRM_BROKER_URL sends jobs to Celery workers, then print the proposals waiting for
the rep's decision (decide them on the web page, in `crm chat`, or in Slack).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from channels.cli_common import WorkspaceOpt, _fail, console, err
from store.models.enums import Surface
from store.services.approvals import approval_by_id
from store.services.details import company_by_id
from store.services.jobs import job_by_id


def _user_actor(session: Any, ws: Any, email: str) -> Any:
    from store.errors import CRMError
    from store.services.org import acting_as

    try:
        return acting_as(session, workspace_id=ws.id, email=email, surface=Surface.cli)
    except CRMError as exc:
        _fail(exc.message)


def _queue() -> Any:
    from flows.jobs import InProcessQueue, get_queue, set_queue
    from store.settings import get_settings

    if get_settings().broker_url:
        return get_queue()
    queue = InProcessQueue()
    set_queue(queue)
    return queue


def _follow(job_id: uuid.UUID, label: str) -> Any:
    """Show a job's progress until it finishes (or, with Celery, until it leaves the queue)."""
    from store.db import unit_of_work
    from store.models.enums import JobStatus

    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task(label, total=1.0)
        while True:
            with unit_of_work() as session:
                job = job_by_id(session, job_id)
                assert job is not None
                status, progress, message = job.status, job.progress, job.message
            bar.update(task, completed=progress, description=f"{label}: {message}")
            if status in (JobStatus.succeeded, JobStatus.failed, JobStatus.interrupted):
                break
            time.sleep(0.2)
    with unit_of_work() as session:
        job = job_by_id(session, job_id)
        session.expunge(job)
        return job


def _run_here(queue: Any, job_id: uuid.UUID, label: str) -> None:
    """Follow a job this process runs, then report it. Ctrl-C stops it as a shutdown does: the job
    is marked interrupted (not left "running") and can be retried."""
    try:
        job = _follow(job_id, label)
    except KeyboardInterrupt:
        queue.close(grace=0)
        _fail(f"stopped; job {job_id} is interrupted: `crm jobs retry {job_id}` runs it again", 130)
    _report(job)


def _report(job: Any) -> None:
    from store.db import unit_of_work
    from store.models.enums import JobStatus

    if job.status == JobStatus.failed:
        _fail(f"job {job.id} failed: {job.error}\nfix the cause, then `crm jobs retry {job.id}`")
    if job.status == JobStatus.interrupted:
        _fail(f"job {job.id} was interrupted: {job.error}\nrun it again with `crm jobs retry {job.id}`")
    ids = job.result.get("approvals", [])
    console.print(f"[green]done[/green]: {job.result.get('message', '')} (job {job.id})")
    with unit_of_work() as session:
        for approval_id in ids:
            a = approval_by_id(session, uuid.UUID(approval_id))
            if a is not None:
                quote = next((e.get("quote") for e in a.evidence if e.get("quote")), "")
                console.print(f"  - [bold]{a.summary}[/bold] ({a.status.value}, id {a.id})")
                if quote:
                    console.print(f"      because: “{quote[:160]}”")
    if ids:
        console.print("Decide them on the web page, in `crm chat`, or with POST /api/v1/approvals/{id}/decision.")


def ingest_email_cmd(
    files: Annotated[list[Path], typer.Argument(help="One or more .eml files.", exists=True, dir_okay=False)],
    as_email: Annotated[str | None, typer.Option("--as", help="The rep who owns it (default: the email's sender, "
                                                              "as if they had forwarded it).")] = None,
) -> None:
    """Feed saved emails (.eml) to the inbox, as the rep who forwarded them; shows the proposals."""
    from flows.deliver import deliver_detailed
    from flows.jobs import InProcessQueue

    queue = _queue()
    failures = 0
    for path in files:
        done = deliver_detailed(path.read_bytes(), recipients=[], provider="cli", uploaded_by=as_email,
                                by_its_sender=as_email is None)
        status = done.result.status
        if status not in ("accepted", "duplicate"):
            failures += 1
            err.print(f"[red]{path.name}: {status}[/red]: {done.result.message}")
            continue
        console.print(f"{path.name}: {status} ({done.result.message})")
        if done.job_id and (isinstance(queue, InProcessQueue)):
            _run_here(queue, uuid.UUID(done.job_id), path.name)
        elif done.job_id:
            console.print(f"  job {done.job_id} queued for the workers")
    if failures:
        raise typer.Exit(1)


def ingest_call_cmd(
    file: Annotated[Path, typer.Argument(help="A recording (.mp3, .m4a, .wav, ...) or transcript (.vtt, .srt, .txt).",
                                         exists=True, dir_okay=False)],
    as_email: Annotated[str, typer.Option("--as", help="The rep who had the call.")],
    deal: Annotated[str | None, typer.Option(help="The deal it was about (id or name).")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Upload a call: transcribe it (or read the transcript), then propose the activity, tasks and deal updates."""
    from channels.cli_common import _workspace
    from flows.jobs import InProcessQueue
    from flows.uploads import upload_call
    from store.db import unit_of_work
    from store.errors import CRMError

    queue = _queue()
    try:
        with unit_of_work() as session:
            ws = _workspace(session, workspace)
            actor = _user_actor(session, ws, as_email)
            deal_id = _deal_id(session, actor, deal) if deal else None
            up = upload_call(session, actor, filename=file.name, content_type=None, path=file, deal_id=deal_id,
                             source="cli")
            job_id = up.job.id
    except CRMError as exc:
        _fail(str(exc))
    if isinstance(queue, InProcessQueue):
        _run_here(queue, job_id, file.name)
    else:
        console.print(f"job {job_id} queued for the workers (`crm jobs show {job_id}`)")


def _deal_id(session: Any, actor: Any, ref: str) -> uuid.UUID:
    from store.services.search import search

    try:
        return uuid.UUID(ref)
    except ValueError:
        pass
    hits = search(session, actor=actor, q=ref, kinds=("deal",), limit=5)
    if len(hits) != 1:
        names = ", ".join(f"{h.label} ({h.id})" for h in hits) or "none"
        _fail(f"--deal {ref!r} matches {len(hits)} deals you can see ({names}); give the id")
    return uuid.UUID(str(hits[0].id))


def brief_cmd(
    record: Annotated[str, typer.Argument(help="A company or deal: name or id.")],
    as_email: Annotated[str, typer.Option("--as", help="Whose brief (their permissions and time zone).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """A meeting brief: deals, people and roles, last interactions, open tasks, promises, risks, with sources."""
    from channels.cli_common import _workspace
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services.search import search
    from tools import TOOLS, ToolContext

    with unit_of_work() as session:
        ws = _workspace(session, workspace)
        actor = _user_actor(session, ws, as_email)
        try:
            kind, record_id = "deal", uuid.UUID(record)

            if company_by_id(session, record_id) is not None:
                kind = "company"
        except ValueError:
            hits = search(session, actor=actor, q=record, kinds=("company", "deal"), limit=5)
            if not hits:
                _fail(f"no company or deal named {record!r} that you can see")
            exact = [h for h in hits if h.label.lower() == record.lower()]
            companies = [h for h in hits if h.kind == "company"]
            if not exact and len(companies) == 1:  # "Borealis": the company (its brief covers its deals)
                exact = companies
            if len(exact) != 1 and len(hits) > 1:
                names = ", ".join(f"{h.kind} {h.label}" for h in hits)
                _fail(f"{record!r} could be: {names}; be more specific or give the id")
            hit = (exact or hits)[0]
            kind, record_id = hit.kind, uuid.UUID(str(hit.id))
        try:
            text = TOOLS["brief"].run(ToolContext(actor=actor, session=session), TOOLS["brief"].parse(
                {"kind": kind, "id": str(record_id)}))
        except CRMError as exc:
            _fail(str(exc))
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def reindex_cmd(workspace: WorkspaceOpt = None) -> None:
    """Rebuild the vector memory from SQL (SQL is the source of truth), with a progress bar."""
    from channels.cli_common import _workspace
    from memory import get_memory
    from store.db import get_sessionmaker, unit_of_work

    with unit_of_work() as session:
        ws_id = _workspace(session, workspace).id
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.completed}/{task.total}"), console=console) as bar:
        task = bar.add_task("reindexing", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        counts = get_memory().reindex(get_sessionmaker(), workspace_id=ws_id, progress=progress)
    console.print(f"memory rebuilt: {counts}")


def worker_cmd(concurrency: Annotated[int, typer.Option(help="Jobs run at once by this worker.")] = 1,
               pool: Annotated[str, typer.Option(help="Celery pool: solo, threads or prefork.")] = "threads") -> None:
    """Run jobs from the broker (CRM_BROKER_URL, e.g. redis://127.0.0.1:6379/0) as a Celery worker."""
    from flows.jobs import JobFailed, celery_app, load_handlers
    from store.settings import get_settings

    settings = get_settings()
    try:
        celery = celery_app(settings)
    except JobFailed as exc:
        _fail(str(exc))
    load_handlers()
    if settings.slack_configured or settings.slack_socket_mode:
        # Reps hear in Slack what the jobs this worker runs proposed (or why one failed).
        from channels.slack.bot import SlackBot
        from store import events
        from store.db import get_sessionmaker

        events.on(events.JOB_FINISHED, SlackBot(settings=settings, sessions=get_sessionmaker()).report_job)
    console.print(f"worker: broker {settings.broker_url}, {concurrency} at a time ({pool} pool)")
    celery.worker_main(["worker", "--loglevel=INFO", f"--concurrency={concurrency}", f"--pool={pool}",
                        "--without-gossip", "--without-mingle"])


jobs_app = typer.Typer(help="Background jobs: list, show, retry.", no_args_is_help=True)


@jobs_app.command("list")
def jobs_list(failed: Annotated[bool, typer.Option(help="Only failed or interrupted ones.")] = False,
              workspace: WorkspaceOpt = None) -> None:
    """The latest jobs and their state."""
    from channels.cli_common import _workspace
    from store.db import unit_of_work
    from store.services.jobs import latest

    with unit_of_work() as session:
        ws = _workspace(session, workspace)
        for job in latest(session, workspace_id=ws.id, failed_only=failed):
            extra = f" - {job.error}" if job.error else ""
            console.print(f"{job.id}  {job.kind:<13} {job.status.value:<11} {job.progress:>4.0%} {job.message}{extra}",
                          markup=False)


@jobs_app.command("retry")
def jobs_retry(job_id: uuid.UUID, wait: Annotated[bool, typer.Option(help="Run it here and wait.")] = True,
               workspace: WorkspaceOpt = None) -> None:
    """Queue a failed or interrupted job again."""
    from channels.cli_common import _workspace
    from flows.jobs import InProcessQueue
    from store.actor import Actor
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services import jobs as job_service

    queue = _queue()
    try:
        with unit_of_work() as session:
            ws = _workspace(session, workspace)
            job_service.retry(session, actor=Actor.system(ws.id, Surface.cli), job_id=job_id)
    except CRMError as exc:
        _fail(str(exc))
    queue.enqueue(job_id)
    if wait and isinstance(queue, InProcessQueue):
        _run_here(queue, job_id, "retry")
