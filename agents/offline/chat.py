"""The offline model: a deterministic stand-in for an LLM, so the CRM works with no keys.

A rep's message is matched against INTENTS, a list of (pattern -> handler) tried in order;
the first handler that accepts it answers with tool calls (validated by the tools' own
argument models) or with a sentence. Names are resolved as the acting user (see
agents/offline/parse.py: another team's private records are never found). After tool
results it answers once, with them, and never calls tools again.

What it cannot do it says plainly: an ambiguous name gets a question listing the
candidates, an unknown one "I couldn't find ...", anything else the HELP text.

Choices worth knowing (the date conventions are in agents/offline/parse.py):
- Notes ("note on Borealis: ...", "log a note ...") become `add_note`: a note is lasting
  context on a record, and the note tool exists for that. A note on several people at
  once becomes `log_activity(type=note)`, the only tool that links many records.
- An activity or task about a company (named, or the company of the people named) is
  also linked to that company's open deal when it has exactly one.
- In a logged call, a clause starting with an action verb ("send revised quote by thu")
  becomes a task and the deal's next step; "48k -> 62k" becomes the deal's amount.
- "next tuesday" is the Tuesday of next week; a bare "tuesday" the next one to come.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from pydantic import ValidationError
from rapidfuzz import fuzz

from agents.offline import parse as p
from agents.offline.parse import Ref, Turn, Unresolved, not_found
from store.models import Contact, Deal
from store.services import crud, org, spec_for
from store.services import pipeline as pipeline_service
from store.services.search import search
from tools import TOOLS, ToolContext

log = logging.getLogger(__name__)

HELP = ("I can't answer open questions without a language model; I can log calls, meetings and notes, "
        "move deals (stage, amount, close date, next step), mark deals won or lost, create and complete "
        "tasks, add contacts, look up contacts, companies and deals, show your tasks, pipeline and "
        "forecast (yours, your team's, a named team's or a named colleague's), say what changed in the "
        "forecast since a date "
        "(\"why did the forecast drop?\"), give a deal's learned win probability and the deals at risk, "
        "win rate, deal size, sales cycle, stage conversion, days in stage, stale deals and activity counts, "
        "chart the pipeline (by stage or by rep), the forecast, win rate, stage conversion, days in stage and "
        "activity counts, brief you on a company or deal, "
        "and draft follow-up emails. "
        "Set CRM_LLM_MODEL and CRM_LLM_BASE_URL to connect one.")

Call = tuple[str, dict[str, Any]]
Reply = str | list[Call]
Handler = Callable[[Turn, re.Match[str]], Reply | None]  # None: not mine after all, try the next


def _args(**values: Any) -> dict[str, Any]:
    """Tool arguments without the unset ones (the tools' defaults apply)."""
    return {k: v for k, v in values.items() if v is not None and v != []}


def _one(refs: list[Ref], kind: str) -> str | None:
    ids = [r.id for r in refs if r.kind == kind]
    return ids[0] if len(ids) == 1 else None


def _task_call(turn: Turn, text: str, refs: list[Ref] | None = None, priority: str | None = None) -> Call | None:
    """create_task from "send revised quote to Borealis by thu": the date is cut out of the title."""
    found = p.find_date(text, turn.today)
    title = p.sentence_case(re.sub(r"^to\b\s*", "", found.rest if found else text, flags=re.I))
    if not title:
        return None
    refs = turn.spot(title) if refs is None else refs
    return ("create_task", _args(title=title, due_date=found.value.isoformat() if found else None, priority=priority,
                                 contact_id=_one(refs, "contact"), company_id=_one(refs, "company"),
                                 deal_id=turn.context_deal(refs)))


# --- 1. log a call / meeting / note ------------------------------------------------------------

ACTIVITY_WORDS = {"call": "call", "phone call": "call", "meeting": "meeting", "mtg": "meeting", "demo": "meeting",
                  "lunch": "meeting", "coffee": "meeting", "email": "email", "sms": "sms", "text": "sms",
                  "note": "note", "called": "call", "phoned": "call", "rang": "call", "spoke": "call",
                  "talked": "call", "met": "meeting", "emailed": "email", "texted": "sms"}
SUBJECT_WORDS = {"call": "Call", "meeting": "Meeting", "email": "Email", "sms": "SMS", "note": "Note"}
_TYPES = r"phone\s+call|call|meeting|mtg|demo|lunch|coffee|email|sms|text|note"
# Where the names stop and what was said begins: punctuation, or a word that starts a sentence.
TARGET_END = re.compile(r"\s*(?:[,;:.!]|\s[-–—]+)\s*|\s+(?=(?:about|re|regarding|to\s+discuss|they|he|she|we|who|"
                        r"said|says|wants?|agreed|asked)\b)", re.I)


def log_activity(turn: Turn, m: re.Match[str]) -> Reply | None:
    kind = ACTIVITY_WORDS[re.sub(r"\s+", " ", m["type"].lower())]
    rest = re.sub(r"^(?:with|w/|to|from|on|for|at)\s+", "", m["rest"].strip(), flags=re.I)
    end = TARGET_END.search(rest)
    target, said = (rest[:end.start()], rest[end.end():]) if end else (rest, "")
    topic_m = re.match(r"^(?:about|re|regarding|to\s+discuss)\s+(?P<topic>[^,;]+)$", said, re.I)
    topic, body = (topic_m["topic"].strip(), None) if topic_m else (None, p.tidy(said) or None)
    target = re.sub(r"\b(?:this\s+(?:morning|afternoon)|earlier(?:\s+today)?|just\s+now)\b", "", target, flags=re.I)
    when = p.find_date(target, turn.today)
    occurred_at = None
    if when:
        if when.value > turn.today:  # "meeting with Nordlys tomorrow" is a plan: a task, not a log
            call = _task_call(turn, turn.text) if re.match(_TYPES, turn.text, re.I) else None
            return [call] if call else None
        if when.value < turn.today:
            local = turn.ctx.now.astimezone(turn.ctx.tz)
            occurred_at = datetime.combine(when.value, local.timetz()).isoformat()
        target = when.rest
    if not p.tidy(target):
        return None
    if not p.split_names(target):
        return f"Who was the {kind} with? Say it like \"log a call with Ines at Borealis, they want a pilot\"."
    refs = turn.find_phrase(target)
    if kind == "note":
        return _note(turn, refs, body or topic)
    people = [r.label for r in refs if r.kind == "contact"] or [r.label for r in refs]
    subject = f"{SUBJECT_WORDS[kind]} with {_and(people)}" + (f" about {topic}" if topic else "")
    deal_id = turn.context_deal(refs)
    deal_ids = [r.id for r in refs if r.kind == "deal"] or ([deal_id] if deal_id else [])
    calls: list[Call] = [("log_activity", _args(
        type=kind, subject=subject, body=body, occurred_at=occurred_at,
        contact_ids=[r.id for r in refs if r.kind == "contact"],
        company_ids=[r.id for r in refs if r.kind == "company"], deal_ids=deal_ids))]
    return calls + _follow_ups(turn, body or "", refs, deal_id)


def _and(names: list[str], word: str = "and") -> str:
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + f" {word} " + names[-1]


def _follow_ups(turn: Turn, body: str, refs: list[Ref], deal_id: str | None) -> list[Call]:
    """What a logged call implies: a new amount ("48k -> 62k") and to-dos ("send quote by thu")."""
    amount = None
    for clause in p.clauses(body):
        if re.search(r"->|→|=>|\bnow\b|\bamount\b|\bvalue\b|\bup\s+to\b|\brevised\s+to\b", clause, re.I):
            amount = amount or p.find_new_amount(clause)
    tasks = [call for clause in p.clauses(body) if (todo := p.action_clause(clause))
             and (call := _task_call(turn, todo, refs))]
    calls: list[Call] = []
    if deal_id and (amount or tasks):
        value, currency = amount.value if amount else (None, None)
        calls.append(("update_deal", _args(deal_id=deal_id, amount=p.decimal_str(value) if value else None,
                                           currency=currency, next_step=tasks[0][1]["title"] if tasks else None)))
    return calls + tasks


def note(turn: Turn, m: re.Match[str]) -> Reply | None:
    body = p.tidy(m["body"])
    refs = turn.find_phrase(m["target"]) if m["target"] else turn.spot(body)
    return _note(turn, refs, body)


def _note(turn: Turn, refs: list[Ref], body: str | None) -> Reply:
    if not refs:
        return "Which record should the note go on? Say it like \"note on Borealis: CFO is skeptical\"."
    if not body:
        return "What should the note say? Say it like \"note on Borealis: CFO is skeptical\"."
    if all(sum(r.kind == k for r in refs) <= 1 for k in ("contact", "company", "deal")):
        return [("add_note", _args(body=body, contact_id=_one(refs, "contact"), company_id=_one(refs, "company"),
                                   deal_id=_one(refs, "deal")))]
    names = _and([r.label for r in refs])
    return [("log_activity", _args(type="note", subject=f"Note on {names}", body=body,
                                   contact_ids=[r.id for r in refs if r.kind == "contact"],
                                   company_ids=[r.id for r in refs if r.kind == "company"],
                                   deal_ids=[r.id for r in refs if r.kind == "deal"]))]


# --- 2-3. move a deal; won or lost ----------------------------------------------------------------

NEXT_STEP = re.compile(r"\bnext\s+steps?\s*(?:(?:for|on|of)\s+(?P<name>.+?))?\s*(?::|=|\bis\b|\bto\b|\s-)\s*"
                       r"(?P<ns>.+)$", re.I)
CLOSE_WORDS = re.compile(r"\b(?:close|closing|closes|push|pushed|pull|pulled|slip|slipped|slips|expected)\b", re.I)
DEAL_FILLER = re.compile(r"\b(?:please|move|moved|advance|progress|push|pushed|pull|pulled|slip|slipped|set|change|"
                         r"update|bump|put|drop|the|deal|deal's|opportunity|opp|is|now|stage|amount|value|close|"
                         r"closing|closes|date|expected|to|into|in|at|of|for|it|its|has|been|should|be|forward|"
                         r"back|out|up|down)\b", re.I)


QUESTION = re.compile(r"^(?:why|what|how|when|who|which|where|is|are|did|does|do|has|was)\b|\?\s*$", re.I)
MOVE_TO = re.compile(r"^(?:please\s+)?(?:move|advance|progress|put)\s+(?P<name>.+?)\s+(?:to|into)\s+(?P<to>.+)$", re.I)


def update_deal(turn: Turn, m: re.Match[str]) -> Reply | None:
    text, fields = turn.text, {}
    if QUESTION.search(text):
        return None  # "why is Borealis in negotiation?" asks; it does not move anything
    stage = None
    ns = NEXT_STEP.search(text)
    if ns:
        fields["next_step"] = p.tidy(ns["ns"])
        name = f"{ns['name'] or ''} {text[:ns.start()]}"
    else:
        name = text
        when = p.find_date(name, turn.today)
        name = when.rest if when else name
        amount = p.find_new_amount(name)
        if amount:
            name = amount.rest
            value, currency = amount.value
            fields["amount"] = p.decimal_str(value)
            if currency:
                fields["currency"] = currency
        stage = p.match_stage(name, turn.stages())
        if stage:
            name = stage.rest
        # A date is the close date when the message says so, or when it only moves the deal in time
        # ("push Nordlys to Jan 31"); "set up a call next week" is a task, not a deal change.
        only_moves = not fields and not stage and re.match(r"(?:please\s+)?move\b", text, re.I)
        if when and (CLOSE_WORDS.search(text) or only_moves):
            fields["close_date"] = when.value.isoformat()
    if not fields and not stage:
        move = MOVE_TO.match(text)
        if move:  # "move Borealis to limbo": a deal and a stage that is not one
            deal = turn.deal(p.tidy(DEAL_FILLER.sub(" ", move["name"])))
            row = turn.ctx.session.get(Deal, uuid.UUID(deal.id))
            names = ", ".join(n for n, _ in turn.stages(row.pipeline_id if row else None))
            return f"{deal.label} has no stage \"{p.tidy(move['to'])}\"; its stages are {names}."
        return None
    deal = turn.deal(p.tidy(DEAL_FILLER.sub(" ", name)) or "")
    if stage:
        row = turn.ctx.session.get(Deal, uuid.UUID(deal.id))
        stages = turn.stages(row.pipeline_id if row else None)
        in_pipeline = p.match_stage(stage.phrase, stages)
        if not in_pipeline:
            return f"{deal.label} has no stage \"{stage.phrase}\"; its stages are {', '.join(n for n, _ in stages)}."
        fields["stage"] = in_pipeline.value
    return [("update_deal", {"deal_id": deal.id, **fields})]


def won_or_lost(turn: Turn, m: re.Match[str]) -> Reply | None:
    deal = turn.deal(p.tidy(re.sub(r"\b(?:the|deal|opportunity)\b", " ", m["name"], flags=re.I)))
    row = turn.ctx.session.get(Deal, uuid.UUID(deal.id))
    outcome = m["res"].lower()
    names = [n for n, k in turn.stages(row.pipeline_id if row else None) if k == outcome]
    if len(names) != 1:
        return f"I can't tell which stage of {deal.label}'s pipeline means {outcome}."
    reason = p.tidy(m["reason"] or "").rstrip(")")
    if reason and (m.groupdict().get("sep") or "").lower() == "to":
        reason = f"lost to {reason}"
    lost_reason = (reason or None) if outcome == "lost" else None  # the deal has no field for why it was won
    return [("update_deal", _args(deal_id=deal.id, stage=names[0], lost_reason=lost_reason))]


# --- 4. tasks; 11. complete a task ---------------------------------------------------------------


def create_task(turn: Turn, m: re.Match[str]) -> Reply | None:
    what = m["what"]
    urgent = re.search(r"\s*[(,]?\s*\b(?:urgent|asap|high\s+prio(?:rity)?|important)\b\)?", what, re.I)
    if urgent:
        what = what[:urgent.start()] + what[urgent.end():]
    call = _task_call(turn, what, priority="high" if urgent else None)
    return [call] if call else "What is the task? Say it like \"remind me to send the quote on Thursday\"."


def task_with_date(turn: Turn, m: re.Match[str]) -> Reply | None:
    """A bare to-do with a date ("call Marco tomorrow") is a task; without a date it is too vague."""
    call = _task_call(turn, m["task"]) if p.find_date(m["task"], turn.today) else None
    return [call] if call else None


def complete_task(turn: Turn, m: re.Match[str]) -> Reply | None:
    wanted = p.tidy(re.sub(r"^(?:the|my)\s+|\s+task$|['\"]", "", m["q"].strip(), flags=re.I))
    tasks = turn.my_open_tasks()
    scored = sorted(((fuzz.token_set_ratio(wanted.lower(), t.title.lower()), t.title, t) for t in tasks),
                    key=lambda s: (-s[0], s[1]))
    good = [s for s in scored if s[0] >= 70]
    if not good:
        return f"I couldn't find an open task like \"{wanted}\". Ask \"what are my tasks?\" to see them."
    if len(good) > 1 and good[0][0] - good[1][0] < 10:
        listed = _and([f"\"{t.title}\"" + (f" (due {t.due_at.astimezone(turn.ctx.tz):%a %Y-%m-%d})" if t.due_at
                                          else "") for _, _, t in good[:5]], "or")
        return f"Which task do you mean: {listed}? Tell me again with more of its title."
    return [("complete_task", {"task_id": str(good[0][2].id)})]


def list_tasks(turn: Turn, m: re.Match[str]) -> Reply | None:
    t, today = turn.text.lower(), turn.today
    status = "done" if re.search(r"\b(?:done|completed|finished)\b", t) else "open"
    # due_within_days counts from now, so "today" needs 1 to reach this evening's tasks.
    days = None
    if re.search(r"\boverdue\b", t):
        days = 0
    elif re.search(r"\btoday\b", t):
        days = 1
    elif re.search(r"\btomorrow\b", t):
        days = 2
    elif re.search(r"\bnext\s+week\b", t):
        days = 14 - today.weekday()
    elif re.search(r"\bthis\s+week\b|\bweek\b", t):
        days = 7 - today.weekday()
    elif n := re.search(r"\b(?:next|in|within)\s+(\d+)\s+days?\b", t):
        days = int(n.group(1))
    return [("list_my_tasks", _args(status=status, due_within_days=days))]


# --- 5. add a contact -----------------------------------------------------------------------------

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def add_contact(turn: Turn, m: re.Match[str]) -> Reply | None:
    text = f"{m['rest']} {m.groupdict().get('more') or ''}"
    company_name = None
    if lead := re.match(r"^(?:at|from|@)\s+(?P<company>[^:]+?)\s*:\s*(?P<rest>.+)$", text.strip(), re.I | re.S):
        company_name, text = lead["company"], lead["rest"]  # "new contact at Atlas Foods: Owen Byrne, CFO"
    email = EMAIL.search(text)
    text = EMAIL.sub(" ", text)
    phone = next((ph for ph in PHONE.finditer(text) if len(re.sub(r"\D", "", ph.group(0))) >= 7), None)
    text = text.replace(phone.group(0), " ") if phone else text
    segments = [p.tidy(s) for s in re.split(r"\s*[,;()]\s*|\s+[-–—]\s+", text) if p.tidy(s)]
    if not segments:
        return "Who should I add? Say it like \"add contact Sofia Reyes, CISO at Borealis, sofia@borealis.example\"."
    name, title = segments[0], None
    at = re.match(r"^(?P<name>.+?)\s+(?:at|from|@)\s+(?P<company>.+)$", name, re.I)
    if at:
        name, company_name = at["name"], at["company"]
    for seg in segments[1:]:
        role = re.match(r"^(?P<title>.*?)\s*\b(?:at|from|@|of)\s+(?P<company>.+)$", seg, re.I)
        if role:
            title, company_name = role["title"] or title, role["company"]
        elif company_name is None and _company_exists(turn, seg):
            company_name = seg
        else:
            title = title or seg
    company_id = turn.find(company_name, ("company",)).id if company_name else _company_by_domain(turn, email)
    if email:
        same = [h for h in search(turn.ctx.session, actor=turn.ctx.actor, q=email.group(0), kinds=("contact",))
                if h.score >= 100]
        if same:
            return f"{same[0].label} is already in the CRM with {email.group(0)}."
    first, _, last = name.partition(" ")
    return [("create_contact", _args(first_name=first, last_name=last or None, title=title or None,
                                     email=email.group(0) if email else None,
                                     phone=p.tidy(phone.group(0)) if phone else None, company_id=company_id))]


def _company_exists(turn: Turn, name: str) -> bool:
    """A bare segment of the line is the company when a company's name starts with it ("Nordlys")."""
    hits = search(turn.ctx.session, actor=turn.ctx.actor, q=name, kinds=("company",), fuzzy=False)
    return any(turn.tier(h, name) <= 1 for h in hits)


def _company_by_domain(turn: Turn, email: re.Match[str] | None) -> str | None:
    if not email:
        return None
    domain = email.group(0).rsplit("@", 1)[1].lower()
    hits = search(turn.ctx.session, actor=turn.ctx.actor, q=domain, kinds=("company",), fuzzy=False)
    exact = [h for h in hits if h.score >= 100]
    return str(exact[0].id) if len(exact) == 1 else None


# --- 6. look up; 9. brief; 10. draft ---------------------------------------------------------------

KIND_HINTS = (("deal", r"deal|opportunity|opp"), ("company", r"company|account"), ("contact", r"contact|person"))
PLURAL_HINTS = (("contact", r"contacts|people|persons"), ("deal", r"deals|opportunities|opps"))


def _kind_hint(q: str) -> tuple[str | None, str]:
    for kind, words in PLURAL_HINTS:  # "contacts at Borealis": Borealis' contacts, by name or email domain
        plural = re.match(rf"^(?:all\s+|the\s+)?(?:{words})\s+(?:at|from|for|of|with|in)\s+(?P<q>.+)$", q, re.I)
        if plural:
            return kind, p.tidy(plural["q"])
    for kind, words in KIND_HINTS:
        if re.search(rf"\b(?:{words})\b", q, re.I):
            return kind, p.tidy(re.sub(rf"\b(?:the\s+)?(?:{words})\b|^the\s+", " ", q, flags=re.I))
    return None, p.tidy(re.sub(r"^(?:the|my|our)\s+", "", q, flags=re.I))


def look_up(turn: Turn, m: re.Match[str]) -> Reply | None:
    kind, q = _kind_hint(m["q"])
    if not q:
        return None
    if m["verb"].lower().startswith(("find", "search", "look")):
        kinds = (kind,) if kind else ("contact", "company", "deal")
        if not search(turn.ctx.session, actor=turn.ctx.actor, q=q, kinds=kinds, limit=1):
            raise not_found(q)
        return [("find_records", _args(query=q, kind=kind))]
    ref = turn.deal(q) if kind == "deal" else turn.find(q, (kind,) if kind else ("contact", "company", "deal"))
    return [("get_record", {"kind": ref.kind, "id": ref.id})]


BRIEF_FILLER = re.compile(r"\b(?:my|the|our|next|upcoming|meeting|call|demo|sync|catch[\s-]?up|with|today'?s?|"
                          r"tomorrow'?s?|this\s+(?:morning|afternoon)|at|on|for|about|account|company)\b|"
                          r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|h)\b|\b\d{1,2}:\d{2}\b", re.I)


def brief(turn: Turn, m: re.Match[str]) -> Reply | None:
    q = m["q"]
    while found := p.find_date(q, turn.today):
        q = found.rest
    if re.search(r"\b(?:deal|opportunity|opp)\b", q, re.I):
        deal = turn.deal(p.tidy(BRIEF_FILLER.sub(" ", re.sub(r"\b(?:deal|opportunity|opp)\b", " ", q, flags=re.I))))
        return [("brief", {"kind": "deal", "id": deal.id})]
    refs = turn.find_phrase(BRIEF_FILLER.sub(" ", q), ("company", "deal", "contact"))
    for ref in refs:
        if ref.kind in ("company", "deal"):
            return [("brief", {"kind": ref.kind, "id": ref.id})]
    company = next((r.company_id for r in refs if r.company_id), None)
    if company:
        return [("brief", {"kind": "company", "id": company})]
    return f"{_and([r.label for r in refs])} has no company; I can brief you on a company or a deal."


def draft(turn: Turn, m: re.Match[str]) -> Reply | None:
    who = re.match(r"^(?P<who>.+?)(?:\s+(?:about|re|regarding|on|after|following|for)\s+(?P<topic>.+))?$", m["rest"])
    assert who is not None  # the pattern matches any non-empty text
    refs = turn.find_phrase(who["who"], ("contact", "company", "deal"))
    contacts = [r for r in refs if r.kind == "contact"]
    if not contacts:  # a company named: write to its one contact, or ask which
        company = next((r for r in refs if r.company_id), None)
        people = _people_at(turn, company.company_id) if company and company.company_id else []
        if not company or not people:
            return f"Who at {_and([r.label for r in refs])} should I write to? I need a contact."
        if len(people) > 1:
            listed = _and([f"{c.label} ({c.detail})" if c.detail else c.label for c in people], "or")
            return f"Who at {company.label} should I write to: {listed}?"
        contacts = people
    if len(contacts) > 1:
        return f"I draft to one person at a time: {_and([c.label for c in contacts], 'or')}? Tell me which one."
    topic = p.tidy(who["topic"] or "")
    thanks = re.match(r"thank", m["what"] or "", re.I)
    purpose = ("say thank you" + (f" for {topic}" if topic else "")) if thanks else (
        f"follow up on {topic}" if topic else "follow up")
    return [("draft_email", _args(contact_id=contacts[0].id, purpose=purpose, deal_id=turn.context_deal(refs)))]


def _people_at(turn: Turn, company_id: str) -> list[Ref]:
    query = crud.readable(spec_for("contact"), turn.ctx.actor).where(Contact.company_id == uuid.UUID(company_id))
    rows = turn.ctx.session.scalars(query.order_by(Contact.last_name, Contact.first_name).limit(8))
    return [Ref("contact", str(c.id), c.full_name, company_id, c.title or c.email or "") for c in rows]


# --- 7-8. pipeline and forecast ---------------------------------------------------------------------


NOT_NAMES = p.STOPWORDS | set(p.MONTHS) | set(p.WEEKDAYS) | {"q1", "q2", "q3", "q4", "how", "what", "whats", "show"}


def _rep(turn: Turn, text: str) -> str | None:
    """A colleague the message names, in any case: a full name ("Eve Sandberg's quota"), or a first
    name as a word ("Dana's forecast", "pipeline for Priya", "how's raj tracking"), when it is exactly
    one CRM user's; the first named wins. Customers' names ("Borealis's deal") match no user."""
    users = org.active_users(turn.ctx.session, workspace_id=turn.ctx.actor.workspace_id)
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


def _team(turn: Turn, text: str) -> str | None:
    """A team the message names ("the EMEA team's pipeline", "how is west tracking"): its name, when
    exactly one team's name is in it as a word."""
    teams = org.find_teams(turn.ctx.session, workspace_id=turn.ctx.actor.workspace_id, query="")
    found = [t.name for t in teams if re.search(rf"(?<!\w){re.escape(t.name)}(?:'s|’s)?(?!\w)", text, re.I)]
    return found[0] if len(found) == 1 else None


def _whose(turn: Turn, text: str) -> dict[str, str | None]:
    """The scope arguments a message gives: a named person, else a named team, else mine/team/all.
    A name the user may not see is passed on: the tool answers why it shows nothing for it."""
    rep = _rep(turn, text)
    return {"scope": p.find_scope(text), "rep": rep, "team": None if rep else _team(turn, text)}


def forecast(turn: Turn, m: re.Match[str]) -> Reply | None:
    period = p.find_period(turn.text, turn.today)
    if period == "":
        return ("Without a language model I can forecast this month, next month, this quarter or next quarter "
                "only. Set CRM_LLM_MODEL and CRM_LLM_BASE_URL to connect one.")
    return [("forecast_summary", _args(period=period or "this_quarter", **_whose(turn, turn.text)))]


def pipeline(turn: Turn, m: re.Match[str]) -> Reply | None:
    return [("pipeline_summary", _args(**_whose(turn, turn.text)))]


WIN_PROB_RE = (r"\b(?:win(?:ning)?\s+(?:probability|probabilities|chances?|odds|likelihood)|chances?\s+(?:of|to)\s+"
               r"(?:win(?:ning)?|clos(?:e|ing))|odds\s+(?:of|on|for)|likely\s+to\s+(?:win|close)|at\s+risk)\b")
WIN_PROB_TARGET = re.compile(r"\b(?:of|for|on)\s+(?:winning\s+)?(?:the\s+)?(?P<name>.+?)(?:\s+deal)?\s*[?.!]*$", re.I)


def win_probability(turn: Turn, m: re.Match[str]) -> Reply | None:
    """"what's the win probability of Borealis?", "which of our deals are at risk?", "Priya's win odds"."""
    text = turn.text
    whose = _whose(turn, text)
    target = WIN_PROB_TARGET.search(text[m.end():]) or WIN_PROB_TARGET.search(text)
    name = target["name"] if target else ""
    if not whose["rep"] and not whose["team"] and name and not re.search(
            r"\b(?:my|our|the\s+team'?s?|team|all|everyone'?s?|deals|pipeline)\b", name, re.I):
        return [("win_probability", {"deal_id": turn.deal(p.tidy(name)).id})]
    return [("win_probability", _args(**whose))]


CHANGE_WORDS = re.compile(r"\b(?:forecast|commit|best[\s-]?case|pipeline|pipe|bookings|deals|numbers?)\b", re.I)
SINCE_RE = re.compile(r"\b(?:since|vs\.?|versus|compared\s+(?:to|with)|from|over\s+the)\s+(?P<when>.+?)\s*[?.!]*$",
                      re.I)


def forecast_changes(turn: Turn, m: re.Match[str]) -> Reply | None:
    """"why did the forecast drop?", "what changed since last week?", "which deals slipped this month?"."""
    text = turn.text
    if not CHANGE_WORDS.search(text):
        return None
    since_m = SINCE_RE.search(text)
    rest = text[:since_m.start()] if since_m else text
    period = p.find_period(rest, turn.today)
    if period == "":
        return ("Without a language model I can compare the forecast for this month, next month, this quarter or "
                "next quarter only. Set CRM_LLM_MODEL and CRM_LLM_BASE_URL to connect one.")
    since = _since(since_m.group("when") if since_m else "", turn.today)
    if since is None and period in ("this_month", "this_quarter") and re.search(r"\bsl[iu]pp?(?:ed|s)?\b|\bslid\b|"
                                                                             r"\bpushed\b", text, re.I):
        # "which deals slipped this month": since the period began
        bounds = pipeline_service.month_bounds if period == "this_month" else pipeline_service.quarter_bounds
        since = bounds(turn.today)[0]
    return [("forecast_changes", _args(period=period or "this_quarter", **(_whose(turn, text) | {
        "scope": p.find_scope(rest)}), since=since.isoformat() if since else None))]


def _since(when: str, today: date) -> date | None:
    """The day a "since ..." phrase names; None: the tool's default (a week ago)."""
    w = when.lower()
    if not w or re.search(r"\b(?:last|a|one|past)\s+week\b|\b7\s+days\b", w):
        return None
    if re.search(r"\b(?:yesterday|yday|yest)\b", w):
        return today - timedelta(days=1)
    if re.search(r"\b(?:last|a|one|past)\s+month\b", w):
        start, end = pipeline_service.month_bounds(today, -1)
        return min(start + timedelta(days=today.day - 1), end)
    if re.search(r"\b(?:last|a|one|past)\s+quarter\b", w):
        return today - timedelta(days=91)
    n = re.search(r"\b(\d{1,3})\s+(day|week)s?\b", w)
    if n:
        return today - timedelta(days=int(n.group(1)) * (7 if n.group(2) == "week" else 1))
    found = p.find_date(w, today)
    if found is None:
        return None
    day = found.value
    while day > today:  # "since monday" means the one just past
        day -= timedelta(days=7)
    return day

SHOW_ME = re.compile(r"\b(?:show|give|send|get|make|draw)\s+(?:me|us)\b", re.I)
BY_OWNER = re.compile(r"\b(?:by|per|for\s+each|each)\s+(?:rep|owner|person|seller|sales\s*person|account\s+exec"
                      r"|ae|member|user)s?\b", re.I)


def chart(turn: Turn, m: re.Match[str]) -> Reply | None:
    """Chart requests ("chart the team pipeline by rep", "graph the forecast next quarter", "chart the
    forecast by rep") go to the chart tool; analytics charts ("win rate by source") are `analytics`'."""
    text = turn.text
    # "show me a chart of the team pipeline" asks about the team, not about "me"; "chart Lena's
    # pipeline" about Lena, and "the EMEA team's" about that team.
    whose = _whose(turn, text) | {"scope": p.find_scope(SHOW_ME.sub(" ", text))}
    if re.search(r"\b(?:forecast|commit|best[\s-]?case)\b", text, re.I):
        what = "forecast_by_rep" if BY_OWNER.search(text) else "forecast_by_category"
        period = p.find_period(text, turn.today)
        if period == "":
            return ("Without a language model I can chart the forecast for this month, next month, this quarter or "
                    "next quarter only. Set CRM_LLM_MODEL and CRM_LLM_BASE_URL to connect one.")
        return [("chart", _args(what=what, period=period or "this_quarter", **whose))]
    if re.search(r"\b(?:pipeline|pipe|deals)\b", text, re.I):
        what = "pipeline_by_owner" if BY_OWNER.search(text) else "pipeline_by_stage"
        return [("chart", _args(what=what, **whose))]
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


def analytics(turn: Turn, m: re.Match[str]) -> Reply | None:
    """"win rate by source this year", "average deal size last quarter", "stale deals", "sales cycle";
    "chart win rate by source this year" draws it (win rate, stage conversion, days in stage, activities)."""
    text = turn.text
    charted = re.search(r"\b(?:chart|charts|graph|graphs|plot|visuali[sz]e)\b", text, re.I)
    metric = next(name for pattern, name in ANALYTICS if pattern.search(text))
    period = next((name for pattern, name in ANALYTICS_PERIOD if re.search(pattern, text, re.I)), "this_quarter")
    args: dict[str, Any] = {"metric": metric, "period": period, **_whose(turn, text)}
    if metric == "win_rate" and (by := re.search(r"\bby\s+(source|owner|rep|seller)s?\b", text, re.I)):
        args["by"] = "source" if by.group(1).lower() == "source" else "owner"
    if metric == "stale_deals" and (days := re.search(r"\b(\d{1,3})\s*(?:days|d)\b", text, re.I)):
        args["days"] = int(days.group(1))
    if charted:
        if metric not in ("win_rate", "stage_conversion", "days_in_stage", "activity_counts"):
            return ("I can chart win rate, stage conversion, days in stage and activity counts (and the pipeline "
                    f"and forecast); ask for the {metric.replace('_', ' ')} without \"chart\" for the numbers.")
        # "show me a chart of the team's win rate" asks about the team, not about "me" (as `chart`).
        args["scope"] = p.find_scope(SHOW_ME.sub(" ", text))
        return [("chart", _args(what=args.pop("metric"), **args))]
    return [("pipeline_analytics", _args(**args))]


# --- the table: first match wins, so the more specific recognizers come first ----------------------


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


INTENTS: list[tuple[re.Pattern[str], Handler]] = [
    # 11. "done with the revised quote task", "mark 'send revised quote' done"
    (_re(r"^(?:i'?m\s+|i\s+am\s+)?(?:done|finished)\s+with\s+(?P<q>.+?)[.!]*$"), complete_task),
    (_re(r"^(?:mark|set|tick\s+off|check\s+off)\s+(?P<q>.+?)\s+(?:as\s+)?(?:done|complete|completed|finished)[.!]*$"),
     complete_task),
    (_re(r"^(?:complete|tick\s+off|check\s+off)\s+(?:the\s+)?(?P<q>.+?\btask)[.!]*$"), complete_task),
    # 3. "we won Borealis!", "mark Nordlys as lost - went with a competitor", "lost Nordlys to Acme"
    (_re(r"^(?:we(?:'ve|\s+have)?\s+|just\s+)?(?P<res>won|lost)\s+(?P<name>.+?)(?:\s*(?P<sep>[-–—:,(]|\bbecause\b|"
         r"\bdue\s+to\b|\bto\b)\s*(?P<reason>.*?))?[.!]*$"), won_or_lost),
    (_re(r"^(?:mark|set|move|close)\s+(?P<name>.+?)\s+(?:as\s+|to\s+)?(?:closed[\s-]+)?(?P<res>won|lost)\b[.!]*"
         r"(?:\s*(?P<sep>[-–—:,(]|\bbecause\b|\bdue\s+to\b|\bto\b)\s*(?P<reason>.*?))?[.!]*$"), won_or_lost),
    (_re(r"^(?P<name>.+?)\s+(?:deal\s+)?(?:is|was|got|has\s+been)\s+(?:closed[\s-]+)?(?P<res>won|lost)\b[.!]*"
         r"(?:\s*(?P<sep>[-–—:,(]|\bbecause\b|\bdue\s+to\b|\bto\b)\s*(?P<reason>.*?))?[.!]*$"), won_or_lost),
    # 1. notes: "note on Borealis: CFO is skeptical", "note: Marco is leaving in March"
    (_re(r"^(?:(?:add|log|write|make)\s+(?:a\s+)?|new\s+)?note\s+(?:on|to|for|about)\s+(?P<target>[^:]+?)\s*"
         r"(?::|\s[-–—]\s)\s*(?P<body>.+)$"), note),
    (_re(r"^(?:(?:add|log|write|make)\s+(?:a\s+)?|new\s+)?note\s*(?P<target>)[:\-–—]\s*(?P<body>.+)$"), note),
    # 1. calls and meetings: "log a call with Ines at Borealis, ...", "call w/ Ines + Marco at Borealis, ..."
    (_re(rf"^(?:please\s+)?(?:log(?:ged)?|record)\s+(?:a|an|my|the)?\s*(?P<type>{_TYPES})s?\b\s*(?P<rest>.*)$"),
     log_activity),
    (_re(rf"^(?:just\s+)?(?:had|did)\s+(?:a|an|my|the)?\s*(?P<type>{_TYPES})s?\b\s*(?P<rest>.*)$"), log_activity),
    (_re(rf"^(?P<type>{_TYPES})\s+(?=with\b)(?P<rest>.+)$"), log_activity),
    (_re(r"^(?:just\s+)?(?P<type>called|phoned|rang|spoke|talked|met|emailed|texted)\s+(?P<rest>.+)$"), log_activity),
    # 5. "add contact Sofia Reyes, CISO at Borealis, sofia.reyes@..., +1 415 555 0199"
    (_re(r"^(?:please\s+)?(?:add|create|new)\s+(?:a\s+)?(?:new\s+)?contact\s*:?\s*(?P<rest>.+)$"), add_contact),
    (_re(r"^(?:please\s+)?add\s+(?P<rest>.+?)\s+as\s+(?:a\s+)?(?:new\s+)?contact\b(?P<more>.*)$"), add_contact),
    # 10. "draft a follow-up to Ines about the demo"
    (_re(r"^(?:please\s+)?(?:draft|write|compose)\s+(?:me\s+)?(?:up\s+)?(?:a|an)?\s*(?:quick\s+|short\s+)?"
         r"(?P<what>follow[\s-]?up|email|e-mail|mail|message|reply|note|thank[\s-]you(?:\s+note)?)?"
         r"(?:\s+(?:email|e-mail|mail|message|note))?\s+(?:to|for)\s+(?P<rest>.+?)[.!?]*$"), draft),
    # 9. "brief me for my 10:00 with Borealis", "brief me on the Borealis deal"
    (_re(r"^(?:please\s+)?(?:brief|prep|prepare|get)\s+me\s+(?:up\s+)?(?:for|on|about|ahead\s+of|before)\s+"
         r"(?P<q>.+?)[.!?]*$"), brief),
    (_re(r"^(?:give\s+me\s+)?(?:a\s+)?(?:meeting\s+)?(?:brief|briefing|prep)\s+(?:for|on|about)\s+(?P<q>.+?)[.!?]*$"),
     brief),
    (_re(r"^(?:please\s+)?(?:brief|prep)\s+me[.!?]*$"),
     lambda turn, m: "Which company or deal should I brief you on? Say it like \"brief me on Borealis\"."),
    # 4. "remind me to ping Ines next Tuesday", "task: send revised quote to Borealis by thursday"
    (_re(r"^(?:please\s+)?(?:remind\s+me|set\s+a\s+reminder)\s+(?:to\s+|about\s+|that\s+i\s+(?:need|have)\s+to\s+)?"
         r"(?P<what>.+)$"), create_task),
    (_re(r"^(?:task|todo|to-do|to\s+do|reminder)\s*[:\-–]\s*(?P<what>.+)$"), create_task),
    (_re(r"^(?:please\s+)?(?:create|add|make|new|set\s+up)\s+(?:a\s+|me\s+a\s+)?(?:new\s+)?(?:task|reminder|todo|to-do)"
         r"\s*(?:to\s+|:\s*|-\s*|for\s+me\s+to\s+)?(?P<what>.+)$"), create_task),
    (_re(r"^(?P<what>follow[\s-]?up\s+(?:with|on)\s+.+)$"), create_task),
    # 8. "why did the forecast drop?", "what changed since last week?", "which deals slipped this month?":
    # before the deal updates ("moved", "close date") and the plain forecast answer
    (_re(r"^(?:so\s+)?(?:why|what|which|how|where|show|tell|give|list|forecast|commit|pipeline)\b.*?\b(?:chang(?:e|ed|es)|"
         r"drop(?:ped|s)?|dip(?:ped|s)?|fell|fall(?:en)?|declined?|(?:went|go|gone)\s+(?:down|up)|grew|grow|jump(?:ed)?|"
         r"sl[iu]pp?(?:ed|s)?|slid|pushed|pulled\s+in|moved|vs\.?|versus|compared|since)(?!\w)"), forecast_changes),
    # 2. "move Borealis to negotiation", "Borealis deal is now 62k", "push Nordlys close to Jan 31"
    (_re(r"^(?:please\s+)?(?:move|advance|progress|push|pull|slip|set|change|update|bump|put|drop)\b|\bis\s+now\b|"
         r"\bnext\s+steps?\b|\bclose\s+date\b|\bamount\b|\bmoved\s+to\b|\b(?:is|are)\s+(?:now\s+)?(?:in|at)\b"),
     update_deal),
    # 7. "what are my tasks?", "what's due this week?"
    (_re(r"\b(?:my\s+(?:open\s+|overdue\s+|done\s+|completed\s+)?(?:tasks|to-?dos|todo\s+list|reminders)|"
         r"what'?s\s+(?:due|on\s+my\s+plate|overdue)|what\s+is\s+due|what\s+do\s+i\s+have\s+(?:to\s+do|due|on)|"
         r"(?:open|overdue|done|completed)\s+tasks|tasks?\s+(?:for|due)\s+(?:today|tomorrow|this\s+week))\b"),
     list_tasks),
    # 8. "what's the win probability of Borealis?", "which deals are at risk?"
    (_re(WIN_PROB_RE), win_probability),
    # 8. "win rate by source this year", "stale deals", "average deal size": numbers, before the pipeline
    (ANALYTICS_RE, analytics),
    # 8. "chart the team pipeline by rep", "graph the forecast this quarter": before the plain answers
    (_re(r"\b(?:chart|charts|graph|graphs|plot|visuali[sz]e)\b"), chart),
    # 8. "what's our Q4 commit?", "forecast this quarter", "how's raj tracking?", "show my pipeline"
    (_re(r"\b(?:forecast|commit|best[\s-]?case|bookings|quota|attainment)\b|"
         r"\bhow(?:'s|\s+is|\s+are)\b.*\b(?:tracking|pacing|on\s+track)\b"), forecast),  # "how's raj tracking?"
    (_re(r"\b(?:pipeline|pipe|deals\s+by\s+stage|open\s+deals|my\s+deals)\b"), pipeline),
    # 6. "who is Ines Duarte?", "find Borealis", "show me the Borealis deal"
    (_re(r"^(?P<verb>who\s+is|who's|whos|find|search(?:\s+for)?|look\s*up|show(?:\s+me)?|pull\s+up|open|get|"
         r"tell\s+me\s+about|what\s+do\s+(?:we|i)\s+know\s+about|info\s+on|details\s+(?:on|for|of))\s+"
         r"(?P<q>.+?)[.!?]*$"), look_up),
    # 4. a bare to-do with a date: "call Marco tomorrow", "send the deck to Borealis by friday"
    (p.ACTION_RE, task_with_date),
]


# --- the model ----------------------------------------------------------------------------------


def interpret(turn: Turn) -> Reply:
    for pattern, handler in INTENTS:
        m = pattern.search(turn.text)
        if m is not None and (reply := handler(turn, m)) is not None:
            return reply
    return HELP


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return " ".join(c if isinstance(c, str) else str(c.get("text", "")) for c in message.content)


def _for_the_user(result: str) -> str:
    """A tool's answer as the user reads it: a refusal ("Error: you can see ...") is said as a
    sentence, without the label that tells a model the call failed."""
    text = result.strip()
    if text.startswith("Error: ") and len(text) > len("Error: "):
        text = text.removeprefix("Error: ")
        text = text[0].upper() + text[1:]
    return text


class OfflineModel:
    """Deterministic: the same conversation and CRM state give the same answer and call ids."""

    name = "offline"

    def respond(self, messages: list[BaseMessage], ctx: ToolContext) -> AIMessage:
        results: list[str] = []
        for message in reversed(messages):  # the tool results since the last model turn
            if not isinstance(message, ToolMessage):
                break
            content = message.content
            results.insert(0, content if isinstance(content, str) else json.dumps(content, default=str))
        if results:
            return AIMessage(content="\n\n".join(_for_the_user(r) for r in results))
        if not messages or not isinstance(messages[-1], HumanMessage):
            return AIMessage(content=HELP)
        raw = _text(messages[-1])
        turn = Turn(ctx, p.normalize(raw))
        try:
            reply = interpret(turn) if turn.text else HELP
        except Unresolved as exc:
            return AIMessage(content=exc.message)
        except Exception:  # a parser slip must cost the user a sentence, not the conversation
            log.exception("offline model failed on %r", raw)
            return AIMessage(content="Sorry, I could not read that message. " + HELP)
        if isinstance(reply, str):
            return AIMessage(content=reply)
        return self._calls(reply, seed=f"{len(messages)}|{raw}")

    def _calls(self, calls: list[Call], seed: str) -> AIMessage:
        tool_calls = []
        for i, (name, args) in enumerate(calls):
            try:
                TOOLS[name].parse(args)
            except ValidationError as exc:  # a parser slip must not reach the gate as a bad proposal
                return AIMessage(content=f"I understood the request but could not build a valid {name} call "
                                         f"({exc.errors()[0]['msg']}). {HELP}")
            # Stable per conversation position: a replay after a restart proposes the same ids.
            digest = hashlib.sha1(f"{seed}|{i}|{name}".encode()).hexdigest()[:20]
            tool_calls.append({"name": name, "args": args, "id": f"call_{digest}", "type": "tool_call"})
        return AIMessage(content="", tool_calls=tool_calls)


__all__ = ["HELP", "INTENTS", "OfflineModel", "interpret"]
