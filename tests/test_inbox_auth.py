"""Inbound sender authentication (DESIGN.md), through the doors mail comes in by: the signed Mailgun
webhook of the real app, the SMTP listener, the upload API and `crm ingest-email`.

DNS is the test's own (tests/fake_dns.py): a DKIM key or an SPF policy exists only where a test
publishes it. The workspace's reps are userN@acme-sales.example; acme-sales.example is its domain.
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from store.models import Approval, Email, Job
from store.models.enums import ApprovalStatus
from tests import factories as f
from tests.fake_dns import FakeDNS

KEY = "key-inbound-auth-test"
TRUSTED = "mx.crm.example"
BODY = ("Hi Ines,\n\nThanks for the call. I will send the revised quote by Thursday.\n\nPriya\n")


def message(sender: str, *, headers: tuple[tuple[str, str], ...] = (), body: str = BODY) -> bytes:
    """A rep's own email to a customer, with the inbox in BCC (the headers first, as a receiver adds them)."""
    msg = EmailMessage()
    for name, value in headers:
        msg[name] = value
    msg["From"], msg["To"], msg["Subject"] = sender, "Ines Duarte <ines@borealis.example>", "Revised quote"
    msg["Date"], msg["Message-ID"] = "Fri, 20 Nov 2026 09:12:00 +0000", f"<{uuid.uuid4().hex}@acme-sales.example>"
    msg.set_content(body)
    return msg.as_bytes()


@dataclass
class Inbox:
    client: TestClient
    w: f.World
    dns: FakeDNS
    ingestion: Any

    def mailgun(self, raw: bytes, *, sender: str) -> Any:
        token, stamp = uuid.uuid4().hex * 2, str(int(time.time()))
        fields = {"recipient": "inbox@crm.example", "sender": sender, "body-mime": raw.decode(), "timestamp": stamp,
                  "token": token, "signature": hmac.new(KEY.encode(), (stamp + token).encode(),
                                                        hashlib.sha256).hexdigest()}
        response = self.client.post("/inbound/mailgun", data=fields)
        self.ingestion.wait()
        return response

    def api(self, session: Any, who: Any) -> f.Api:
        return f.api(session, self.client, who)


@pytest.fixture
def inbox(session, app, ingestion, dns, monkeypatch):  # type: ignore[no-untyped-def]
    from store.settings import get_settings

    monkeypatch.setenv("CRM_MAILGUN_SIGNING_KEY", KEY)
    monkeypatch.setenv("CRM_INBOUND_TRUSTED_AUTHSERV_IDS", f"{TRUSTED}, mx.other.example")
    get_settings.cache_clear()
    w = f.world(session)
    with TestClient(app) as client:
        yield Inbox(client, w, dns, ingestion)


def stored(session, email_id: str) -> Email:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(Email, uuid.UUID(email_id))


def pending_for(session, user) -> list[Approval]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(Approval).where(Approval.requested_by_id == user.id,
                                                       Approval.status == ApprovalStatus.pending)))


def nothing_stored(session) -> bool:  # type: ignore[no-untyped-def]
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Email)),
            session.scalar(select(func.count()).select_from(Job))) == (0, 0)


def test_a_forged_dkim_pass_from_an_untrusted_server_is_ignored_and_the_rep_sees_the_flag(session, inbox) -> None:
    priya = inbox.w.priya
    forged = (("Authentication-Results", "mx.evil.example; dkim=pass header.d=acme-sales.example; "
                                         "dmarc=pass header.from=acme-sales.example"),)
    response = inbox.mailgun(message(priya.email, headers=forged), sender=priya.email)
    assert response.status_code == 200 and response.json()["status"] == "accepted", response.text
    assert "sender not authenticated" in response.json()["message"]
    email_id = response.json()["email_id"]

    api = inbox.api(session, priya)
    shown = api.get(f"/emails/{email_id}").json()
    assert shown["owner_id"] == str(priya.id) and shown["sender_authenticated"] is False
    assert "untrusted mx.evil.example ignored" in shown["sender_auth"] and "no DKIM signature" in shown["sender_auth"]
    proposals = api.get("/approvals/waiting").json()
    assert proposals and all(p["evidence"][0]["sender_authenticated"] is False for p in proposals)

    # The same forgery from anyone else's mailbox does not make it hers.
    refused = inbox.mailgun(message(priya.email, headers=forged), sender="mallory@evil.example")
    assert refused.status_code == 406 and "not filed as theirs" in refused.json()["message"]
    assert session.scalar(select(func.count()).select_from(Email)) == 1


def test_a_trusted_receivers_pass_is_honoured_and_only_its_topmost_verdict(session, inbox) -> None:
    priya = inbox.w.priya
    passed = (("Authentication-Results", f"{TRUSTED}; dkim=pass header.d=acme-sales.example header.s=s1; "
                                         "spf=neutral smtp.mailfrom=relay.example"),)
    # Forwarded by a relay that rewrote the envelope sender: DKIM still vouches for Priya.
    response = inbox.mailgun(message(priya.email, headers=passed), sender="srs0=ab12=priya@relay.example")
    assert response.json()["status"] == "accepted", response.text
    email = stored(session, response.json()["email_id"])
    assert (email.owner_id, email.sender_authenticated) == (priya.id, True)
    assert email.sender_auth == f"dkim=pass for acme-sales.example, reported by trusted {TRUSTED}"
    assert "not authenticated" not in response.json()["message"]

    # A "pass" the message brought along sits below the receiver's own verdict, and is not read.
    smuggled = ((("Authentication-Results", f"{TRUSTED}; dkim=fail header.d=acme-sales.example"),) +
                (("Authentication-Results", f"{TRUSTED}; dkim=pass header.d=acme-sales.example"),))
    refused = inbox.mailgun(message(priya.email, headers=smuggled), sender="mallory@evil.example")
    assert refused.status_code == 406 and f"trusted {TRUSTED} reported dkim=fail" in refused.json()["message"]


def test_a_dkim_signed_message_verifies_against_the_published_key(session, inbox) -> None:
    priya = inbox.w.priya
    sign = inbox.dns.dkim_key("acme-sales.example", "s1")
    signed = sign(message(priya.email))
    response = inbox.mailgun(signed, sender="bounce-7@mail.acme-sales.example")
    assert response.json()["status"] == "accepted", response.text
    email = stored(session, response.json()["email_id"])
    assert (email.owner_id, email.sender_authenticated, email.sender_auth) == (
        priya.id, True, "dkim=pass d=acme-sales.example")
    assert ("s1._domainkey.acme-sales.example", "TXT") in inbox.dns.asked

    tampered = sign(message(priya.email)).replace(b"by Thursday", b"by Tuesday")
    response = inbox.mailgun(tampered, sender="bounce-8@mail.acme-sales.example")
    assert response.status_code == 406 and "dkim=fail d=acme-sales.example" in response.json()["message"]

    # A signature by another domain vouches for that domain, not for Priya's.
    other = inbox.dns.dkim_key("evil.example", "k")
    response = inbox.mailgun(other(message(priya.email)), sender="mallory@evil.example")
    assert response.status_code == 406 and "DKIM signature by evil.example" in response.json()["message"]


def test_a_spoofed_from_naming_another_rep_is_not_filed_as_hers_and_queues_nothing_for_her(session, inbox) -> None:
    priya, eve = inbox.w.priya, inbox.w.eve
    response = inbox.mailgun(message(priya.email), sender=eve.email)  # Eve writes "From: Priya"
    assert response.json()["status"] == "accepted", response.text
    assert f"filed as yours, not as {priya.name}'s" in response.json()["message"]
    email = stored(session, response.json()["email_id"])
    assert (email.owner_id, email.sender_authenticated) == (eve.id, False)
    assert pending_for(session, priya) == [] and pending_for(session, eve)
    assert inbox.api(session, priya).get("/emails").json()["items"] == []

    stranger = inbox.mailgun(message(priya.email), sender="mallory@evil.example")
    assert stranger.status_code == 406 and stranger.json()["status"] == "refused"
    assert f"{priya.email} is a user of this CRM, but this message did not come from that address" \
        in stranger.json()["message"]
    assert session.scalar(select(func.count()).select_from(Email)) == 1 and pending_for(session, priya) == []


def test_the_refuse_setting_refuses_unauthenticated_mail_with_a_clear_message(session, inbox) -> None:
    priya, admin = inbox.w.priya, inbox.api(session, inbox.w.admin)
    bad = admin.patch("/workspace", json={"settings": {"inbox": {"unauthenticated": "quarantine"}}})
    assert bad.status_code == 422 and "flag, refuse" in bad.json()["message"]
    ok = admin.patch("/workspace", json={"settings": {"inbox": {"unauthenticated": "refuse"}}})
    assert ok.status_code == 200 and ok.json()["settings"]["inbox"] == {"unauthenticated": "refuse"}

    response = inbox.mailgun(message(priya.email), sender=priya.email)
    assert response.status_code == 406 and response.json()["status"] == "refused"
    assert "could not be authenticated (no DKIM signature" in response.json()["message"]
    assert 'refuses unauthenticated mail (settings.inbox.unauthenticated = "refuse")' in response.json()["message"]
    upload = inbox.api(session, priya).post("/inbox/emails", files={"file": ("q.eml", message(priya.email))})
    assert upload.status_code == 403 and "refuses unauthenticated mail" in upload.json()["message"]
    assert nothing_stored(session)

    signed = inbox.dns.dkim_key("acme-sales.example")(message(priya.email))
    inbox.dns.down = True  # the key cannot be fetched now: Mailgun is asked to retry, nothing is lost
    later = inbox.mailgun(signed, sender=priya.email)
    assert later.status_code == 503 and "could not be authenticated yet" in later.json()["message"]
    assert nothing_stored(session)
    inbox.dns.down = False
    assert inbox.mailgun(signed, sender=priya.email).json()["status"] == "accepted"


def test_smtp_checks_spf_and_the_readme_example_is_flagged_not_refused(session, inbox) -> None:
    from channels.inbox.smtp import start_smtp

    priya = inbox.w.priya
    server = start_smtp(inbox.ingestion.sessions, inbox.ingestion.settings.model_copy(update={"inbox_smtp_port": 0}))
    try:
        # The README's example: smtplib, From the rep, no signature.
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = priya.email, "inbox@crm.example", "Fwd: Pilot"
        m.set_content("---------- Forwarded message ---------\nFrom: Ines Duarte <ines@borealis.example>\n"
                      "Date: Mon, 23 Nov 2026 10:40:00 +0000\nSubject: Pilot\n\nWe want the pilot in January; "
                      "could you send the revised quote by Thursday?\n\nInes")
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
            assert client.send_message(m) == {}
        inbox.ingestion.wait()
        [readme] = session.scalars(select(Email)).all()
        assert (readme.owner_id, readme.sender_authenticated) == (priya.id, False)
        assert "spf=none for acme-sales.example from 127.0.0.1" in readme.sender_auth
        assert pending_for(session, priya)

        inbox.dns.txt("acme-sales.example", "v=spf1 ip4:127.0.0.1 -all")  # the company's mail server
        del m["Subject"]
        m["Subject"] = "Fwd: Pilot, again"
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
            assert client.send_message(m) == {}
        inbox.ingestion.wait()
    finally:
        server.stop()
    session.expire_all()
    second = session.scalar(select(Email).where(Email.id != readme.id))
    assert (second.owner_id, second.sender_authenticated, second.sender_auth) == (
        priya.id, True, "spf=pass for acme-sales.example from 127.0.0.1")


def test_crm_ingest_email_as_a_rep_is_flagged_not_refused(cli_env, tmp_path) -> None:
    from typer.testing import CliRunner

    from crm import app

    runner = CliRunner()
    for args in (["setup", "--no-demo"], ["user", "add", "priya@acme.example", "--name", "Priya Raman"]):
        assert runner.invoke(app, args).exit_code == 0
    saved = tmp_path / "pilot.eml"
    saved.write_bytes(message("Ines Duarte <ines@borealis.example>", body="We want the pilot in January.\n\nInes"))
    result = runner.invoke(app, ["ingest-email", str(saved), "--as", "priya@acme.example"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "pilot.eml: accepted" in result.output and "sender not authenticated" in " ".join(result.output.split())
    # Without --as the file's own From is its owner: whoever runs the CLI vouches for it.
    own = tmp_path / "own.eml"
    own.write_bytes(message("Priya Raman <priya@acme.example>"))
    result = runner.invoke(app, ["ingest-email", str(own)])
    assert result.exit_code == 0 and "own.eml: accepted" in result.output, result.output
