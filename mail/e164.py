"""Phone numbers as written -> E.164 ('+14155550123'): the one normalizer (phonenumbers underneath).

The store keeps a contact's phone in this form (`store.normalize.phone`, which turns the error into
a ValidationFailed) and a signature's numbers are read into it (`mail.finder.phone_e164`, which
picks the region from the sender's domain and takes "not a phone number" as None).
"""

from __future__ import annotations

import phonenumbers


class NotAPhoneNumber(ValueError):
    """`raw` is not a (possible) phone number; the message says why and what to write instead."""


def e164(raw: str, region: str | None = None) -> str:
    """`raw` in E.164; `region` (ISO 3166 alpha-2, e.g. "US") is the country of a number written without one."""
    try:
        parsed = phonenumbers.parse(raw, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        raise NotAPhoneNumber(f"'{raw}' is not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise NotAPhoneNumber(
            f"'{raw}' is not a possible phone number; include the country code, e.g. +44 20 7946 0000")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
