"""Every door of the inbox (SMTP, Mailgun/SendGrid/Postmark webhooks, `crm ingest-email`, the
API upload) ends here: parse (mail.mime), authenticate the sender (mail.auth), store the owner's
copy (the parsed email as it is: store/services/inbox.py), queue the ingestion job.

Nothing half-stored: parsing happens before any write, and the email, its participants,
attachments and job row commit together or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from flows.jobs import submit
from mail.auth import Lookup, authenticate
from mail.mime import parse_email
from mail.types import DeliveryResult, MalformedEmail
from store.db import get_sessionmaker, unit_of_work
from store.errors import CRMError
from store.services import inbox
from store.services import jobs as job_service
from store.settings import Settings, get_settings

log = logging.getLogger("crm.inbox")


@dataclass
class Delivered:
    result: DeliveryResult
    job_id: str | None = None


def deliver(raw: bytes, *, recipients: list[str], mail_from: str = "", provider: str,
            client_ip: str | None = None, helo: str | None = None, sessions: sessionmaker[Session] | None = None,
            settings: Settings | None = None, dns: Lookup | None = None) -> DeliveryResult:
    """Parse and store one message that arrived by itself (SMTP, a provider's webhook); queue its
    ingestion. `mail_from`: the envelope sender (the route it came by); `client_ip`, `helo`: the
    SMTP client, for SPF. Never raises: the result says what happened."""
    try:
        return deliver_detailed(raw, recipients=recipients, provider=provider, mail_from=mail_from,
                                client_ip=client_ip, helo=helo, sessions=sessions, settings=settings,
                                dns=dns).result
    except Exception as exc:  # noqa: BLE001  (a temporary failure: the sender retries, nothing is lost)
        log.exception("inbox delivery failed (mail from %s)", mail_from)
        return DeliveryResult("error", f"temporary failure, try again later ({type(exc).__name__})")


def deliver_detailed(raw: bytes, *, recipients: list[str], provider: str, uploaded_by: str | None = None,
                     by_its_sender: bool = False, mail_from: str = "", client_ip: str | None = None,
                     helo: str | None = None, sessions: sessionmaker[Session] | None = None,
                     settings: Settings | None = None, dns: Lookup | None = None) -> Delivered:
    """`deliver`, saying which job it queued. `uploaded_by`: the signed-in user of the door that
    handed the message over (an API upload, `crm ingest-email --as`); it is then that user's copy.
    `by_its_sender`: the door vouches for the message's own From instead (`crm ingest-email`
    without --as: whoever runs it can write to the database anyway)."""
    settings = settings or get_settings()
    try:
        parsed = parse_email(raw, max_bytes=settings.inbox_max_bytes, extractor=settings.attachment_extractor)
    except MalformedEmail as exc:
        return Delivered(DeliveryResult("invalid", str(exc)))
    check = authenticate(raw, from_address=parsed.from_.address, mail_from=mail_from, client_ip=client_ip,
                         helo=helo, trusted_authserv_ids=settings.trusted_authserv_ids, dns=dns)
    owner = uploaded_by or (parsed.from_.address if by_its_sender else None)
    try:
        with unit_of_work(sessions or get_sessionmaker()) as session:
            stored = inbox.store_message(session, parsed, sender_check=check, recipients=recipients,
                                         envelope_from=mail_from, uploaded_by=owner, raw=raw,
                                         files_dir=settings.files_dir, provider=provider,
                                         inbox_address=settings.inbox_address)
            if stored.duplicate:
                return Delivered(DeliveryResult("duplicate", f"already received: {parsed.message_id}",
                                                str(stored.email.id), stored.email.sender_authenticated))
            job = job_service.create(session, workspace_id=stored.actor.workspace_id, kind="ingest_email",
                                     payload={"email_id": str(stored.email.id)}, requested_by_id=stored.actor.user_id,
                                     subject=("email", stored.email.id))
            submit(session, job)
            email_id, job_id = str(stored.email.id), str(job.id)
    except inbox.UnknownSender as exc:
        return Delivered(DeliveryResult("refused", str(exc)))
    except inbox.CheckLater as exc:  # temporary: SMTP answers 451, providers retry, an upload says 503
        return Delivered(DeliveryResult("error", str(exc)))
    except CRMError as exc:
        return Delivered(DeliveryResult("invalid", str(exc)))
    detail = f"stored for {stored.actor.user_id}; proposals follow"
    if stored.notes:
        detail += " (" + "; ".join(stored.notes) + ")"
    return Delivered(DeliveryResult("accepted", detail, email_id, check.authenticated), job_id=job_id)
