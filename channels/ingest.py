"""Uploads shared by the API, the CLI and Slack: a recording or a saved email, plus its job."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from channels.jobs import submit
from store.actor import Actor
from store.models import CallRecording, Job
from store.services import jobs as job_service
from store.services.calls import store_recording
from store.settings import Settings, get_settings


@dataclass
class CallUpload:
    recording: CallRecording
    job: Job


def upload_call(session: Session, actor: Actor, *, filename: str, content_type: str | None, data: bytes,
                contact_id: uuid.UUID | None = None, company_id: uuid.UUID | None = None,
                deal_id: uuid.UUID | None = None, source: str = "api", reply_to: dict[str, Any] | None = None,
                settings: Settings | None = None) -> CallUpload:
    """Keep the file, queue `process_call` once the caller commits. Raises CRMError for bad input.

    `reply_to` says where the results go back (a Slack thread); it travels in the job's payload."""
    settings = settings or get_settings()
    rec = store_recording(session, actor, filename=filename, content_type=content_type, data=data,
                          files_dir=settings.files_dir, contact_id=contact_id, company_id=company_id,
                          deal_id=deal_id, source=source)
    payload: dict[str, Any] = {"call_recording_id": str(rec.id)}
    if reply_to:
        payload["reply_to"] = reply_to
    job = job_service.create(session, workspace_id=actor.workspace_id, kind="process_call", payload=payload,
                             requested_by_id=actor.user_id, subject=("call_recording", rec.id),
                             message="queued for transcription")
    submit(session, job)
    return CallUpload(rec, job)
