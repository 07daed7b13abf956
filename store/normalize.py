"""Small pure functions that put user input into the one form the store keeps."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from mail.e164 import NotAPhoneNumber, e164
from store.errors import ValidationFailed


def email(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        # Deliverability would need DNS; the syntax check is what we can do offline.
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(f"'{value}' is not a valid email address: {exc}", field="email") from exc
    return result.normalized.lower()


def domain(value: str | None) -> str | None:
    """'https://www.Borealis.example/about' -> 'borealis.example'."""
    if value is None or not value.strip():
        return None
    raw = value.strip().lower()
    if "@" in raw and "/" not in raw:
        raw = raw.rsplit("@", 1)[1]
    host = urlsplit(raw if "//" in raw else f"//{raw}").hostname or ""
    host = host.removeprefix("www.").rstrip(".")
    if not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}", host):
        raise ValidationFailed(f"'{value}' is not a valid domain (expected e.g. example.com)", field="domain")
    return host


def phone(value: str | None, *, region: str | None = None) -> str | None:
    """Any common spelling -> E.164 ('+14155550123'). Region is the default country."""
    if value is None or not value.strip():
        return None
    try:
        return e164(value, region or "US")
    except NotAPhoneNumber as exc:
        raise ValidationFailed(str(exc), field="phone") from exc


def currency(value: str) -> str:
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValidationFailed(f"'{value}' is not an ISO 4217 currency code (e.g. USD, EUR)", field="currency")
    return code


# The widest integer either database keeps (BIGINT); SQLite refuses a larger one outright.
INT64_MAX = 2**63 - 1


def storable(values: dict[str, Any]) -> None:
    """Refuse, naming the field, what no database keeps: NUL, lone surrogates, NaN, infinities, huge integers."""
    for key, value in values.items():
        _storable(value, key, key)


def _storable(value: Any, path: str, field: str) -> None:
    # PostgreSQL refuses NUL in text and JSON; neither database (nor a UTF-8 response) takes a
    # lone surrogate, which a JSON body can spell as "\ud800"; JSON columns refuse NaN.
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationFailed(f"{path} contains a NUL character (\\x00 or \\u0000), which the database "
                                   "refuses; remove it", field=field)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start].encode("unicode_escape").decode()
            raise ValidationFailed(f"{path} is not valid Unicode text: it holds a lone surrogate ({bad}) at "
                                   f"character {exc.start}; send the whole character or remove it",
                                   field=field) from None
    elif isinstance(value, bool):
        return
    elif isinstance(value, float | Decimal):
        if not (math.isfinite(value) if isinstance(value, float) else value.is_finite()):
            raise ValidationFailed(f"{path} must be a finite number, not {value}", field=field)
    elif isinstance(value, int):
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise ValidationFailed(f"{path} is {value}, past the largest whole number the database keeps "
                                   f"({INT64_MAX})", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, f"{path} (a key)", field)
            _storable(item, f"{path}.{key}", field)
    elif isinstance(value, list | tuple | set):
        for i, item in enumerate(value):
            _storable(item, f"{path}[{i}]", field)
