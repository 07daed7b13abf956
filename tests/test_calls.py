"""Call uploads end to end: API upload -> job (captions or whisper) -> transcript -> memory -> proposals.

The whisper path runs the real faster-whisper on a tiny random-weight model the test
builds, on audio the test makes (its words are garbage; the plumbing is what is tested).
"""

from __future__ import annotations

import math
import struct
import uuid
import wave
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from store.models import Approval, CallRecording, Transcript
from store.models.enums import ApprovalStatus, RecordingStatus
from tests import factories as f

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


def test_broken_audio_fails_with_a_reason(session, priya_api, ingestion, tiny_whisper_dir, monkeypatch) -> None:
    from store.settings import get_settings

    monkeypatch.setenv("CRM_WHISPER_MODEL", str(tiny_whisper_dir))
    get_settings.cache_clear()
    ingestion.queue.settings = get_settings()
    r = upload(priya_api, "call.mp3", b"\xff\xfb" + bytes(range(256)) * 20)
    ingestion.wait()
    job = priya_api.get(f"/jobs/{r.json()['job']['id']}").json()
    assert job["status"] == "failed" and job["error"].startswith("call.mp3: "), job["error"]
    assert "audio" in job["error"].lower()
