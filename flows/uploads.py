"""Uploads shared by the API, the CLI and Slack: a recording or a saved email, plus its job."""

from __future__ import annotations

import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from flows.jobs import submit
from store.actor import Actor
from store.models import CallRecording, Job
from store.services import jobs as job_service
from store.services.calls import CallLimits, store_recording
from store.settings import Settings, get_settings


@dataclass
class CallUpload:
    recording: CallRecording
    job: Job


def upload_call(session: Session, actor: Actor, *, filename: str, content_type: str | None,
                data: bytes | None = None, path: Path | None = None, contact_id: uuid.UUID | None = None,
                company_id: uuid.UUID | None = None, deal_id: uuid.UUID | None = None, source: str = "api",
                reply_to: dict[str, Any] | None = None, settings: Settings | None = None) -> CallUpload:
    """Check the upload (kind, size and length caps; recordings must decode), keep it, and queue
    `process_call` once the caller commits. Raises CRMError for bad input, and then keeps nothing.

    The file is `path` (streamed to disk by the door, or the user's own file) or `data`.
    `reply_to` says where the results go back (a Slack thread); it travels in the job's payload."""
    settings = settings or get_settings()
    if path is None:
        with tempfile.TemporaryDirectory(prefix="crm-upload-") as folder:
            path = Path(folder) / f"upload{re.sub(r'[^A-Za-z0-9.]', '', Path(filename).suffix)[:10]}"
            path.write_bytes(data or b"")
            return upload_call(session, actor, filename=filename, content_type=content_type, path=path,
                               contact_id=contact_id, company_id=company_id, deal_id=deal_id, source=source,
                               reply_to=reply_to, settings=settings)
    limits = CallLimits.from_settings(settings)
    rec = store_recording(session, actor, filename=filename, content_type=content_type, path=path,
                          files_dir=settings.files_dir, limits=limits,
                          contact_id=contact_id, company_id=company_id, deal_id=deal_id,
                          source=source)
    payload: dict[str, Any] = {"call_recording_id": str(rec.id)}
    if reply_to:
        payload["reply_to"] = reply_to
    job = job_service.create(session, workspace_id=actor.workspace_id, kind="process_call", payload=payload,
                             requested_by_id=actor.user_id, subject=("call_recording", rec.id),
                             message="queued for transcription")
    submit(session, job)
    return CallUpload(rec, job)
