"""Mail that reached the inbox: who forwarded it, which records it is about, stored once.

Storing the message is not a CRM change anybody must approve: it is the rep's own input
(they forwarded it), like a chat message. What the CRM should *do* with it (log an
activity, add a contact, move a deal, create a task) is proposed by the ingestion agent
and approved by that rep.

Rules:
- the forwarder is the outer From; it must be an active user of the workspace, or the
  message is refused and nothing of it is kept (an upload belongs to the signed-in uploader);
- sender authentication (DESIGN.md "Inbound sender authentication"): mail whose From could not
  be authenticated (`SenderCheck`, made by mail/auth.py) is kept and processed but
  marked so, and is filed as the From's rep only when it also came by her route (the envelope
  sender the transport reported is her address); from another user's route it is that user's
  copy, from no user's it is refused. A workspace with `settings.inbox.unauthenticated =
  "refuse"` refuses all of it instead;
- one copy per owner (DESIGN.md "Email copies"), keyed by Message-ID: the customer's own (a
  forward as attachment carries it), else the received message's. Each rep who forwards or BCCs
  a message has her own copy; her second arrival of it is a duplicate, answered with her copy;
- participants match contacts by address, companies by domain, skipping free-mail
  domains and the workspace's own; only records the forwarder can read are linked;
- `inbox+<deal id>@...` links the email to that deal (if the forwarder can read it).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mail.types import Address, OriginalMessage, ParsedEmail, SenderCheck
from store import audit, events
from store.actor import Actor
from store.files import keep
from store.import_formats import FREE_MAIL
from store.models import Company, Contact, Deal, Email, EmailAttachment, EmailParticipant, User, Workspace
from store.models.enums import AuditAction, Direction, EmailParticipantRole, Surface
from store.permissions import owner_readable
from store.services.inbox_settings import unauthenticated_policy
from store.services.org import actor_for_user


class UnknownSender(Exception):
    """The message did not come from a user of this CRM: nothing of it is stored."""


class NotAuthenticated(UnknownSender):
    """The sender could not be authenticated and the workspace refuses such mail: nothing is stored."""


class CheckLater(Exception):
    """The workspace refuses unauthenticated mail and DNS failed mid-check: try again, nothing is lost."""


@dataclass
class Stored:
    email: Email
    actor: Actor
    duplicate: bool
    notes: list[str] = field(default_factory=list)  # what the rep should know (unreadable deal route, ...)


def email_by_id(session: Session, email_id: uuid.UUID) -> Email | None:
    """A stored email by id (a job's payload, an ingestion result)."""
    return session.get(Email, email_id)


def find_sender(session: Session, address: str, workspace: Workspace | None = None) -> User:
    """The active user who sent this, in `workspace` or, when not given, in exactly one workspace."""
    query = select(User).where(func.lower(User.email) == address.strip().lower(), User.is_active.is_(True))
    if workspace is not None:
        query = query.where(User.workspace_id == workspace.id)
    users = list(session.scalars(query.limit(2)))
    if len(users) != 1:
        why = "is not a user of this CRM" if not users else "is a user of several workspaces"
        raise UnknownSender(
            f"{address} {why}: only CRM users can send mail to the inbox. Forward from the address you "
            "sign in with, or ask an admin to add you (`crm user add`).")
    return users[0]


_ROUTE = re.compile(r"^[^@+]+\+([^@]+)@", re.IGNORECASE)


def routed_deal_id(recipients: list[str]) -> str | None:
    """'inbox+0193...@crm.example' -> '0193...' (the first routed recipient)."""
    for address in recipients:
        m = _ROUTE.match(address.strip())
        if m:
            return m.group(1)
    return None


def _domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower() if "@" in address else ""


def _owner(session: Session, sender: str, *, vouched: bool, check: SenderCheck, envelope_from: str,
           workspace: Workspace | None) -> tuple[User, list[str]]:
    """Whose copy this is (UnknownSender if nobody's), and what she should be told about it."""
    claimed = find_sender(session, sender, workspace)
    if vouched or check.authenticated:
        return claimed, []
    route = _user_at(session, envelope_from, claimed.workspace_id)
    if route is not None and route.id == claimed.id:
        return claimed, []
    why = f"it could not be authenticated ({check.detail})"
    if route is not None:
        return route, [f"its From names {claimed.email}, but it came from your address {route.email} and {why}: "
                       f"it is filed as yours, not as {claimed.name}'s"]
    raise UnknownSender(
        f"{claimed.email} is a user of this CRM, but this message did not come from that address (envelope "
        f"sender {envelope_from or 'none'}) and {why}: it is not filed as theirs. Forward it from that "
        "mailbox, or have an admin trust the receiving server's results (CRM_INBOUND_TRUSTED_AUTHSERV_IDS).")


def _user_at(session: Session, address: str, workspace_id: uuid.UUID) -> User | None:
    address = address.strip().strip("<>").lower()
    if "@" not in address:
        return None
    return session.scalar(select(User).where(User.workspace_id == workspace_id, User.is_active.is_(True),
                                             func.lower(User.email) == address))


def store_message(session: Session, parsed: ParsedEmail, *, sender_check: SenderCheck, recipients: list[str],
                  envelope_from: str = "", uploaded_by: str | None = None, raw: bytes, files_dir: Path,
                  provider: str, inbox_address: str, workspace: Workspace | None = None) -> Stored:
    """Store a received message as its owner's copy (UnknownSender, NotAuthenticated: nothing kept).

    It is the From's copy as far as `sender_check` and the route it came by (`envelope_from`, the
    envelope sender) show; `uploaded_by` names the user a door signed in (an API upload, the CLI), whose
    copy it is whatever the From says. `recipients`: the envelope's (else To and Cc), for inbox+<deal>@."""
    sender, check = uploaded_by or parsed.from_.address, sender_check
    user, notes = _owner(session, sender, vouched=uploaded_by is not None, check=check, envelope_from=envelope_from,
                         workspace=workspace)
    actor = actor_for_user(user, Surface.email)
    ws = session.get(Workspace, user.workspace_id)
    assert ws is not None
    if not check.authenticated and unauthenticated_policy(ws) == "refuse":
        if check.temporary:  # refusing for a DNS hiccup would bounce good mail for good
            raise CheckLater(f"the sender could not be authenticated yet ({check.detail}); try again later")
        raise NotAuthenticated(
            f"refused: the sender of this message could not be authenticated ({check.detail}), and this workspace "
            'refuses unauthenticated mail (settings.inbox.unauthenticated = "refuse"). Send it from a mail server '
            "that signs with DKIM, or ask an admin to trust the receiving server (CRM_INBOUND_TRUSTED_AUTHSERV_IDS).")
    customer = parsed.customer_message  # what the CRM files: the forwarded original, else the message itself
    key = (customer.message_id or parsed.message_id)[:998]
    existing = session.scalar(select(Email).where(Email.workspace_id == ws.id, Email.message_id == key,
                                                  Email.owner_id == user.id))
    if existing is not None:  # her own copy: the only one a duplicate answer may name
        return Stored(existing, actor, duplicate=True)

    if not check.authenticated:
        notes.append(f"sender not authenticated: {check.detail}")
    deal_id = _route(session, actor, recipients or [a.address for a in [*parsed.to, *parsed.cc]], notes)
    own = {d.lower() for d in (ws.own_domains or [])}
    author = customer.from_.address if customer.from_ is not None else sender
    direction = (Direction.outbound if author.lower() == user.email.lower() or _domain_of(author) in own
                 else Direction.inbound)
    raw_path = keep(files_dir / "emails", raw, ".eml")
    email = Email(
        workspace_id=ws.id, owner_id=user.id, message_id=key, in_reply_to=parsed.in_reply_to,
        thread_key=(parsed.references[0] if parsed.references else parsed.in_reply_to or key)[:998],
        subject=(customer.subject or parsed.subject)[:998], sent_at=customer.sent_at or parsed.sent_at,
        direction=direction, from_address=author[:320], body_text=customer.text,
        body_html=parsed.html if parsed.forwarded is None else None, deal_id=deal_id,
        source=f"inbox:{provider}"[:32], raw_path=str(raw_path), forward_note=parsed.forward_note or None,
        sender_authenticated=check.authenticated, sender_auth=check.detail[:500] or None,
    )
    session.add(email)
    session.flush()
    _participants(session, actor, email, customer, inbox_address)
    for att in parsed.attachments:
        path = keep(files_dir / "attachments", att.data, Path(att.filename).suffix)
        session.add(EmailAttachment(
            workspace_id=ws.id, email_id=email.id, filename=att.filename[:500] or "attachment",
            content_type=att.content_type[:200], size_bytes=len(att.data), sha256=att.sha256,
            storage_path=str(path), text=att.text, error=att.error[:1000] if att.error else None))
    session.flush()
    audit.record(session, actor, action=AuditAction.create, entity_type="email", entity_id=email.id,
                 after=audit.snapshot(email) | {"attachments": len(parsed.attachments), "provider": provider},
                 note=f"received by the inbox ({provider})")
    events.emit(session, "email", email.id, "created", ws.id)
    return Stored(email, actor, duplicate=False, notes=notes + list(parsed.warnings))


def _route(session: Session, actor: Actor, recipients: list[str], notes: list[str]) -> uuid.UUID | None:
    token = routed_deal_id(recipients)
    if token is None:
        return None
    try:
        deal_id = uuid.UUID(token)
    except ValueError:
        notes.append(f"inbox+{token}@: '{token}' is not a deal id; the email was kept without a deal")
        return None
    deal = session.scalar(select(Deal.id).where(Deal.id == deal_id, Deal.workspace_id == actor.workspace_id,
                                                owner_readable(actor, Deal.owner_id)))
    if deal is None:
        notes.append(f"inbox+{token}@: no deal with that id that you can see; the email was kept without a deal")
    return deal


def _participants(session: Session, actor: Actor, email: Email, msg: OriginalMessage, inbox_address: str) -> None:
    people: list[tuple[EmailParticipantRole, Address]] = []
    if msg.from_ is not None:
        people.append((EmailParticipantRole.sender, msg.from_))
    people += [(EmailParticipantRole.to, a) for a in msg.to] + [(EmailParticipantRole.cc, a) for a in msg.cc]
    seen: set[tuple[str, str]] = set()
    addresses = {a.address.lower() for _, a in people}
    contacts = {c.email: c for c in session.scalars(select(Contact).where(
        Contact.workspace_id == actor.workspace_id, Contact.email.in_(addresses),
        owner_readable(actor, Contact.owner_id)))} if addresses else {}
    for role, person in people:
        address = person.address.lower()
        if (role.value, address) in seen or is_inbox_address(address, inbox_address):
            continue
        seen.add((role.value, address))
        contact = contacts.get(address)
        session.add(EmailParticipant(workspace_id=email.workspace_id, email_id=email.id, role=role,
                                     address=address[:320], name=(person.name or None) and person.name[:300],
                                     contact_id=contact.id if contact else None))


def is_inbox_address(address: str, inbox_address: str) -> bool:
    """'inbox@crm.example' or 'inbox+deal-42@crm.example' for inbox_address 'inbox@crm.example'."""
    local, _, domain = (address or "").strip().strip("<>").rpartition("@")
    inbox_local, _, inbox_domain = inbox_address.strip().rpartition("@")
    if not local or domain.lower() != inbox_domain.lower():
        return False
    local = local.lower()
    return local == inbox_local.lower() or local.startswith(inbox_local.lower() + "+")


def companies_for(session: Session, actor: Actor, addresses: list[str], own: set[str]) -> list[Company]:
    """Companies whose domain matches these addresses (not free-mail, not our own), readable by actor."""
    domains = {_domain_of(a) for a in addresses} - FREE_MAIL - own - {""}
    if not domains:
        return []
    return list(session.scalars(select(Company).where(
        Company.workspace_id == actor.workspace_id, Company.domain.in_(domains),
        owner_readable(actor, Company.owner_id)).order_by(Company.created_at)))




def participants_of(session: Session, email_id: uuid.UUID) -> list[EmailParticipant]:
    return list(session.scalars(select(EmailParticipant).where(EmailParticipant.email_id == email_id)
                                .order_by(EmailParticipant.id)))


def attachments_of(session: Session, email_id: uuid.UUID) -> list[EmailAttachment]:
    return list(session.scalars(select(EmailAttachment).where(EmailAttachment.email_id == email_id)
                                .order_by(EmailAttachment.id)))


def open_deals_of(session: Session, actor: Actor, company_ids: list[uuid.UUID]) -> list[Deal]:
    from store.models import Stage
    from store.models.enums import StageKind

    if not company_ids:
        return []
    return list(session.scalars(
        select(Deal).join(Stage, Stage.id == Deal.stage_id)
        .where(Deal.workspace_id == actor.workspace_id, Deal.company_id.in_(company_ids),
               Stage.kind == StageKind.open, owner_readable(actor, Deal.owner_id))
        .order_by(Deal.updated_at.desc()).limit(5)))



def seen_token(session: Session, provider: str, token: str) -> bool:
    """True if this webhook token was accepted before; otherwise remember it (a replay is then refused)."""
    from sqlalchemy.exc import IntegrityError

    from store.models import InboundToken

    if session.scalar(select(InboundToken.id).where(InboundToken.provider == provider,
                                                    InboundToken.token == token[:200])) is not None:
        return True
    try:
        with session.begin_nested():
            session.add(InboundToken(provider=provider, token=token[:200]))
    except IntegrityError:  # the same token at the same moment: the other request has it
        return True
    return False


def forget_token(session: Session, provider: str, token: str) -> None:
    """Undo `seen_token` for a delivery that failed for a temporary reason (the provider retries)."""
    from sqlalchemy import delete

    from store.models import InboundToken

    session.execute(delete(InboundToken).where(InboundToken.provider == provider, InboundToken.token == token[:200]))
