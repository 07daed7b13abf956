"""Quotes with their lines, including the one awaiting a discount approval."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from store import pricing
from store.demo.world import Ctx, Plan
from store.models import (
    Approval,
    Quote,
    QuoteLineItem,
)
from store.models.enums import (
    QuoteStatus,
    Surface,
)
from store.services import quotes


def add_quote(
    ctx: Ctx,
    plan: Plan,
    number: str,
    title: str,
    lines: list[tuple[str, Decimal, Decimal]],  # (sku, quantity, line discount %)
    *,
    discount: Decimal,
    status: QuoteStatus,
    created: datetime,
) -> Quote:
    products = [ctx.products[sku] for sku, _, _ in lines]
    line_totals = [pricing.line_total(q, p.unit_price, d) for (_, q, d), p in zip(lines, products, strict=True)]
    totals = pricing.quote_totals(line_totals, discount_percent=discount, tax_percent=Decimal(0))
    quote = Quote(
        number=number,
        deal_id=plan.deal.id,
        owner_id=plan.owner.id,
        title=title,
        status=status,
        currency="USD",
        valid_until=ctx.today + timedelta(days=30),
        discount_percent=discount,
        tax_percent=Decimal(0),
        subtotal=totals.subtotal,
        discount_total=totals.discount_total,
        tax_total=totals.tax_total,
        total=totals.total,
        terms="Net 30. Annual items billed yearly in advance.",
    )
    ctx.add(quote, created)
    for i, ((_, qty, disc), product) in enumerate(zip(lines, products, strict=True)):
        item = QuoteLineItem(
            quote_id=quote.id,
            product_id=product.id,
            position=i,
            description=product.name,
            quantity=qty,
            list_price=product.unit_price,
            unit_price=product.unit_price,
            discount_percent=disc,
            line_total=line_totals[i],
        )
        ctx.add(item)
    return quote


def discount_quote(ctx: Ctx) -> None:
    """A 30% discount quote waiting for Dana's approval (STORIES.md): Jordan's, in Proposal, if any."""
    candidates = [
        p for p in ctx.plans if not p.scripted and p.events[-1].pos in (3, 4) and p.act_end > ctx.days_ago(30)
    ]
    if not candidates:
        return
    plan = min(candidates, key=lambda p: (p.owner is not ctx.users["jordan"], p.events[-1].pos != 3))
    amount = plan.deal.amount or Decimal(0)
    seats = Decimal(max(5, round((amount / Decimal("0.7") - 7500) / 1000)))  # ~the deal amount after 30%
    lines = [("PLAT-LIC", seats, Decimal(0)), ("ONB-STD", Decimal(1), Decimal(0))]
    title = f"{plan.deal.name} – proposal"
    status = QuoteStatus.pending_approval
    quote = add_quote(ctx, plan, "Q-1002", title, lines, discount=Decimal(30), status=status, created=plan.act_end)
    # Submitted as the quote service submits it: a proposal in Dana's approval queue (web, API,
    # Slack "waiting"); approving it there approves the quote, rejecting it sends the quote back to draft.
    priced = [quotes.Line(ctx.products[sku].id, ctx.products[sku].name, qty, ctx.products[sku].unit_price,
                          ctx.products[sku].unit_price, disc) for sku, qty, disc in lines]
    terms = quotes.judge(priced, currency=quote.currency, discount_percent=quote.discount_percent,
                         tax_percent=quote.tax_percent, threshold=quotes.DEFAULT_MANAGER_DISCOUNT)
    summary, diff = quotes.submission_text(quote.number, plan.deal.name, terms)
    ctx.add(Approval(tool=quotes.APPROVE_TOOL, args={"quote_id": str(quote.id)}, summary=summary, diff=diff,
                     evidence=[], surface=Surface.web, requested_by_id=plan.owner.id, approver_role="manager",
                     source_ref={"record": {"kind": "quote", "id": str(quote.id), "label": quote.number},
                                 "submitted": True}), plan.act_end)


