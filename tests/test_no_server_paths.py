"""Where a file lies on the server's disk is the server's business: no response shows it.

Emails keep their raw message, attachments and recordings their file, under CRM_DATA_DIR; the
API (records, lists, the audit log, jobs, the OpenAPI schema) says what they are, never where.
"""

from __future__ import annotations

import json
import uuid
from email.message import EmailMessage
from pathlib import Path

from fastapi.testclient import TestClient

from store.models import CallRecording, EmailAttachment
from tests import factories as f

VTT = b"WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Ines>We want the pilot in January.\n"


def test_emails_attachments_recordings_and_their_audit_show_no_server_path(session, app, ingestion) -> None:
    w = f.world(session)
    data_dir = str(Path(ingestion.settings.data_dir).resolve())
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Ines Duarte <ines@borealis.example>", w.priya.email, "Volumes"
    msg["Date"], msg["Message-ID"] = "Fri, 20 Nov 2026 09:12:00 +0000", "<volumes-1@borealis.example>"
    msg.set_content("Volumes attached.")
    msg.add_attachment(b"depot,trucks\nPorto,40\n", maintype="text", subtype="csv", filename="volumes.csv")
    with TestClient(app) as client:
        priya, admin = f.api(session, client, w.priya), f.api(session, client, w.admin)
        uploaded = priya.post("/inbox/emails", files={"file": ("volumes.eml", msg.as_bytes(), "message/rfc822")})
        ingestion.wait()  # the job's thread shares the test's one connection: one at a time
        call = priya.post("/calls", files={"file": ("pilot.vtt", VTT, "text/vtt")})
        assert uploaded.status_code == 202 and call.status_code == 202, (uploaded.text, call.text)
        ingestion.wait()
        email_id, recording_id = uploaded.json()["email_id"], call.json()["call_recording_id"]
        [attachment] = priya.get("/email-attachments", params={"email_id": email_id}).json()["items"]
        responses = [
            uploaded, call, priya.get(f"/emails/{email_id}"), priya.get("/emails"),
            priya.get("/email-attachments"), priya.get(f"/email-attachments/{attachment['id']}"),
            priya.get(f"/call-recordings/{recording_id}"), priya.get("/call-recordings"),
            priya.get(f"/jobs/{call.json()['job']['id']}"), admin.get("/audit-log"),
        ]
        schema = client.get("/openapi.json").json()
        # Nor can a filter or a sort spell the path out.
        probes = [priya.get("/email-attachments", params={"storage_path__gte": "/"}),
                  priya.get("/emails", params={"raw_path": "null"}), priya.get("/call-recordings?sort=storage_path")]
    assert attachment["filename"] == "volumes.csv" and attachment["sha256"]  # what it is, still there
    for response in responses:
        assert response.status_code in (200, 202), response.text
        assert "storage_path" not in response.text and "raw_path" not in response.text, response.request.url
        assert data_dir not in response.text and "/files/" not in response.text, response.request.url
    assert "storage_path" not in json.dumps(schema) and "raw_path" not in json.dumps(schema)
    for probe in probes:
        assert probe.status_code == 422 and "cannot" in probe.json()["message"], probe.text
    # The files are kept, of course: the server knows where.
    session.expire_all()
    assert Path(session.get(EmailAttachment, uuid.UUID(attachment["id"])).storage_path).is_file()
    assert Path(session.get(CallRecording, uuid.UUID(recording_id)).storage_path).is_file()


def test_a_recording_missing_from_storage_fails_its_job_without_saying_where(session, app, ingestion) -> None:
    from flows.uploads import upload_call
    from store.db import unit_of_work

    w = f.world(session)
    with unit_of_work(ingestion.sessions) as s:
        up = upload_call(s, f.actor(w.priya), filename="call.vtt", content_type="text/vtt", data=VTT,
                         settings=ingestion.settings)
        Path(up.recording.storage_path or "").unlink()  # lost before the job ran
        job_id = up.job.id
    ingestion.wait()
    with TestClient(app) as client:
        job = f.api(session, client, w.priya).get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and "missing from storage; upload it again" in job["error"]
    assert str(Path(ingestion.settings.data_dir).resolve()) not in json.dumps(job) and "/files/" not in job["error"]
