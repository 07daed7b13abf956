"""Inbound-mail webhooks: Mailgun, SendGrid Inbound Parse and Postmark post received mail here.

`inbound_router(*, deliver, settings_getter, seen_token) -> APIRouter` with

    POST /inbound/mailgun    Mailgun route forward(); signed (timestamp, token, signature fields)
    POST /inbound/sendgrid   SendGrid Inbound Parse, "POST the raw, full MIME message" on (field `email`)
    POST /inbound/postmark   Postmark inbound JSON (RawEmail when "include raw email" is on)

Every door hands the raw MIME message to `deliver(raw, recipients=, mail_from=, provider=)`: the
raw message when the provider sends it (Mailgun's URL ending in "mime" -> `body-mime`, SendGrid's
`email`, Postmark's `RawEmail`), otherwise one rebuilt with `email.message.EmailMessage` from the
parsed fields (headers, text, HTML, attachments), so one parser reads everything. `mail_from` is
the envelope sender, the route the message came by (Mailgun's `sender`, SendGrid's envelope
`from`, Postmark's Return-Path or Received-SPF envelope-from): mail whose From cannot be
authenticated is filed as a rep's only when it came from her address (store/services/inbox.py).

Authentication:
- Mailgun: HMAC-SHA256 of timestamp+token with CRM_MAILGUN_SIGNING_KEY (unset -> 503). Missing
  fields or a wrong signature -> 401; a timestamp more than 5 minutes old or ahead, or not whole
  seconds ("nan", "inf", "-1", "1e9": they pass an HMAC as well as any text) -> 403 "stale";
  a token seen before (`seen_token(provider, token)` records it and says whether it was known) ->
  403 "replayed". The signature is checked before the token is recorded, so forged requests
  cannot fill the token table. When delivery fails for a temporary reason (503, the provider
  retries), the token is forgotten again (`forget_token`), so a retry carrying the same signed
  token is not refused as a replay and the message is not lost.
- SendGrid, Postmark: HTTP basic auth against CRM_INBOUND_WEBHOOK_USER / _PASSWORD (put them in
  the URL you give the provider: https://user:password@crm.example/inbound/postmark). Unset ->
  503 naming the settings; wrong -> 401 with WWW-Authenticate. Compared with `secrets.compare_digest`.

DeliveryResult -> HTTP status, per provider's retry rules (their docs):

    result      Mailgun  SendGrid  Postmark
    accepted    200      200       200
    duplicate   200      200       200      (already stored; a retry must not be retried again)
    refused     406      403       403      (unknown sender: permanent, so answer "do not retry":
    invalid     406      422       403       Mailgun stops on 406 only, Postmark on 403 only,
                                             SendGrid retries 5xx only)
    error       503      503       503      (temporary: every provider retries, nothing lost)

A request larger than about twice CRM_INBOX_MAX_BYTES is answered as `invalid` without reading
it. The JSON body is always {"status", "message", "email_id"} (or {"detail", "reason"} for auth).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import Parser
from email.utils import formataddr
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from mail.types import DeliveryResult

log = logging.getLogger("crm.inbox.webhooks")

MAX_SIGNATURE_AGE_SECONDS = 300
_SECONDS = re.compile(r"[0-9]{1,12}")  # up to the year 33658: longer is no time Mailgun sends
_STATUS = {
    "mailgun": {"accepted": 200, "duplicate": 200, "refused": 406, "invalid": 406, "error": 503},
    "sendgrid": {"accepted": 200, "duplicate": 200, "refused": 403, "invalid": 422, "error": 503},
    "postmark": {"accepted": 200, "duplicate": 200, "refused": 403, "invalid": 403, "error": 503},
}
_REALM = 'Basic realm="agent-crm inbound mail", charset="UTF-8"'
_OUT_POLICY = policy.default.clone(utf8=True)  # rebuilt messages keep UTF-8 headers as they came


class _Refusal(Exception):
    """A request answered before anything is delivered (authentication, configuration, size)."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _denied(status: int, detail: str, reason: str, headers: dict[str, str] | None = None) -> _Refusal:
    return _Refusal(JSONResponse({"detail": detail, "reason": reason}, status_code=status, headers=headers))


def _invalid(provider: str, message: str) -> _Refusal:
    return _Refusal(_answer(provider, DeliveryResult("invalid", message)))


def inbound_router(*, deliver: Callable[..., DeliveryResult], settings_getter: Callable[[], Any],
                   seen_token: Callable[[str, str], bool], clock: Callable[[], float] = time.time,
                   forget_token: Callable[[str, str], None] | None = None) -> APIRouter:
    router = APIRouter(prefix="/inbound", tags=["inbound mail"])

    async def hand_over(provider: str, raw: bytes, recipients: list[str], mail_from: str,
                        token: str | None = None) -> JSONResponse:
        try:
            result = await run_in_threadpool(deliver, raw, recipients=recipients, mail_from=mail_from,
                                             provider=provider)
        except Exception:  # noqa: BLE001  (temporary: the provider retries)
            log.exception("inbound %s delivery raised", provider)
            result = DeliveryResult("error", "temporary failure, try again later")
        if result.status == "error" and token and forget_token is not None:
            await run_in_threadpool(forget_token, provider, token)  # the retry must get through
        return _answer(provider, result)

    @router.post("/mailgun", summary="Mailgun route forward() (signed)")
    async def mailgun(request: Request) -> JSONResponse:
        settings = settings_getter()
        try:
            key = _required_secret(settings.mailgun_signing_key, "set CRM_MAILGUN_SIGNING_KEY to Mailgun's "
                                   "HTTP webhook signing key (Mailgun: Sending > Webhooks)")
            _check_size(request, settings, "mailgun")
            async with request.form(max_part_size=_request_limit(settings)) as form:
                await _verify_mailgun(form, key, seen_token, clock())
                raw = await _mailgun_mime(form, "mailgun")
                recipients = _split(_field(form, "recipient"))
                mail_from = _field(form, "sender")
                token = _field(form, "token")
        except _Refusal as refusal:
            return refusal.response
        return await hand_over("mailgun", raw, recipients, mail_from, token=token)

    @router.post("/sendgrid", summary="SendGrid Inbound Parse (raw MIME; basic auth)")
    async def sendgrid(request: Request) -> JSONResponse:
        settings = settings_getter()
        try:
            _check_basic_auth(request, settings)
            _check_size(request, settings, "sendgrid")
            async with request.form(max_part_size=_request_limit(settings)) as form:
                raw = await _sendgrid_mime(form, "sendgrid")
                envelope = _json(_field(form, "envelope")) or {}
        except _Refusal as refusal:
            return refusal.response
        recipients = [str(a) for a in envelope.get("to") or []] if isinstance(envelope, dict) else []
        mail_from = str(envelope.get("from") or "") if isinstance(envelope, dict) else ""
        return await hand_over("sendgrid", raw, recipients, mail_from)

    @router.post("/postmark", summary="Postmark inbound webhook (JSON; basic auth)")
    async def postmark(request: Request) -> JSONResponse:
        settings = settings_getter()
        try:
            _check_basic_auth(request, settings)
            _check_size(request, settings, "postmark")
            payload = _json((await request.body()).decode("utf-8", "replace"))
            if not isinstance(payload, dict):
                raise _invalid("postmark", "expected Postmark's inbound JSON object")
            raw = _rebuilt("postmark", postmark_mime, payload)
        except _Refusal as refusal:
            return refusal.response
        full = [*(payload.get("ToFull") or []), *(payload.get("CcFull") or []), *(payload.get("BccFull") or [])]
        recipients = _split(payload.get("OriginalRecipient") or "") or [
            str(a.get("Email")) for a in full if isinstance(a, dict) and a.get("Email")]
        return await hand_over("postmark", raw, recipients, postmark_envelope_from(payload))

    return router


# -- answers --------------------------------------------------------------------------------------


def _answer(provider: str, result: DeliveryResult) -> JSONResponse:
    status = _STATUS[provider].get(result.status, 503)
    body = {"status": result.status, "message": result.message, "email_id": result.email_id}
    return JSONResponse(body, status_code=status)



def _rebuilt(provider: str, build: Callable[..., bytes], *args: Any) -> bytes:
    try:
        return build(*args)
    except Exception as exc:  # noqa: BLE001  (odd field types from the provider: say so, do not crash)
        raise _invalid(provider, f"could not rebuild the message from {provider}'s fields: "
                                 f"{type(exc).__name__}: {exc}") from exc


# -- authentication -------------------------------------------------------------------------------


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return text or None


def _required_secret(value: Any, hint: str) -> str:
    secret = _secret(value)
    if not secret:
        raise _denied(503, hint, "not_configured")
    return secret


def _check_basic_auth(request: Request, settings: Any) -> None:
    user, password = settings.inbound_webhook_user, _secret(settings.inbound_webhook_password)
    if not user or not password:
        raise _denied(503, "set CRM_INBOUND_WEBHOOK_USER and CRM_INBOUND_WEBHOOK_PASSWORD, then give the provider "
                       "the URL with them: https://USER:PASSWORD@your-crm/inbound/...", "not_configured")
    given_user, given_password = _basic_credentials(request.headers.get("authorization", ""))
    user_ok = secrets.compare_digest(given_user.encode(), user.encode())
    password_ok = secrets.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise _denied(401, "wrong or missing basic-auth credentials (CRM_INBOUND_WEBHOOK_USER/_PASSWORD)",
                       "unauthorized", headers={"WWW-Authenticate": _REALM})


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


async def _verify_mailgun(form: FormData, key: str, seen_token: Callable[[str, str], bool], now: float) -> None:
    timestamp, token, signature = (_field(form, name).strip() for name in ("timestamp", "token", "signature"))
    if not (timestamp and token and signature):
        raise _denied(401, "unsigned request: Mailgun's timestamp, token and signature fields are missing",
                       "unsigned")
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        log.warning("refused a Mailgun post with a bad signature")
        raise _denied(401, "forged request: the signature does not match (is CRM_MAILGUN_SIGNING_KEY Mailgun's "
                       "HTTP webhook signing key?)", "forged")
    # Mailgun sends whole seconds since 1970. float() would also take "nan" (no age is ever more
    # than anything, so it passed), "inf" and "1e400" (int() of them raised): only digits are a time.
    if not _SECONDS.fullmatch(timestamp):
        raise _denied(403, f"stale request: timestamp {timestamp[:40]!r} is not a time in whole seconds since "
                           "1970", "stale")
    age = now - int(timestamp)
    if abs(age) > MAX_SIGNATURE_AGE_SECONDS:
        when = f"{age} s old" if age > 0 else f"{-age} s in the future"
        raise _denied(403, f"stale request: its timestamp is {when} (more than "
                       f"{MAX_SIGNATURE_AGE_SECONDS} s; check this server's clock)", "stale")
    if await run_in_threadpool(seen_token, "mailgun", token):
        log.warning("refused a replayed Mailgun post")
        raise _denied(403, "replayed request: this token was already used", "replayed")


# -- reading the posts ----------------------------------------------------------------------------


def _request_limit(settings: Any) -> int:
    return int(settings.inbox_max_bytes) * 2 + 1024 * 1024  # base64 and form encoding overhead


def _check_size(request: Request, settings: Any, provider: str) -> None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > _request_limit(settings):
        raise _invalid(provider, f"message too large: the request is {int(length):,} bytes; the inbox takes "
                                 f"messages up to {int(settings.inbox_max_bytes):,} bytes (CRM_INBOX_MAX_BYTES)")


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _bytes_field(form: FormData, name: str) -> bytes | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        return await value.read()
    if isinstance(value, str) and value:
        return value.encode("utf-8", "surrogateescape")
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _split(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;]", value or "") if part.strip()]


async def _mailgun_mime(form: FormData, provider: str) -> bytes:
    raw = await _bytes_field(form, "body-mime")
    if raw:
        return raw
    pairs = _json(_field(form, "message-headers"))
    headers = [(str(p[0]), str(p[1])) for p in pairs if isinstance(p, list) and len(p) == 2] if pairs else []
    if not headers:
        headers = [(name, _field(form, key)) for name, key in (
            ("From", "from"), ("To", "To"), ("Cc", "Cc"), ("Subject", "subject"), ("Date", "Date"),
            ("Message-ID", "Message-Id"), ("In-Reply-To", "In-Reply-To"), ("References", "References"))]
        if not _field(form, "from"):
            headers.append(("From", _field(form, "sender")))
        if not _field(form, "To"):
            headers.append(("To", _field(form, "recipient")))
    names = [k for k in form if re.fullmatch(r"attachment-\d+", k)]
    files = await _uploads(form, sorted(names, key=lambda k: int(k.rpartition("-")[2])))
    return _rebuilt(provider, build_mime, headers, _field(form, "body-plain") or None,
                    _field(form, "body-html") or None, files)


async def _sendgrid_mime(form: FormData, provider: str) -> bytes:
    raw = await _bytes_field(form, "email")
    if raw:
        return raw
    header_text = _field(form, "headers")
    headers = list(Parser(policy=policy.compat32).parsestr(header_text + "\n\n", headersonly=True).items())
    names = [k for k in form if re.fullmatch(r"attachment\d+", k)]
    files = await _uploads(form, sorted(names, key=lambda k: int(k[len("attachment"):])))
    return _rebuilt(provider, build_mime, headers, _field(form, "text") or None, _field(form, "html") or None,
                    files)


async def _uploads(form: FormData, names: list[str]) -> list[tuple[str, str, bytes, str | None]]:
    files = []
    for name in names:
        value = form.get(name)
        if isinstance(value, UploadFile):
            files.append((value.filename or name, value.content_type or "application/octet-stream",
                          await value.read(), None))
    return files


def postmark_envelope_from(payload: dict[str, Any]) -> str:
    """The envelope sender, which Postmark's JSON has no field for: its Return-Path header, else the
    envelope-from its Received-SPF header names, else (nothing better) the From address."""
    headers = [(str(h.get("Name", "")).lower(), str(h.get("Value", ""))) for h in payload.get("Headers") or []
               if isinstance(h, dict)]
    for name, value in headers:
        if name == "return-path" and "@" in value:
            return value.strip().strip("<>")
    for name, value in headers:
        found = re.search(r"envelope-from=<?([^\s;<>]+@[^\s;<>]+)", value) if name == "received-spf" else None
        if found:
            return found.group(1)
    return str((payload.get("FromFull") or {}).get("Email") or payload.get("From") or "")


def postmark_mime(payload: dict[str, Any]) -> bytes:
    """Postmark's inbound JSON as a MIME message (its RawEmail when it was included)."""
    raw = payload.get("RawEmail")
    if isinstance(raw, str) and raw.strip():
        return raw.encode("utf-8", "surrogateescape")
    listed = [(str(h.get("Name", "")), str(h.get("Value", ""))) for h in payload.get("Headers") or []
              if isinstance(h, dict)]
    own = {"from", "to", "cc", "subject", "date", "reply-to"}
    headers = [(n, v) for n, v in listed if n.lower() not in own]
    if not any(n.lower() == "message-id" for n, _ in headers) and payload.get("MessageID"):
        headers.append(("Message-ID", f"<{payload['MessageID']}@inbound.postmarkapp.com>"))
    date = re.sub(r"([+-]\d\d):(\d\d)$", r"\1\2", str(payload.get("Date") or "").strip())
    for name, key in (("From", "From"), ("To", "To"), ("Cc", "Cc"), ("Reply-To", "ReplyTo"), ("Subject", "Subject")):
        value = _postmark_addresses(payload, key) or str(payload.get(key) or "")
        if value:
            headers.append((name, value))
    if date:
        headers.append(("Date", date))
    files = []
    for item in payload.get("Attachments") or []:
        if isinstance(item, dict) and item.get("Content"):
            try:
                data = base64.b64decode(item["Content"])
            except (binascii.Error, ValueError):
                continue
            files.append((str(item.get("Name") or "attachment"), str(item.get("ContentType") or
                          "application/octet-stream"), data, item.get("ContentID") or None))
    return build_mime(headers, payload.get("TextBody") or None, payload.get("HtmlBody") or None, files)


def _postmark_addresses(payload: dict[str, Any], key: str) -> str:
    """'Name <address>' from Postmark's FromFull / ToFull / CcFull (its From field is the bare address)."""
    full = payload.get(f"{key}Full")
    entries = [full] if isinstance(full, dict) else full if isinstance(full, list) else []
    return ", ".join(formataddr((str(e.get("Name") or ""), str(e["Email"]))) for e in entries
                     if isinstance(e, dict) and e.get("Email"))


_SKIPPED_HEADERS = {"content-type", "content-transfer-encoding", "mime-version", "content-disposition"}


def build_mime(headers: list[tuple[str, str]], text: str | None, html: str | None,
               files: list[tuple[str, str, bytes, str | None]]) -> bytes:
    """A MIME message from a provider's parsed fields: headers as given (unreadable ones skipped),
    text and HTML as alternatives, then attachments (inline when they have a Content-ID)."""
    msg = EmailMessage(policy=_OUT_POLICY)
    for name, value in headers:
        if not name or not value or name.lower() in _SKIPPED_HEADERS:
            continue
        try:
            msg[name] = " ".join(value.split())
        except (ValueError, TypeError, IndexError):
            continue  # a unique header seen twice, or a value the header registry refuses
    if html and text:
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
    elif html:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(text or "")
    for filename, content_type, data, content_id in files:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=filename, disposition="inline" if content_id else "attachment",
                           cid=f"<{content_id.strip('<>')}>" if content_id else None)
    return msg.as_bytes()
