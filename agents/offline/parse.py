"""Parsing for the offline model: the values in a message, and the records it names.

The first part is pure functions over strings (dates, amounts, periods, scopes, stages,
clauses), so each rule can be read on its own. The last part, `Turn`, resolves names to
CRM records as the acting user (`search` is scoped to `ctx.actor`: another team's private
records are simply not found). The intents that use both are in agents/offline/chat.py.

Date conventions (the user's local calendar; `today` is their date):
- "thursday", "by thu", "this friday": the next such day (a bare weekday is never today).
- "next tuesday": the Tuesday of next week (weeks start on Monday), not tomorrow.
- "next week": Monday of next week; "next month": the 1st of next month.
- "end of (this|next) week": that week's Friday; month, quarter, year: their last day.
- "in 2 weeks", "in 3 days", "in a month": counted from today.
- "Jan 15", "15 January", "2027-01-15": the next such date on or after today.
- Bare months ("in January") and numeric dates like 1/12 are not dates here: too ambiguous.
"""

from __future__ import annotations

import re
import uuid
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

import dateparser

from store.models import Company, Contact, Deal, Stage, Task
from store.models.enums import TaskStatus
from store.services import crud, spec_for
from store.services.sales import default_pipeline, stages_of
from store.services.search import Hit, search
from tools import ToolContext

T = TypeVar("T")

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


@dataclass
class Found(Generic[T]):
    """A phrase found in a text: its value, and the text with the phrase cut out."""

    value: T
    rest: str
    phrase: str


def _add_months(day: date, n: int) -> date:
    month = day.month - 1 + n
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def _end_of(unit: str, today: date, offset: int) -> date:
    if unit == "week":
        return today - timedelta(days=today.weekday()) + timedelta(days=7 * offset + 4)  # Friday
    if unit == "month":
        first = _add_months(today.replace(day=1), offset)
        return first.replace(day=monthrange(first.year, first.month)[1])
    if unit == "quarter":
        q_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        last_month = _add_months(q_start, 3 * offset + 2)
        return last_month.replace(day=monthrange(last_month.year, last_month.month)[1])
    return date(today.year + offset, 12, 31)


def _next_on_or_after(today: date, month: int, day: int, year: str | None) -> date | None:
    """A day-month date without a year is the next one to come (today included)."""
    try:
        if year:
            return date(int(year), month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
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
        return _next_on_or_after(today, mon, day, g["y"] or g["y2"]) or _with_dateparser(m.group(0), today)
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


# --- amounts ----------------------------------------------------------------------------------

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


# --- periods and scopes (pipeline and forecast questions) -------------------------------------


def find_period(text: str, today: date) -> str | None:
    """this_month / next_month / this_quarter / next_quarter; '' when a period is named that the
    forecast tool cannot give (a past quarter, a year); None when none is named."""
    t = text.lower()
    if re.search(r"\bnext\s+month\b", t):
        return "next_month"
    if re.search(r"\b(this|current)\s+month\b|\bmtd\b|\bmonth\b", t):
        return "this_month"
    if re.search(r"\bnext\s+(quarter|q)\b", t):
        return "next_quarter"
    if re.search(r"\b(this|current|the)\s+(quarter|q)\b|\bqtd\b|\bquarter\b", t):
        return "this_quarter"
    m = re.search(r"\bq([1-4])(?:\s*(?:'|20)?(\d{2}))?\b", t)
    if m:
        current = (today.month - 1) // 3
        asked, year = int(m.group(1)) - 1, 2000 + int(m.group(2)) if m.group(2) else None
        offset = (asked - current) % 4 if year is None else (year - today.year) * 4 + asked - current
        return {0: "this_quarter", 1: "next_quarter"}.get(offset, "")
    if re.search(r"\b(this|next|last)\s+year\b|\bytd\b|\blast\s+(month|quarter)\b", t):
        return ""
    return None


def find_scope(text: str) -> str | None:
    t = text.lower()
    if re.search(r"\b(all\s+teams|everyone|everybody|whole\s+company|company[\s-]wide|all\s+deals|entire)\b", t):
        return "all"
    if re.search(r"\b(team|team's|our|ours|we|us)\b", t):
        return "team"
    if re.search(r"\b(my|mine|i|me)\b", t):
        return "mine"
    return None


# --- stages -----------------------------------------------------------------------------------


def match_stage(text: str, stages: list[tuple[str, str]]) -> Found[str] | None:
    """The stage a text names, from the deal's pipeline [(name, kind)]: the full name, a word
    of it ("negotiation", "proposal"), an inflection ("negotiating"), or won/lost for the
    pipeline's won and lost stages. Looks after the last "to/into/in/as" first, where the
    target stage usually is ("move Demo Co deal to proposal")."""
    for segment in _stage_segments(text):
        found = _stage_in(segment, text, stages)
        if found:
            return found
    return None


def _stage_segments(text: str) -> list[str]:
    m = list(re.finditer(r"\b(?:to|into|in|as|at)\b", text, re.I))
    return [text[m[-1].end():], text] if m else [text]


def _stage_in(segment: str, text: str, stages: list[tuple[str, str]]) -> Found[str] | None:
    low = segment.lower()
    for name, _kind in sorted(stages, key=lambda s: -len(s[0])):  # full names first: "closed won"
        m = re.search(rf"\b{re.escape(name.lower())}\b", low)
        if m:
            return _cut(text, segment, m, name)
    for word, kind in (("won", "won"), ("win", "won"), ("lost", "lost"), ("loss", "lost")):
        m = re.search(rf"\b(?:closed[\s-]+)?{word}\b", low)
        if m:
            names = [n for n, k in stages if k == kind]
            if len(names) == 1:
                return _cut(text, segment, m, names[0])
    hits = []
    for m in re.finditer(r"[a-z]{4,}", low):
        for name, _kind in stages:
            # A shared stem of 6 letters (or the whole short word): "negotiating" ~ "Negotiation".
            if any(w[:6] == m.group(0)[:6] and len(w) >= 4 and (len(w) >= 6 or w == m.group(0))
                   for w in name.lower().split()):
                hits.append((m, name))
    names = {n for _, n in hits}
    if len(names) == 1:
        return _cut(text, segment, hits[0][0], hits[0][1])
    return None


def _cut(text: str, segment: str, m: re.Match[str], name: str) -> Found[str]:
    start = len(text) - len(segment) + m.start()
    rest = text[:start] + " " + text[start + len(m.group(0)):]
    rest = re.sub(r"\s+stage\b", " ", rest, flags=re.I)
    return Found(name, tidy(rest), m.group(0))


# --- names and clauses ------------------------------------------------------------------------

# What separates the people and companies named together: "Ines + Marco at Borealis".
NAME_SEPARATORS = re.compile(r"\s*(?:,|;|&|\+|/|\band\b|\bat\b|\bfrom\b|\bof\b|\bwith\b|\bw/)\s*", re.I)


def split_names(phrase: str) -> list[str]:
    return [p.strip(" '\"") for p in NAME_SEPARATORS.split(phrase) if p and p.strip(" '\"")]


# A clause that starts with one of these is a to-do for the rep ("send revised quote by thu").
ACTION_VERBS = ("send", "email", "e-mail", "call", "ping", "follow up", "follow-up", "schedule", "book", "set up",
                "prepare", "prep", "share", "get", "check", "review", "draft", "confirm", "introduce", "loop in",
                "chase", "write", "organize", "organise", "arrange", "finalize", "finalise", "update", "create")
ACTION_LEADS = r"(?:(?:i|we)\s*(?:'ll|\s+will|\s+need\s+to|\s+have\s+to|\s+must)\s+|need\s+to\s+|to\s*do:?\s+|" \
               r"todo:?\s+|next\s+steps?:?\s+|then\s+|and\s+)*"
ACTION_RE = re.compile(rf"^{ACTION_LEADS}(?P<task>(?:{'|'.join(re.escape(v) for v in ACTION_VERBS)})\b.*)$", re.I)


def action_clause(clause: str) -> str | None:
    """The to-do in a clause that reads as one ("I'll send the quote" -> "send the quote")."""
    m = ACTION_RE.match(clause.strip())
    return m.group("task").strip() if m else None


def clauses(text: str) -> list[str]:
    """Split at ; and newlines, at commas that are not thousands separators ("62,000"), and at
    full stops that end a sentence (not "1.2m" or an address)."""
    parts = re.split(r";|\n|,(?!\d{3}(?!\d))|\.(?=\s|$)|\s+(?:then|also)\s+", text)
    return [c.strip() for c in parts if c and c.strip()]


def tidy(text: str) -> str:
    """Collapse spaces and trim the punctuation left around a removed phrase."""
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" ,;:-–—.!?")


def sentence_case(text: str) -> str:
    text = tidy(text)
    return text[:1].upper() + text[1:]


def normalize(text: str) -> str:
    """One spelling for the shorthand reps type on phones."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\bw/(?=\s|$)", "with", text, flags=re.I)
    text = re.sub(r"(?<=\s)w/(?=\w)", "with ", text, flags=re.I)
    text = re.sub(r"\s+", " ", text)
    return text.strip()


# --- names -> records, as the acting user -----------------------------------------------------

KIND_ORDER = ("contact", "company", "deal")
FUZZY_MARGIN = 5.0  # a typo match is used only when it beats every other by this much
# Words that are never the start of a record's name when spotting names in free text.
STOPWORDS = {
    "a", "an", "the", "to", "with", "for", "at", "on", "in", "of", "and", "or", "by", "from", "about", "re", "me",
    "my", "i", "we", "our", "us", "you", "your", "they", "them", "he", "she", "it", "its", "is", "are", "was",
    "be", "been", "will", "would", "can", "could", "should", "please", "task", "todo", "reminder", "remind",
    "send", "call", "ping", "email", "mail", "follow", "up", "meet", "meeting", "next", "this", "that", "week",
    "day", "month", "today", "tomorrow", "quote", "revised", "new", "deal", "deals", "get", "check", "review",
    "draft", "confirm", "share", "book", "schedule", "set", "update", "create", "prepare", "prep", "pilot", "team",
    "all"
}


class Unresolved(Exception):
    """The message names something that cannot be pinned down; `message` tells the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Ref:
    kind: str
    id: str
    label: str
    company_id: str | None
    detail: str = ""
    is_open: bool = True


class Ambiguous(Unresolved):
    def __init__(self, query: str, candidates: list[Ref]) -> None:
        listed = [f"{c.label} ({c.detail})" if c.detail else c.label for c in candidates]
        choices = ", ".join(listed[:-1]) + f" or {listed[-1]}" if len(listed) > 1 else listed[0]
        super().__init__(f'Which "{query}" do you mean: {choices}? Tell me again with the full name.')
        self.query, self.candidates = query, candidates


def not_found(query: str) -> Unresolved:
    return Unresolved(f'I couldn\'t find "{query}" in the CRM. Check the spelling, or add it first.')


# --- resolving names as the acting user -------------------------------------------------------


@dataclass
class Turn:
    """One user message being interpreted: the context and the CRM look-ups it needs."""

    ctx: ToolContext
    text: str
    _stages: list[tuple[str, str]] | None = field(default=None, repr=False)

    @property
    def today(self) -> date:  # in the user's time zone
        return self.ctx.today

    def tier(self, hit: Hit, query: str) -> int:
        """0 exact, 1 a name containing the words typed, 2 email/domain or mid-word, 3 a typo."""
        if hit.score >= 100:
            return 0
        if hit.score >= 90:
            return 1 if re.search(rf"(?<!\w){re.escape(query.lower())}", hit.label.lower()) else 2
        return 3

    def _ref(self, hit: Hit) -> Ref:
        session = self.ctx.session
        if hit.kind == "company":
            return Ref("company", str(hit.id), hit.label, str(hit.id), hit.detail)
        obj: Any = session.get(Contact if hit.kind == "contact" else Deal, hit.id)
        company = session.get(Company, obj.company_id) if obj.company_id else None
        if hit.kind == "contact":
            detail = ", ".join(filter(None, [obj.title, company.name if company else obj.email]))
            return Ref("contact", str(hit.id), hit.label, str(obj.company_id) if company else None, detail)
        stage = session.get(Stage, obj.stage_id)
        detail = ", ".join(filter(None, [company.name if company else None, stage.name if stage else None]))
        return Ref("deal", str(hit.id), hit.label, str(obj.company_id) if company else None, detail,
                   is_open=obj.closed_at is None)

    def choose(self, query: str, hits: list[Hit], kinds: tuple[str, ...]) -> Ref:
        """The one record meant, or Ambiguous. Best tier first; across kinds the earlier kind
        wins ("Borealis" is the company before its deal); within a kind it must be unique."""
        tiers = {h.id: self.tier(h, query) for h in hits}
        best = min(tiers.values())
        cands = [h for h in hits if tiers[h.id] == best]
        if best == 3:
            top = max(h.score for h in cands)
            cands = [h for h in cands if h.score >= top - FUZZY_MARGIN]
        kind = next(k for k in kinds if any(h.kind == k for h in cands))
        refs = [self._ref(h) for h in cands if h.kind == kind]
        if len(refs) > 1 and kind == "deal" and sum(r.is_open for r in refs) == 1:
            refs = [r for r in refs if r.is_open]  # an old closed deal is not what "move X" means
        if len(refs) == 1:
            return refs[0]
        raise Ambiguous(query, refs)

    def find(self, query: str, kinds: tuple[str, ...] = KIND_ORDER) -> Ref:
        query = tidy(re.sub(r"'s\b", "", query))
        if not query:
            raise Unresolved("Which record do you mean? Tell me the name.")
        hits = search(self.ctx.session, actor=self.ctx.actor, q=query, kinds=kinds, limit=8)
        if not hits:
            raise not_found(query)
        return self.choose(query, hits, kinds)

    def find_all(self, parts: list[str], kinds: tuple[str, ...] = KIND_ORDER) -> list[Ref]:
        """Several names said together. An ambiguous one is settled by the others' companies:
        "Ines + Marco at Borealis" means the Ines at Borealis."""
        if not parts:
            raise Unresolved("Which record do you mean? Tell me the name.")
        found: list[Ref | Ambiguous] = []
        for part in parts:
            try:
                found.append(self.find_part(part, kinds))
            except Ambiguous as amb:
                found.append(amb)
        return self._settle(found)

    def find_phrase(self, phrase: str, kinds: tuple[str, ...] = KIND_ORDER) -> list[Ref]:
        """The records a name slot names: the whole phrase when a name contains it as typed
        ("Bank of America"), else each name between "and", "+", "at", ","... ("Ines + Marco at Borealis")."""
        whole = tidy(phrase)
        if len(whole) >= 3 and NAME_SEPARATORS.search(whole):
            hits = [h for h in search(self.ctx.session, actor=self.ctx.actor, q=whole, kinds=kinds, limit=8,
                                      fuzzy=False) if self.tier(h, whole) <= 1]
            if hits:
                return [self.choose(whole, hits, kinds)]
        return self.find_all(split_names(phrase), kinds)

    def find_part(self, part: str, kinds: tuple[str, ...] = KIND_ORDER) -> Ref:
        """One name as said: "the Borealis deal" is a deal, "Ines" whatever kind matches first."""
        name = re.sub(r"^(?:the|my|our)\s+", "", part.strip(), flags=re.I)
        if re.search(r"\b(?:deal|opportunity|opp)$", name, re.I):
            return self.deal(re.sub(r"\s*\b(?:deal|opportunity|opp)$", "", name, flags=re.I))
        return self.find(name, kinds)

    def _settle(self, found: list[Ref | Ambiguous]) -> list[Ref]:
        companies = {r.company_id for r in found if isinstance(r, Ref) and r.company_id}
        out: list[Ref] = []
        for item in found:
            if isinstance(item, Ambiguous):
                fits = [c for c in item.candidates if c.company_id in companies]
                if len(fits) != 1:
                    raise item
                item = fits[0]
            if all(r.id != item.id for r in out):
                out.append(item)
        return out

    def spot(self, text: str, kinds: tuple[str, ...] = KIND_ORDER) -> list[Ref]:
        """Records named inside free text ("send revised quote to Borealis"): the longest run of
        up to three non-filler words that a record's name starts with; a capitalized word
        that matches nothing as typed may still be a typo of a name."""
        words = [w for w in (re.sub(r"'s$", "", m.group(0)).strip(".'-") for m in
                             re.finditer(r"\w[\w'.@-]*", text)) if w]
        found: list[Ref | Ambiguous] = []
        i = 0
        while i < len(words):
            step = self._spot_at(words, i, kinds, found)
            i += step
        return self._settle(found)

    def _spot_at(self, words: list[str], i: int, kinds: tuple[str, ...], found: list[Ref | Ambiguous]) -> int:
        for size in (3, 2, 1):
            span = words[i:i + size]
            if len(span) < size or any(w.lower() in STOPWORDS for w in span) or len(" ".join(span)) < 3:
                continue
            query = " ".join(span)
            hits = [h for h in search(self.ctx.session, actor=self.ctx.actor, q=query, kinds=kinds, limit=8,
                                      fuzzy=False) if self.tier(h, query) <= 1]
            if hits:
                try:
                    found.append(self.choose(query, hits, kinds))
                except Ambiguous as amb:
                    found.append(amb)
                return size
        word = words[i]
        if i > 0 and word[:1].isupper() and len(word) >= 4 and word.lower() not in STOPWORDS:
            try:
                found.append(self.find(word, kinds))
            except Ambiguous as amb:
                found.append(amb)
            except Unresolved:
                pass
        return 1

    def open_deals(self, company_id: str) -> list[Deal]:
        query = crud.readable(spec_for("deal"), self.ctx.actor).where(
            Deal.company_id == uuid.UUID(company_id), Deal.closed_at.is_(None))
        return list(self.ctx.session.scalars(query.order_by(Deal.close_date, Deal.name)))

    def context_deal(self, refs: list[Ref]) -> str | None:
        """The deal a message is about: one named, else the one open deal of the one company
        named or shared by the people named."""
        deals = [r.id for r in refs if r.kind == "deal"]
        if deals:
            return deals[0] if len(deals) == 1 else None
        named = {r.id for r in refs if r.kind == "company"}
        companies = named or {r.company_id for r in refs if r.kind == "contact" and r.company_id}
        people_without_company = not named and any(r.kind == "contact" and not r.company_id for r in refs)
        if len(companies) != 1 or people_without_company:
            return None
        open_deals = self.open_deals(companies.pop())
        return str(open_deals[0].id) if len(open_deals) == 1 else None

    def deal(self, name: str) -> Ref:
        """A deal by its name or its company's name (the company's one open deal)."""
        ref = self.find(name, ("deal", "company"))
        if ref.kind == "deal":
            return ref
        deals = self.open_deals(ref.id)
        if not deals:
            raise Unresolved(f"{ref.label} has no open deal.")
        refs = [Ref("deal", str(d.id), d.name, ref.id, ref.label) for d in deals]
        if len(refs) > 1:
            raise Ambiguous(name, refs)
        return refs[0]

    def stages(self, pipeline_id: Any = None) -> list[tuple[str, str]]:
        if pipeline_id is None:
            if self._stages is None:
                pipeline = default_pipeline(self.ctx.session, self.ctx.actor.workspace_id)
                self._stages = [(s.name, s.kind.value) for s in stages_of(self.ctx.session, pipeline.id)]
            return self._stages
        return [(s.name, s.kind.value) for s in stages_of(self.ctx.session, pipeline_id)]

    def my_open_tasks(self) -> list[Task]:
        query = crud.readable(spec_for("task"), self.ctx.actor).where(
            Task.owner_id == self.ctx.actor.user_id, Task.status == TaskStatus.open)
        return list(self.ctx.session.scalars(query.order_by(Task.due_at)))
