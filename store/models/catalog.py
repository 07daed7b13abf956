"""Products, quotes and quote line items. Totals are computed in store/pricing.py only."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, IdMixin, TimestampMixin, WorkspaceMixin, str_enum
from store.models.crm import OwnedMixin
from store.models.enums import QuoteStatus
from store.types import Money

Percent = Numeric(5, 2, asdecimal=True)


class Product(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("workspace_id", "sku"),)

    name: Mapped[str] = mapped_column(String(300))
    sku: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    unit_price: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # "month", "year" for subscriptions; None for one-off.
    billing_period: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)


class Quote(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, Base):
    __tablename__ = "quotes"
    __table_args__ = (UniqueConstraint("workspace_id", "number"),)

    number: Mapped[str] = mapped_column(String(32))
    deal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[QuoteStatus] = mapped_column(str_enum(QuoteStatus), default=QuoteStatus.draft)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    valid_until: Mapped[date | None] = mapped_column(Date)
    # Whole-quote discount, applied after line discounts; then tax on the remainder.
    discount_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    tax_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    subtotal: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    discount_total: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    tax_total: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    terms: Mapped[str | None] = mapped_column(Text)


class QuoteLineItem(IdMixin, WorkspaceMixin, Base):
    __tablename__ = "quote_line_items"

    quote_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 2, asdecimal=True))
    # The catalogue's unit price when the line was priced (None: the catalogue has none for this
    # line, in this currency). A unit_price that differs is an override (store/services/quotes.py).
    list_price: Mapped[Decimal | None] = mapped_column(Money())
    unit_price: Mapped[Decimal] = mapped_column(Money())
    discount_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    line_total: Mapped[Decimal] = mapped_column(Money())
