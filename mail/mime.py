"""Parse one received email (bytes) into a `ParsedEmail`: standard library `email`, `policy.default`.

`parse_email(raw, *, max_bytes=25 MiB, extractor="builtin")` either returns a ParsedEmail or raises
`MalformedEmail` whose message says what is wrong and what the sender can do. It refuses only what
cannot be an email: empty input, input over `max_bytes`, bytes that do not start with header
lines, and a message without a From address. Everything else is read as well as it can be and
what was odd is reported in `warnings`:

- Charsets: the declared one; Latin-1 is read as its superset Windows-1252 (what clients mean);
  an unknown or wrong charset falls back to UTF-8, then Windows-1252, with a warning. Raw 8-bit
  header bytes are read as UTF-8 (else Windows-1252).
- Body: text/plain is preferred; else the HTML is converted to text (`html_text`). Several inline
  text parts (Apple Mail splits a body around an inline attachment) are joined in order.
  format=flowed text is unwrapped.
- multipart/signed (S/MIME, PGP): the signed content is read, the signature part is skipped (not
  an attachment). multipart/encrypted and S/MIME-encrypted content cannot be read: a warning.
- The first message/rfc822 part (outside a delivery report) of a message that forwards (a
  "Fwd:"/"FW:" subject, the attached email's own subject, or no text of its own) is a forward
  as attachment: it becomes `forwarded` (with its Message-ID) and the attachments inside it are
  listed with the received message's own. Other message/rfc822 parts (a reply or a new email
  with an old one attached) are attachments whose text is extracted.
- Otherwise an inline forward is looked for in the text (`forwards.find_forward`), then in the
  HTML's text; `forward_note` is what the forwarder wrote above it. A "Re:" message (a reply
  BCC'd to the inbox) is only a forward under an explicit forward separator: the Outlook header
  block above a quoted reply is history, and the reply itself is the email.
- Attachments: every non-body leaf part, each with its text or the reason there is none
  (`extract_text`); inline images are listed but not read (logos, signatures).
  winmail.dat (Outlook's TNEF) is listed, and each file inside it is listed and read after it.
- Missing Message-ID: a synthetic, stable one from the SHA-256 of the raw bytes (CRLF read as
  LF), so the same message received twice, by SMTP or as an uploaded file, is still one email.
  Missing or unreadable Date: sent_at is None.
- Duplicate From/Subject/Date/Message-ID headers: the first is used, with a warning.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

from mail.attachments import is_tnef, read_attachment, tnef_contents
from mail.charset import fallback
from mail.forwards import find_forward, is_forward_subject, is_reply_subject, strip_forward_prefix
from mail.headers import POLICY, fix_text, header_text, read_headers
from mail.html_text import html_to_text
from mail.types import Address, Attachment, MalformedEmail, OriginalMessage, ParsedEmail

__all__ = ["DEFAULT_MAX_BYTES", "extract_text", "parse_email"]

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
HOW_TO_SEND = "Forward the message as it is, or save it as .eml from your mail client and upload that."

_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")
_SIGNATURE_TYPES = {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
_DEFECT_WARNINGS = {
    "CloseBoundaryNotFoundDefect": "the message ends before its last MIME part is closed (cut short?); "
                                   "what arrived was read",
    "StartBoundaryNotFoundDefect": "a multipart part has no boundary line; its content was read as text",
    "InvalidBase64CharactersDefect": "a base64-encoded part holds invalid characters; what decoded was kept",
    "InvalidBase64PaddingDefect": "a base64-encoded part is damaged (bad padding); what decoded was kept",
    "InvalidBase64LengthDefect": "a base64-encoded part is damaged (bad length); what decoded was kept",
}




def parse_email(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, extractor: str = "builtin") -> ParsedEmail:
    """Parse a received message. Raises MalformedEmail (with what to fix) when it cannot be an email."""
    raw = _check_raw(raw, max_bytes)
    msg = BytesParser(policy=POLICY).parsebytes(raw)
    warnings: list[str] = []
    head = read_headers(msg, warnings)
    if head.from_ is None:
        raise MalformedEmail(f"not an email: no From header with an address (first bytes: {raw[:80]!r}). "
                             + HOW_TO_SEND)
    walker = _Walker(extractor, warnings)
    content = _Content()
    try:
        walker.walk(msg, content, allow_forward=True)
    except Exception as exc:  # noqa: BLE001  (a structure the email package chokes on: keep the text)
        warnings.append(f"the MIME structure could not be read ({type(exc).__name__}); the body is kept as raw text")
        content = _Content(plain=[fallback(raw.replace(b"\r\n", b"\n").partition(b"\n\n")[2])[0]])
    warnings.extend(_defect_warnings(msg))
    text = _body_text(content)
    html = "\n".join(content.html) or None
    parsed = ParsedEmail(
        message_id=head.message_id or _synthetic_id(raw), subject=head.subject, sent_at=head.sent_at,
        from_=head.from_, to=head.to, cc=head.cc, reply_to=head.reply_to, in_reply_to=head.in_reply_to,
        references=head.references, text=text, html=html, attachments=content.attachments, warnings=warnings)
    if head.message_id is None:
        warnings.append("no Message-ID header; a stable one was made from the message's bytes")
    _find_forward(parsed, content, walker, head.local_tz)
    _keepable(parsed)
    return parsed


def extract_text(filename: str, content_type: str, data: bytes, *,
                 mode: str = "builtin") -> tuple[str | None, str | None]:
    """An attachment's text, or why there is none (`attachments.read_attachment`); never raises. An
    attached email (.eml, message/rfc822) is read here: its headers, its text and its attachments'."""
    return read_attachment(filename, content_type, data, mode=mode, read_email=_email_text)


def _email_text(data: bytes) -> tuple[str | None, str | None]:
    try:
        inner = parse_email(data)
    except MalformedEmail as exc:
        return None, f"the attached email could not be read: {exc}"
    head = [f"From: {_show(inner.from_)}", f"To: {', '.join(_show(a) for a in inner.to)}"]
    if inner.sent_at:
        head.append(f"Date: {inner.sent_at.isoformat()}")
    head.append(f"Subject: {inner.subject}")
    parts = ["\n".join(head), inner.text]
    parts += [f"[attachment {a.filename}]\n{a.text}" for a in inner.attachments if a.text]
    return "\n\n".join(part for part in parts if part), None


def _show(address: Address) -> str:
    return f"{address.name} <{address.address}>" if address.name else address.address


# NUL (which PostgreSQL refuses in text) and lone surrogates (which no database or UTF-8 answer
# takes) can arrive in a header, a body or an attachment's extracted text. The message is kept
# as it came (the raw .eml); its text is stored with U+FFFD in their place, never refused.
_UNKEEPABLE = re.compile("[\x00\ud800-\udfff]")


def _keepable(value: Any) -> Any:
    """`value` with every string in it (dataclasses and lists walked in place) made keepable."""
    if isinstance(value, str):
        return _UNKEEPABLE.sub("\ufffd", value)
    if isinstance(value, list):
        value[:] = [_keepable(item) for item in value]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for slot in dataclasses.fields(value):
            setattr(value, slot.name, _keepable(getattr(value, slot.name)))
    return value


# -- input checks -------------------------------------------------------------------------------


def _check_raw(raw: bytes | str, max_bytes: int) -> bytes:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if not raw or not raw.strip():
        raise MalformedEmail("empty message: nothing was received. " + HOW_TO_SEND)
    if len(raw) > max_bytes:
        raise MalformedEmail(f"message too large: {len(raw):,} bytes, over the {max_bytes:,}-byte limit "
                             "(CRM_INBOX_MAX_BYTES). Share large files as links, or ask an admin to raise the limit.")
    raw = raw.lstrip(b"\r\n")
    lines = raw.split(b"\n", 2)
    first = lines[1] if raw.startswith(b"From ") and len(lines) > 1 else lines[0]  # an mbox "From " line
    if not _HEADER_LINE.match(first):
        raise MalformedEmail(f"not an email: it does not start with header lines such as 'From: ...' "
                             f"(first bytes: {raw[:60]!r}). " + HOW_TO_SEND)
    return raw


def _synthetic_id(raw: bytes) -> str:
    """Line endings are normalised first: SMTP delivers CRLF, a saved .eml often has LF."""
    digest = hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()
    return f"<{digest}@no-message-id.agent-crm>"


# -- body and attachments -----------------------------------------------------------------------


@dataclass
class _Content:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: Message | None = None  # the first message/rfc822 part (the part), when forwards are allowed
    report: bool = False  # a delivery/read report (multipart/report): never read as a forward


class _Walker:
    def __init__(self, extractor: str, warnings: list[str]) -> None:
        self.extractor = extractor
        self.warnings = warnings
        self.counter = 0

    def walk(self, part: Message, content: _Content, *, allow_forward: bool = False, in_report: bool = False) -> None:
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global") and isinstance(part.get_payload(), list):
            self._message_part(part, content, allow_forward and not in_report)
        elif part.get_content_maintype() == "message" and part.is_multipart():  # e.g. message/delivery-status
            self._add(content, part, _message_bytes(part), ctype, read_as="text/plain")
        elif part.is_multipart():
            self._multipart(part, content, allow_forward, in_report)
        else:
            self._leaf(part, content)

    def _multipart(self, part: Message, content: _Content, allow_forward: bool, in_report: bool) -> None:
        subtype = part.get_content_subtype()
        children = list(part.iter_parts()) if isinstance(part, EmailMessage) else part.get_payload()
        if subtype == "encrypted":
            self.warnings.append("the message is encrypted (multipart/encrypted): its content cannot be read "
                                 "without the recipient's key; ask the sender to forward it unencrypted")
            return
        if subtype == "signed":
            children = children[:1]  # the signed content; the rest is the signature
        if subtype == "alternative":
            self._alternative(children, content, allow_forward, in_report)
            return
        content.report = content.report or subtype == "report"
        for child in children:
            self.walk(child, content, allow_forward=allow_forward, in_report=in_report or subtype == "report")

    def _alternative(self, children: list[Message], content: _Content, allow_forward: bool, in_report: bool) -> None:
        versions = []
        for child in children:
            version = _Content()
            self.walk(child, version, allow_forward=allow_forward, in_report=in_report)
            versions.append(version)
        content.plain += next((v.plain for v in versions if v.plain), [])
        content.html += next((v.html for v in reversed(versions) if v.html), [])  # the last is the richest
        for version in versions:
            content.attachments += version.attachments
            content.forwarded = content.forwarded or version.forwarded

    def _leaf(self, part: Message, content: _Content) -> None:
        ctype = part.get_content_type()
        if ctype in _SIGNATURE_TYPES:
            return
        if part.get_content_maintype() == "multipart":  # a multipart whose boundary is missing
            content.plain.append(self.decode(part))
            return
        if ctype in ("text/plain", "text/html") and part.get_content_disposition() != "attachment" \
                and not part.get_filename():
            (content.plain if ctype == "text/plain" else content.html).append(self.decode(part))
            return
        charset = part.get_content_charset()
        self._add(content, part, part.get_payload(decode=True) or b"",
                  f"{ctype}; charset={charset}" if charset else ctype)

    def _message_part(self, part: Message, content: _Content, allow_forward: bool) -> None:
        if allow_forward and content.forwarded is None:
            content.forwarded = part  # decided in _find_forward, once the subject and text are known
            return
        self.add_message(content, part)

    def add_message(self, content: _Content, part: Message) -> None:
        self._add(content, part, _message_bytes(part), "message/rfc822")

    def _add(self, content: _Content, part: Message, data: bytes, ctype: str, read_as: str | None = None) -> None:
        self.counter += 1
        filename = _filename(part, self.counter)
        self._add_file(content, filename, data, ctype, read_as, inline=_is_inline(part))
        if is_tnef(filename, ctype):
            for name, inner in tnef_contents(data)[1]:
                self._add_file(content, name, inner, mimetypes.guess_type(name)[0] or "application/octet-stream")

    def _add_file(self, content: _Content, filename: str, data: bytes, ctype: str, read_as: str | None = None, *,
                  inline: bool = False) -> None:
        bare_type = ctype.split(";")[0]
        if bare_type.startswith("image/") and inline:
            text, error = None, ("inline image (a logo or picture in the message): no text extracted; "
                                 "OCR of images needs the unstructured extra")
        else:
            text, error = extract_text(filename, read_as or ctype, data, mode=self.extractor)
        content.attachments.append(Attachment(filename=filename, content_type=bare_type, data=data,
                                              sha256=hashlib.sha256(data).hexdigest(), text=text, error=error))

    # -- text decoding ---------------------------------------------------------------------------
    def decode(self, part: Message) -> str:
        data = part.get_payload(decode=True) or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        text = self.decode_bytes(data, part.get_content_charset())
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if (part.get_param("format") or "").lower() == "flowed":
            text = unflow(text, delsp=(part.get_param("delsp") or "").lower() == "yes")
        return text

    def decode_bytes(self, data: bytes, charset: str | None) -> str:
        declared = (charset or "").strip("\"' ").lower()
        codec = _codec(declared) if declared else "ascii"
        if codec is None:
            text, used = fallback(data)
            self.warnings.append(f"charset {declared!r} not known; decoded as {used}")
            return text
        if codec == "iso8859-1":
            return fallback(data, ("cp1252",))[0]
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            text, used = fallback(data)
            if declared:
                self.warnings.append(f"text declared as {declared!r} is not valid {declared}; decoded as {used}")
            return text


def _codec(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


def unflow(text: str, *, delsp: bool = False) -> str:
    """Undo RFC 3676 format=flowed: a line ending in a space continues on the next line."""
    out: list[str] = []
    pending = ""
    for line in text.split("\n"):
        if line == "-- ":  # the signature separator is never flowed
            out.append(pending + line) if pending else out.append(line)
            pending = ""
            continue
        line = line[1:] if line.startswith(" ") else line  # space-stuffing
        if line.endswith(" "):
            pending += line[:-1] if delsp else line
        else:
            out.append(pending + line)
            pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def _body_text(content: _Content) -> str:
    """text/plain when it says something (some clients send an empty one), else the HTML's text."""
    plain = "\n\n".join(part.strip("\n") for part in content.plain if part.strip()).strip()
    if plain or not content.html:
        return plain
    return html_to_text("\n".join(content.html))


def _message_bytes(part: Message) -> bytes:
    chunks = []
    for inner in part.get_payload():
        try:
            chunks.append(inner.as_bytes())
        except Exception:  # noqa: BLE001  (re-serialising a damaged message)
            chunks.append(str(inner).encode("utf-8", "replace"))
    return b"\n".join(chunks)


def _filename(part: Message, number: int) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    name = fix_text(name or "").replace("\\", "/").split("/")[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    if name:
        return name
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        subject = header_text(part.get_payload(0), "subject") if part.is_multipart() else ""
        stem = re.sub(r"[^\w .,-]+", "", subject).strip()[:60]
        return f"{stem or f'message-{number}'}.eml"
    if part.get_content_maintype() == "message":
        return f"{part.get_content_subtype()}-{number}.txt"
    extension = mimetypes.guess_extension(ctype) or ".bin"
    return f"attachment-{number}{extension}"


def _is_inline(part: Message) -> bool:
    disposition = part.get_content_disposition()
    return disposition == "inline" or (disposition is None and part.get("content-id") is not None)


def _defect_warnings(msg: Message) -> list[str]:
    names = {type(defect).__name__ for part in msg.walk() for defect in getattr(part, "defects", [])}
    return [warning for name, warning in _DEFECT_WARNINGS.items() if name in names]


# -- forwards -----------------------------------------------------------------------------------


def _find_forward(parsed: ParsedEmail, content: _Content, walker: _Walker, local_tz: tzinfo | None) -> None:
    if content.forwarded is not None:
        inner = content.forwarded.get_payload(0)
        if _forwarded_as_attachment(parsed, inner):
            original, attachments = _attached_original(inner, walker)
            parsed.forwarded, parsed.forward_note = original, parsed.text
            parsed.attachments.extend(attachments)
            if not original.subject:
                original.subject = strip_forward_prefix(parsed.subject)
            return
        walker.add_message(content, content.forwarded)  # an email attached to an email: an attachment
    if content.report:
        return
    options = {"forwarder": parsed.from_.address, "default_tz": local_tz, "reply": is_reply_subject(parsed.subject)}
    found = find_forward(parsed.text, **options)
    if found is None and parsed.html and content.plain:
        found = find_forward(html_to_text(parsed.html), **options)
    if found is None:
        if is_forward_subject(parsed.subject):
            parsed.warnings.append("the subject says this is a forward, but no forwarded message was found in "
                                   "the body; it is read as the sender's own email")
        return
    parsed.forwarded, parsed.forward_note = found.original, found.note
    if not found.original.subject:
        found.original.subject = strip_forward_prefix(parsed.subject)


def _forwarded_as_attachment(parsed: ParsedEmail, inner: Message) -> bool:
    """An attached email is the forwarded original when the message says it forwards ("Fwd:",
    or the same subject) or says nothing itself; a reply or a new email with an old one attached
    is about itself."""
    if is_reply_subject(parsed.subject):
        return False
    inner_subject = " ".join(header_text(inner, "subject").split()).lower()
    outer_subject = strip_forward_prefix(parsed.subject).lower()
    return (is_forward_subject(parsed.subject) or not parsed.text.strip()
            or bool(inner_subject) and inner_subject == outer_subject)


def _attached_original(inner: Message, walker: _Walker) -> tuple[OriginalMessage, list[Attachment]]:
    head = read_headers(inner, walker.warnings, label="forwarded message: ")
    content = _Content()
    walker.walk(inner, content)
    sent_at = head.sent_at.astimezone(UTC) if head.sent_at else None
    original = OriginalMessage(from_=head.from_, to=head.to, cc=head.cc, sent_at=sent_at, subject=head.subject,
                               message_id=head.message_id, text=_body_text(content))
    return original, content.attachments
