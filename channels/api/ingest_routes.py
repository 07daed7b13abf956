"""Uploads: a call recording or transcript, a saved email; and jobs (progress, retry).

Included in channels/api/app.py under /api/v1. Each upload answers 202 with the job that
turns it into proposals; `GET /api/v1/jobs/{id}` shows its progress, `POST .../retry`
queues a failed one again.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.
import uuid
from typing import Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from channels.api.deps import get_actor, get_session
from channels.api.uploads import read_upload
from flows.jobs import get_queue
from flows.uploads import upload_call
from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Job
from store.schemas import read_schema
from store.services import jobs as job_service
from store.services.calls import CallLimits, check_kind, check_size
from store.services.org import user_by_id
from store.settings import get_settings

router = APIRouter(tags=["ingestion"])
JobOut = read_schema(Job, "JobOut")


def _job(job: Any) -> dict[str, Any]:
    return JobOut.model_validate(job).model_dump(mode="json")


_CALL_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "The recording (.mp3, .m4a, .wav, ...) or transcript (.vtt, .srt, .txt)"},
        **{name: {"type": "string", "format": "uuid", "description": f"The {name[:-3]} the call was about"}
           for name in ("deal_id", "contact_id", "company_id")}}}}}}}


def _form_id(fields: dict[str, str], name: str) -> uuid.UUID | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(f"{name}: {value[:80]!r} is not an id", field=name) from None


@router.post("/calls", status_code=202, summary="Upload a call recording or a meeting transcript",
             description="Audio/video is transcribed with whisper; .vtt/.srt/.txt transcripts are read as they are. "
                         "The job then proposes the call activity, tasks and deal updates for you to approve. "
                         "A transcript over CRM_CALL_MAX_TRANSCRIPT_BYTES or a recording over "
                         "CRM_CALL_MAX_RECORDING_BYTES is refused (413) as it arrives; audio that does not decode, "
                         "a recording longer than CRM_CALL_MAX_AUDIO_SECONDS or a transcript with more than "
                         "CRM_CALL_MAX_CUES cues is refused (422). Nothing refused is kept.",
             openapi_extra=_CALL_FORM,
             responses={413: {"description": "The file is larger than its cap"},
                        422: {"description": "Not a recording or transcript this CRM reads (the message says why)"}})
async def upload_call_route(request: Request, session: Session = Depends(get_session),
                            actor: Actor = Depends(get_actor)) -> Any:
    settings = get_settings()
    limits = CallLimits.from_settings(settings)
    upload = await read_upload(request, file_field="file", folder=settings.files_dir / "incoming",
                               max_body=max(limits.transcript_bytes, limits.recording_bytes) + 64 * 1024,
                               admit=check_kind,
                               cap=lambda name, size: check_size(name, size, limits, at_least=True))
    try:
        ids = {name: _form_id(upload.fields, name) for name in ("deal_id", "contact_id", "company_id")}

        def store() -> Any:
            up = upload_call(session, actor, filename=upload.filename or "recording",
                             content_type=upload.content_type, path=upload.path, source="api", settings=settings,
                             **ids)
            session.commit()
            return {"call_recording_id": str(up.recording.id), "job": _job(up.job)}

        return await run_in_threadpool(store)  # hashing, probing and the database: off the event loop
    finally:
        upload.discard()


@router.post("/inbox/emails", summary="Upload a saved email (.eml) as if you had forwarded it",
             description="The email is stored once (by Message-ID) as your copy, and a job proposes what it "
                         "implies. `sender_authenticated` says whether its From could be authenticated (DKIM).")
def upload_email(request: Request, file: UploadFile = File(description="The message as saved by a mail client"),
                 session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    from flows.deliver import deliver_detailed

    user = user_by_id(session, actor.user_id)
    if user is None:
        raise ValidationFailed("only a user can upload email (the system account has no inbox)")
    session.close()  # delivery opens its own unit of work
    raw = file.file.read()
    done = deliver_detailed(raw, recipients=[], provider="upload", uploaded_by=user.email,
                            sessions=request.app.state.sessionmaker)
    status = {"accepted": 202, "duplicate": 200, "invalid": 422, "refused": 403}.get(done.result.status, 503)
    return JSONResponse({"status": done.result.status, "message": done.result.message,
                         "email_id": done.result.email_id, "job_id": done.job_id,
                         "sender_authenticated": done.result.sender_authenticated}, status_code=status)


@router.post("/jobs/{job_id}/retry", status_code=202, summary="Queue a failed or interrupted job again")
def retry_job(job_id: uuid.UUID, session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    job = job_service.retry(session, actor=actor, job_id=job_id)
    out = _job(job)
    session.commit()
    get_queue().enqueue(job_id)
    return out


def inbound_webhooks(sessions: Any) -> APIRouter:
    """The provider webhooks (/inbound/mailgun, /inbound/sendgrid, /inbound/postmark)."""
    from channels.inbox.webhooks import inbound_router
    from flows.deliver import deliver
    from store.db import unit_of_work
    from store.services.inbox import forget_token, seen_token

    def remember(provider: str, token: str) -> bool:
        with unit_of_work(sessions) as session:
            return seen_token(session, provider, token)

    def forget(provider: str, token: str) -> None:
        with unit_of_work(sessions) as session:
            forget_token(session, provider, token)

    def deliver_here(raw: bytes, *, recipients: list[str], mail_from: str, provider: str) -> Any:
        return deliver(raw, recipients=recipients, mail_from=mail_from, provider=provider, sessions=sessions)

    return inbound_router(deliver=deliver_here, settings_getter=get_settings, seen_token=remember,
                          forget_token=forget)
