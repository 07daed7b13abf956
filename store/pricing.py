"""Quote arithmetic, in one place: line discounts, then the quote discount, then tax."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_total(quantity: Decimal, unit_price: Decimal, discount_percent: Decimal = Decimal(0)) -> Decimal:
    return money(quantity * unit_price * (HUNDRED - discount_percent) / HUNDRED)


@dataclass(frozen=True)
class QuoteTotals:
    subtotal: Decimal  # sum of line totals (after line discounts)
    discount_total: Decimal  # the quote-level discount, in money
    tax_total: Decimal
    total: Decimal


def quote_totals(
    line_totals: Iterable[Decimal], *, discount_percent: Decimal, tax_percent: Decimal
) -> QuoteTotals:
    subtotal = money(sum(line_totals, Decimal(0)))
    discount = money(subtotal * discount_percent / HUNDRED)
    tax = money((subtotal - discount) * tax_percent / HUNDRED)
    return QuoteTotals(subtotal, discount, tax, subtotal - discount + tax)


def effective_discount(line_totals_before: Decimal, total_before_tax: Decimal) -> Decimal:
    """The overall discount in percent a quote gives away (what approval policy looks at)."""
    if line_totals_before == 0:
        return Decimal(0)
    return money((line_totals_before - total_before_tax) * HUNDRED / line_totals_before)
