"""Amounts of money in a message ("62k", "$62,000", "48k -> 62k") and how tools take them."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agents.offline.phrases import Found, tidy

CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP"}
CURRENCY_CODES = ("USD", "EUR", "GBP", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK", "JPY", "PLN", "BRL", "INR")
_CODES = "|".join(CURRENCY_CODES)
AMOUNT_RE = re.compile(
    rf"(?<![\w.:/-])(?P<pre>[$€£]|(?:{_CODES})\s?)?"
    r"(?P<num>\d{1,3}(?:[,\u00a0 ]\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d+)?)"
    r"\s?(?P<suf>k|m|mm|mn|thousand|million)?(?![\w:/-])"
    rf"(?:\s?(?P<post>{_CODES}|[$€£])(?!\w))?", re.I)


def _amount(m: re.Match[str]) -> tuple[Decimal, str | None] | None:
    """An amount only when it looks like money: a currency, a k/m suffix, a thousands separator
    or at least 1,000. "in 2 weeks" or "10:00" are not amounts."""
    num, suf = m.group("num"), (m.group("suf") or "").lower()
    cur = (m.group("pre") or m.group("post") or "").strip()
    grouped = bool(re.search(r"[,\u00a0 ]\d{3}", num))
    try:
        value = Decimal(re.sub(r"[,\u00a0 ]", "", num))
    except InvalidOperation:
        return None
    value *= {"k": 1000, "thousand": 1000, "m": 1_000_000, "mm": 1_000_000, "mn": 1_000_000,
              "million": 1_000_000}.get(suf, 1)
    if not (cur or suf or grouped or value >= 1000):
        return None
    return value, CURRENCY_SIGNS.get(cur, cur.upper() or None)


def find_amounts(text: str) -> list[tuple[Decimal, str | None, re.Match[str]]]:
    out = []
    for m in AMOUNT_RE.finditer(text):
        parsed = _amount(m)
        if parsed:
            out.append((*parsed, m))
    return out


def find_new_amount(text: str) -> Found[tuple[Decimal, str | None]] | None:
    """The amount a deal should now have: after an arrow ("48k -> 62k"), or the only one given."""
    amounts = find_amounts(text)
    if not amounts:
        return None
    if len(amounts) > 1 and not re.search(r"(?:->|→|=>|\bto\b)\s*$", text[:amounts[-1][2].start()]):
        return None  # two amounts and no arrow between them: which one is new is a guess
    value, currency, m = amounts[-1]
    return Found((value, currency), tidy(text[:m.start()] + " " + text[m.end():]), m.group(0))


def decimal_str(value: Decimal) -> str:
    """A Decimal as tools take it: '62000', '62000.5' (never 6.2E+4)."""
    return f"{value.quantize(Decimal('0.01')).normalize():f}"
