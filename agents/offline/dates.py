"""Dates people type, for the offline model (the user's local calendar; `today` is their date).

- "thursday", "by thu", "this friday": the next such day (a bare weekday is never today).
- "next tuesday": the Tuesday of next week (weeks start on Monday), not tomorrow.
- "next week": Monday of next week; "next month": the 1st of next month.
- "end of (this|next) week": that week's Friday; month, quarter, year: their last day.
- "in 2 weeks", "in 3 days", "in a month": counted from today.
- "Jan 15", "15 January", "2027-01-15": the next such date on or after today.
- Bare months ("in January") and numeric dates like 1/12 are not dates here: too ambiguous.
- "since last month" (`since_date`): this day last month; "since monday": the one just past.

What `dates_in` also reads in mail and transcripts (`today` is the email's or call's date):
- "05.12.2026" and "05.12." are day first (the dotted form is European);
- "12/15/2026" and "15/12/2026" are read when one side is over 12; "05/12/2026" is ambiguous: no date;
- "2026/12/05"; a month in another language ("15. Dezember", "5 de diciembre") through dateparser;
- a day and month that lies behind the email ("we met on Nov 3" in a Nov 20 email) is not a due date,
  and neither is anything before `today`; a specific date beats a weekday in the same sentence
  ("Friday, December 5" is December 5).

Month arithmetic is python-dateutil's `relativedelta`; absolute dates and month names in other
languages are dateparser's. The relative forms dateparser gets wrong or does not know ("next
tuesday", "end of next month") are the grammar above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import dateparser
from dateutil.relativedelta import relativedelta

from agents.offline.phrases import Found, tidy
from mail.body import month_number

WEEKDAYS = {"monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
            "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5,
            "sunday": 6}  # no "sat" or "sun": ordinary words too
MONTHS = {"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
          "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
          "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12}
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a few": 3}

_WD = "|".join(sorted(WEEKDAYS, key=len, reverse=True))
_MON = "|".join(sorted(MONTHS, key=len, reverse=True))
_NUM = r"\d+|" + "|".join(sorted(NUMBERS, key=len, reverse=True))

# Each date form, longest and most specific first. A leading "by/on/due/until..." belongs to
# the date phrase so that removing it leaves a clean task title ("send quote by thu").
_LEAD = r"(?:(?:due|by|on|before|until|till|for|from|to|at)\s+)?(?:(?:the|this|coming)\s+)?"
DATE_FORMS: list[tuple[str, str]] = [
    ("day_after", r"day\s+after\s+tomorrow"),
    ("today", r"(?:today|tonight)(?:'s)?|eod|end\s+of\s+(?:the\s+)?day"),
    ("tomorrow", r"(?:tomorrow|tmrw|tmr|tomorow)(?:'s)?"),
    ("yesterday", r"(?:yesterday|yday|yest)"),
    ("in_n", rf"(?:in|within)\s+(?P<n>{_NUM})\s+(?P<unit>day|week|month)s?"),
    ("end_q", r"end\s+of\s+q(?P<q>[1-4])(?:\s+(?P<qy>\d{4}))?"),
    ("end_of", r"(?:end\s+of\s+(?:the\s+)?(?P<which>this\s+|next\s+)?(?P<eunit>week|month|quarter|year))"
               r"|eo(?P<abbr>[wmqy])"),
    ("next_unit", r"(?P<nwhich>next|this)\s+(?P<nunit>week|month)"),
    ("weekday", rf"(?:(?P<wwhich>next)\s+)?(?P<wd>{_WD})\.?"),
    ("mon_day", rf"(?P<mon>{_MON})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?"),
    ("day_mon", rf"(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon2>{_MON})\.?(?:,?\s+(?P<y2>\d{{4}}))?"),
    ("iso", r"\d{4}-\d{2}-\d{2}"),
]
DATE_RE = re.compile(r"(?<![\w-])" + _LEAD + "(?:" + "|".join(f"(?P<{name}>{rx})" for name, rx in DATE_FORMS)
                     + r")(?![\w-])", re.I)


def _add_months(day: date, n: int) -> date:
    return day + relativedelta(months=n)  # the 31st becomes the month's last day


def _end_of(unit: str, today: date, offset: int) -> date:
    if unit == "week":
        return today - timedelta(days=today.weekday()) + timedelta(days=7 * offset + 4)  # Friday
    if unit == "month":
        return today + relativedelta(months=offset, day=31)
    if unit == "quarter":
        q_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return q_start + relativedelta(months=3 * offset + 2, day=31)
    return date(today.year + offset, 12, 31)


def _on_calendar(today: date, month: int, day: int, year: str | None, recent_past_days: int = 0) -> date | None:
    """A day-month date without a year is the next one to come (today included); one that went by
    at most `recent_past_days` ago was mentioned, not planned: None. Two-digit years are 20xx."""
    try:
        if year:
            y = int(year)
            return date(y + 2000 if y < 100 else y, month, day)
        candidate = date(today.year, month, day)
        if candidate >= today:
            return candidate
        if (today - candidate).days <= recent_past_days:
            return None
        return date(today.year + 1, month, day)
    except ValueError:
        return None


def _with_dateparser(text: str, today: date) -> date | None:
    # Absolute dates go through dateparser (it knows the spellings); the relative forms it gets
    # wrong or does not know ("next tuesday", "end of next month") are handled above.
    base = datetime.combine(today, datetime.min.time())
    parsed = dateparser.parse(text, languages=["en"], settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "future",
                                                                "PREFER_DAY_OF_MONTH": "first"})
    return parsed.date() if parsed else None


def _resolve(m: re.Match[str], today: date) -> date | None:
    g = m.groupdict()
    if g["day_after"]:
        return today + timedelta(days=2)
    if g["today"]:
        return today
    if g["tomorrow"]:
        return today + timedelta(days=1)
    if g["yesterday"]:
        return today - timedelta(days=1)
    if g["in_n"]:
        raw = g["n"].lower()
        n = int(raw) if raw.isdigit() else NUMBERS[re.sub(r"\s+", " ", raw)]
        unit = g["unit"].lower()
        return _add_months(today, n) if unit == "month" else today + timedelta(days=n * (7 if unit == "week" else 1))
    if g["end_q"]:
        q, year = int(g["q"]), int(g["qy"]) if g["qy"] else today.year
        end = _end_of("quarter", date(year, 3 * q, 1), 0)
        return end if g["qy"] or end >= today else date(end.year + 1, end.month, end.day)
    if g["end_of"]:
        unit = g["eunit"] or {"w": "week", "m": "month", "q": "quarter", "y": "year"}[g["abbr"].lower()]
        return _end_of(unit.lower(), today, 1 if (g["which"] or "").strip().lower() == "next" else 0)
    if g["next_unit"]:
        nxt = g["nwhich"].lower() == "next"
        if g["nunit"].lower() == "week":
            return today - timedelta(days=today.weekday()) + timedelta(days=7) if nxt else _end_of("week", today, 0)
        return _add_months(today.replace(day=1), 1) if nxt else _end_of("month", today, 0)
    if g["weekday"]:
        wd = WEEKDAYS[g["wd"].lower()]
        if g["wwhich"]:  # "next tuesday": in next week
            return today - timedelta(days=today.weekday()) + timedelta(days=7 + wd)
        return today + timedelta(days=(wd - today.weekday() - 1) % 7 + 1)
    if g["mon_day"] or g["day_mon"]:
        mon = MONTHS[(g["mon"] or g["mon2"]).lower().rstrip(".")]
        day = int(g["d"] or g["d2"])
        return _on_calendar(today, mon, day, g["y"] or g["y2"]) or _with_dateparser(m.group(0), today)
    if g["iso"]:
        return _with_dateparser(g["iso"], today)
    return None


def find_date(text: str, today: date) -> Found[date] | None:
    """The first date phrase in `text`, resolved against `today`, and the text without it."""
    for m in DATE_RE.finditer(text):
        value = _resolve(m, today)
        if value is not None:
            return Found(value, tidy(text[:m.start()] + " " + text[m.end():]), m.group(0))
    return None


def since_date(when: str, today: date) -> date | None:
    """The day a "since ..." phrase names; None: the tool's default (a week ago)."""
    w = when.lower()
    if not w or re.search(r"\b(?:last|a|one|past)\s+week\b|\b7\s+days\b", w):
        return None
    if re.search(r"\b(?:yesterday|yday|yest)\b", w):
        return today - timedelta(days=1)
    if re.search(r"\b(?:last|a|one|past)\s+month\b", w):
        return today - relativedelta(months=1)  # Mar 31 -> Feb 28
    if re.search(r"\b(?:last|a|one|past)\s+quarter\b", w):
        return today - timedelta(days=91)
    n = re.search(r"\b(\d{1,3})\s+(day|week)s?\b", w)
    if n:
        return today - timedelta(days=int(n.group(1)) * (7 if n.group(2) == "week" else 1))
    found = find_date(w, today)
    if found is None:
        return None
    day = found.value
    while day > today:  # "since monday" means the one just past
        day -= timedelta(days=7)
    return day


# --- dates as written in mail and transcripts ------------------------------------------------------


@dataclass
class DateHit:
    value: date
    start: int
    end: int
    absolute: bool  # a calendar date, not a weekday or "next week"


_DOTTED = re.compile(r"(?<![\d.,/])(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?:(?P<y>\d{4}|\d{2})(?![\d.]\d)|(?!\d))")
_SLASHED = re.compile(r"(?<![\d./])(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4})(?![\d/])")
_YMD = re.compile(r"(?<![\d./])(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})(?![\d/])")
_LOCAL = re.compile(r"(?<![\w.,])(?P<d>\d{1,2})(?:\.|º|°|er)?\s+(?:de\s+)?(?P<mw>[^\W\d_]{3,}\.?)"
                    r"(?:\s+(?:de\s+)?(?P<y>\d{4}))?(?!\w)")


def dates_in(text: str, today: date) -> list[DateHit]:
    """Every date phrase in `text`, resolved against `today`, in order (past ones included)."""
    hits: list[DateHit] = []
    for m in DATE_RE.finditer(text):
        found = find_date(m.group(0), today)
        if found is None:
            continue
        absolute = bool(m.group("mon_day") or m.group("day_mon") or m.group("iso"))
        value = found.value
        if absolute and not re.search(r"\d{4}", m.group(0)) and (value - today).days > 275:
            # find_date rolls a passed "Nov 3" into next year; in an email that is a mention of the past.
            value = value.replace(year=value.year - 1) if not (value.month == 2 and value.day == 29) else value
        hits.append(DateHit(value, m.start(), m.end(), absolute))
    for m in _DOTTED.finditer(text):
        if not m["y"] and not re.search(r"\b(?:by|on|until|till|before|due|bis|am|zum|le|el|até)\s+$", text[:m.start()],
                                        re.I):
            continue  # "05.12." alone could be a number; after "by" it is a date
        if (value := _on_calendar(today, int(m["m"]), int(m["d"]), m["y"], 90)) is not None:
            hits.append(DateHit(value, m.start(), m.end(), True))
    for m in _SLASHED.finditer(text):
        a, b = int(m["a"]), int(m["b"])
        if (a > 12) != (b > 12):  # only when one side can only be the day
            day, month = (a, b) if a > 12 else (b, a)
            if (value := _on_calendar(today, month, day, m["y"], 90)) is not None:
                hits.append(DateHit(value, m.start(), m.end(), True))
    for m in _YMD.finditer(text):
        if (value := _on_calendar(today, int(m["m"]), int(m["d"]), m["y"], 90)) is not None:
            hits.append(DateHit(value, m.start(), m.end(), True))
    for m in _LOCAL.finditer(text):
        word = m["mw"].rstrip(".").lower()
        if word in MONTHS or any(h.start <= m.start() < h.end for h in hits):
            continue  # English months are DATE_RE's
        month = month_number(word)
        if month and (value := _on_calendar(today, month, int(m["d"]), m["y"], 90)) is not None:
            hits.append(DateHit(value, m.start(), m.end(), True))
    hits.sort(key=lambda h: h.start)
    return [h for i, h in enumerate(hits) if not any(o.start <= h.start < o.end for o in hits[:i])]


def due_date(text: str, today: date) -> DateHit | None:
    """The date something is due by: a calendar date before a weekday; never a day already past."""
    hits = dates_in(text, today)
    for hit in sorted(hits, key=lambda h: not h.absolute):
        return hit if hit.value >= today else None
    return None


def is_due_soon(value: date, today: date) -> bool:
    """A due date a year out is a misreading more likely than a plan."""
    return today <= value <= today + timedelta(days=366)
