"""Mail's data: what a parsed email looks like, whether its sender was authenticated, and what a
delivery attempt returns.

Plain dataclasses, no database: `mime.parse_email` builds a ParsedEmail, `auth.authenticate` a
SenderCheck, and the store's inbox service keeps the two as the rep's copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


class MalformedEmail(ValueError):
    """The bytes are not an email we can read. The message says what is wrong and what to do."""


@dataclass
class Address:
    address: str  # lower-cased, stripped
    name: str | None = None


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    sha256: str
    text: str | None = None  # extracted text, or None
    error: str | None = None  # why no text was extracted (never silently dropped)


@dataclass
class OriginalMessage:
    """The customer's email recovered from a forward (or, via `ParsedEmail.customer_message`, the
    received message itself when it is not a forward)."""

    from_: Address | None
    to: list[Address]
    cc: list[Address]
    sent_at: datetime | None  # tz-aware UTC
    subject: str
    message_id: str | None  # known when forwarded as an attachment (message/rfc822)
    text: str


@dataclass
class ParsedEmail:
    message_id: str  # '<...>'; synthetic '<sha256@no-message-id.agent-crm>' when the header is missing
    subject: str
    sent_at: datetime | None  # tz-aware UTC
    from_: Address
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    in_reply_to: str | None
    references: list[str]
    text: str  # text/plain preferred, else the HTML converted to text
    html: str | None
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: OriginalMessage | None = None  # set when this is a forward
    forward_note: str = ""  # what the forwarder wrote above the forwarded part
    warnings: list[str] = field(default_factory=list)

    @property
    def customer_message(self) -> OriginalMessage:
        """The message the CRM is about: the forwarded original, else this message itself."""
        if self.forwarded is not None:
            return self.forwarded
        return OriginalMessage(from_=self.from_, to=list(self.to), cc=list(self.cc), sent_at=self.sent_at,
                               subject=self.subject, message_id=self.message_id, text=self.text)


@dataclass
class SenderCheck:
    """Whether the message's From was authenticated, and how (or why not), in one line."""

    authenticated: bool
    detail: str
    temporary: bool = False  # not authenticated only because a DNS lookup failed: it may pass later


DeliveryStatus = Literal["accepted", "duplicate", "refused", "invalid", "error"]


@dataclass
class DeliveryResult:
    """What the inbox did with one message; every door (SMTP, webhooks, upload) maps it to its replies.

    accepted: stored; duplicate: already stored (same Message-ID), nothing new; refused: the sender is
    not a CRM user (permanent); invalid: not a readable email (permanent); error: a temporary failure,
    the sender should retry and nothing is lost."""

    status: DeliveryStatus
    message: str
    email_id: str | None = None
    sender_authenticated: bool | None = None  # stored mail: was its From authenticated (auth.py)
