"""mail/finder.py: the one finder of email addresses and phone numbers in free text."""

from __future__ import annotations

from mail.finder import find_emails, find_phones, phone_e164, region_of


def test_emails_are_found_where_they_are_and_only_valid_ones() -> None:
    text = "Adding Jana Novak (jana.novak@borealis.example), cc o'brien@nordlys.example. Not: a..b@x.example"
    found = find_emails(text)
    assert [f.value for f in found] == ["jana.novak@borealis.example", "o'brien@nordlys.example"]
    assert all(text[f.start:f.end] == f.value for f in found)


def test_phones_as_written_in_the_default_country_and_never_a_date() -> None:
    text = "Mobile: (415) 555-0134 | +49 30 1234 5678, call before 2026-12-05 or 05.12.2026"
    assert [f.value for f in find_phones(text)] == ["(415) 555-0134", "+49 30 1234 5678"]
    assert [f.value for f in find_phones("Tel. 030 1234 5678", "DE")] == ["030 1234 5678"]
    assert find_phones("Tel. 030 1234 5678") == []  # not a US number


def test_region_and_e164() -> None:
    assert region_of("anna@firma.de") == "DE" and region_of("tom@acme.co.uk") == "GB"
    assert region_of("ines@borealis.example") is None and region_of(None) is None
    assert phone_e164("030 1234 5678", "anna@firma.de") == "+493012345678"
    assert phone_e164("(415) 555-0134") == "+14155550134"
