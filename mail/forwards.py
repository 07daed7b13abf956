"""Recover the customer's original email from an inline forward.

A rep forwards a customer's email to the inbox; the body then holds what the rep wrote (the
"forward note"), a separator line and a header block, then the original text:

    Gmail        ---------- Forwarded message ---------      From: / Date: / Subject: / To: / Cc:
    Outlook      -----Original Message-----  or  ________________________________
                 From: Ines Duarte [mailto:ines@...]  Sent: ...  To: ...  Subject: ...
    Apple Mail   Begin forwarded message:                    (often quoted with "> " in plain text)
    Thunderbird  -------- Forwarded Message --------         Subject: / Date: / From: / To: (a table in HTML)

and their translations (German, French, Spanish, Dutch, Portuguese, Italian: separators and header
names such as Von/De/Van/Da, Datum/Fecha/Data/Gesendet/Envoyé, Betreff/Objet/Asunto/Onderwerp/
Oggetto/Assunto, An/À/Para/Aan/A). An Outlook header block with no separator line is recognised
when it starts with From and has a date (Sent/Date) and Subject lines.

Decisions:
- A reply BCC'd to the inbox ("Re:" subject) quotes the message it answers under the same
  Outlook header block ("-----Original Message-----", a rule, or none): that is history, not a
  forward, so only separators that say "forward" count then.
- Nested forwards: the FIRST forwarded block is the original, i.e. the message the rep forwarded
  (its text keeps whatever it quoted or forwarded itself). One exception: when that first block
  was written by the forwarder (a rep forwarding her own forward), the next block is taken.
- Dates: RFC 5322 dates with an offset via `email.utils`; everything else (Gmail's "Tue, Oct 14,
  2025 at 9:12 AM", "Di., 14. Okt. 2025 um 09:12 Uhr", ...) via `dateparser` limited to the
  languages above. A forwarded header's date rarely carries a zone: it is read in `default_tz`
  (mime.py passes the zone of the forward's own Date header: the forwarder's client wrote both),
  else UTC. Unreadable dates give None; nothing here raises.
- Addresses: "Name <a@b>", Outlook's "Name [mailto:a@b]", "Name <mailto:a@b>", lists split by
  "," or ";" (Outlook's "Duarte, Ines <a@b>; Rossi, Marco <c@d>" keeps the comma names). A name
  without an address is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime

from mail.types import Address, OriginalMessage

# Separators that say "forward" outright, and those that Outlook also puts above a quoted reply.
_FORWARD_PHRASES = [
    "forwarded message", "begin forwarded message",
    "weitergeleitete nachricht", "anfang der weitergeleiteten nachricht",
    "message transféré", "début du message réexpédié", "début du message transféré",
    "mensaje reenviado", "inicio del mensaje reenviado", "comienzo del mensaje reenviado",
    "doorgestuurd bericht", "begin doorgestuurd bericht",
    "mensagem encaminhada", "início da mensagem reencaminhada", "início da mensagem encaminhada",
    "mensagem reencaminhada",
    "messaggio inoltrato", "inizio messaggio inoltrato",
]
_ORIGINAL_PHRASES = [
    "original message", "ursprüngliche nachricht", "message d'origine", "message d’origine", "mensaje original",
    "oorspronkelijk bericht", "origineel bericht", "mensagem original", "messaggio originale",
]


def _separator(phrases: list[str]) -> re.Pattern[str]:
    return re.compile(r"^[-_=*\s]*(?:" + "|".join(re.escape(p) for p in phrases) + r")\s*:?[-_=*\s]*$",
                      re.IGNORECASE)


_FORWARD_SEPARATOR = _separator(_FORWARD_PHRASES)
_ORIGINAL_SEPARATOR = _separator(_ORIGINAL_PHRASES)
_RULE = re.compile(r"^\s*_{10,}\s*$")  # Outlook's line above the header block
_HEADER_LINE = re.compile(r"^\s*\*{0,2}([^\W\d_][\w\- ]{0,24}?)\s*\*{0,2}\s*:\s*\*{0,2}\s*(.*)$")

_KEYS = {
    "from": ["from", "von", "de", "van", "da", "från", "fra", "expéditeur", "remetente"],
    "to": ["to", "an", "à", "a", "para", "aan", "til", "till", "destinataire", "destinatário"],
    "cc": ["cc", "kopie", "copie à", "copia", "cópia"],
    "date": ["date", "sent", "datum", "gesendet", "envoyé", "fecha", "enviado", "enviada", "verzonden",
             "data", "inviato", "verstuurd", "sent at"],
    "subject": ["subject", "betreff", "objet", "sujet", "asunto", "onderwerp", "assunto", "oggetto", "ämne", "emne"],
}
_CANONICAL = {name: key for key, names in _KEYS.items() for name in names}
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_FORWARD_PREFIX = re.compile(
    r"^\s*(?:(?:fwd?|fw|wg|tr|rv|doorst|enc|i|vb|vl)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|antw|r|res|rif|ref|réf)\s*(?:\[\d+\]|\(\d+\))?\s*:", re.IGNORECASE)
_DATE_LANGUAGES = ["en", "de", "fr", "es", "nl", "pt", "it"]
_MAX_BLOCK_LINES = 20


@dataclass
class InlineForward:
    note: str  # what the forwarder wrote above the separator ('' if nothing)
    original: OriginalMessage


# -- subjects, addresses, dates -----------------------------------------------------------------


def strip_forward_prefix(subject: str) -> str:
    """'Fwd: WG: Security questionnaire' -> 'Security questionnaire' (reply prefixes stay)."""
    return _FORWARD_PREFIX.sub("", subject or "").strip()


def is_forward_subject(subject: str) -> bool:
    return bool(_FORWARD_PREFIX.match(subject or ""))


def is_reply_subject(subject: str) -> bool:
    """'Re: ...', 'AW: ...', 'SV: ...': a reply (possibly BCC'd to the inbox), not a forward."""
    return bool(_REPLY_PREFIX.match(subject or "")) and not is_forward_subject(subject)


def parse_addresses(value: str) -> list[Address]:
    """Addresses in a forwarded header line, in order, without duplicates."""
    value = re.sub(r"mailto:", "", value or "", flags=re.IGNORECASE)
    found: list[Address] = []
    position = 0
    for match in _ADDRESS.finditer(value):
        name = _clean_name(value[position:match.start()])
        position = match.end()
        address = match.group(0).strip(".").lower()
        if any(a.address == address for a in found):
            continue
        found.append(Address(address=address, name=name))
    return found


def _clean_name(text: str) -> str | None:
    text = text.strip(" \t,;<>[]()\"'")
    text = re.sub(r"\s+", " ", text)
    if not text or "@" in text:
        return None
    return text


def parse_date(value: str | None, default_tz: tzinfo | None = None) -> datetime | None:
    """A date as written in a header, in UTC; None when it cannot be read."""
    value = " ".join((value or "").split())
    if not value or not any(ch.isdigit() for ch in value):
        return None
    value = re.sub(r"([+-]\d\d):(\d\d)$", r"\1\2", value)  # "-04:00" (Postmark) -> "-0400"
    parsed = _rfc5322_date(value) or _dateparser_date(value[:120])
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz or UTC)
    return parsed.astimezone(UTC)


def _rfc5322_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is not None:
        return parsed
    # Naive: either "-0000" (UTC, local zone unknown) or no zone at all, in which case email.utils
    # also ignores AM/PM; dateparser reads those right.
    return parsed.replace(tzinfo=UTC) if re.search(r"-0000$", value) else None


def _dateparser_date(value: str) -> datetime | None:
    try:
        import dateparser

        return dateparser.parse(value, languages=_DATE_LANGUAGES, settings={"PREFER_DAY_OF_MONTH": "first"})
    except Exception:  # noqa: BLE001  (dateparser raises assorted errors on odd input)
        return None


# -- finding the forwarded block ----------------------------------------------------------------


@dataclass
class _Block:
    start: int  # first line of the forward (separator or header block)
    fields: dict[str, str]
    body_start: int  # first line after the header block
    lines: list[str]  # the lines the block indexes refer to (dequoted when the forward was quoted)
    explicit: bool = False  # under a separator that says "forward" (not "original message")


def find_forward(text: str, *, forwarder: str | None = None, default_tz: tzinfo | None = None,
                 reply: bool = False) -> InlineForward | None:
    """The first forwarded message in `text`, or None when it holds no forward.

    `reply=True` (the subject says "Re:"): Outlook quotes the message replied to under the same
    header block as a forward, so only an explicit forward separator counts."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks = (block for block in _blocks(lines) if block.explicit or not reply)
    first = next(blocks, None)
    if first is None:
        return None
    chosen = first
    if forwarder and _from_address(first) == forwarder.lower():
        chosen = next(blocks, None) or first
    return _forward(lines, chosen, default_tz)


def _blocks(lines: list[str]):  # type: ignore[no-untyped-def]
    index = 0
    while index < len(lines):
        block = _block_at(lines, index)
        if block is None:
            index += 1
            continue
        yield block
        # Look for a nested forward inside this one's body (same line numbers when not quoted).
        index = block.body_start if block.lines is lines else index + 1


def _block_at(lines: list[str], index: int) -> _Block | None:
    line = lines[index]
    if _FORWARD_SEPARATOR.match(line) or _ORIGINAL_SEPARATOR.match(line) or _RULE.match(line):
        block = _after_separator(lines, index)
        if block is not None:
            block.explicit = bool(_FORWARD_SEPARATOR.match(line))
        return block
    if _header_line(line)[0] != "from":
        return None
    fields, end = _header_block(lines, index)
    if {"from", "date", "subject"} <= fields.keys():
        return _Block(index, fields, end, lines)
    return None


def _after_separator(lines: list[str], index: int) -> _Block | None:
    rest = lines[index + 1:]
    first = next((i for i, line in enumerate(rest) if line.strip()), None)
    if first is None or first > 3:
        return None
    quoted = rest[first].lstrip().startswith(">")
    if quoted:
        rest = [_dequote(line) for line in rest]
    fields, end = _header_block(rest, first)
    if "from" not in fields:
        return None
    return _Block(index, fields, index + 1 + end, lines[:index + 1] + rest if quoted else lines)


def _dequote(line: str) -> str:
    stripped = line.lstrip()
    if not stripped.startswith(">"):
        return line
    stripped = stripped[1:]
    return stripped[1:] if stripped.startswith(" ") else stripped


def _header_block(lines: list[str], start: int) -> tuple[dict[str, str], int]:
    """Fields of a header block starting at `start` ({} if none) and the index after it."""
    fields: dict[str, str] = {}
    last: str | None = None
    index = start
    while index < len(lines) and index - start < _MAX_BLOCK_LINES:
        line = lines[index]
        if not line.strip():
            break
        key, value = _header_line(line)
        if key is None and last is not None and _continues(last, fields[last], line):
            fields[last] = f"{fields[last]} {line.strip()}"
        elif key is None:
            if not fields:
                return {}, start
            break
        elif key == "?":
            if not fields:
                return {}, start
            last = None  # e.g. "Importance: High": part of the block, not ours
        else:
            fields.setdefault(key, value)
            last = key
        index += 1
    return fields, index


def _header_line(line: str) -> tuple[str | None, str]:
    match = _HEADER_LINE.match(line)
    if not match:
        return None, ""
    name = " ".join(match.group(1).lower().split())
    return _CANONICAL.get(name, "?"), match.group(2).strip().strip("*").strip()


def _continues(key: str, value: str, line: str) -> bool:
    """A wrapped address list goes on; anything else ends the block."""
    return key in ("to", "cc") and ("@" in line or value.rstrip().endswith((",", ";")))


def _from_address(block: _Block) -> str | None:
    found = parse_addresses(block.fields.get("from", ""))
    return found[0].address if found else None


def _forward(lines: list[str], block: _Block, default_tz: tzinfo | None) -> InlineForward:
    fields = block.fields
    senders = parse_addresses(fields.get("from", ""))
    original = OriginalMessage(
        from_=senders[0] if senders else None,
        to=parse_addresses(fields.get("to", "")),
        cc=parse_addresses(fields.get("cc", "")),
        sent_at=parse_date(fields.get("date"), default_tz),
        subject=fields.get("subject", "").strip(),
        message_id=None,
        text="\n".join(block.lines[block.body_start:]).strip(),
    )
    note = "\n".join(lines[:block.start]).strip()
    return InlineForward(note=note, original=original)
