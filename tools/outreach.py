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
from sqlalchemy import select

from store import normalize
from store.errors import ValidationFailed
from store.models import User, Workspace
from store.models.enums import ActivityType, Direction
from store.services import crud, spec_for
from store.settings import get_settings
from tools.base import Preview, ToolContext, as_uuid, ref, write_tool
from tools.write import diff_rows, names

# Above this overall discount (percent) a quote needs a manager's approval, unless the
# workspace sets settings["approvals"]["manager_discount_percent"].
DEFAULT_MANAGER_DISCOUNT = Decimal(20)


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
    me = ctx.session.get(User, ctx.actor.user_id) if ctx.actor.user_id else None
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
    product_id: uuid.UUID | None = None
    description: str | None = None
    quantity: Decimal = Field(Decimal(1), gt=0)
    unit_price: Decimal | None = Field(None, ge=0)
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100)


class CreateQuoteArgs(BaseModel):
    deal_id: uuid.UUID
    line_items: list[QuoteLine] = Field(min_length=1)
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100, description="Discount on the whole quote.")
    valid_until: date | None = None
    title: str = ""


def manager_threshold(ctx: ToolContext) -> Decimal:
    ws = ctx.session.get(Workspace, ctx.actor.workspace_id)
    value = ((ws.settings if ws else {}) or {}).get("approvals", {}).get("manager_discount_percent")
    return Decimal(str(value)) if value is not None else DEFAULT_MANAGER_DISCOUNT


def _preview_quote(ctx: ToolContext, a: CreateQuoteArgs) -> Preview:
    from store import pricing
    from store.models import Product

    deal = crud.get_for_write(ctx.session, spec_for("deal"), actor=ctx.actor, id=as_uuid(a.deal_id))
    list_total, net_total = Decimal(0), Decimal(0)
    for line in a.line_items:
        price = line.unit_price
        if price is None and line.product_id:
            price = ctx.session.scalar(select(Product.unit_price).where(
                Product.id == as_uuid(line.product_id), Product.workspace_id == ctx.actor.workspace_id))
        if price is None:
            raise ValidationFailed("each line needs a unit_price or a product_id")
        list_total += line.quantity * price
        net_total += pricing.line_total(line.quantity, price, line.discount_percent)
    totals = pricing.quote_totals([net_total], discount_percent=a.discount_percent, tax_percent=Decimal(0))
    overall = pricing.effective_discount(list_total, totals.subtotal - totals.discount_total)
    threshold = manager_threshold(ctx)
    needs = overall > threshold
    return Preview(
        summary=f"Create quote for {deal.name}: {totals.total:,.2f} {deal.currency} ({overall}% off list)",
        diff=diff_rows({}, {"deal": deal.name, "lines": len(a.line_items), "list price": list_total,
                            "discount": f"{overall}%", "total": totals.total}),
        record=ref("deal", deal), needs_role="manager" if needs else None,
        reason=f"a {overall}% discount is above the {threshold}% a rep may give alone" if needs else None)


@write_tool(CreateQuoteArgs, preview=_preview_quote)
def create_quote(ctx: ToolContext, a: CreateQuoteArgs) -> dict[str, Any]:
    """Create a quote on a deal from products or priced lines, with line and overall discounts.
    Large discounts are sent to a manager for approval."""
    data = a.model_dump(exclude_none=True) | {"deal_id": as_uuid(a.deal_id)}
    data["line_items"] = [line.model_dump(exclude_none=True) for line in a.line_items]
    quote = crud.create(ctx.session, spec_for("quote"), actor=ctx.actor, data=data)
    return ref("quote", quote) | {"total": str(quote.total)}
