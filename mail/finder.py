"""Email addresses and phone numbers in free text: the one finder the signature reader, the offline
model and the ingestion extractor share.

A loose pattern proposes candidates; email-validator decides what is an address (syntax only:
deliverability would need DNS) and phonenumbers' `PhoneNumberMatcher` what is a phone number, read
in a default country when the number has none ("(415) 555-0134" in the US, "030 1234 5678" in
Germany for a sender at a .de domain).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from mail.e164 import NotAPhoneNumber, e164

_EMAIL_CANDIDATE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# North American spelling without a country: the store reads such numbers as US ones too.
# A date is never a phone number, whatever digits it has ("2026-12-05", "05.12.2026").
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}")
_NANP = re.compile(r"\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}")


@dataclass(frozen=True)
class Span:
    """What was found, and where: `text[start:end] == value`."""

    start: int
    end: int
    value: str


def find_emails(text: str) -> list[Span]:
    """The email addresses in `text`, in order."""
    out = []
    for m in _EMAIL_CANDIDATE.finditer(text):
        try:
            validate_email(m.group(0), check_deliverability=False, test_environment=True)
        except EmailNotValidError:
            continue
        out.append(Span(m.start(), m.end(), m.group(0)))
    return out


def region_of(address: str | None) -> str | None:
    """The country an address's domain names ("anna@firma.de" -> "DE"), or None."""
    domain = address.rsplit("@", 1)[-1] if address and "@" in address else ""
    tld = domain.rsplit(".", 1)[-1].upper()
    return {"UK": "GB"}.get(tld, tld) if len(tld) == 2 else None


def find_phones(text: str, region: str | None = None) -> list[Span]:
    """The phone numbers in `text` as written, in order; one without a country is read in `region`
    (default US). A number need only be possible, not assigned: "+1 415 555 0199" counts."""
    matcher = phonenumbers.PhoneNumberMatcher(text, region or "US", leniency=phonenumbers.Leniency.POSSIBLE)
    return [Span(m.start, m.end, m.raw_string) for m in matcher if not _DATE_LIKE.fullmatch(m.raw_string.strip())]


def phone_e164(raw: str, address: str | None = None) -> str | None:
    """A phone number as written -> E.164, read in the country of the address's domain; None if it is not
    one. The normalizing is mail/e164.py's, the one normalizer."""
    region = region_of(address)
    if not raw.strip().startswith(("+", "00")) and region is None and _NANP.fullmatch(raw.strip()):
        region = "US"
    try:
        return e164(raw, region)
    except NotAPhoneNumber:
        return None
