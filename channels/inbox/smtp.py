"""The inbox's SMTP listener (aiosmtpd): the company's mail server or a forwarding rule sends here.

`InboxSMTPServer(deliver, inbox_address=..., host=..., port=..., max_bytes=...)` with `start()` /
`stop()` (or `with`). Port 0 binds a free port; `.port` is the bound one after `start()`.

- RCPT TO: only the inbox address's local part ("inbox", or "inbox+anything" to route to a deal)
  at its domain, case-insensitive; any other recipient gets 550 5.1.1 (we are not a relay).
- Size: SIZE is advertised and data over `max_bytes` is refused by aiosmtpd (552).
- DATA: `deliver(raw, recipients=..., mail_from=..., provider="smtp", client_ip=..., helo=...)` runs
  in a worker thread (it writes to the database; the event loop keeps serving other connections).
  The client's address and HELO name are what SPF is checked against. Its `DeliveryResult`
  becomes the reply:

      accepted, duplicate  -> 250 OK <message>          (a duplicate is not an error for the sender)
      refused              -> 550 5.7.1 <message>       (unknown sender: permanent)
      invalid              -> 554 5.6.0 <message>       (not a readable email: permanent)
      error, or deliver raised -> 451 4.3.0 <message>   (temporary: the sending server retries)

No SMTP AUTH or TLS here: run it behind the organisation's MTA or on a private network (the
default host is 127.0.0.1); senders are checked by `deliver` against the CRM's users, and their
From is authenticated there (DKIM, SPF, the MTA's Authentication-Results when its id is trusted).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mail.types import DeliveryResult
from store.services.inbox import is_inbox_address

log = logging.getLogger("crm.inbox.smtp")

Deliver = Callable[..., DeliveryResult]
DEFAULT_MAX_BYTES = 25 * 1024 * 1024

_REPLIES = {
    "accepted": "250 OK",
    "duplicate": "250 OK",
    "refused": "550 5.7.1",
    "invalid": "554 5.6.0",
    "error": "451 4.3.0",
}


is_inbox_recipient = is_inbox_address  # one rule for the listener and the store


def smtp_reply(result: DeliveryResult) -> str:
    """One SMTP reply line for a delivery result (ASCII, no line breaks, bounded length)."""
    code = _REPLIES.get(result.status, _REPLIES["error"])
    text = re.sub(r"\s+", " ", result.message or result.status).strip()
    text = text.encode("ascii", "replace").decode("ascii")[:400]
    return f"{code} {text}".rstrip()


class _Handler:
    def __init__(self, deliver: Deliver, inbox_address: str) -> None:
        self.deliver = deliver
        self.inbox_address = inbox_address

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if not is_inbox_recipient(address, self.inbox_address):
            return f"550 5.1.1 <{address}>: no such mailbox here; send to {self.inbox_address}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else None
        call = functools.partial(self.deliver, raw, recipients=list(envelope.rcpt_tos),
                                 mail_from=envelope.mail_from or "", provider="smtp", client_ip=peer,
                                 helo=session.host_name or None)
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, call)
        except Exception:  # noqa: BLE001  (a temporary failure: the sending server retries)
            log.exception("inbox delivery raised (mail from %s)", envelope.mail_from)
            result = DeliveryResult("error", "temporary failure, try again later")
        return smtp_reply(result)


class _Controller(Controller):
    """aiosmtpd's threaded controller, made to work with port 0 (it connects to itself on start)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class InboxSMTPServer:
    def __init__(self, deliver: Deliver, *, inbox_address: str, host: str = "127.0.0.1", port: int = 2525,
                 max_bytes: int = DEFAULT_MAX_BYTES, server_hostname: str | None = None) -> None:
        if "@" not in inbox_address:
            raise ValueError(f"inbox_address must be an email address, not {inbox_address!r} (CRM_INBOX_ADDRESS)")
        self.inbox_address = inbox_address
        self.host = host
        self._requested_port = port
        self.max_bytes = max_bytes
        self._handler = _Handler(deliver, inbox_address)
        self._server_hostname = server_hostname or inbox_address.rpartition("@")[2]
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._controller.port if self._controller is not None else self._requested_port

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            return
        controller = _Controller(self._handler, hostname=self.host, port=self._requested_port,
                                 server_hostname=self._server_hostname, data_size_limit=self.max_bytes,
                                 enable_SMTPUTF8=True)
        controller.start()
        self._controller = controller
        log.info("inbox SMTP listening on %s:%s for %s", self.host, self.port, self.inbox_address)

    def stop(self) -> None:
        if self._controller is None:
            return
        controller, self._controller = self._controller, None
        controller.stop()

    def __enter__(self) -> InboxSMTPServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_smtp(sessions: Any, settings: Any) -> InboxSMTPServer:
    """The inbox's listener as `crm serve` runs it: every message goes to flows.deliver."""
    from flows.deliver import deliver

    def deliver_here(raw: bytes, *, recipients: list[str], mail_from: str, provider: str, **client: Any) -> Any:
        return deliver(raw, recipients=recipients, mail_from=mail_from, provider=provider, sessions=sessions,
                       settings=settings, **client)

    server = InboxSMTPServer(deliver=deliver_here, host=settings.inbox_smtp_host, port=settings.inbox_smtp_port,
                             inbox_address=settings.inbox_address, max_bytes=settings.inbox_max_bytes)
    server.start()
    log.info("inbox SMTP listener on %s:%s for %s", settings.inbox_smtp_host, server.port, settings.inbox_address)
    return server
