"""Small pure functions that put user input into the one form the store keeps."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

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
        parsed = phonenumbers.parse(value, (region or "US").upper())
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"'{value}' is not a phone number: {exc}", field="phone") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationFailed(
            f"'{value}' is not a possible phone number; include the country code, e.g. +44 20 7946 0000",
            field="phone",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def currency(value: str) -> str:
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValidationFailed(f"'{value}' is not an ISO 4217 currency code (e.g. USD, EUR)", field="currency")
    return code
