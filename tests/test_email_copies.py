"""Email copies (DESIGN.md "Email copies"): one per (workspace, Message-ID, owner).

Through the doors a rep uses: the inbox upload and SMTP, the emails API; a "duplicate" answer
only ever names the caller's own copy. And the migration that widened the unique key, on a
database that already holds mail.
"""

from __future__ import annotations

import smtplib
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from store.models import Email, Job
from store.types import UTCDateTime
from tests import factories as f

SENT = "Fri, 20 Nov 2026 09:12:00 +0000"


def customer_email(to: str, message_id: str = "<pilot-1@borealis.example>") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Ines Duarte <ines@borealis.example>", to, "Pilot"
    msg["Date"], msg["Message-ID"] = SENT, message_id
    msg.set_content("Hi, we want the pilot to start in January. Can you send the revised quote by Thursday?\n\nInes")
    return msg.as_bytes()


def upload(api: f.Api, raw: bytes, name: str = "pilot.eml") -> dict:
    response = api.post("/inbox/emails", files={"file": (name, raw, "message/rfc822")})
    assert response.status_code in (200, 202), response.text
    return response.json()


def test_each_rep_who_files_a_message_gets_her_own_copy_and_a_duplicate_names_only_hers(
        session, app, ingestion) -> None:
    w = f.world(session)
    raw = customer_email(w.priya.email)
    with TestClient(app) as client:
        eve, priya = f.api(session, client, w.eve), f.api(session, client, w.priya)
        eves = upload(eve, raw)
        ingestion.wait()
        assert eves["status"] == "accepted"

        hers = upload(priya, raw)  # the same Message-ID, filed by a rep of another team
        ingestion.wait()
        assert hers["status"] == "accepted" and hers["email_id"] != eves["email_id"]
        again = upload(priya, raw, "again.eml")
        assert again["status"] == "duplicate" and again["email_id"] == hers["email_id"]
        assert eves["email_id"] not in str(again)

        mine = priya.get("/emails").json()["items"]
        assert [e["id"] for e in mine] == [hers["email_id"]] and mine[0]["owner_id"] == str(w.priya.id)
        assert priya.get(f"/emails/{eves['email_id']}").status_code == 404  # Eve's copy stays Eve's
        assert eve.get(f"/emails/{hers['email_id']}").status_code == 404
    session.expire_all()
    copies = session.scalars(select(Email).where(Email.message_id == "<pilot-1@borealis.example>")).all()
    assert sorted(c.owner_id for c in copies) == sorted([w.eve.id, w.priya.id])
    assert session.scalar(select(func.count()).select_from(Job)) == 2  # each copy proposed once, to its owner


def test_a_forward_and_an_upload_of_one_message_by_one_rep_are_one_copy(session, app, ingestion) -> None:
    from channels.inbox.smtp import start_smtp

    w = f.world(session)
    priya = w.priya
    forward = EmailMessage()
    forward["From"], forward["To"], forward["Subject"] = priya.email, "inbox@crm.example", "Fwd: Pilot"
    forward["Date"], forward["Message-ID"] = SENT, "<fwd-1@acme-sales.example>"
    forward.set_content("FYI")
    forward.add_attachment(message_from_bytes(customer_email(priya.email), policy=policy.default))
    server = start_smtp(ingestion.sessions, ingestion.settings.model_copy(update={"inbox_smtp_port": 0}))
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            assert smtp.send_message(forward) == {}
        ingestion.wait()
    finally:
        server.stop()
    with TestClient(app) as client:
        again = upload(f.api(session, client, priya), customer_email(priya.email))
    assert again["status"] == "duplicate"
    session.expire_all()
    [copy] = session.scalars(select(Email)).all()
    assert (str(copy.id), copy.message_id, copy.owner_id) == (again["email_id"], "<pilot-1@borealis.example>",
                                                             priya.id)


def test_the_emails_api_keeps_one_copy_per_owner_and_never_names_another_teams(session, http) -> None:
    w = f.world(session)
    eve, priya = f.api(session, http, w.eve), f.api(session, http, w.priya)
    body = {"message_id": "<shared-1@borealis.example>", "subject": "Pilot"}
    eves = eve.post("/emails", json=body)
    assert eves.status_code == 201, eves.text
    hers = priya.post("/emails", json=body)
    assert hers.status_code == 201, hers.text
    clash = priya.post("/emails", json=body)
    assert clash.status_code == 409
    assert clash.json()["existing_id"] == hers.json()["id"] and eves.json()["id"] not in clash.text
    # An admin moving Eve's copy to Priya, who has one, is the same clash.
    admin = f.api(session, http, w.admin)
    moved = admin.patch(f"/emails/{eves.json()['id']}", json={"owner_id": str(w.priya.id)})
    assert moved.status_code == 409 and moved.json()["existing_id"] == hers.json()["id"]


def test_lead_scores_count_several_reps_copies_of_a_message_once(session) -> None:
    from store.models import EmailParticipant
    from store.models.enums import EmailParticipantRole
    from store.services.lead_features import load_facts

    w = f.world(session)
    ines = f.create(session, w.admin, "contact", first_name="Ines", email="ines@borealis.example")
    for rep in (w.priya, w.eve):
        copy = f.create(session, rep, "email", message_id="<one@borealis.example>", subject="Pilot")
        session.add(EmailParticipant(workspace_id=w.ws.id, email_id=copy.id, role=EmailParticipantRole.sender,
                                     address=ines.email, contact_id=ines.id))
    session.flush()
    facts = load_facts(session, w.ws.id, [ines])  # what the score and its explanation are made of
    assert [name for _, name, _ in facts[ines.id].events] == ["email"]


# -- the migration, on a database that already holds mail ------------------------------------------


@pytest.fixture
def at_0006(fresh_database_url):  # type: ignore[no-untyped-def]
    from store import migrate
    from store.db import make_engine

    engine = make_engine(fresh_database_url)
    migrate.upgrade(engine, "0006")
    yield engine
    engine.dispose()


_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
# The three tables as revision 0006 has them (the columns these rows need), typed for both backends.
_WORKSPACES = sa.table("workspaces", *(sa.column(n, t) for n, t in (
    ("id", sa.Uuid()), ("name", sa.String()), ("slug", sa.String()), ("default_currency", sa.String()),
    ("timezone", sa.String()), ("own_domains", sa.JSON()), ("settings", sa.JSON()), ("created_at", UTCDateTime()),
    ("updated_at", UTCDateTime()))))
_USERS = sa.table("users", *(sa.column(n, t) for n, t in (
    ("id", sa.Uuid()), ("workspace_id", sa.Uuid()), ("email", sa.String()), ("name", sa.String()),
    ("role", sa.String()), ("timezone", sa.String()), ("is_active", sa.Boolean()), ("created_at", UTCDateTime()),
    ("updated_at", UTCDateTime()))))
_EMAILS = sa.table("emails", *(sa.column(n, t) for n, t in (
    ("id", sa.Uuid()), ("workspace_id", sa.Uuid()), ("owner_id", sa.Uuid()), ("message_id", sa.String()),
    ("subject", sa.String()), ("source", sa.String()), ("created_at", UTCDateTime()), ("updated_at", UTCDateTime()))))


def _user(conn: sa.Connection, ws: uuid.UUID, email: str) -> uuid.UUID:
    uid = uuid.uuid4()
    conn.execute(_USERS.insert().values(id=uid, workspace_id=ws, email=email, name=email, role="rep", timezone="UTC",
                                        is_active=True, created_at=_NOW, updated_at=_NOW))
    return uid


def _email(conn: sa.Connection, ws: uuid.UUID, owner: uuid.UUID, message_id: str, source: str) -> None:
    conn.execute(_EMAILS.insert().values(id=uuid.uuid4(), workspace_id=ws, owner_id=owner, message_id=message_id,
                                         subject="s", source=source, created_at=_NOW, updated_at=_NOW))


def test_the_migration_keeps_existing_mail_and_marks_inbox_mail_unchecked(at_0006) -> None:
    from store import migrate

    ws = uuid.uuid4()
    with at_0006.begin() as conn:
        conn.execute(_WORKSPACES.insert().values(id=ws, name="W", slug="w", default_currency="USD", timezone="UTC",
                                                 own_domains=[], settings={}, created_at=_NOW, updated_at=_NOW))
        priya = _user(conn, ws, "priya@x.example")
        _email(conn, ws, priya, "<m0@x>", "inbox:smtp")
        _email(conn, ws, priya, "<m1@x>", "api")
    migrate.upgrade(at_0006)
    with at_0006.connect() as conn:
        rows = conn.execute(text("SELECT source, sender_authenticated, sender_auth FROM emails ORDER BY source")).all()
    assert [tuple(r) for r in rows] == [
        ("api", None, None), ("inbox:smtp", False, "received before sender authentication was checked")]

    with at_0006.begin() as conn:  # a second rep's copy: the old schema could not hold it
        eve = _user(conn, ws, "eve@x.example")
        _email(conn, ws, eve, "<m0@x>", "api")
    with pytest.raises(RuntimeError, match="1 message"):
        migrate.downgrade(at_0006, "0006")
    with at_0006.begin() as conn:
        conn.execute(_EMAILS.delete().where(_EMAILS.c.owner_id == eve))
    migrate.downgrade(at_0006, "0006")
    assert migrate.current(at_0006) == "0006"
