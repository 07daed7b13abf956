"""Uploads: a call recording or transcript, a saved email; and jobs (progress, retry).

Included in channels/api/app.py under /api/v1. Each upload answers 202 with the job that
turns it into proposals; `GET /api/v1/jobs/{id}` shows its progress, `POST .../retry`
queues a failed one again.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.
import uuid
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from channels.api.deps import get_actor, get_session
from channels.ingest import upload_call
from channels.jobs import get_queue
from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Job, User
from store.schemas import read_schema
from store.services import jobs as job_service
from store.settings import get_settings

router = APIRouter(tags=["ingestion"])
JobOut = read_schema(Job, "JobOut")


def _job(job: Any) -> dict[str, Any]:
    return JobOut.model_validate(job).model_dump(mode="json")


@router.post("/calls", status_code=202, summary="Upload a call recording or a meeting transcript",
             description="Audio/video is transcribed with whisper; .vtt/.srt/.txt transcripts are read as they are. "
                         "The job then proposes the call activity, tasks and deal updates for you to approve.")
def upload_call_route(file: UploadFile = File(description="The recording (.mp3, .m4a, .wav, ...) or transcript"),
                      deal_id: uuid.UUID | None = Form(None), contact_id: uuid.UUID | None = Form(None),
                      company_id: uuid.UUID | None = Form(None), session: Session = Depends(get_session),
                      actor: Actor = Depends(get_actor)) -> Any:
    data = file.file.read()
    up = upload_call(session, actor, filename=file.filename or "recording", content_type=file.content_type,
                     data=data, deal_id=deal_id, contact_id=contact_id, company_id=company_id, source="api")
    session.commit()
    return {"call_recording_id": str(up.recording.id), "job": _job(up.job)}


@router.post("/inbox/emails", summary="Upload a saved email (.eml) as if you had forwarded it",
             description="The email is stored once (by Message-ID) as your copy, and a job proposes what it "
                         "implies. `sender_authenticated` says whether its From could be authenticated (DKIM).")
def upload_email(request: Request, file: UploadFile = File(description="The message as saved by a mail client"),
                 session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    from channels.inbox.deliver import deliver_detailed

    user = session.get(User, actor.user_id) if actor.user_id else None
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


@router.post("/jobs/{job_id}/retry", status_code=202, summary="Queue a failed job again")
def retry_job(job_id: uuid.UUID, session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    job = job_service.retry(session, actor=actor, job_id=job_id)
    out = _job(job)
    session.commit()
    get_queue().enqueue(job_id)
    return out


def inbound_webhooks(sessions: Any) -> APIRouter:
    """The provider webhooks (/inbound/mailgun, /inbound/sendgrid, /inbound/postmark)."""
    from channels.inbox.deliver import deliver
    from channels.inbox.webhooks import inbound_router
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
