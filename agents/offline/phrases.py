"""The phrases of a rep's message the offline model reads: periods, scopes, stages, names said
together, to-do clauses, and the small text helpers the other readers share (`Found`, `tidy`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Found(Generic[T]):
    """A phrase found in a text: its value, and the text with the phrase cut out."""

    value: T
    rest: str
    phrase: str


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
