"""Call uploads end to end: API upload -> job (captions or whisper) -> transcript -> memory -> proposals.

The whisper path runs the real faster-whisper on a tiny random-weight model the test
builds, on audio the test makes (its words are garbage; the plumbing is what is tested).
"""

from __future__ import annotations

import math
import struct
import time
import uuid
import wave
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from store.models import Approval, CallRecording, Transcript
from store.models.enums import ApprovalStatus, RecordingStatus
from tests import factories as f
from tests.speech import needs_espeak, speak

VTT = """WEBVTT

00:00:01.000 --> 00:00:06.000
<v Priya Raman>Thanks for making time, Ines. Where did you land on the pilot?

00:00:06.500 --> 00:00:14.000
<v Ines Duarte>We want the pilot in January. If you add the telematics module we can go from 48k to 62k.

00:00:14.500 --> 00:00:20.000
<v Priya Raman>Great. I'll send the revised quote by Thursday.
"""


@pytest.fixture
def crm(session):  # type: ignore[no-untyped-def]
    w = f.world(session)
    co = f.create(session, w.priya, "company", name="Borealis Logistics", domain="borealis.example")
    ines = f.create(session, w.priya, "contact", first_name="Ines", last_name="Duarte", company_id=co.id,
                    email="ines@borealis.example")
    deal = f.create(session, w.priya, "deal", name="Borealis – Fleet Telematics", amount=Decimal("48000"),
                    company_id=co.id)
    session.commit()
    return {"w": w, "company": co, "ines": ines, "deal": deal}


@pytest.fixture
def priya_api(session, app, crm):  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield f.api(session, client, crm["w"].priya)


def upload(api, name: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return api.post("/calls", files={"file": (name, data, "application/octet-stream")}, data=form)


def test_meeting_transcript_upload_becomes_proposals_citing_spans(session, priya_api, crm, ingestion) -> None:
    r = upload(priya_api, "discovery-call.vtt", VTT.encode(), deal_id=str(crm["deal"].id))
    assert r.status_code == 202, r.text
    ingestion.wait()
    job = priya_api.get(f"/jobs/{r.json()['job']['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    session.expire_all()
    rec = session.get(CallRecording, uuid.UUID(r.json()["call_recording_id"]))
    assert rec.status == RecordingStatus.transcribed
    transcript = session.scalar(select(Transcript).where(Transcript.call_recording_id == rec.id))
    assert transcript.engine == "vtt" and len(transcript.segments) == 3
    assert transcript.segments[1]["speaker"] == "Ines Duarte" and transcript.segments[1]["start"] == 6.5

    proposals = {a.tool: a for a in session.scalars(select(Approval).where(
        Approval.requested_by_id == crm["w"].priya.id, Approval.status == ApprovalStatus.pending))}
    assert set(proposals) >= {"log_activity", "update_deal", "create_task"}
    assert proposals["log_activity"].args["type"] == "call"
    assert Decimal(str(proposals["update_deal"].args["amount"])) == Decimal("62000")
    amount_evidence = proposals["update_deal"].evidence[0]
    assert amount_evidence["verified"] and amount_evidence["start"] == 6.5 and "62k" in amount_evidence["quote"]
    task_evidence = proposals["create_task"].evidence[0]
    assert task_evidence["start"] == 14.5 and task_evidence["speaker"] == "Priya Raman"


def test_unsupported_or_empty_upload_is_refused_at_once(priya_api, ingestion) -> None:
    r = upload(priya_api, "notes.zip", b"PK\x03\x04")
    assert r.status_code == 422 and ".vtt" in r.json()["message"]
    r = upload(priya_api, "call.mp3", b"")
    assert r.status_code == 422 and "empty" in r.json()["message"]


def make_wav(path: Path, seconds: float = 3.0, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)
                                                 * (0.5 + 0.5 * math.sin(2 * math.pi * 3 * i / rate))))
                          for i in range(int(seconds * rate)))
        out.writeframes(frames)
    return path


def test_recording_is_transcribed_by_whisper_end_to_end(session, priya_api, crm, ingestion, tiny_whisper_dir,
                                                        tmp_path, monkeypatch) -> None:
    from store.settings import get_settings

    monkeypatch.setenv("CRM_WHISPER_MODEL", str(tiny_whisper_dir))
    get_settings.cache_clear()
    ingestion.queue.settings = get_settings()
    wav = make_wav(tmp_path / "call.wav")
    r = upload(priya_api, "call.wav", wav.read_bytes(), deal_id=str(crm["deal"].id))
    assert r.status_code == 202
    ingestion.wait()
    job = priya_api.get(f"/jobs/{r.json()['job']['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    session.expire_all()
    transcript = session.scalar(select(Transcript).where(
        Transcript.call_recording_id == uuid.UUID(r.json()["call_recording_id"])))
    assert transcript.engine.startswith("faster-whisper:")
    assert all(0 <= s["start"] <= s["end"] <= 3.5 for s in transcript.segments)


def test_missing_whisper_weights_fail_the_job_visibly_and_a_retry_succeeds(session, priya_api, crm, ingestion,
                                                                          tiny_whisper_dir, tmp_path,
                                                                          monkeypatch) -> None:
    from store.settings import get_settings

    monkeypatch.setenv("CRM_WHISPER_MODEL", str(tmp_path / "no-model-here"))
    get_settings.cache_clear()
    ingestion.queue.settings = get_settings()
    r = upload(priya_api, "call.wav", make_wav(tmp_path / "c.wav").read_bytes())
    ingestion.wait()
    job_id = r.json()["job"]["id"]
    job = priya_api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and "CRM_WHISPER_MODEL" in job["error"]
    session.expire_all()
    rec = session.get(CallRecording, uuid.UUID(r.json()["call_recording_id"]))
    assert rec.status == RecordingStatus.failed and "CRM_WHISPER_MODEL" in rec.error

    monkeypatch.setenv("CRM_WHISPER_MODEL", str(tiny_whisper_dir))  # the admin fixes the setting
    get_settings.cache_clear()
    ingestion.queue.settings = get_settings()
    again = priya_api.post(f"/jobs/{job_id}/retry")
    assert again.status_code == 202 and again.json()["status"] == "queued"
    ingestion.wait()
    job = priya_api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["attempts"] == 2, job["error"]
    assert priya_api.post(f"/jobs/{job_id}/retry").status_code == 409  # only failed jobs are retried


def set_limits(monkeypatch, ingestion, **values: object) -> None:  # type: ignore[no-untyped-def]
    """Call caps for this test (CRM_CALL_<NAME>): the upload route and the job read them."""
    from store.settings import get_settings

    for name, value in values.items():
        monkeypatch.setenv(f"CRM_CALL_{name.upper()}", str(value))
    get_settings.cache_clear()
    ingestion.queue.settings = get_settings()


def kept(session) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    """What a refused upload must not leave behind: a recording row, a file (kept or half-received)."""
    from store.settings import get_settings

    session.expire_all()
    files = sorted(str(p.relative_to(get_settings().files_dir)) for p in get_settings().files_dir.rglob("*")
                   if p.is_file())
    return session.scalar(select(func.count()).select_from(CallRecording)), files


# Random bytes whose first frame passes for MP3 (a one-frame probe took it for 37 s of audio).
RANDOM_MP3 = b"\xff\xfb" + np.random.default_rng(58).bytes(300_000)


@pytest.mark.parametrize("data", [RANDOM_MP3, b"\xff\xfb" + bytes(range(256)) * 20,
                                  np.random.default_rng(1).bytes(50_000)], ids=["passes for a frame", "junk", "random"])
def test_audio_that_does_not_decode_is_refused_at_upload_and_not_kept(session, priya_api, ingestion, data) -> None:
    """It used to be accepted and kept, and its job failed later (test changed deliberately: issue 15)."""
    r = upload(priya_api, "call.mp3", data)
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith("call.mp3: not audio FFmpeg can decode") and "MP3" in r.json()["message"]
    assert kept(session) == (0, [])


class Metered:
    """The app behind a server that hands it the body in 64 KiB pieces, as uvicorn does (the test
    client hands it all at once), counting what the app took before it answered."""

    def __init__(self, app: Any) -> None:
        self.app, self.taken = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        pieces: list[bytes] = []

        async def piecewise() -> Any:
            if not pieces:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                body = message.get("body", b"")
                pieces.extend(body[i:i + 65536] for i in range(0, len(body), 65536))
                if not pieces:
                    return message
            piece = pieces.pop(0)
            self.taken += len(piece)
            return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

        await self.app(scope, piecewise, send)


def test_an_oversize_transcript_is_refused_as_it_streams_in_and_nothing_is_kept(session, app, priya_api, ingestion,
                                                                               monkeypatch) -> None:
    """The 46 MB, million-cue .vtt of issue 15: refused with 413 once the bytes past the cap arrive, not
    read whole first (nor parsed for minutes by a job)."""
    set_limits(monkeypatch, ingestion, max_transcript_bytes=1024 * 1024)
    cue = b"00:00:01.000 --> 00:00:02.000\nPoint.\n\n"
    vtt = b"WEBVTT\n\n" + cue * (46_000_000 // len(cue))
    metered = Metered(app)
    with TestClient(metered) as client:
        r = client.post("/api/v1/calls", files={"file": ("all-hands.vtt", vtt, "text/vtt")},
                        headers={"Authorization": f"Bearer {priya_api.token}"})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "too_large" and r.json()["max_bytes"] == 1024 * 1024
    assert r.json()["message"] == ("all-hands.vtt is more than 1.0 MiB; a transcript may be at most 1.0 MiB "
                                   "(CRM_CALL_MAX_TRANSCRIPT_BYTES): split it into parts")
    assert metered.taken < 1.2 * 1024 * 1024, f"read {metered.taken / 2**20:.0f} MiB of 46 before refusing"
    assert kept(session) == (0, [])


def test_an_oversize_recording_is_refused_before_its_body_is_read(session, priya_api, ingestion, monkeypatch,
                                                                  tmp_path) -> None:
    set_limits(monkeypatch, ingestion, max_recording_bytes=200_000, max_transcript_bytes=100_000)
    r = upload(priya_api, "town-hall.mp3", RANDOM_MP3 * 2)  # its Content-Length says it all
    assert r.status_code == 413 and "the most taken here is 0.3 MiB" in r.json()["message"]
    r = upload(priya_api, "town-hall.wav", make_wav(tmp_path / "x.wav", 7.0).read_bytes())
    assert r.status_code == 413, r.text
    assert r.json()["message"].startswith("town-hall.wav is more than 195 KiB; a recording may be at most 195 KiB")
    assert "(CRM_CALL_MAX_RECORDING_BYTES)" in r.json()["message"]
    assert kept(session)[0] == 0 and not any(f.startswith(("calls", "incoming/")) for f in kept(session)[1])


def test_too_many_cues_or_too_long_a_recording_are_refused_at_upload(session, priya_api, ingestion, monkeypatch,
                                                                     tmp_path) -> None:
    from tests.test_transcribe import many_cues

    set_limits(monkeypatch, ingestion, max_cues=20, max_audio_seconds=2)
    r = upload(priya_api, "standup.vtt", many_cues(21))
    assert r.status_code == 422 and r.json()["message"] == (
        "standup.vtt has 21 cues; a transcript may have at most 20 (CRM_CALL_MAX_CUES): split it into parts")
    r = upload(priya_api, "call.wav", make_wav(tmp_path / "call.wav", 3.0).read_bytes())
    assert r.status_code == 422 and r.json()["message"].startswith(
        "call.wav is 0:00:03 long; the longest recording transcribed here is 0:00:02 (CRM_CALL_MAX_AUDIO_SECONDS)")
    assert kept(session) == (0, [])
    assert upload(priya_api, "standup.vtt", many_cues(20)).status_code == 202  # at the cap is fine


def test_jobs_over_their_cue_cap_or_time_budget_fail_with_a_clear_error(session, priya_api, ingestion,
                                                                        monkeypatch) -> None:
    """Plain text is not counted at upload; its job stops at the cap. A job past its wall-clock budget
    fails at its next check, instead of holding a worker."""
    from tests.test_transcribe import many_cues

    set_limits(monkeypatch, ingestion, max_cues=20)
    r = upload(priya_api, "notes.txt", many_cues(30, "txt"))
    assert r.status_code == 202
    ingestion.wait()
    job = priya_api.get(f"/jobs/{r.json()['job']['id']}").json()
    assert job["status"] == "failed" and job["error"] == (
        "notes.txt has more than 20 cues, the most a transcript may have (CRM_CALL_MAX_CUES): split it into parts")

    set_limits(monkeypatch, ingestion, max_cues=100_000, max_processing_seconds=0.001)
    started = time.monotonic()
    r = upload(priya_api, "long-call.txt", many_cues(5_000, "txt"))
    ingestion.wait()
    job = priya_api.get(f"/jobs/{r.json()['job']['id']}").json()
    assert job["status"] == "failed", job
    assert job["error"].startswith("long-call.txt: processing the call took longer than 0.001 s, the most one call "
                                   "may take (CRM_CALL_MAX_PROCESSING_SECONDS)")
    assert time.monotonic() - started < 30
    session.expire_all()
    rec = session.get(CallRecording, uuid.UUID(r.json()["call_recording_id"]))
    assert rec.status == RecordingStatus.failed and "CRM_CALL_MAX_PROCESSING_SECONDS" in rec.error
    assert session.scalar(select(Transcript).where(Transcript.call_recording_id == rec.id)) is None


def test_the_cli_door_applies_the_same_caps(cli_env, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from crm import app
    from store.db import unit_of_work
    from store.settings import get_settings

    monkeypatch.setenv("CRM_CALL_MAX_TRANSCRIPT_BYTES", "4096")
    get_settings.cache_clear()
    cli = CliRunner()
    for args in (["setup", "--no-demo"], ["user", "add", "priya@acme.example", "--name", "Priya Raman"]):
        assert cli.invoke(app, args).exit_code == 0
    big = tmp_path / "all-hands.vtt"
    big.write_bytes(b"WEBVTT\n\n" + b"00:00:01.000 --> 00:00:02.000\nPoint.\n\n" * 200)
    garbage = tmp_path / "call.mp3"
    garbage.write_bytes(RANDOM_MP3)
    out = cli.invoke(app, ["ingest-call", str(big), "--as", "priya@acme.example"])
    assert out.exit_code == 1
    assert "all-hands.vtt is 7 KiB; a transcript may be at most 4 KiB (CRM_CALL_MAX_TRANSCRIPT_BYTES)" in \
        " ".join(out.output.split())
    out = cli.invoke(app, ["ingest-call", str(garbage), "--as", "priya@acme.example"])
    assert out.exit_code == 1 and "call.mp3: not audio FFmpeg can decode" in " ".join(out.output.split())
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(CallRecording)) == 0
    assert not (cli_env / "files" / "calls").exists() or not any((cli_env / "files" / "calls").iterdir())


# A short call as espeak-ng speaks it. The amounts are words (espeak reads "62k" as "62 k");
# tiny.en writes them back as "$48,000" and "$62,000".
SPOKEN_CALL = ("Thanks for making time. Where did you land on the pilot? "
               "We want the pilot in January. If you add the telematics module, we can go from "
               "forty eight thousand dollars to sixty two thousand dollars. "
               "Great. I will send the revised quote to you by Thursday.")
# A Monday morning (UTC): "by Thursday" is three days on, whatever the real date is.
SPOKEN_AT = datetime(2026, 11, 23, 10, 40, tzinfo=UTC)


@needs_espeak
def test_a_spoken_call_becomes_proposals_with_the_bundled_model(session, priya_api, crm, ingestion, tmp_path,
                                                                monkeypatch) -> None:
    """Must-show (issue 17): a fresh install, no CRM_WHISPER_MODEL: the bundled tiny.en hears the call."""
    from store.settings import get_settings

    monkeypatch.delenv("CRM_WHISPER_MODEL", raising=False)
    monkeypatch.setenv("CRM_WHISPER_CPU_THREADS", "2")
    get_settings.cache_clear()
    ingestion.queue.settings = get_settings()
    assert get_settings().whisper_model == ""  # unset: the bundled model
    wav = speak(SPOKEN_CALL, tmp_path / "call.wav")
    with time_machine.travel(SPOKEN_AT, tick=True):
        r = upload(priya_api, "call.wav", wav.read_bytes(), deal_id=str(crm["deal"].id))
        assert r.status_code == 202, r.text
        ingestion.wait()
        thursday = (datetime.now(UTC) + timedelta(days=3)).date()  # the same clock the job read
    job = priya_api.get(f"/jobs/{r.json()['job']['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    session.expire_all()
    transcript = session.scalar(select(Transcript).where(
        Transcript.call_recording_id == uuid.UUID(r.json()["call_recording_id"])))
    assert transcript.engine == "faster-whisper:tiny.en"
    assert "Thursday" in transcript.text and "62,000" in transcript.text, transcript.text

    proposals = {a.tool: a for a in session.scalars(select(Approval).where(
        Approval.requested_by_id == crm["w"].priya.id, Approval.status == ApprovalStatus.pending))}
    assert set(proposals) >= {"update_deal", "create_task"}, (set(proposals), transcript.text)
    assert Decimal(str(proposals["update_deal"].args["amount"])) == Decimal("62000")
    assert proposals["create_task"].args["due_date"] == thursday.isoformat() == "2026-11-26"
    assert "Thursday" in proposals["create_task"].evidence[0]["quote"]
