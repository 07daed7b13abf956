"""The offline model's questions: look up, brief, draft; tasks, pipeline, forecast, win probability,
what changed, analytics and charts."""

from __future__ import annotations

import re
import uuid
from typing import Any

from agents.offline.dates import MONTHS, WEEKDAYS, find_date, since_date
from agents.offline.phrases import find_period, find_scope, tidy
from agents.offline.records import STOPWORDS, Reading, Ref, not_found
from agents.offline.replies import Reply, joined, tool_args
from store.services import lookups, org
from store.services import pipeline as pipeline_service
from store.services.search import search

# --- 6. look up; 9. brief; 10. draft ---------------------------------------------------------------

KIND_HINTS = (("deal", r"deal|opportunity|opp"), ("company", r"company|account"), ("contact", r"contact|person"))
PLURAL_HINTS = (("contact", r"contacts|people|persons"), ("deal", r"deals|opportunities|opps"))


def _kind_hint(q: str) -> tuple[str | None, str]:
    for kind, words in PLURAL_HINTS:  # "contacts at Borealis": Borealis' contacts, by name or email domain
        plural = re.match(rf"^(?:all\s+|the\s+)?(?:{words})\s+(?:at|from|for|of|with|in)\s+(?P<q>.+)$", q, re.I)
        if plural:
            return kind, tidy(plural["q"])
    for kind, words in KIND_HINTS:
        if re.search(rf"\b(?:{words})\b", q, re.I):
            return kind, tidy(re.sub(rf"\b(?:the\s+)?(?:{words})\b|^the\s+", " ", q, flags=re.I))
    return None, tidy(re.sub(r"^(?:the|my|our)\s+", "", q, flags=re.I))


def look_up(reading: Reading, m: re.Match[str]) -> Reply | None:
    kind, q = _kind_hint(m["q"])
    if not q:
        return None
    if m["verb"].lower().startswith(("find", "search", "look")):
        kinds = (kind,) if kind else ("contact", "company", "deal")
        if not search(reading.ctx.session, actor=reading.ctx.actor, q=q, kinds=kinds, limit=1):
            raise not_found(q)
        return [("find_records", tool_args(query=q, kind=kind))]
    ref = reading.deal(q) if kind == "deal" else reading.find(q, (kind,) if kind else ("contact", "company", "deal"))
    return [("get_record", {"kind": ref.kind, "id": ref.id})]


BRIEF_FILLER = re.compile(r"\b(?:my|the|our|next|upcoming|meeting|call|demo|sync|catch[\s-]?up|with|today'?s?|"
                          r"tomorrow'?s?|this\s+(?:morning|afternoon)|at|on|for|about|account|company)\b|"
                          r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|h)\b|\b\d{1,2}:\d{2}\b", re.I)


def brief(reading: Reading, m: re.Match[str]) -> Reply | None:
    q = m["q"]
    while found := find_date(q, reading.today):
        q = found.rest
    if re.search(r"\b(?:deal|opportunity|opp)\b", q, re.I):
        deal = reading.deal(tidy(BRIEF_FILLER.sub(" ", re.sub(r"\b(?:deal|opportunity|opp)\b", " ", q, flags=re.I))))
        return [("brief", {"kind": "deal", "id": deal.id})]
    refs = reading.find_phrase(BRIEF_FILLER.sub(" ", q), ("company", "deal", "contact"))
    for ref in refs:
        if ref.kind in ("company", "deal"):
            return [("brief", {"kind": ref.kind, "id": ref.id})]
    company = next((r.company_id for r in refs if r.company_id), None)
    if company:
        return [("brief", {"kind": "company", "id": company})]
    return f"{joined([r.label for r in refs])} has no company; I can brief you on a company or a deal."


def draft(reading: Reading, m: re.Match[str]) -> Reply | None:
    who = re.match(r"^(?P<who>.+?)(?:\s+(?:about|re|regarding|on|after|following|for)\s+(?P<topic>.+))?$", m["rest"])
    assert who is not None  # the pattern matches any non-empty text
    refs = reading.find_phrase(who["who"], ("contact", "company", "deal"))
    contacts = [r for r in refs if r.kind == "contact"]
    if not contacts:  # a company named: write to its one contact, or ask which
        company = next((r for r in refs if r.company_id), None)
        people = _people_at(reading, company.company_id) if company and company.company_id else []
        if not company or not people:
            return f"Who at {joined([r.label for r in refs])} should I write to? I need a contact."
        if len(people) > 1:
            listed = joined([f"{c.label} ({c.detail})" if c.detail else c.label for c in people], "or")
            return f"Who at {company.label} should I write to: {listed}?"
        contacts = people
    if len(contacts) > 1:
        return f"I draft to one person at a time: {joined([c.label for c in contacts], 'or')}? Tell me which one."
    topic = tidy(who["topic"] or "")
    thanks = re.match(r"thank", m["what"] or "", re.I)
    purpose = ("say thank you" + (f" for {topic}" if topic else "")) if thanks else (
        f"follow up on {topic}" if topic else "follow up")
    return [("draft_email", tool_args(contact_id=contacts[0].id, purpose=purpose, deal_id=reading.context_deal(refs)))]


def _people_at(reading: Reading, company_id: str) -> list[Ref]:
    rows = lookups.contacts_of(reading.ctx.session, actor=reading.ctx.actor, company_id=uuid.UUID(company_id), limit=8)
    return [Ref("contact", str(c.id), c.full_name, company_id, c.title or c.email or "") for c in rows]


# --- 7-8. pipeline and forecast ---------------------------------------------------------------------


NOT_NAMES = STOPWORDS | set(MONTHS) | set(WEEKDAYS) | {"q1", "q2", "q3", "q4", "how", "what", "whats", "show"}


def _rep(reading: Reading, text: str) -> str | None:
    """A colleague the message names, in any case: a full name ("Eve Sandberg's quota"), or a first
    name as a word ("Dana's forecast", "pipeline for Priya", "how's raj tracking"), when it is exactly
    one CRM user's; the first named wins. Customers' names ("Borealis's deal") match no user."""
    users = org.active_users(reading.ctx.session, workspace_id=reading.ctx.actor.workspace_id)
    low = text.lower()
    named = [(m.start(), u.name) for u in users if (m := re.search(rf"(?<!\w){re.escape(u.name.lower())}(?!\w)", low))]
    first_names: dict[str, list[str]] = {}
    for u in users:
        first_names.setdefault(u.name.lower().split(" ", 1)[0], []).append(u.name)
    for m in re.finditer(r"[a-z][a-z'’-]*", low):
        word = re.sub(r"(?:'s|’s)$", "", m.group(0))
        if word not in NOT_NAMES and len(first_names.get(word, [])) == 1:
            named.append((m.start(), first_names[word][0]))
    return min(named)[1] if named else None


def _team(reading: Reading, text: str) -> str | None:
    """A team the message names ("the EMEA team's pipeline", "how is west tracking"): its name, when
    exactly one team's name is in it as a word."""
    teams = org.find_teams(reading.ctx.session, workspace_id=reading.ctx.actor.workspace_id, query="")
    found = [t.name for t in teams if re.search(rf"(?<!\w){re.escape(t.name)}(?:'s|’s)?(?!\w)", text, re.I)]
    return found[0] if len(found) == 1 else None


def _whose(reading: Reading, text: str) -> dict[str, str | None]:
    """The scope arguments a message gives: a named person, else a named team, else mine/team/all.
    A name the user may not see is passed on: the tool answers why it shows nothing for it."""
    rep = _rep(reading, text)
    return {"scope": find_scope(text), "rep": rep, "team": None if rep else _team(reading, text)}


def forecast(reading: Reading, m: re.Match[str]) -> Reply | None:
    period = find_period(reading.text, reading.today)
    if period == "":
        return ("Without a language model I can forecast this month, next month, this quarter or next quarter "
                "only. Set CRM_LLM_MODEL and CRM_LLM_BASE_URL to connect one.")
    return [("forecast_summary", tool_args(period=period or "this_quarter", **_whose(reading, reading.text)))]


def pipeline(reading: Reading, m: re.Match[str]) -> Reply | None:
    return [("pipeline_summary", tool_args(**_whose(reading, reading.text)))]


WIN_PROB_RE = (r"\b(?:win(?:ning)?\s+(?:probability|probabilities|chances?|odds|likelihood)|chances?\s+(?:of|to)\s+"
               r"(?:win(?:ning)?|clos(?:e|ing))|odds\s+(?:of|on|for)|likely\s+to\s+(?:win|close)|at\s+risk)\b")
WIN_PROB_TARGET = re.compile(r"\b(?:of|for|on)\s+(?:winning\s+)?(?:the\s+)?(?P<name>.+?)(?:\s+deal)?\s*[?.!]*$", re.I)


def win_probability(reading: Reading, m: re.Match[str]) -> Reply | None:
    """"what's the win probability of Borealis?", "which of our deals are at risk?", "Priya's win odds"."""
    text = reading.text
    whose = _whose(reading, text)
    target = WIN_PROB_TARGET.search(text[m.end():]) or WIN_PROB_TARGET.search(text)
    name = target["name"] if target else ""
    if not whose["rep"] and not whose["team"] and name and not re.search(
            r"\b(?:my|our|the\s+team'?s?|team|all|everyone'?s?|deals|pipeline)\b", name, re.I):
        return [("win_probability", {"deal_id": reading.deal(tidy(name)).id})]
    return [("win_probability", tool_args(**whose))]


CHANGE_WORDS = re.compile(r"\b(?:forecast|commit|best[\s-]?case|pipeline|pipe|bookings|deals|numbers?)\b", re.I)
SINCE_RE = re.compile(r"\b(?:since|vs\.?|versus|compared\s+(?:to|with)|from|over\s+the)\s+(?P<when>.+?)\s*[?.!]*$",
                      re.I)


def forecast_changes(reading: Reading, m: re.Match[str]) -> Reply | None:
    """"why did the forecast drop?", "what changed since last week?", "which deals slipped this month?"."""
    text = reading.text
    if not CHANGE_WORDS.search(text):
        return None
    since_m = SINCE_RE.search(text)
    rest = text[:since_m.start()] if since_m else text
    period = find_period(rest, reading.today)
    if period == "":
        return ("Without a language model I can compare the forecast for this month, next month, this quarter or "
                "next quarter only. Set CRM_LLM_MODEL and CRM_LLM_BASE_URL to connect one.")
    since = since_date(since_m.group("when") if since_m else "", reading.today)
    if since is None and period in ("this_month", "this_quarter") and re.search(r"\bsl[iu]pp?(?:ed|s)?\b|\bslid\b|"
                                                                                r"\bpushed\b", text, re.I):
        # "which deals slipped this month": since the period began
        bounds = pipeline_service.month_bounds if period == "this_month" else pipeline_service.quarter_bounds
        since = bounds(reading.today)[0]
    return [("forecast_changes", tool_args(period=period or "this_quarter", **(_whose(reading, text) | {
        "scope": find_scope(rest)}), since=since.isoformat() if since else None))]



SHOW_ME = re.compile(r"\b(?:show|give|send|get|make|draw)\s+(?:me|us)\b", re.I)
BY_OWNER = re.compile(r"\b(?:by|per|for\s+each|each)\s+(?:rep|owner|person|seller|sales\s*person|account\s+exec"
                      r"|ae|member|user)s?\b", re.I)


def chart(reading: Reading, m: re.Match[str]) -> Reply | None:
    """Chart requests ("chart the team pipeline by rep", "graph the forecast next quarter", "chart the
    forecast by rep") go to the chart tool; analytics charts ("win rate by source") are `analytics`'."""
    text = reading.text
    # "show me a chart of the team pipeline" asks about the team, not about "me"; "chart Lena's
    # pipeline" about Lena, and "the EMEA team's" about that team.
    whose = _whose(reading, text) | {"scope": find_scope(SHOW_ME.sub(" ", text))}
    if re.search(r"\b(?:forecast|commit|best[\s-]?case)\b", text, re.I):
        what = "forecast_by_rep" if BY_OWNER.search(text) else "forecast_by_category"
        period = find_period(text, reading.today)
        if period == "":
            return ("Without a language model I can chart the forecast for this month, next month, this quarter or "
                    "next quarter only. Set CRM_LLM_MODEL and CRM_LLM_BASE_URL to connect one.")
        return [("chart", tool_args(what=what, period=period or "this_quarter", **whose))]
    if re.search(r"\b(?:pipeline|pipe|deals)\b", text, re.I):
        what = "pipeline_by_owner" if BY_OWNER.search(text) else "pipeline_by_stage"
        return [("chart", tool_args(what=what, **whose))]
    return None


ANALYTICS = [  # (what the user says, the metric): the first that matches wins
    (re.compile(r"\b(?:win|close|closing)\s*(?:rate|ratio)\b|\bwin\s*%", re.I), "win_rate"),
    (re.compile(r"\b(?:average|avg|mean|typical)\s+(?:deal|contract)\s+(?:size|value)\b|\bdeal\s+size\b", re.I),
     "deal_size"),
    (re.compile(r"\bsales\s+cycle\b|\bcycle\s+(?:length|time)\b|\bhow\s+long\b.*\bto\s+close\b", re.I),
     "sales_cycle"),
    (re.compile(r"\bconver(?:sion|t|ts|ting)\b|\bstage[\s-]to[\s-]stage\b", re.I), "stage_conversion"),
    (re.compile(r"\b(?:days|time)\s+in\s+stage\b|\bvelocity\b|\bstuck\b", re.I), "days_in_stage"),
    (re.compile(r"\bstale\b|\bno\s+activity\b|\bgone\s+(?:quiet|cold|dark)\b|\bneglected\b", re.I),
     "stale_deals"),
    (re.compile(r"\bactivit(?:y|ies)\s+(?:counts?|per|by)\b|\bhow\s+many\s+(?:calls|meetings|activities|emails)\b",
                re.I), "activity_counts"),
]
ANALYTICS_RE = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in ANALYTICS), re.I)
ANALYTICS_PERIOD = [(r"\blast\s+month\b", "last_month"), (r"\blast\s+(?:quarter|q)\b", "last_quarter"),
                    (r"\blast\s+year\b", "last_year"), (r"\b(?:this|current)\s+year\b|\bytd\b", "this_year"),
                    (r"\bmonth\b|\bmtd\b", "this_month")]


def analytics(reading: Reading, m: re.Match[str]) -> Reply | None:
    """"win rate by source this year", "average deal size last quarter", "stale deals", "sales cycle";
    "chart win rate by source this year" draws it (win rate, stage conversion, days in stage, activities)."""
    text = reading.text
    charted = re.search(r"\b(?:chart|charts|graph|graphs|plot|visuali[sz]e)\b", text, re.I)
    metric = next(name for pattern, name in ANALYTICS if pattern.search(text))
    period = next((name for pattern, name in ANALYTICS_PERIOD if re.search(pattern, text, re.I)), "this_quarter")
    args: dict[str, Any] = {"metric": metric, "period": period, **_whose(reading, text)}
    if metric == "win_rate" and (by := re.search(r"\bby\s+(source|owner|rep|seller)s?\b", text, re.I)):
        args["by"] = "source" if by.group(1).lower() == "source" else "owner"
    if metric == "stale_deals" and (days := re.search(r"\b(\d{1,3})\s*(?:days|d)\b", text, re.I)):
        args["days"] = int(days.group(1))
    if charted:
        if metric not in ("win_rate", "stage_conversion", "days_in_stage", "activity_counts"):
            return ("I can chart win rate, stage conversion, days in stage and activity counts (and the pipeline "
                    f"and forecast); ask for the {metric.replace('_', ' ')} without \"chart\" for the numbers.")
        # "show me a chart of the team's win rate" asks about the team, not about "me" (as `chart`).
        args["scope"] = find_scope(SHOW_ME.sub(" ", text))
        return [("chart", tool_args(what=args.pop("metric"), **args))]
    return [("pipeline_analytics", tool_args(**args))]
