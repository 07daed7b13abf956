"""Sending email and making quotes: the writes that leave the building or give money away."""

from __future__ import annotations

import smtplib
import uuid
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from pydantic import BaseModel, Field

from store import normalize
from store.errors import ValidationFailed
from store.models.enums import ActivityType, Direction, QuoteStatus
from store.services import crud, org, quotes, sales, spec_for
from store.settings import get_settings
from tools.base import Preview, ToolContext, as_uuid, ref, write_tool
from tools.write import diff_rows, names


class SendEmailArgs(BaseModel):
    to: list[str] = Field(min_length=1, description="Recipient addresses.")
    subject: str = Field(min_length=1)
    body: str = Field(min_length=1)
    contact_id: uuid.UUID | None = Field(None, description="The contact it goes to, to log it on their timeline.")
    deal_id: uuid.UUID | None = None


def _preview_send(ctx: ToolContext, a: SendEmailArgs) -> Preview:
    recipients = [normalize.email(t) for t in a.to]
    on = ", ".join(filter(None, [names(ctx, "contact", [a.contact_id]) if a.contact_id else None,
                                 names(ctx, "deal", [a.deal_id]) if a.deal_id else None]))
    return Preview(summary=f"Send email '{a.subject}' to {', '.join(r or '' for r in recipients)}",
                   diff=diff_rows({}, {"to": ", ".join(r or "" for r in recipients), "subject": a.subject,
                                       "body": a.body, "logged on": on}))


@write_tool(SendEmailArgs, preview=_preview_send)
def send_email(ctx: ToolContext, a: SendEmailArgs) -> dict[str, Any]:
    """Send an email from the user (SMTP) and log it on the contact/deal. Always proposed to the user
    first with the full text; draft_email only drafts."""
    settings = get_settings()
    if not settings.smtp_host:
        raise ValidationFailed("email sending is not configured: set CRM_SMTP_HOST (and CRM_SMTP_FROM, "
                               "CRM_SMTP_USER, CRM_SMTP_PASSWORD) and approve again")
    me = org.user_by_id(ctx.session, ctx.actor.user_id)
    sender = settings.smtp_from or (me.email if me else None)
    if not sender:
        raise ValidationFailed("no sender address: set CRM_SMTP_FROM")
    message = EmailMessage()
    message["From"] = formataddr((me.name if me else "", sender))
    message["To"] = ", ".join(normalize.email(t) or "" for t in a.to)
    message["Subject"] = a.subject
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    message.set_content(a.body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls and smtp.has_extn("starttls"):
            smtp.starttls()
        if settings.smtp_user and settings.smtp_password:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        smtp.send_message(message)
    targets: dict[str, Any] = {}
    if a.contact_id:
        targets["contact_ids"] = [as_uuid(a.contact_id)]
    if a.deal_id:
        targets["deal_ids"] = [as_uuid(a.deal_id)]
    result = {"message_id": message["Message-ID"], "to": a.to}
    if targets:
        activity = crud.create(ctx.session, spec_for("activity"), actor=ctx.actor, data={
            "type": ActivityType.email, "subject": a.subject, "body": a.body, "direction": Direction.outbound,
            "occurred_at": ctx.now, "source": "agent", "source_ref": {"message_id": message["Message-ID"]},
            **targets})
        result |= ref("activity", activity)
    return result


class QuoteLine(BaseModel):
    product_id: uuid.UUID | None = Field(None, description="The catalogue product; its price is the list price.")
    description: str | None = Field(None, description="A catalogue product's exact name also finds it.")
    quantity: Decimal = Field(Decimal(1), gt=0)
    unit_price: Decimal | None = Field(None, ge=0, description="Leave it out to use the catalogue's price; "
                                       "another price is an override, which a manager approves.")
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100)


class CreateQuoteArgs(BaseModel):
    deal_id: uuid.UUID
    line_items: list[QuoteLine] = Field(min_length=1)
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100, description="Discount on the whole quote.")
    valid_until: date | None = None
    title: str = ""


def _needs(terms: quotes.Terms) -> dict[str, Any]:
    return {"needs_role": "manager", "reason": "; ".join(terms.reasons)} if terms.needs_manager else {}


def _preview_quote(ctx: ToolContext, a: CreateQuoteArgs) -> Preview:
    deal = crud.get_for_write(ctx.session, spec_for("deal"), actor=ctx.actor, id=as_uuid(a.deal_id))
    terms = quotes.price(ctx.session, actor=ctx.actor, currency=deal.currency,
                         lines=[line.model_dump(exclude_none=True) for line in a.line_items],
                         discount_percent=a.discount_percent)
    return Preview(summary=f"Create quote for {deal.name}: {terms.summary()}",
                   diff=[{"field": "deal", "before": "-", "after": deal.name}, *terms.diff()],
                   record=ref("deal", deal), **_needs(terms))


@write_tool(CreateQuoteArgs, preview=_preview_quote)
def create_quote(ctx: ToolContext, a: CreateQuoteArgs) -> dict[str, Any]:
    """Create a quote on a deal from catalogue products (by product_id or exact name), with line and
    overall discounts. A discount above the workspace's limit, or a price other than the catalogue's,
    is sent to a manager for approval. Once approved the quote is ready to send."""
    data = a.model_dump(exclude_none=True) | {"deal_id": as_uuid(a.deal_id)}
    data["line_items"] = [line.model_dump(exclude_none=True) for line in a.line_items]
    quote = crud.create(ctx.session, spec_for("quote"), actor=ctx.actor, data=data)
    quote = quotes.approve_or_submit(ctx.session, actor=ctx.actor, id=quote.id)
    return ref("quote", quote) | {"number": quote.number, "status": quote.status.value, "total": str(quote.total)}


class ApproveQuoteArgs(BaseModel):
    quote_id: uuid.UUID


def _preview_approve(ctx: ToolContext, a: ApproveQuoteArgs) -> Preview:
    quote = crud.get_for_write(ctx.session, quotes.quotes, actor=ctx.actor, id=as_uuid(a.quote_id))
    quotes.check_move(quote, QuoteStatus.approved)
    terms = quotes.terms_of(ctx.session, quote=quote)
    deal = sales.deal_by_id(ctx.session, quote.deal_id)
    return Preview(summary=f"Approve quote {quote.number} for {deal.name if deal else 'its deal'}: {terms.summary()}",
                   diff=[{"field": "status", "before": quote.status.value, "after": "approved"}, *terms.diff()],
                   record=ref("quote", quote), **_needs(terms))


@write_tool(ApproveQuoteArgs, preview=_preview_approve)
def approve_quote(ctx: ToolContext, a: ApproveQuoteArgs) -> dict[str, Any]:
    """Approve a quote that is a draft or waits for approval, so it can be sent. A quote with a discount
    above the workspace's limit or a price other than the catalogue's is approved by a manager."""
    quote = quotes.transition(ctx.session, actor=ctx.actor, id=as_uuid(a.quote_id), to=QuoteStatus.approved)
    return ref("quote", quote) | {"number": quote.number, "status": quote.status.value, "total": str(quote.total)}
