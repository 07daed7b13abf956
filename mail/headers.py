"""The headers of one message: addresses, subject, date, Message-IDs, read leniently.

`read_headers(msg, warnings)` -> `Headers`; whatever is odd (a duplicate From, an address without
an @, an unreadable Date) is added to `warnings`, never raised. `POLICY` is the parser policy that
keeps a header the standard registry cannot parse as plain text instead of breaking the message.
Raw 8-bit header bytes are read as UTF-8, else Windows-1252 (`fix_text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email import policy
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from mail.charset import fallback
from mail.forwards import parse_date
from mail.types import Address

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


class _LenientHeaders(HeaderRegistry):
    """The standard header registry, except that a header it cannot parse (the parser raises on
    some malformed addresses) is kept as unstructured text instead of breaking the message."""

    def __call__(self, name: str, value: str):  # type: ignore[no-untyped-def]
        try:
            return super().__call__(name, value)
        except Exception:  # noqa: BLE001
            fallback = type("_UnparsedHeader", (UnstructuredHeader, self.base_class), {})
            return fallback(name, re.sub(r"[\r\n]+", " ", str(value)))


POLICY = policy.default.clone(header_factory=_LenientHeaders())


@dataclass
class Headers:
    from_: Address | None
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    subject: str
    sent_at: datetime | None
    local_tz: tzinfo | None  # the zone the Date header was written in (the sender's)
    message_id: str | None
    in_reply_to: str | None
    references: list[str]


def read_headers(msg: Message, warnings: list[str], label: str = "") -> Headers:
    for name in ("From", "Subject", "Date", "Message-ID"):
        count = sum(1 for key, _ in msg.raw_items() if key.lower() == name.lower())
        if count > 1:
            warnings.append(f"{label}{count} {name} headers; the first is used")
    senders = _addresses(msg, "from", warnings, label)
    sent_at, local_tz = _date(msg, warnings, label)
    ids = _message_ids(msg, "message-id")
    return Headers(
        from_=senders[0] if senders else None, to=_addresses(msg, "to", warnings, label),
        cc=_addresses(msg, "cc", warnings, label), reply_to=_addresses(msg, "reply-to", warnings, label),
        subject=" ".join(header_text(msg, "subject").split()), sent_at=sent_at, local_tz=local_tz,
        message_id=ids[0] if ids else _bare_id(header_text(msg, "message-id")),
        in_reply_to=next(iter(_message_ids(msg, "in-reply-to")), None),
        references=_message_ids(msg, "references"))


def header_text(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001  (a header the registry cannot parse)
        value = None
    return fix_text(str(value)) if value is not None else ""


def _all_header_texts(msg: Message, name: str) -> list[tuple[object, str]]:
    try:
        values = msg.get_all(name) or []
    except Exception:  # noqa: BLE001
        values = []
    return [(value, fix_text(str(value))) for value in values]


def fix_text(text: str) -> str:
    """Header text that held raw 8-bit bytes (surrogate escapes) read as UTF-8, else Windows-1252."""
    if not re.search(r"[\udc80-\udcff]", text):
        return text
    return fallback(text.encode("utf-8", "surrogateescape"))[0]


def _addresses(msg: Message, name: str, warnings: list[str], label: str) -> list[Address]:
    found: list[Address] = []
    for value, text in _all_header_texts(msg, name):
        for display, written in _address_pairs(value, text):
            spec = fix_text(written).strip().strip("<>").lower()
            display = " ".join(fix_text(display or "").split()) or None
            if "@" not in spec:
                if spec or display:
                    warnings.append(f"{label}{name.title()}: {display or written!r} has no address; ignored")
                continue
            if display and display.strip("'\"").lower() == spec:
                display = None
            if all(a.address != spec for a in found):
                found.append(Address(address=spec, name=display))
    return found


def _address_pairs(value: object, text: str) -> list[tuple[str, str]]:
    try:
        pairs = [(a.display_name, a.addr_spec) for a in value.addresses]  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001  (malformed: fall back to the lenient parser)
        pairs = []
    if pairs and all("@" in spec for _, spec in pairs):
        return pairs
    return getaddresses([text]) or pairs


def _message_ids(msg: Message, name: str) -> list[str]:
    ids: list[str] = []
    for _, text in _all_header_texts(msg, name):
        ids.extend(i for i in _MESSAGE_ID.findall(text) if i not in ids)
    return ids


def _bare_id(text: str) -> str | None:
    token = text.strip().strip("<>").strip()
    return f"<{token}>" if token and " " not in token else None


def _date(msg: Message, warnings: list[str], label: str) -> tuple[datetime | None, tzinfo | None]:
    text = header_text(msg, "date").strip()
    if not text:
        warnings.append(f"{label}no Date header; the sent time is unknown")
        return None, None
    sent_at = parse_date(text)
    if sent_at is None:
        warnings.append(f"{label}Date header {text[:60]!r} could not be read; the sent time is unknown")
        return None, None
    try:
        local_tz = parsedate_to_datetime(text).tzinfo
    except (TypeError, ValueError, IndexError, OverflowError):
        local_tz = None
    return sent_at, local_tz
