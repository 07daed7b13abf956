"""Reading import files: encodings, delimiters, line numbers, header aliases, and the value
formats people and other CRMs write (amounts, dates, countries, enum spellings).

Pure functions; `store.importer` does the writing. Each parser raises ValidationFailed
with a reason that says what to write instead.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from mail.charset import fallback
from store import normalize
from store.errors import ValidationFailed

Source = Path | bytes | str | IO[str] | IO[bytes] | Iterable[dict[str, str]]


def compact(text: str) -> str:
    """'Contact owner', 'contact_owner', 'CONTACT-OWNER' -> 'contactowner'."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


# Our field (or a relation handled below) -> the headers that mean it, compacted.
# Our own field names always match too (that is what `store.exporter` writes).
HEADERS: dict[str, dict[str, str]] = {
    "contacts": {
        "first_name": "firstname givenname personfirstname", "last_name": "lastname surname personlastname",
        "name": "fullname contactname personname",
        "email": "emailaddress personemail personemailwork personemailhome personemailother workemail",
        "phone": "phonenumber mobilephonenumber mobilephone personphone personphonework personphonemobile",
        "title": "jobtitle persontitle personjobtitle", "lifecycle_stage": "lifecyclestage",
        "lead_status": "leadstatus", "lead_score": "leadscore", "source": "originalsource leadsource",
        "country": "countryregion", "linkedin_url": "linkedin linkedinurl", "owner": "contactowner owneremail "
        "personowner", "company_name": "company associatedcompany personorganization organization",
        "company_domain": "companydomainname",
    },
    "companies": {
        "name": "companyname organizationname organization", "domain": "companydomainname domainname",
        "industry": "organizationindustry", "employee_count": "numberofemployees employees",
        "annual_revenue": "annualrevenue", "phone": "phonenumber organizationphone",
        "website": "websiteurl organizationwebsite", "country": "countryregion organizationaddresscountry",
        "region": "stateregion state organizationaddressstatecounty", "city": "organizationaddresscitytown",
        "address": "organizationaddress", "owner": "companyowner owneremail organizationowner",
        "description": "aboutus",
    },
    "deals": {
        "name": "dealname dealtitle title", "amount": "dealvalue value", "currency": "dealcurrency",
        "close_date": "closedate dealexpectedclosedate expectedclosedate", "pipeline": "dealpipeline",
        "stage": "dealstage", "status": "dealstatus", "owner": "dealowner owneremail",
        "probability": "dealprobability", "next_step": "nextstep", "lost_reason": "closedlostreason "
        "deallostreason", "forecast_category": "forecastcategory", "description": "dealdescription",
        "company_name": "company associatedcompany dealorganization organization",
        "company_domain": "companydomainname", "contacts": "contact contactemails associatedcontact "
        "dealcontactperson contactperson",
    },
}
PLAIN_FIELDS: dict[str, tuple[str, ...]] = {  # our own columns that map one to one
    "contacts": ("timezone",), "companies": ("source",), "deals": ("source",)}

# Stage names in other CRMs' default pipelines -> our default stages. Applied only when the
# pipeline has no stage of that name; "won"/"lost" go to the pipeline's won/lost stage.
STAGE_ALIASES: dict[str, str] = {
    # HubSpot default pipeline, by label or internal id
    "appointmentscheduled": "Qualification", "qualifiedtobuy": "Discovery", "presentationscheduled": "Demo",
    "decisionmakerboughtin": "Proposal", "contractsent": "Negotiation", "closedwon": "won", "closedlost": "lost",
    # Pipedrive default pipeline and deal status
    "leadin": "Qualification", "contactmade": "Discovery", "needsdefined": "Discovery",
    "demoscheduled": "Demo", "proposalmade": "Proposal", "negotiationsstarted": "Negotiation",
    "won": "won", "lost": "lost",
}
DEFAULT_PIPELINE_NAMES = {"default", "salespipeline", "pipeline"}
# Mail providers: a contact's address there says nothing about their employer.
FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com", "outlook.com",
    "live.com", "msn.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.de",
    "gmx.net", "web.de", "mail.com", "yandex.ru", "zoho.com", "fastmail.com", "hey.com", "qq.com", "163.com",
})
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
_COUNTRY_ALIASES = {"usa": "US", "unitedstatesofamerica": "US", "uk": "GB", "england": "GB", "greatbritain": "GB"}


# --- values -------------------------------------------------------------------------------


def parse_amount(raw: str | None, *, column: str = "amount") -> tuple[Decimal | None, str | None]:
    """'48000', '48000.5', '$48,000.00', '48.000,00 €', 'EUR 1 250,50' -> (amount, currency or None).

    The last separator followed by one or two digits is the decimal mark; a separator
    followed by exactly three digits groups thousands (money never has three decimals).
    Anything else ('1,2,3', '12,34,567', '48k', negatives) is refused with a reason.
    """
    if raw is None or not raw.strip():
        return None, None
    text, currency = raw.strip(), None
    for symbol, code in _SYMBOLS.items():
        if symbol in text:
            text, currency = text.replace(symbol, " ").strip(), code
    m = re.fullmatch(r"(?:([A-Za-z]{3})\s*)?([-+]?[\d.,' \u00a0\u202f]+?)\s*(?:([A-Za-z]{3}))?", text)
    hint = "write it as 48000.00, 48,000.00 or 48.000,00"
    if m is None or (m.group(1) and m.group(3)):
        raise ValidationFailed(f"'{raw}' is not an amount; {hint}", field=column)
    currency = normalize.currency(m.group(1) or m.group(3)) if (m.group(1) or m.group(3)) else currency
    number = re.sub(r"[' \u00a0\u202f]", "", m.group(2))
    if number.startswith("-"):
        raise ValidationFailed(f"'{raw}' is negative; amounts are zero or more", field=column)
    number = number.lstrip("+")
    seps = [c for c in number if c in ",."]
    integer, decimals = number, ""
    if seps:
        last = number.rfind(seps[-1])
        head, tail = number[:last], number[last + 1:]
        if len(set(seps)) == 2 or (seps.count(seps[-1]) == 1 and len(tail) in (1, 2)):
            integer, decimals = head, tail  # the last separator is the decimal mark
        else:
            integer = number
        grouping = {c for c in integer if c in ",."}
        if decimals and seps[-1] in integer or len(grouping) > 1:
            raise ValidationFailed(f"'{raw}' mixes separators ambiguously; {hint}", field=column)
        if grouping and not re.fullmatch(r"[1-9]\d{0,2}(?:[.,]\d{3})+", integer):
            raise ValidationFailed(f"'{raw}' has digit groups that are not thousands; {hint}", field=column)
        integer = re.sub(r"[.,]", "", integer)
    if len(decimals) > 2:
        raise ValidationFailed(f"'{raw}' has more than two decimals; {hint}", field=column)
    if not re.fullmatch(r"\d+", integer or "0") or (decimals and not decimals.isdigit()):
        raise ValidationFailed(f"'{raw}' is not an amount; {hint}", field=column)
    try:
        return Decimal(f"{integer or '0'}.{decimals or '0'}"), currency
    except InvalidOperation as exc:  # pragma: no cover - the patterns above exclude it
        raise ValidationFailed(f"'{raw}' is not an amount; {hint}", field=column) from exc


_MONTH_NAMES = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y")


def parse_date(raw: str | None, *, column: str = "date") -> date | None:
    """ISO '2026-01-31' (a time after it is ignored: '2026-01-31 00:00', '2026-01-31T00:00:00Z'),
    '2026/01/31', US '01/31/2026', dotted day-first '31.01.2026', 'Jan 31, 2026', '31 January 2026'.

    Slash dates are month/day/year (US, as HubSpot writes them); one whose first number
    cannot be a month is refused rather than guessed, as are two-digit years.
    """
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    iso = "write it as 2026-01-31"
    try:
        if m := re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                             r"\s*(?:Z|UTC|[+-]\d{2}:?\d{2})?)?", text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})(?:\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?)?",
                             text):
            if len(m[3]) == 2:
                raise ValidationFailed(f"'{raw}' has a two-digit year; {iso}", field=column)
            if int(m[1]) > 12:
                raise ValidationFailed(f"'{raw}' looks day-first, but slash dates are read as "
                                       f"month/day/year (US); {iso}", field=column)
            return date(int(m[3]), int(m[1]), int(m[2]))
        if m := re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text):
            return date(int(m[3]), int(m[2]), int(m[1]))
        for fmt in _MONTH_NAMES:
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    except ValueError as exc:  # date(2026, 2, 30)
        raise ValidationFailed(f"'{raw}' is not a real date ({exc}); {iso}", field=column) from exc
    raise ValidationFailed(f"'{raw}' is not a date we read; {iso} (or 01/31/2026)", field=column)


def parse_choice(enum: type[StrEnum], raw: str | None, *, column: str) -> Any:
    """An enum value in any spelling: 'Marketing Qualified Lead', 'marketingqualifiedlead', 'MQL'."""
    if raw is None or not raw.strip():
        return None
    key = compact(raw)
    for member in enum:
        if key in (compact(member.value), compact(member.name)):
            return member
    allowed = ", ".join(m.value for m in enum)
    raise ValidationFailed(f"'{raw}' is not one of: {allowed}", field=column)


_countries: dict[str, str] = {}


def parse_country(raw: str | None) -> str | None:
    """'US', 'us', 'United States', 'Germany' -> ISO 3166 alpha-2."""
    if raw is None or not raw.strip():
        return None
    if re.fullmatch(r"[A-Za-z]{2}", raw.strip()):
        return raw.strip().upper()
    if not _countries:
        import phonenumbers
        from phonenumbers.geocoder import _region_display_name  # English names, no extra dependency

        _countries.update({compact(_region_display_name(r, "en")): r for r in phonenumbers.SUPPORTED_REGIONS})
        _countries.update(_COUNTRY_ALIASES)
    code = _countries.get(compact(raw))
    if code is None:
        raise ValidationFailed(f"country '{raw}' is not a country name or ISO code (e.g. US, DE)", field="country")
    return code


def parse_integer(raw: str | None, *, column: str) -> int | None:
    """'1200', '1,200', '40%' -> an int; ranges like '51-200' are refused (we keep exact numbers)."""
    if raw is None or not raw.strip():
        return None
    try:
        amount, _ = parse_amount(raw.strip().rstrip("%"), column=column)
    except ValidationFailed:
        amount = None
    if amount is None or amount != amount.to_integral_value():
        raise ValidationFailed(f"'{raw}' is not a whole number (e.g. 1200)", field=column)
    return int(amount)


# --- formula cells -----------------------------------------------------------------------

# A spreadsheet reads a cell starting with one of these as a formula (=HYPERLINK(...) that
# leaks the row, +cmd|...): OWASP's list. Tab and CR too, which some spreadsheets skip first.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(text: str) -> bool:
    """A formula character first, once any leading 's are skipped ('=1 is ours for =1)."""
    return text.lstrip("'").startswith(FORMULA_START)


def neutralize(text: str) -> str:
    """A cell a spreadsheet shows as text: one more leading ' before a formula character.
    `cell_value` takes exactly that one ' off again, so '+351 912 345 678' round-trips
    (and so does a value that itself starts with ' before a formula character)."""
    return "'" + text if _formula_like(text) else text


def cell_value(raw: str) -> str:
    """A cell's value: surrounding white space trimmed, and the one ' of a neutralized cell
    (ours, or Excel's) taken off. It never exposes a formula: leading white space stays when
    trimming it would put a formula character first (tab =1+1 is not made =1+1)."""
    text = raw.rstrip()
    if not text.lstrip().startswith(FORMULA_START):
        text = text.lstrip()
    if text.startswith("'") and _formula_like(text[1:]):
        text = text[1:]
    return text


# --- reading the file -------------------------------------------------------------------


def decode(data: bytes) -> tuple[str, str | None]:
    """UTF-8 (with or without BOM), else Windows-1252 / Latin-1 with a note saying so."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        text, used = fallback(data, ("cp1252",))
        used = {"windows-1252": "Windows-1252", "latin-1": "Latin-1"}.get(used, used)
        return text, (f"the file is not UTF-8 (first at line {line}); read it as {used}: check accented "
                      "letters, or save it as UTF-8 and import again")


def _text(source: Any) -> tuple[str, str | None] | None:
    if isinstance(source, Path):
        return decode(source.read_bytes())
    if isinstance(source, bytes | bytearray):
        return decode(bytes(source))
    if isinstance(source, str):
        return source.removeprefix("\ufeff"), None
    if hasattr(source, "read"):
        data = source.read()
        return decode(data) if isinstance(data, bytes) else (data.removeprefix("\ufeff"), None)
    return None


def read_rows(source: Source, notes: list[str] | None = None) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and an iterator of (line where the row starts, values); blank rows skipped."""
    loaded = _text(source)
    if loaded is None:  # already parsed: an iterable of dicts, line = position + 1
        dict_rows = iter(source)  # type: ignore[arg-type]
        first = next(dict_rows, None)
        header = list(first) if first else []

        def from_dicts() -> Iterator[tuple[int, list[str]]]:
            for n, row in enumerate([first, *dict_rows] if first else [], start=2):
                yield n, [str(row.get(h) or "") for h in header]
        return header, from_dicts()
    text, note = loaded
    if note and notes is not None:
        notes.append(note)
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count) if any(d in first_line for d in ",;\t") else ","
    pending: list[str] = []  # the lines of the row being read, to say which field broke it

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            pending.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    header = [h.strip() for h in _next(reader, pending, 1, [], delimiter) or []]

    def records() -> Iterator[tuple[int, list[str]]]:
        end = reader.line_num
        while True:
            pending.clear()
            values = _next(reader, pending, end + 1, header, delimiter)
            if values is None:
                return
            start, end = end + 1, reader.line_num
            if any(v.strip() for v in values):
                yield start, values
    return header, records()


def _next(reader: Any, pending: list[str], line: int, header: list[str], delimiter: str) -> list[str] | None:
    """The reader's next row (None at the end), or ValidationFailed naming the line and the field
    it cannot read: a field over the csv module's limit (128 KiB, which keeps one row from
    holding the whole file in memory) is almost always a quote that was never closed."""
    try:
        return next(reader, None)
    except csv.Error as exc:
        if "field larger than field limit" not in str(exc):
            raise ValidationFailed(f"line {line}: cannot read the row as CSV ({exc}); check its quotes",
                                   field="file", line=line) from exc
        index = _field_index("".join(pending), delimiter)
        name = header[index] if index < len(header) and header[index] else None
        limit = csv.field_size_limit() // 1024
        raise ValidationFailed(
            f"line {line}, {f'column {name!r}' if name else f'field {index + 1}'}: the value is over {limit} KiB, "
            "the most one CSV field may hold; check for a quote (\") that opens the field and is never closed, "
            "or shorten the value. Nothing was imported", field="file", line=line, column=name or index + 1) from exc


def _field_index(partial: str, delimiter: str) -> int:
    """Which field (0-based) a partly read row ends in: delimiters outside quotes, counted as
    the csv module reads them (a quote opens a field only at its start; "" inside is a quote)."""
    index, quoted, at_start, i = 0, False, True, 0
    while i < len(partial):
        char = partial[i]
        if quoted:
            if char == '"' and partial[i + 1:i + 2] == '"':
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"' and at_start:
            quoted = True
        elif char == delimiter:
            index, at_start, i = index + 1, True, i + 1
            continue
        at_start, i = False, i + 1
    return index


def count_rows(source: Path | bytes) -> int:
    """How many data rows a file has (for a progress bar's total)."""
    return sum(1 for _ in read_rows(source)[1])
