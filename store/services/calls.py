"""Call recordings and transcripts: the file is kept, the row says where it is; its transcript, once made.

What may come in is decided here, the same for every door (API, Slack, `crm ingest-call`): a
recording or a meeting tool's transcript, not empty, under the size cap of its kind; a transcript
with no more cues than the cap; a recording that decodes (probed: a few seconds of it) and is no
longer than the cap. A refused upload is not kept. The caps come from the settings (`CallLimits`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calls.captions import CAPTION_SUFFIXES
from calls.transcribe import AudioUnreadable, probe_audio
from store import audit
from store.actor import Actor
from store.errors import TooLarge, ValidationFailed
from store.files import keep_file
from store.models import CallRecording, Transcript
from store.models.enums import AuditAction, RecordingStatus, Surface
from store.services import crud
from store.services.engagement import call_recordings
from store.settings import Settings

# What a recording or a meeting tool's transcript may be. Anything else is refused up front
# (a job failing minutes later on a .zip helps nobody).
AUDIO_SUFFIXES = {".mp3", ".m4a", ".mp4", ".wav", ".ogg", ".oga", ".opus", ".webm", ".flac", ".aac", ".wma",
                  ".amr", ".3gp", ".mov", ".mkv"}


@dataclass(frozen=True)
class CallLimits:
    transcript_bytes: int
    recording_bytes: int
    cues: int
    audio_seconds: float
    processing_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> CallLimits:
        return cls(transcript_bytes=settings.call_max_transcript_bytes,
                   recording_bytes=settings.call_max_recording_bytes, cues=settings.call_max_cues,
                   audio_seconds=settings.call_max_audio_seconds,
                   processing_seconds=settings.call_max_processing_seconds)

    def max_bytes(self, filename: str) -> int:
        """The size cap for an upload called `filename`: a transcript's, else a recording's."""
        return self.transcript_bytes if is_transcript(filename) else self.recording_bytes


def recording_by_id(session: Session, recording_id: uuid.UUID) -> CallRecording | None:
    """A call recording by id (a job's payload, an upload's result)."""
    return session.get(CallRecording, recording_id)


def is_transcript(filename: str) -> bool:
    return Path(filename or "").suffix.lower() in CAPTION_SUFFIXES


def check_kind(filename: str) -> None:
    """Refuse a file that is neither a recording nor a transcript, before any of it is read."""
    if Path(filename or "").suffix.lower() not in AUDIO_SUFFIXES | CAPTION_SUFFIXES:
        raise ValidationFailed(
            f"{filename}: not a recording or transcript this CRM reads; upload audio or video "
            f"({', '.join(sorted(AUDIO_SUFFIXES))}) or a meeting transcript (.vtt, .srt, .txt)", field="file")


def check_size(filename: str, size: int, limits: CallLimits, *, at_least: bool = False,
               transcript: bool | None = None) -> None:
    """Refuse an upload over its cap (413). `at_least`: `size` is only what has arrived so far.
    `transcript`: read as a transcript (default: by its name)."""
    transcript = is_transcript(filename) if transcript is None else transcript
    cap = limits.transcript_bytes if transcript else limits.recording_bytes
    if size <= cap:
        return
    what, setting, fix = (("a transcript", "CRM_CALL_MAX_TRANSCRIPT_BYTES", "split it into parts")
                          if transcript else
                          ("a recording", "CRM_CALL_MAX_RECORDING_BYTES",
                           "send the audio only (.mp3 or .m4a), or split it"))
    said = "more than " + _size(cap) if at_least else _size(size)
    raise TooLarge(f"{filename} is {said}; {what} may be at most {_size(cap)} ({setting}): {fix}",
                   field="file", max_bytes=cap)


def store_recording(session: Session, actor: Actor, *, filename: str, content_type: str | None, path: Path,
                    files_dir: Path, limits: CallLimits, contact_id: uuid.UUID | None = None,
                    company_id: uuid.UUID | None = None, deal_id: uuid.UUID | None = None,
                    source: str = "api") -> CallRecording:
    """Check the upload at `path` against the limits, keep a copy, and record it (status uploaded)."""
    check_kind(filename)
    size = path.stat().st_size
    if not size:
        raise ValidationFailed(f"{filename} is empty (0 bytes); upload the recording again", field="file")
    check_size(filename, size, limits)
    duration: float | None = None
    if is_transcript(filename):
        _check_cues(filename, path, limits)
    else:
        duration = _probe(path, filename, longest=limits.audio_seconds)
        if duration > limits.audio_seconds:
            raise ValidationFailed(
                f"{filename} is {_clock(duration)} long; the longest recording transcribed here is "
                f"{_clock(limits.audio_seconds)} (CRM_CALL_MAX_AUDIO_SECONDS): split it into parts", field="file")
    stored = keep_file(files_dir / "calls", path, Path(filename).suffix.lower())
    return crud.create(session, call_recordings, actor=actor, data={
        "filename": Path(filename).name[:500], "content_type": (content_type or "")[:200] or None,
        "size_bytes": size, "sha256": stored.name.split(".")[0], "storage_path": str(stored),
        "duration_seconds": round(duration) if duration is not None else None, "contact_id": contact_id,
        "company_id": company_id, "deal_id": deal_id, "source": source[:32]})


def _probe(path: Path, filename: str, *, longest: float) -> float:
    """The recording's length in seconds (PyAV decodes its first seconds: milliseconds); audio that
    does not decode is refused (422), and so not kept."""
    try:
        return probe_audio(path, name=filename, longest=longest)
    except AudioUnreadable as exc:
        raise ValidationFailed(str(exc).replace(str(path), filename), field="file") from exc


def _check_cues(filename: str, path: Path, limits: CallLimits) -> None:
    # Every WebVTT / SRT cue has one timing line with "-->": counting them costs milliseconds, where
    # parsing a file of a million cues held a worker for minutes. (The parser counts plain text.)
    if Path(filename).suffix.lower() not in (".vtt", ".srt"):
        return
    cues = path.read_bytes().count(b"-->")
    if cues > limits.cues:
        raise ValidationFailed(f"{filename} has {cues:,} cues; a transcript may have at most {limits.cues:,} "
                               "(CRM_CALL_MAX_CUES): split it into parts", field="file")


def _size(n: float) -> str:
    return f"{n / 1024 ** 3:.1f} GiB" if n >= 1024 ** 3 else f"{n / 1024 ** 2:.1f} MiB" if n >= 1024 ** 2 \
        else f"{n / 1024:.0f} KiB"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# --- transcription (the process_call job) ----------------------------------------------------------

def has_transcript(session: Session, recording_id: uuid.UUID) -> bool:
    """Is the recording transcribed already (a retried job does not transcribe it again)?"""
    return session.scalar(select(Transcript.id).where(Transcript.call_recording_id == recording_id)) is not None


def _set(session: Session, rec: CallRecording, note: str, **values: Any) -> None:
    before = {k: audit.jsonable(getattr(rec, k)) for k in values}
    for key, value in values.items():
        setattr(rec, key, value)
    old, new = audit.changes(before, {k: audit.jsonable(v) for k, v in values.items()})
    if new:
        audit.record(session, Actor.system(rec.workspace_id, Surface.call), action=AuditAction.update,
                     entity_type="call_recording", entity_id=rec.id, before=old, after=new, note=note)


def set_status(session: Session, *, recording_id: uuid.UUID, status: RecordingStatus,
               error: str | None = None) -> None:
    """Move a recording through transcription (transcribing, failed with why), audited."""
    rec = session.get(CallRecording, recording_id)
    if rec is not None:
        _set(session, rec, "transcription", status=status, error=error[:2000] if error else None)


def save_transcript(session: Session, *, recording_id: uuid.UUID, language: str | None, text: str,
                    segments: list[dict[str, Any]], engine: str, duration_seconds: float | None) -> Transcript:
    """Store a recording's transcript and mark the recording transcribed, both audited."""
    rec = session.get(CallRecording, recording_id)
    assert rec is not None
    transcript = Transcript(workspace_id=rec.workspace_id, call_recording_id=rec.id, language=language,
                            text=text, segments=segments, engine=engine[:100])
    session.add(transcript)
    session.flush()
    audit.record(session, Actor.system(rec.workspace_id, Surface.call), action=AuditAction.create,
                 entity_type="transcript", entity_id=transcript.id,
                 after={"call_recording_id": str(rec.id), "language": language, "engine": engine[:100],
                        "segments": len(segments)}, note="transcribed")
    values: dict[str, Any] = {"status": RecordingStatus.transcribed, "error": None}
    if duration_seconds:
        values["duration_seconds"] = round(duration_seconds)
    _set(session, rec, "transcribed", **values)
    return transcript
