"""Socket Mode end to end, nothing patched: the real SocketModeHandler (slack_sdk's builtin client)
asks a local fake of Slack for a WebSocket URL (apps.connections.open, app-level token), connects
to a WebSocket server on 127.0.0.1, receives envelopes and acknowledges them, while the bot
answers through the same recording fake of the Web API (tests/fake_slack.py).

The WebSocket server is standard library only (RFC 6455): `websockets` and `websocket-client`
may be installed, but they are not dependencies of this project.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from store.errors import CRMError
from store.models import Approval, Deal, Stage
from store.models.enums import ApprovalStatus
from tests import factories as f
from tests.fake_slack import FakeSlack, command_body, event_body

APP_TOKEN = "xapp-1-test"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        if not (chunk := conn.recv(n - len(data))):
            raise EOFError
        data += chunk
    return data


def _frame(opcode: int, payload: bytes) -> bytes:
    """A server frame: final, unmasked (a server must not mask, RFC 6455 section 5.1)."""
    n = len(payload)
    size = bytes([n]) if n < 126 else struct.pack("!BH", 126, n) if n < 1 << 16 else struct.pack("!BQ", 127, n)
    return bytes([0x80 | opcode]) + size + payload


class FakeSocketModeSlack(FakeSlack):
    """FakeSlack plus Socket Mode: apps.connections.open (app-level token only, as on Slack) hands out
    a one-off ws:// URL; the WebSocket server behind it says hello, sends the envelopes a test gives
    it and records the client's acks by envelope_id."""

    def __init__(self) -> None:
        super().__init__()
        self._methods["apps.connections.open"] = self._connections_open
        self.acks: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []  # protocol errors the client made; a test asserts there are none
        self.connections: list[socket.socket] = []
        self._tickets: set[str] = set()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def _authorized(self, call: Any) -> bool:
        if call.method == "apps.connections.open":  # the one method that takes the xapp- token
            return bool(call.headers.get("authorization") == f"Bearer {APP_TOKEN}")
        return super()._authorized(call)

    def _connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/?ticket={ticket}"}

    def start(self) -> FakeSocketModeSlack:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # accept() polls: closing a socket does not wake it on Linux
        self._spawn(self._accept, "fake-socket-mode")
        return super().start()  # type: ignore[return-value]

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()
        super().stop()

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            self._spawn(self._serve, "fake-socket-mode-conn", conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                request += _recv_exact(conn, 1)
            line, *lines = request.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines if h)}
            ticket = urllib.parse.parse_qs(urllib.parse.urlsplit(line.split(" ")[1]).query).get("ticket", [""])[0]
            if ticket not in self._tickets or headers.get("upgrade", "").lower() != "websocket":
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                return
            self._tickets.discard(ticket)  # a URL is good for one connection, as on Slack
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            with self._changed:
                self.connections.append(conn)
                self._changed.notify_all()
            self._send(conn, TEXT, json.dumps({"type": "hello", "num_connections": 1}).encode())
            self._read(conn)
        except (EOFError, OSError):
            pass  # the client hung up, or stop() shut the socket
        finally:
            with self._changed:
                if conn in self.connections:
                    self.connections.remove(conn)
                self._changed.notify_all()
            conn.close()

    def _read(self, conn: socket.socket) -> None:
        while True:
            b1, b2 = _recv_exact(conn, 2)
            opcode, size = b1 & 0x0F, b2 & 0x7F
            if size >= 126:
                (size,) = struct.unpack("!H" if size == 126 else "!Q", _recv_exact(conn, 2 if size == 126 else 8))
            if not b2 & 0x80 or not b1 & 0x80:
                self.errors.append(f"frame not masked or fragmented: {b1:#x} {b2:#x}")
            mask = _recv_exact(conn, 4) if b2 & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(_recv_exact(conn, size)))
            if opcode == PING:
                self._send(conn, PONG, data)
            elif opcode == CLOSE:
                self._send(conn, CLOSE, data[:2])
                return
            elif opcode == TEXT:
                message = json.loads(data)
                with self._changed:
                    self.acks[message["envelope_id"]] = message
                    self._changed.notify_all()
            elif opcode != PONG:
                self.errors.append(f"unexpected opcode {opcode:#x}")

    # --- what a test uses ------------------------------------------------------------------------

    def _send(self, conn: socket.socket, opcode: int, data: bytes) -> None:
        with self._changed:  # one frame at a time: the test's and the reader's frames must not interleave
            conn.sendall(_frame(opcode, data))

    def send(self, message: dict[str, Any]) -> None:
        """A text frame to the newest connection, in one sendall (the client's parser wants whole frames)."""
        with self._changed:
            self._send(self.connections[-1], TEXT, json.dumps(message).encode())

    def envelope(self, type_: str, payload: dict[str, Any], **extra: Any) -> str:
        envelope_id = str(uuid.uuid4())
        self.send({"envelope_id": envelope_id, "type": type_, "accepts_response_payload": False,
                   "payload": payload, **extra})
        return envelope_id

    def wait_until(self, check: Any, what: str, timeout: float = 10) -> None:
        with self._changed:
            if not self._changed.wait_for(check, timeout=timeout):
                raise AssertionError(f"waited {timeout}s for {what}; acks {list(self.acks)}, errors {self.errors}")

    def ack(self, envelope_id: str) -> dict[str, Any]:
        self.wait_until(lambda: envelope_id in self.acks, f"the ack of {envelope_id}")
        return self.acks[envelope_id]


@pytest.fixture
def fake() -> Iterator[FakeSocketModeSlack]:
    with FakeSocketModeSlack() as server:
        yield server


@pytest.fixture
def bot(session, session_factory, ingestion, fake, monkeypatch):  # type: ignore[no-untyped-def]
    """The SlackBot configured for Socket Mode only (no signing secret) against the fake."""
    from channels.slack.bot import SlackBot
    from store.settings import get_settings

    w = f.world(session)
    co = f.create(session, w.priya, "company", name="Borealis Logistics", domain="borealis.example")
    f.create(session, w.priya, "deal", name="Borealis – Fleet Telematics", amount=Decimal("48000"), company_id=co.id)
    session.commit()
    for name, value in (("CRM_SLACK_BOT_TOKEN", fake.bot_token), ("CRM_SLACK_APP_TOKEN", APP_TOKEN),
                        ("CRM_SLACK_API_URL", fake.api_url), ("CRM_DEFAULT_WORKSPACE", w.ws.slug)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRM_SLACK_SIGNING_SECRET", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):  # the socket client would use them
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    ingestion.queue.settings = get_settings()
    fake.add_user("UPRIYA", w.priya.email, name=w.priya.name)
    # One thread: the test's database is one connection, so work must not overlap.
    slack_bot = SlackBot(settings=get_settings(), sessions=session_factory, runner=ingestion.runner, threads=1)
    yield slack_bot
    slack_bot.close()


def test_socket_mode_end_to_end(bot, fake, ingestion, session) -> None:
    from channels.slack.socket import connect

    def settle() -> None:  # the bot's threads and the job queue feed each other: wait for both to idle
        for _ in range(3):
            bot.wait(timeout=60)
            ingestion.wait()

    before = set(threading.enumerate())
    handler = connect(bot)
    try:
        # Connected with the app-level token, which Slack takes on apps.connections.open only.
        assert fake.last("apps.connections.open").headers["authorization"] == f"Bearer {APP_TOKEN}"
        fake.wait_until(lambda: fake.connections, "the WebSocket connection")
        assert handler.client.is_connected()

        # A DM arrives as an events_api envelope: acked, answered in its thread.
        ts = "1800000000.000100"
        event = {"type": "message", "channel": "DUPRIYA", "channel_type": "im", "user": "UPRIYA",
                 "text": "brief me on Borealis", "ts": ts, "team": "T0001"}
        payload = json.loads(event_body(event, event_id="EvSOCKET1")[0])
        envelope_id = fake.envelope("events_api", payload, retry_attempt=0, retry_reason="")
        assert fake.ack(envelope_id) == {"envelope_id": envelope_id}
        settle()
        (reply, *_) = [m for m in fake.messages["DUPRIYA"] if m.get("thread_ts") == ts]
        assert "Borealis" in reply["text"]
        # Slack redelivers an event it thinks was lost (same event_id): acked, not answered twice.
        replies = len(fake.calls_to("chat.postMessage"))
        retry = fake.envelope("events_api", payload, retry_attempt=1, retry_reason="timeout")
        fake.ack(retry)
        settle()
        assert len(fake.calls_to("chat.postMessage")) == replies

        # /crm help is answered in the ack itself (the response payload goes back over the socket).
        command = dict(urllib.parse.parse_qsl(command_body(text="help", user_id="UPRIYA")[0]))
        help_id = fake.envelope("slash_commands", command, accepts_response_payload=True)
        assert "brief me" in fake.ack(help_id)["payload"]["text"]

        # A write becomes a card; Approve arrives as an interactive envelope and changes the store.
        ts = "1800000000.000200"
        event = {**event, "text": "move Borealis to negotiation", "ts": ts}
        fake.ack(fake.envelope("events_api", json.loads(event_body(event, event_id="EvSOCKET2")[0])))
        settle()
        (card,) = [m for m in fake.messages["DUPRIYA"] if m.get("thread_ts") == ts and m.get("blocks")]
        approval_id = next(b for b in card["blocks"] if b["type"] == "actions")["elements"][0]["value"]
        click = {"type": "block_actions", "user": {"id": "UPRIYA", "team_id": "T0001"}, "team": {"id": "T0001"},
                 "trigger_id": "1.2.trigger", "channel": {"id": "DUPRIYA"},
                 "container": {"type": "message", "channel_id": "DUPRIYA", "message_ts": card["ts"]},
                 "message": {"ts": card["ts"], "thread_ts": ts},
                 "actions": [{"action_id": "approval_approve", "value": approval_id, "block_id": "decide",
                              "type": "button"}]}
        fake.ack(fake.envelope("interactive", click))
        settle()
        session.expire_all()
        approval = session.get(Approval, uuid.UUID(approval_id))
        assert (approval.tool, approval.status) == ("update_deal", ApprovalStatus.executed)
        deal = session.scalar(select(Deal).where(Deal.name.startswith("Borealis")))
        assert session.get(Stage, deal.stage_id).name.lower() == "negotiation"
        update = fake.last("chat.update").params
        assert update["ts"] == card["ts"] and "Approved by" in json.dumps(update)
    finally:
        began = time.monotonic()
        handler.close()
        closing = time.monotonic() - began
    # Closing hangs up (the server sees it) and ends every thread the socket client started.
    fake.wait_until(lambda: not fake.connections, "the client to hang up")
    # slack_sdk's close() waits for its reader's recv() to time out (3 s) before it can close the socket.
    assert closing < 5 and not fake.errors
    assert len(fake.calls_to("apps.connections.open")) == 1  # closed for good: no reconnection
    left = [t.name for t in set(threading.enumerate()) - before if not t.name.startswith(("crm-", "fake-"))]
    assert not left


@pytest.mark.parametrize("app_token", [None, "xoxb-not-an-app-token"])
def test_socket_mode_needs_an_app_level_token(app_token: str | None) -> None:
    from channels.slack.bot import SlackBot
    from channels.slack.socket import handler
    from store.settings import Settings

    settings = Settings(slack_bot_token="xoxb-test-token", slack_app_token=app_token)  # type: ignore[arg-type]
    bot = SlackBot(settings=settings, sessions=sessionmaker())
    with pytest.raises(CRMError, match="CRM_SLACK_APP_TOKEN"):
        handler(bot)
    bot.close()


def test_crm_serve_connects_over_socket_mode_by_itself_when_an_app_token_is_set(bot, fake, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from channels.api.app import create_app
    from store.settings import get_settings

    monkeypatch.setenv("CRM_INBOX_SMTP_PORT", "0")
    get_settings.cache_clear()
    app = create_app(bot.sessions, agent=bot.runner, background=True, slack_bot=bot)
    with TestClient(app):  # the app's lifespan: what `crm serve` runs
        fake.wait_until(lambda: fake.connections, "the WebSocket connection")
        ts = "1800000000.000300"
        event = {"type": "message", "channel": "DUPRIYA", "channel_type": "im", "user": "UPRIYA",
                 "text": "brief me on Borealis", "ts": ts, "team": "T0001"}
        fake.ack(fake.envelope("events_api", json.loads(event_body(event, event_id="EvSERVE")[0])))
        bot.wait(timeout=60)
        assert any(m.get("thread_ts") == ts and "Borealis" in m["text"] for m in fake.messages["DUPRIYA"])
    fake.wait_until(lambda: not fake.connections, "the app to hang up when it stops")
