"""send_email: only after approval, through real SMTP (aiosmtpd server, Python's smtplib client)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from agents import gate
from store.models import Activity
from store.models.enums import ApprovalStatus, Surface
from store.services.pipeline import month_bounds, quarter_bounds
from store.settings import get_settings
from tests import factories as f
from tools import ToolContext


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_SMTP_PORT", str(port))
    monkeypatch.setenv("CRM_SMTP_FROM", "priya@acme-sales.example")
    get_settings.cache_clear()
    yield inbox
    controller.stop()
    get_settings.cache_clear()


def test_email_is_sent_once_only_after_approval(session, smtp) -> None:
    w = f.world(session)
    ines = f.create(session, w.priya, "contact", first_name="Ines", email="ines@borealis.example")
    session.commit()
    ctx = ToolContext(actor=f.actor(w.priya, Surface.agent), session=session, thread_id="t")
    proposed = gate.propose(ctx, tool_name="send_email", tool_call_id="c1", evidence=[], raw_args={
        "to": ["Ines@Borealis.example"], "subject": "Revised quote", "body": "Hi Ines,\nAttached.\nPriya",
        "contact_id": str(ines.id)})
    session.commit()
    assert proposed.pending and smtp.messages == []  # proposing sends nothing
    assert {"field": "to", "before": "-", "after": "ines@borealis.example"} in proposed.approval.diff

    gate.decide(session, actor=f.actor(w.priya), approval_id=proposed.approval.id, kind="approve")
    session.commit()
    assert proposed.approval.status == ApprovalStatus.executed
    assert len(smtp.messages) == 1
    sent = message_from_bytes(smtp.messages[0], policy=default)
    assert sent["To"] == "ines@borealis.example" and sent["Subject"] == "Revised quote"
    assert "Priya Raman" in sent["From"] and sent.get_content().startswith("Hi Ines,")
    logged = session.scalar(select(Activity).where(Activity.subject == "Revised quote"))
    assert logged.type.value == "email" and logged.source_ref["message_id"] == sent["Message-ID"]


def test_unconfigured_smtp_fails_clearly_and_sends_nothing(session, monkeypatch) -> None:
    monkeypatch.delenv("CRM_SMTP_HOST", raising=False)
    get_settings.cache_clear()
    w = f.world(session)
    ctx = ToolContext(actor=f.actor(w.priya, Surface.agent), session=session, thread_id="t")
    proposed = gate.propose(ctx, tool_name="send_email", tool_call_id="c1", evidence=[],
                            raw_args={"to": ["a@b.example"], "subject": "s", "body": "b"})
    approval = gate.decide(session, actor=f.actor(w.priya), approval_id=proposed.approval.id, kind="approve")
    assert approval.status == ApprovalStatus.failed and "CRM_SMTP_HOST" in approval.error
    get_settings.cache_clear()


def test_month_and_quarter_bounds_cover_every_day() -> None:
    day = date(2024, 1, 1)
    while day < date(2028, 1, 1):
        for offset in (-1, 0, 1, 2):
            start, end = month_bounds(day, offset)
            assert start.day == 1 and (end + timedelta(days=1)).day == 1 and (end - start).days < 31
            start, end = quarter_bounds(day, offset)
            assert start.day == 1 and start.month in (1, 4, 7, 10) and 88 <= (end - start).days <= 91
        assert month_bounds(day)[0] <= day <= month_bounds(day)[1]
        assert quarter_bounds(day)[0] <= day <= quarter_bounds(day)[1]
        day += timedelta(days=1)
