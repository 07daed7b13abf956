"""Call recordings and transcripts as uploaded: the file is kept, the row says where it is."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import ValidationFailed
from store.files import keep
from store.models import CallRecording
from store.services import crud
from store.services.engagement import call_recordings

# What a recording or a meeting tool's transcript may be. Anything else is refused up front
# (a job failing minutes later on a .zip helps nobody).
AUDIO_SUFFIXES = {".mp3", ".m4a", ".mp4", ".wav", ".ogg", ".oga", ".opus", ".webm", ".flac", ".aac", ".wma",
                  ".amr", ".3gp", ".mov", ".mkv"}
TRANSCRIPT_SUFFIXES = {".vtt", ".srt", ".txt"}


def store_recording(session: Session, actor: Actor, *, filename: str, content_type: str | None, data: bytes,
                    files_dir: Path, contact_id: uuid.UUID | None = None, company_id: uuid.UUID | None = None,
                    deal_id: uuid.UUID | None = None, max_bytes: int = 1024 * 1024 * 1024,
                    source: str = "api") -> CallRecording:
    suffix = Path(filename).suffix.lower()
    if suffix not in AUDIO_SUFFIXES | TRANSCRIPT_SUFFIXES:
        raise ValidationFailed(
            f"{filename}: not a recording or transcript this CRM reads; upload audio or video "
            f"({', '.join(sorted(AUDIO_SUFFIXES))}) or a meeting transcript (.vtt, .srt, .txt)", field="file")
    if not data:
        raise ValidationFailed(f"{filename} is empty (0 bytes); upload the recording again", field="file")
    if len(data) > max_bytes:
        raise ValidationFailed(f"{filename} is larger than {max_bytes // (1024 * 1024)} MiB", field="file")
    path = keep(files_dir / "calls", data, suffix)
    digest = path.name.split(".")[0]
    return crud.create(session, call_recordings, actor=actor, data={
        "filename": Path(filename).name[:500], "content_type": (content_type or "")[:200] or None,
        "size_bytes": len(data), "sha256": digest, "storage_path": str(path), "contact_id": contact_id,
        "company_id": company_id, "deal_id": deal_id, "source": source[:32]})
