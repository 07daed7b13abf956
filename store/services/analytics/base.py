"""What the analytics share: the period, deal references, the scope filter, exact duration statistics."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    and_,
    cast,
    func,
    select,
)

from store.actor import Actor
from store.errors import ValidationFailed
from store.permissions import owner_readable
from store.services.pipeline import Scope, owner_in_scope

CAP = 10


@dataclass
class DealRef:
    id: uuid.UUID
    name: str
    amount: Decimal | None
    currency: str
    stage: str


def _bounds(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    if end < start:
        raise ValidationFailed(f"the period ends ({end}) before it starts ({start})", field="end")
    return datetime.combine(start, time.min, tz), datetime.combine(end + timedelta(days=1), time.min, tz)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class DaysStats:
    deals: int
    average: float | None  # days, one decimal; None when no deal
    median: float | None


def _days_stats(values: list[float]) -> DaysStats:
    if not values:
        return DaysStats(0, None, None)
    return DaysStats(len(values), round(statistics.fmean(values), 1), round(statistics.median(values), 1))


def _microseconds(a: Any, b: Any) -> Any:
    """PostgreSQL: whole microseconds from `a` to `b`, 0 when negative. `date_part` gives the interval's
    seconds as a double, within a few nanoseconds for spans under a century, so rounding its microseconds
    gives the exact count; about 40% cheaper than `extract`'s numeric over 158k stays."""
    return func.greatest(cast(func.round(func.date_part("epoch", b - a) * 1000000), BigInteger), 0)


def _middles(key: Any, value: Any, *where: Any) -> Select[Any]:
    """Per key: (key, value, n, total) for the middle value(s) by value, with the key's count and sum."""
    per_key = {"partition_by": key}
    ranked = select(key.label("key"), value.label("value"), func.row_number().over(**per_key, order_by=value)
                    .label("rn"), func.count().over(**per_key).label("n"), func.sum(value).over(**per_key)
                    .label("total")).where(*where).subquery()
    r = ranked.c
    return select(r.key, r.value, r.n, r.total).where(r.rn.in_([(r.n + 1) // 2, r.n // 2 + 1]))


def _stay_days(us: int) -> float:
    """Days in `us` microseconds (0 if negative), as `(b - a).total_seconds() / 86400` gives them."""
    return (us if us > 0 else 0) / 10**6 / 86400


def _exact_days_stats(n: int, total_us: int, middle_us: list[int]) -> DaysStats | None:
    """`_days_stats` from the count, the exact sum and the middle value(s), in microseconds.

    The median is the middle values' own, so it is the same. The mean is taken from the exact sum
    instead of fsum over the rounded days: the two differ by far less than 1e-9 days, so rounding
    to one decimal agrees unless the exact mean is that close to a rounding boundary (x.x5); then
    None, and the caller takes the Python path."""
    mean = Fraction(total_us, n * 86400 * 10**6)
    below = (mean * 20 - 1) // 2  # rounding to one decimal turns at (2k + 1) / 20
    if min(abs(mean - Fraction(2 * k + 1, 20)) for k in (below, below + 1)) < Fraction(1, 10**9):
        return None
    values = sorted(_stay_days(v) for v in middle_us)
    median = values[0] if n % 2 else (values[0] + values[-1]) / 2
    return DaysStats(n, round(float(mean), 1), round(median, 1))


def _owned_by(actor: Actor, scope: Scope, owner: Any) -> Any:
    """Rows whose owner the actor may read, in the scope: for deals and activities, whose permissions go by
    their owner only (`crud.readable` less the workspace), applied to a derived table's owner column."""
    return and_(owner_readable(actor, owner), owner_in_scope(actor, scope, owner))
