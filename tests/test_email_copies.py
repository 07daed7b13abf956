"""Email copies (DESIGN.md "Email copies"): one per (workspace, Message-ID, owner).

Through the emails API, a clash only ever names the caller's own copy; lead scores count a
message once; and the migration that widened the unique key, on a database that holds mail.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from store.types import UTCDateTime
from tests import factories as f


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
    from store.services.leads import _load

    w = f.world(session)
    ines = f.create(session, w.admin, "contact", first_name="Ines", email="ines@borealis.example")
    for rep in (w.priya, w.eve):
        copy = f.create(session, rep, "email", message_id="<one@borealis.example>", subject="Pilot")
        session.add(EmailParticipant(workspace_id=w.ws.id, email_id=copy.id, role=EmailParticipantRole.sender,
                                     address=ines.email, contact_id=ines.id))
    session.flush()
    facts = _load(session, w.ws.id, [ines])  # what the score and its explanation are made of
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
