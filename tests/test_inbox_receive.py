"""The inbox's doors: a real SMTP conversation (aiosmtpd server, smtplib client) and the provider
webhooks (Mailgun, SendGrid, Postmark) through FastAPI's TestClient. `deliver` here records what it
is handed and answers with the statuses a test scripts; the lead's SQL delivery is tested elsewhere."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from channels.inbox.smtp import InboxSMTPServer, is_inbox_recipient, smtp_reply
from channels.inbox.webhooks import inbound_router
from mail import DeliveryResult, parse_email

DATA = Path(__file__).parent / "data" / "email"
GMAIL_FORWARD = (DATA / "gmail_forward_with_pdf.eml").read_bytes()
KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


@dataclass
class Call:
    raw: bytes
    recipients: list[str]
    mail_from: str
    provider: str
    client: dict[str, str | None] = field(default_factory=dict)  # SMTP: the client's address and HELO


@dataclass
class Recorder:
    """A deliver callable: records each call and answers with the next scripted status."""

    statuses: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    raises: bool = False

    def __call__(self, raw: bytes, *, recipients: list[str], mail_from: str, provider: str,
                 **client: str | None) -> DeliveryResult:
        self.calls.append(Call(raw, list(recipients), mail_from, provider, client))
        if self.raises:
            raise RuntimeError("database is down")
        status = self.statuses.pop(0) if self.statuses else "accepted"
        return DeliveryResult(status, f"{status} by the test", "e-1" if status == "accepted" else None)  # type: ignore[arg-type]


# -- SMTP ---------------------------------------------------------------------------------------


@pytest.fixture
def deliver() -> Recorder:
    return Recorder()


@pytest.fixture
def server(deliver: Recorder) -> Iterator[InboxSMTPServer]:
    with InboxSMTPServer(deliver, inbox_address="inbox@crm.localhost", host="127.0.0.1", port=0,
                         max_bytes=64 * 1024) as running:
        yield running


def send(server: InboxSMTPServer, raw: bytes, to: list[str], sender: str = "priya@acme-sales.example") -> dict:
    """smtplib sends bytes as they are, and SMTP lines end in CRLF (mail servers convert)."""
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        return client.sendmail(sender, to, raw.replace(b"\n", b"\r\n"))


def test_port_zero_binds_a_free_port_and_a_message_is_delivered(server: InboxSMTPServer, deliver: Recorder) -> None:
    assert server.port != 0
    assert send(server, GMAIL_FORWARD, ["inbox@crm.localhost"]) == {}
    [call] = deliver.calls
    assert (call.recipients, call.mail_from, call.provider) == (["inbox@crm.localhost"], "priya@acme-sales.example",
                                                                "smtp")
    received = parse_email(call.raw)  # the bytes that arrived are the message that was sent
    assert received.message_id == "<CAJx9sQf3Q8m7yW1=pK2v4Lr0Zt6bN@mail.gmail.com>"
    assert received.attachments[0].sha256 == parse_email(GMAIL_FORWARD).attachments[0].sha256


def test_send_message_with_plus_address_and_case(server: InboxSMTPServer, deliver: Recorder) -> None:
    message = message_from_bytes((DATA / "koi8r_russian.eml").read_bytes(), policy=policy.default)
    del message["To"]
    message["To"] = "Inbox+Deal-42@CRM.localhost"
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        assert client.send_message(message) == {}
    [call] = deliver.calls
    assert call.recipients == ["Inbox+Deal-42@CRM.localhost"]
    assert parse_email(call.raw).subject == "Коммерческое предложение"


def test_a_duplicate_is_250_too(server: InboxSMTPServer, deliver: Recorder) -> None:
    deliver.statuses = ["accepted", "duplicate"]
    assert send(server, GMAIL_FORWARD, ["inbox@crm.localhost"]) == {}
    assert send(server, GMAIL_FORWARD, ["inbox@crm.localhost"]) == {}
    assert len(deliver.calls) == 2


@pytest.mark.parametrize(("status", "code", "enhanced"), [
    ("refused", 550, b"5.7.1"), ("invalid", 554, b"5.6.0"), ("error", 451, b"4.3.0")])
def test_delivery_results_become_smtp_replies(server: InboxSMTPServer, deliver: Recorder, status: str, code: int,
                                              enhanced: bytes) -> None:
    deliver.statuses = [status]
    with pytest.raises(smtplib.SMTPDataError) as caught:
        send(server, GMAIL_FORWARD, ["inbox@crm.localhost"])
    assert caught.value.smtp_code == code
    assert caught.value.smtp_error.startswith(enhanced + b" " + status.encode() + b" by the test")


def test_a_crashing_deliver_is_a_temporary_failure(server: InboxSMTPServer, deliver: Recorder) -> None:
    deliver.raises = True
    with pytest.raises(smtplib.SMTPDataError) as caught:
        send(server, GMAIL_FORWARD, ["inbox@crm.localhost"])
    assert caught.value.smtp_code == 451  # the sending server keeps the message and retries


def test_only_the_inbox_address_is_accepted(server: InboxSMTPServer, deliver: Recorder) -> None:
    for stranger in ("someone@crm.localhost", "inbox@other.example", "inboxx@crm.localhost"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            send(server, GMAIL_FORWARD, [stranger])
        code, reply = caught.value.recipients[stranger]
        assert code == 550 and b"send to inbox@crm.localhost" in reply
    assert deliver.calls == []
    refused = send(server, GMAIL_FORWARD, ["inbox+deal-42@crm.localhost", "ceo@crm.localhost"])
    assert list(refused) == ["ceo@crm.localhost"] and refused["ceo@crm.localhost"][0] == 550
    assert deliver.calls[0].recipients == ["inbox+deal-42@crm.localhost"]


def test_a_message_over_the_size_limit_is_refused(server: InboxSMTPServer, deliver: Recorder) -> None:
    big = GMAIL_FORWARD + b"\n" + b"x" * (70 * 1024)
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as caught:
        send(server, big, ["inbox@crm.localhost"])
    assert caught.value.smtp_code == 552
    assert deliver.calls == []


def test_stop_releases_the_port(deliver: Recorder) -> None:
    server = InboxSMTPServer(deliver, inbox_address="inbox@crm.localhost", port=0)
    server.start()
    port = server.port
    server.stop()
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=2)


def test_recipient_rule_and_reply_lines() -> None:
    assert is_inbox_recipient("<INBOX+x@Crm.Localhost>", "inbox@crm.localhost")
    assert not is_inbox_recipient("inbox@crm.localhost.evil.example", "inbox@crm.localhost")
    assert smtp_reply(DeliveryResult("refused", "unknown sender\r\nx@y: not a CRM user \u2713")) == \
        "550 5.7.1 unknown sender x@y: not a CRM user ?"


# -- webhooks -----------------------------------------------------------------------------------


@dataclass
class World:
    client: TestClient
    deliver: Recorder
    settings: SimpleNamespace
    seen: set[tuple[str, str]]


@pytest.fixture
def world() -> World:
    deliver = Recorder()
    settings = SimpleNamespace(mailgun_signing_key=SecretStr(KEY), inbound_webhook_user="postman",
                               inbound_webhook_password=SecretStr("s3cret pass"), inbox_max_bytes=64 * 1024)
    seen: set[tuple[str, str]] = set()

    def seen_token(provider: str, token: str) -> bool:  # what the lead stores in a table
        if (provider, token) in seen:
            return True
        seen.add((provider, token))
        return False

    app = FastAPI()
    app.include_router(inbound_router(deliver=deliver, settings_getter=lambda: settings, seen_token=seen_token))
    return World(TestClient(app), deliver, settings, seen)


def signed(fields: dict[str, str], *, timestamp: float | None = None, token: str = "a" * 50,
           key: str = KEY) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {**fields, "timestamp": stamp, "token": token, "signature": signature}


MAILGUN_MIME = {"recipient": "inbox@crm.localhost", "sender": "priya@acme-sales.example",
                "body-mime": GMAIL_FORWARD.decode()}


def test_mailgun_signed_raw_mime_is_delivered(world: World) -> None:
    response = world.client.post("/inbound/mailgun", data=signed(MAILGUN_MIME))
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "message": "accepted by the test", "email_id": "e-1"}
    [call] = world.deliver.calls
    assert (call.raw, call.recipients, call.mail_from, call.provider) == (
        GMAIL_FORWARD, ["inbox@crm.localhost"], "priya@acme-sales.example", "mailgun")


def test_mailgun_parsed_fields_are_rebuilt_into_mime(world: World) -> None:
    headers = [["From", "Ines Duarte <ines@borealis.example>"], ["To", "inbox@crm.localhost"],
               ["Subject", "Questionnaire r\u00e9vis\u00e9"], ["Date", "Tue, 14 Oct 2025 09:12:00 +0200"],
               ["Message-Id", "<mg-parsed-1@borealis.example>"], ["Content-Type", "multipart/mixed; boundary=x"]]
    fields = signed({"recipient": "inbox@crm.localhost", "sender": "ines@borealis.example",
                     "message-headers": json.dumps(headers), "body-plain": "See the CSV.",
                     "body-html": "<p>See the <b>CSV</b>.</p>", "attachment-count": "1"})
    files = {"attachment-1": ("volumes.csv", b"depot,trucks\nPorto,40\n", "text/csv")}
    response = world.client.post("/inbound/mailgun", data=fields, files=files)
    assert response.status_code == 200, response.text
    parsed = parse_email(world.deliver.calls[0].raw)
    assert (parsed.message_id, parsed.subject, parsed.from_.address, parsed.text) == (
        "<mg-parsed-1@borealis.example>", "Questionnaire r\u00e9vis\u00e9", "ines@borealis.example", "See the CSV.")
    assert parsed.sent_at is not None and parsed.sent_at.hour == 7
    assert [(a.filename, a.text) for a in parsed.attachments] == [("volumes.csv", "depot,trucks\nPorto,40\n")]


@pytest.mark.parametrize(("change", "status", "reason"), [
    ({"signature": "0" * 64}, 401, "forged"),
    ({"signature": "\u00e9" * 64}, 401, "forged"),
    ({"key": "key-someone-elses"}, 401, "forged"),
    ({"age": 600}, 403, "stale"),
    ({"age": -600}, 403, "stale"),
])
def test_mailgun_forged_or_stale_posts_are_refused(world: World, change: dict, status: int, reason: str) -> None:
    fields = signed(MAILGUN_MIME, key=change.get("key", KEY), timestamp=time.time() - change.get("age", 0))
    fields.update({k: v for k, v in change.items() if k == "signature"})
    response = world.client.post("/inbound/mailgun", data=fields)
    assert response.status_code == status
    assert response.json()["reason"] == reason and reason in response.json()["detail"]
    assert world.deliver.calls == []
    assert world.seen == set()  # nothing unverified reaches the token table


@pytest.mark.parametrize("stamp", ["nan", "NaN", "inf", "-inf", "1e400", "-5", "-1700000000", "1.7e9",
                                   "9" * 40, "0x65", "17e8"])
def test_mailgun_timestamps_that_are_no_time_are_stale_even_when_signed(world: World, stamp: str) -> None:
    """Whoever holds the key can sign any text; only whole seconds near now are fresh."""
    token = "n" * 50
    fields = {**MAILGUN_MIME, "timestamp": stamp, "token": token,
              "signature": hmac.new(KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()}
    response = world.client.post("/inbound/mailgun", data=fields)
    assert response.status_code == 403, response.text
    assert response.json()["reason"] == "stale" and "stale request" in response.json()["detail"]
    assert world.deliver.calls == [] and world.seen == set()


def test_mailgun_replayed_token_is_refused(world: World) -> None:
    fields = signed(MAILGUN_MIME, token="t" * 50)
    assert world.client.post("/inbound/mailgun", data=fields).status_code == 200
    again = world.client.post("/inbound/mailgun", data=fields)
    assert again.status_code == 403 and again.json()["reason"] == "replayed"
    assert len(world.deliver.calls) == 1


def test_mailgun_unsigned_and_unconfigured(world: World) -> None:
    unsigned = world.client.post("/inbound/mailgun", data=MAILGUN_MIME)
    assert unsigned.status_code == 401 and unsigned.json()["reason"] == "unsigned"
    world.settings.mailgun_signing_key = None
    unset = world.client.post("/inbound/mailgun", data=signed(MAILGUN_MIME))
    assert unset.status_code == 503 and "CRM_MAILGUN_SIGNING_KEY" in unset.json()["detail"]
    assert world.deliver.calls == []


@pytest.mark.parametrize(("status", "http"), [("duplicate", 200), ("refused", 406), ("invalid", 406), ("error", 503)])
def test_mailgun_status_mapping(world: World, status: str, http: int) -> None:
    world.deliver.statuses = [status]
    response = world.client.post("/inbound/mailgun", data=signed(MAILGUN_MIME))
    assert response.status_code == http
    assert response.json()["status"] == status


def test_a_crashing_deliver_asks_the_provider_to_retry(world: World) -> None:
    world.deliver.raises = True
    response = world.client.post("/inbound/mailgun", data=signed(MAILGUN_MIME))
    assert response.status_code == 503 and response.json()["status"] == "error"


def test_an_oversized_post_is_refused_unread(world: World) -> None:
    world.settings.inbox_max_bytes = 1000  # the request limit is twice that plus 1 MiB
    fields = signed({**MAILGUN_MIME, "body-mime": "x" * (2 * 1024 * 1024)})
    response = world.client.post("/inbound/mailgun", data=fields)
    assert response.status_code == 406 and "too large" in response.json()["message"]
    assert world.deliver.calls == []


def auth(user: str = "postman", password: str = "s3cret pass") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_sendgrid_raw_mime_is_delivered(world: World) -> None:
    envelope = json.dumps({"to": ["inbox@crm.localhost"], "from": "priya@acme-sales.example"})
    response = world.client.post("/inbound/sendgrid", headers=auth(),
                                 data={"email": GMAIL_FORWARD.decode(), "envelope": envelope})
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    [call] = world.deliver.calls
    assert (call.raw, call.recipients, call.mail_from, call.provider) == (
        GMAIL_FORWARD, ["inbox@crm.localhost"], "priya@acme-sales.example", "sendgrid")


def test_sendgrid_parsed_mode_is_rebuilt(world: World) -> None:
    headers = ("From: Ines Duarte <ines@borealis.example>\nTo: inbox@crm.localhost\nSubject: Volumes\n"
               "Message-ID: <sg-parsed-1@borealis.example>\nDate: Tue, 14 Oct 2025 09:12:00 +0200\n"
               "Content-Type: multipart/mixed; boundary=xyz\n")
    response = world.client.post("/inbound/sendgrid", headers=auth(),
                                 data={"headers": headers, "text": "Volumes attached.", "attachments": "1"},
                                 files={"attachment1": ("volumes.csv", b"depot,trucks\nPorto,40\n", "text/csv")})
    assert response.status_code == 200
    parsed = parse_email(world.deliver.calls[0].raw)
    assert (parsed.message_id, parsed.subject, parsed.text) == ("<sg-parsed-1@borealis.example>", "Volumes",
                                                                "Volumes attached.")
    assert [(a.filename, a.text) for a in parsed.attachments] == [("volumes.csv", "depot,trucks\nPorto,40\n")]


@pytest.mark.parametrize(("status", "http"), [("duplicate", 200), ("refused", 403), ("invalid", 422), ("error", 503)])
def test_sendgrid_status_mapping(world: World, status: str, http: int) -> None:
    world.deliver.statuses = [status]
    response = world.client.post("/inbound/sendgrid", headers=auth(), data={"email": GMAIL_FORWARD.decode()})
    assert response.status_code == http and response.json()["status"] == status


POSTMARK = {
    "From": "ines@borealis.example", "FromName": "Ines Duarte",
    "FromFull": {"Email": "ines@borealis.example", "Name": "Ines Duarte", "MailboxHash": ""},
    "To": "\"CRM inbox\" <inbox+deal-42@crm.localhost>",
    "ToFull": [{"Email": "inbox+deal-42@crm.localhost", "Name": "CRM inbox", "MailboxHash": "deal-42"}],
    "Cc": "marco.rossi@borealis.example", "CcFull": [{"Email": "marco.rossi@borealis.example", "Name": ""}],
    "OriginalRecipient": "inbox+deal-42@crm.localhost", "Subject": "Pilot start in January",
    "MessageID": "22c74902-a0c1-4511-804f-341342852c90", "Date": "Tue, 14 Oct 2025 09:12:00 +02:00",
    "TextBody": "Hi Priya, we would like to start the pilot in January.", "HtmlBody": "<p>Hi Priya</p>",
    "Headers": [{"Name": "X-Spam-Status", "Value": "No"},
                {"Name": "Message-ID", "Value": "<CAFx-postmark-1@mail.borealis.example>"}],
    "Attachments": [{"Name": "plan.txt", "Content": base64.b64encode(b"Phase 1: Porto").decode(),
                     "ContentType": "text/plain", "ContentLength": 14}],
}


def test_postmark_json_is_rebuilt_and_delivered(world: World) -> None:
    response = world.client.post("/inbound/postmark", headers=auth(), json=POSTMARK)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    [call] = world.deliver.calls
    assert (call.recipients, call.mail_from, call.provider) == (
        ["inbox+deal-42@crm.localhost"], "ines@borealis.example", "postmark")
    parsed = parse_email(call.raw)
    assert parsed.message_id == "<CAFx-postmark-1@mail.borealis.example>"  # the header, not Postmark's own id
    assert (parsed.from_.address, parsed.from_.name) == ("ines@borealis.example", "Ines Duarte")
    assert [a.address for a in parsed.cc] == ["marco.rossi@borealis.example"]
    assert parsed.text == "Hi Priya, we would like to start the pilot in January."
    assert parsed.sent_at is not None and (parsed.sent_at.hour, parsed.sent_at.minute) == (7, 12)
    assert [(a.filename, a.text) for a in parsed.attachments] == [("plan.txt", "Phase 1: Porto")]


def test_postmark_envelope_sender_is_read_from_its_headers(world: World) -> None:
    """Postmark's JSON has no envelope field: the route the message came by is in its headers."""
    spf = {"Name": "Received-SPF", "Value": "Pass (sender SPF authorized) identity=mailfrom; client-ip=192.0.2.7; "
                                            "helo=mail.borealis.example; envelope-from=bounce-9@mail.borealis.example;"
                                            " receiver=inbox@crm.localhost"}
    for headers, expected in (([spf], "bounce-9@mail.borealis.example"),
                              ([{"Name": "Return-Path", "Value": "<rp@borealis.example>"}, spf], "rp@borealis.example"),
                              ([], "ines@borealis.example")):  # nothing better than the From
        world.client.post("/inbound/postmark", headers=auth(), json={**POSTMARK, "Headers": headers})
        assert world.deliver.calls[-1].mail_from == expected


def test_postmark_without_a_message_id_header_gets_a_stable_one(world: World) -> None:
    payload = {**POSTMARK, "Headers": []}
    world.client.post("/inbound/postmark", headers=auth(), json=payload)
    world.client.post("/inbound/postmark", headers=auth(), json=payload)  # Postmark's retry
    ids = {parse_email(call.raw).message_id for call in world.deliver.calls}
    assert ids == {"<22c74902-a0c1-4511-804f-341342852c90@inbound.postmarkapp.com>"}


def test_postmark_raw_email_is_used_when_included(world: World) -> None:
    response = world.client.post("/inbound/postmark", headers=auth(), json={**POSTMARK,
                                                                             "RawEmail": GMAIL_FORWARD.decode()})
    assert response.status_code == 200
    assert world.deliver.calls[0].raw == GMAIL_FORWARD


def test_postmark_nonsense_is_invalid_not_a_crash(world: World) -> None:
    for body in (b"not json", b"[1, 2]"):
        response = world.client.post("/inbound/postmark", headers={**auth(), "Content-Type": "application/json"},
                                     content=body)
        assert response.status_code == 403 and response.json()["status"] == "invalid"
    odd = world.client.post("/inbound/postmark", headers=auth(), json={**POSTMARK, "TextBody": 5, "HtmlBody": None})
    assert odd.status_code == 403 and "could not rebuild" in odd.json()["message"]
    assert world.deliver.calls == []


@pytest.mark.parametrize(("status", "http"), [("duplicate", 200), ("refused", 403), ("invalid", 403), ("error", 503)])
def test_postmark_status_mapping(world: World, status: str, http: int) -> None:
    world.deliver.statuses = [status]
    response = world.client.post("/inbound/postmark", headers=auth(), json=POSTMARK)
    assert response.status_code == http and response.json()["status"] == status


@pytest.mark.parametrize("path", ["/inbound/postmark", "/inbound/sendgrid"])
def test_basic_auth_wrong_missing_and_unset(world: World, path: str) -> None:
    body = {"json": POSTMARK} if path.endswith("postmark") else {"data": {"email": GMAIL_FORWARD.decode()}}
    for headers in (auth(password="guess"), auth(user="admin"), {}, {"Authorization": "Basic !!!"}):
        response = world.client.post(path, headers=headers, **body)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic realm=")
    world.settings.inbound_webhook_password = None
    unset = world.client.post(path, headers=auth(), **body)
    assert unset.status_code == 503
    assert "CRM_INBOUND_WEBHOOK_USER" in unset.json()["detail"]
    assert "CRM_INBOUND_WEBHOOK_PASSWORD" in unset.json()["detail"]
    assert world.deliver.calls == []
