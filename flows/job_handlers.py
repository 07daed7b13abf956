"""What each kind of background job does.

- `ingest_email`: a stored inbox email -> proposals for its rep, then into memory;
- `process_call`: a call recording -> transcript (captions parsed, or whisper) -> memory ->
  proposals citing transcript spans; within the call caps (cues, audio length) and its wall-clock
  budget (CRM_CALL_MAX_PROCESSING_SECONDS), else it fails saying which;
- `reindex`: rebuild the vector memory from SQL.

Each step is safe to run again (a retry after a failure): a transcript already stored is
not redone, and an ingestion conversation that already exists is not started twice.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from agents.ingest import message_for
from agents.runner import thread_for
from flows.job_context import JobContext, JobFailed, JobInterrupted, handler
from store.db import unit_of_work
from store.errors import CRMError
from store.models.enums import RecordingStatus, Surface
from store.services.calls import CallLimits, check_size, has_transcript, recording_by_id, save_transcript, set_status
from store.services.inbox import email_by_id
from store.services.org import actor_for_user, user_by_id

log = logging.getLogger("crm.jobs")


def _rep_actor(session: Any, user_id: uuid.UUID | None, surface: Surface) -> Any:
    user = user_by_id(session, user_id)
    if user is None or not user.is_active:
        raise JobFailed("the rep this belongs to no longer exists or is deactivated; nothing to propose to")
    return actor_for_user(user, surface)


def _propose(ctx: JobContext, kind: str, source_id: uuid.UUID, surface: Surface) -> dict[str, Any]:
    """Start the ingestion conversation (once) and report what it proposed."""
    from agents.ingest import build_input
    from flows.runtime import agent_runner

    runner = agent_runner(ctx.sessions)
    with unit_of_work(ctx.sessions) as session:
        actor = _rep_actor(session, ctx.requested_by_id, surface)
        thread = thread_for(kind, actor.user_id, source_id)
        if runner.history(thread):  # a retry after the proposals were made
            return {"thread": thread, "approvals": [str(a.id) for a in runner.pending(actor, thread)],
                    "message": "proposals already made"}
        try:
            message = message_for(build_input(session, actor, kind, source_id))
        except CRMError as exc:
            raise JobFailed(str(exc)) from exc
        source_ref: dict[str, Any] = {f"{kind}_id": str(source_id)}
        email = email_by_id(session, source_id) if kind == "email" else None
        if email is not None and email.sender_authenticated is not None:
            # Every proposal's evidence says whether the email's sender was who it claims.
            source_ref |= {"sender_authenticated": email.sender_authenticated, "sender_auth": email.sender_auth}
    turn = runner.send(actor=actor, thread_id=thread, text=message, source=kind, source_ref=source_ref)
    return {"thread": thread, "approvals": [str(a.id) for a in turn.proposals], "replies": turn.replies,
            "message": f"{len(turn.proposals)} proposal(s) for review"}


def _index(ctx: JobContext, kind: str, source_id: uuid.UUID) -> None:
    from memory import get_memory

    # Reads SQL in its own short session, then embeds with none open (SQLite has one write lock).
    get_memory().index_from(ctx.sessions, kind, source_id)


@handler("ingest_email")
def ingest_email(ctx: JobContext) -> dict[str, Any]:
    email_id = uuid.UUID(ctx.payload["email_id"])
    with unit_of_work(ctx.sessions) as session:
        if email_by_id(session, email_id) is None:
            raise JobFailed(f"email {email_id} no longer exists")
    ctx.progress(0.1, "reading the email")
    result = _propose(ctx, "email", email_id, Surface.email)
    ctx.progress(0.8, "adding it to memory")
    _index(ctx, "email", email_id)
    return result


@handler("process_call")
def process_call(ctx: JobContext) -> dict[str, Any]:
    recording_id = uuid.UUID(ctx.payload["call_recording_id"])
    limits = CallLimits.from_settings(ctx.settings)
    with unit_of_work(ctx.sessions) as session:
        rec = recording_by_id(session, recording_id)
        if rec is None:
            raise JobFailed(f"call recording {recording_id} no longer exists")
        done = has_transcript(session, recording_id)
        path, filename, content_type = Path(rec.storage_path or ""), rec.filename, rec.content_type
    # Checked at every progress report: a call that keeps a worker longer than this fails, clearly.
    ctx.time_limit(limits.processing_seconds, f"{filename}: processing the call took longer than "
                   f"{limits.processing_seconds:g} s, the most one call may take (CRM_CALL_MAX_PROCESSING_SECONDS); "
                   "split it into parts, or ask an admin to raise the limit")
    if not done:
        _transcribe(ctx, recording_id, path, filename, content_type, limits)
    ctx.progress(0.85, "adding the transcript to memory")
    _index(ctx, "call", recording_id)
    ctx.progress(0.9, "proposing updates")
    return _propose(ctx, "call", recording_id, Surface.call)


def _transcribe(ctx: JobContext, recording_id: uuid.UUID, path: Path, filename: str, content_type: str | None,
                limits: CallLimits) -> None:
    from calls.captions import is_caption_file, parse_captions
    from calls.transcribe import TranscriptionError, transcribe

    _set_status(ctx, recording_id, RecordingStatus.transcribing, None)
    try:
        if not path.is_file():  # the path is the server's business: logged, never shown
            log.warning("recording %s: %s is missing", recording_id, path)
            raise JobFailed(f"the uploaded file for {filename} is missing from storage; upload it again")
        captions = is_caption_file(filename, content_type)
        # Again here: a file kept before the caps were set (or lowered), retried.
        check_size(filename, path.stat().st_size, limits, transcript=captions)
        if captions:
            ctx.progress(0.1, "reading the transcript file")
            result = parse_captions(filename, path.read_bytes(), max_cues=limits.cues, check=ctx.check)
        else:
            ctx.progress(0.02, "loading the speech model")
            result = transcribe(path, ctx.settings.whisper, progress=lambda f, m: ctx.progress(0.05 + 0.75 * f, m),
                                name=filename, max_seconds=limits.audio_seconds, check=ctx.check)
    except JobInterrupted:
        raise  # not the file's fault: the job is marked interrupted (and the recording with it)
    except (TranscriptionError, JobFailed, CRMError) as exc:
        # The file is stored under its hash; the user knows it by the name they uploaded.
        text = exc.message if isinstance(exc, CRMError) else str(exc)
        message = text.replace(str(path), filename)
        message = message if message.startswith(filename) else f"{filename}: {message}"
        _set_status(ctx, recording_id, RecordingStatus.failed, message)
        raise JobFailed(message) from exc
    except Exception as exc:
        _set_status(ctx, recording_id, RecordingStatus.failed, f"unexpected error: {exc}")
        raise
    segments = [{k: v for k, v in {"start": s.start, "end": s.end, "speaker": s.speaker, "text": s.text}.items()
                 if v is not None} for s in result.segments]
    with unit_of_work(ctx.sessions) as session:
        save_transcript(session, recording_id=recording_id, language=result.language, text=result.text,
                        segments=segments, engine=result.engine, duration_seconds=result.duration_seconds)


def _set_status(ctx: JobContext, recording_id: uuid.UUID, status: RecordingStatus, error: str | None) -> None:
    with unit_of_work(ctx.sessions) as session:
        set_status(session, recording_id=recording_id, status=status, error=error)


@handler("reindex")
def reindex(ctx: JobContext) -> dict[str, Any]:
    from memory import get_memory

    counts = get_memory().reindex(ctx.sessions, workspace_id=ctx.workspace_id,
                                  progress=lambda done, total: ctx.progress(done / max(total, 1),
                                                                            f"{done}/{total} records"))
    return {"counts": counts, "message": "memory rebuilt"}
