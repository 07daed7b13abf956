"""Products and quotes (line items are written with their quote; totals via store/pricing.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import normalize, pricing
from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Deal, Product, Quote, QuoteLineItem
from store.models.enums import Role
from store.services.crud import Access, EntitySpec, get, register, spec_for
from store.types import utcnow


def _prepare_product(session: Session, actor: Actor, values: dict[str, Any], existing: Any) -> dict[str, Any]:
    if values.get("currency"):
        values["currency"] = normalize.currency(values["currency"])
    return values


def _next_number(session: Session, workspace_id: uuid.UUID) -> str:
    year = utcnow().year
    prefix = f"Q-{year}-"
    count = session.scalar(select(func.count()).select_from(Quote).where(
        Quote.workspace_id == workspace_id, Quote.number.like(f"{prefix}%"))) or 0
    return f"{prefix}{count + 1:04d}"


def _prepare_quote(session: Session, actor: Actor, values: dict[str, Any], existing: Quote | None) -> dict[str, Any]:
    if existing is None:
        values.setdefault("number", _next_number(session, actor.workspace_id))
        if not values.get("currency") and values.get("deal_id"):
            deal = session.get(Deal, values["deal_id"])
            values["currency"] = deal.currency if deal else "USD"
    if values.get("currency"):
        values["currency"] = normalize.currency(values["currency"])
    for key in ("discount_percent", "tax_percent"):
        if values.get(key) is not None and not Decimal(0) <= values[key] <= Decimal(100):
            raise ValidationFailed(f"{key} must be between 0 and 100", field=key)
    return values


def _write_lines(session: Session, actor: Actor, quote: Quote, before: Any, virtual: dict[str, Any]) -> None:
    if "line_items" in virtual:
        for row in session.scalars(select(QuoteLineItem).where(QuoteLineItem.quote_id == quote.id)):
            session.delete(row)
        session.flush()
        for position, item in enumerate(virtual["line_items"] or []):
            product = None
            if item.get("product_id"):
                product = get(session, spec_for("product"), actor=actor, id=item["product_id"])
            unit_price = item.get("unit_price")
            if unit_price is None:
                if product is None:
                    raise ValidationFailed(f"line {position + 1}: give unit_price or a product_id",
                                           field="line_items")
                unit_price = product.unit_price
            description = item.get("description") or (product.name if product else None)
            if not description:
                raise ValidationFailed(f"line {position + 1}: give a description or a product_id",
                                       field="line_items")
            discount = Decimal(item.get("discount_percent") or 0)
            if not Decimal(0) <= discount <= Decimal(100):
                raise ValidationFailed(f"line {position + 1}: discount_percent must be 0-100", field="line_items")
            quantity = Decimal(item.get("quantity") or 1)
            session.add(QuoteLineItem(
                workspace_id=quote.workspace_id, quote_id=quote.id, product_id=product.id if product else None,
                position=position, description=description, quantity=quantity, unit_price=unit_price,
                discount_percent=discount, line_total=pricing.line_total(quantity, Decimal(unit_price), discount),
            ))
        session.flush()
    lines = session.scalars(select(QuoteLineItem.line_total).where(QuoteLineItem.quote_id == quote.id)).all()
    totals = pricing.quote_totals(lines, discount_percent=Decimal(quote.discount_percent),
                                  tax_percent=Decimal(quote.tax_percent))
    quote.subtotal, quote.discount_total = totals.subtotal, totals.discount_total
    quote.tax_total, quote.total = totals.tax_total, totals.total
    session.flush()


def _quote_extras(session: Session, quotes: Sequence[Quote]) -> None:
    by_quote: dict[uuid.UUID, list[QuoteLineItem]] = {q.id: [] for q in quotes}
    if quotes:
        rows = session.scalars(select(QuoteLineItem).where(QuoteLineItem.quote_id.in_(by_quote))
                               .order_by(QuoteLineItem.position))
        for row in rows:
            by_quote[row.quote_id].append(row)
    for quote in quotes:
        quote.line_items = by_quote[quote.id]  # type: ignore[attr-defined]


products = register(EntitySpec(
    name="product", plural="products", model=Product, access=Access.WORKSPACE,
    write_roles=(Role.manager, Role.admin), unique=("sku",), search=("name", "sku"), default_sort="name",
    prepare=_prepare_product,
))
quotes = register(EntitySpec(
    name="quote", plural="quotes", model=Quote, access=Access.OWNED,
    refs={"owner_id": "user", "deal_id": "deal"}, unique=("number",), search=("number", "title"),
    virtual_fields=("line_items",), prepare=_prepare_quote, after_write=_write_lines, extras=_quote_extras,
))
