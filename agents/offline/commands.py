"""The offline model's commands: log a call, meeting or note; move a deal; won or lost; tasks; add a contact.

Choices worth knowing:
- Notes ("note on Borealis: ...", "log a note ...") become `add_note`: a note is lasting
  context on a record, and the note tool exists for that. A note on several people at
  once becomes `log_activity(type=note)`, the only tool that links many records.
- An activity or task about a company (named, or the company of the people named) is
  also linked to that company's open deal when it has exactly one.
- In a logged call, a clause starting with an action verb ("send revised quote by thu")
  becomes a task and the deal's next step; "48k -> 62k" becomes the deal's amount.
"""

from __future__ import annotations

import re
from datetime import datetime

from rapidfuzz import fuzz

from agents.offline.dates import find_date
from agents.offline.numbers import decimal_str, find_new_amount
from agents.offline.phrases import action_clause, clauses, match_stage, sentence_case, split_names, tidy
from agents.offline.records import Reading, Ref
from agents.offline.replies import Call, Reply, joined, only_id, tool_args
from mail.finder import find_emails, find_phones
from store.services.search import search


def _task_call(reading: Reading, text: str, refs: list[Ref] | None = None, priority: str | None = None) -> Call | None:
    """create_task from "send revised quote to Borealis by thu": the date is cut out of the title."""
    found = find_date(text, reading.today)
    title = sentence_case(re.sub(r"^to\b\s*", "", found.rest if found else text, flags=re.I))
    if not title:
        return None
    refs = reading.spot(title) if refs is None else refs
    return ("create_task", tool_args(title=title, due_date=found.value.isoformat() if found else None,
                                     priority=priority, contact_id=only_id(refs, "contact"),
                                     company_id=only_id(refs, "company"), deal_id=reading.context_deal(refs)))


# --- 1. log a call / meeting / note ------------------------------------------------------------

ACTIVITY_WORDS = {"call": "call", "phone call": "call", "meeting": "meeting", "mtg": "meeting", "demo": "meeting",
                  "lunch": "meeting", "coffee": "meeting", "email": "email", "sms": "sms", "text": "sms",
                  "note": "note", "called": "call", "phoned": "call", "rang": "call", "spoke": "call",
                  "talked": "call", "met": "meeting", "emailed": "email", "texted": "sms"}
SUBJECT_WORDS = {"call": "Call", "meeting": "Meeting", "email": "Email", "sms": "SMS", "note": "Note"}
TYPES = r"phone\s+call|call|meeting|mtg|demo|lunch|coffee|email|sms|text|note"
# Where the names stop and what was said begins: punctuation, or a word that starts a sentence.
TARGET_END = re.compile(r"\s*(?:[,;:.!]|\s[-–—]+)\s*|\s+(?=(?:about|re|regarding|to\s+discuss|they|he|she|we|who|"
                        r"said|says|wants?|agreed|asked)\b)", re.I)


def log_activity(reading: Reading, m: re.Match[str]) -> Reply | None:
    kind = ACTIVITY_WORDS[re.sub(r"\s+", " ", m["type"].lower())]
    rest = re.sub(r"^(?:with|w/|to|from|on|for|at)\s+", "", m["rest"].strip(), flags=re.I)
    end = TARGET_END.search(rest)
    target, said = (rest[:end.start()], rest[end.end():]) if end else (rest, "")
    topic_m = re.match(r"^(?:about|re|regarding|to\s+discuss)\s+(?P<topic>[^,;]+)$", said, re.I)
    topic, body = (topic_m["topic"].strip(), None) if topic_m else (None, tidy(said) or None)
    target = re.sub(r"\b(?:this\s+(?:morning|afternoon)|earlier(?:\s+today)?|just\s+now)\b", "", target, flags=re.I)
    when = find_date(target, reading.today)
    occurred_at = None
    if when:
        if when.value > reading.today:  # "meeting with Nordlys tomorrow" is a plan: a task, not a log
            call = _task_call(reading, reading.text) if re.match(TYPES, reading.text, re.I) else None
            return [call] if call else None
        if when.value < reading.today:
            local = reading.ctx.now.astimezone(reading.ctx.tz)
            occurred_at = datetime.combine(when.value, local.timetz()).isoformat()
        target = when.rest
    if not tidy(target):
        return None
    if not split_names(target):
        return f"Who was the {kind} with? Say it like \"log a call with Ines at Borealis, they want a pilot\"."
    refs = reading.find_phrase(target)
    if kind == "note":
        return _note(reading, refs, body or topic)
    people = [r.label for r in refs if r.kind == "contact"] or [r.label for r in refs]
    subject = f"{SUBJECT_WORDS[kind]} with {joined(people)}" + (f" about {topic}" if topic else "")
    deal_id = reading.context_deal(refs)
    deal_ids = [r.id for r in refs if r.kind == "deal"] or ([deal_id] if deal_id else [])
    calls: list[Call] = [("log_activity", tool_args(
        type=kind, subject=subject, body=body, occurred_at=occurred_at,
        contact_ids=[r.id for r in refs if r.kind == "contact"],
        company_ids=[r.id for r in refs if r.kind == "company"], deal_ids=deal_ids))]
    return calls + _follow_ups(reading, body or "", refs, deal_id)


def _follow_ups(reading: Reading, body: str, refs: list[Ref], deal_id: str | None) -> list[Call]:
    """What a logged call implies: a new amount ("48k -> 62k") and to-dos ("send quote by thu")."""
    amount = None
    for clause in clauses(body):
        if re.search(r"->|→|=>|\bnow\b|\bamount\b|\bvalue\b|\bup\s+to\b|\brevised\s+to\b", clause, re.I):
            amount = amount or find_new_amount(clause)
    tasks = [call for clause in clauses(body) if (todo := action_clause(clause))
             and (call := _task_call(reading, todo, refs))]
    calls: list[Call] = []
    if deal_id and (amount or tasks):
        value, currency = amount.value if amount else (None, None)
        calls.append(("update_deal", tool_args(deal_id=deal_id, amount=decimal_str(value) if value else None,
                                               currency=currency, next_step=tasks[0][1]["title"] if tasks else None)))
    return calls + tasks


def note(reading: Reading, m: re.Match[str]) -> Reply | None:
    body = tidy(m["body"])
    refs = reading.find_phrase(m["target"]) if m["target"] else reading.spot(body)
    return _note(reading, refs, body)


def _note(reading: Reading, refs: list[Ref], body: str | None) -> Reply:
    if not refs:
        return "Which record should the note go on? Say it like \"note on Borealis: CFO is skeptical\"."
    if not body:
        return "What should the note say? Say it like \"note on Borealis: CFO is skeptical\"."
    if all(sum(r.kind == k for r in refs) <= 1 for k in ("contact", "company", "deal")):
        return [("add_note", tool_args(body=body, contact_id=only_id(refs, "contact"),
                                       company_id=only_id(refs, "company"), deal_id=only_id(refs, "deal")))]
    names = joined([r.label for r in refs])
    return [("log_activity", tool_args(type="note", subject=f"Note on {names}", body=body,
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


def update_deal(reading: Reading, m: re.Match[str]) -> Reply | None:
    text, fields = reading.text, {}
    if QUESTION.search(text):
        return None  # "why is Borealis in negotiation?" asks; it does not move anything
    stage = None
    ns = NEXT_STEP.search(text)
    if ns:
        fields["next_step"] = tidy(ns["ns"])
        name = f"{ns['name'] or ''} {text[:ns.start()]}"
    else:
        name = text
        when = find_date(name, reading.today)
        name = when.rest if when else name
        amount = find_new_amount(name)
        if amount:
            name = amount.rest
            value, currency = amount.value
            fields["amount"] = decimal_str(value)
            if currency:
                fields["currency"] = currency
        stage = match_stage(name, reading.stages())
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
            deal = reading.deal(tidy(DEAL_FILLER.sub(" ", move["name"])))
            names = ", ".join(n for n, _ in reading.deal_stages(deal.id))
            return f"{deal.label} has no stage \"{tidy(move['to'])}\"; its stages are {names}."
        return None
    deal = reading.deal(tidy(DEAL_FILLER.sub(" ", name)) or "")
    if stage:
        stages = reading.deal_stages(deal.id)
        in_pipeline = match_stage(stage.phrase, stages)
        if not in_pipeline:
            return f"{deal.label} has no stage \"{stage.phrase}\"; its stages are {', '.join(n for n, _ in stages)}."
        fields["stage"] = in_pipeline.value
    return [("update_deal", {"deal_id": deal.id, **fields})]


def won_or_lost(reading: Reading, m: re.Match[str]) -> Reply | None:
    deal = reading.deal(tidy(re.sub(r"\b(?:the|deal|opportunity)\b", " ", m["name"], flags=re.I)))
    outcome = m["res"].lower()
    names = [n for n, k in reading.deal_stages(deal.id) if k == outcome]
    if len(names) != 1:
        return f"I can't tell which stage of {deal.label}'s pipeline means {outcome}."
    reason = tidy(m["reason"] or "").rstrip(")")
    if reason and (m.groupdict().get("sep") or "").lower() == "to":
        reason = f"lost to {reason}"
    lost_reason = (reason or None) if outcome == "lost" else None  # the deal has no field for why it was won
    return [("update_deal", tool_args(deal_id=deal.id, stage=names[0], lost_reason=lost_reason))]


# --- 4. tasks; 11. complete a task ---------------------------------------------------------------


def create_task(reading: Reading, m: re.Match[str]) -> Reply | None:
    what = m["what"]
    urgent = re.search(r"\s*[(,]?\s*\b(?:urgent|asap|high\s+prio(?:rity)?|important)\b\)?", what, re.I)
    if urgent:
        what = what[:urgent.start()] + what[urgent.end():]
    call = _task_call(reading, what, priority="high" if urgent else None)
    return [call] if call else "What is the task? Say it like \"remind me to send the quote on Thursday\"."


def task_with_date(reading: Reading, m: re.Match[str]) -> Reply | None:
    """A bare to-do with a date ("call Marco tomorrow") is a task; without a date it is too vague."""
    call = _task_call(reading, m["task"]) if find_date(m["task"], reading.today) else None
    return [call] if call else None


def complete_task(reading: Reading, m: re.Match[str]) -> Reply | None:
    wanted = tidy(re.sub(r"^(?:the|my)\s+|\s+task$|['\"]", "", m["q"].strip(), flags=re.I))
    tasks = reading.my_open_tasks()
    scored = sorted(((fuzz.token_set_ratio(wanted.lower(), t.title.lower()), t.title, t) for t in tasks),
                    key=lambda s: (-s[0], s[1]))
    good = [s for s in scored if s[0] >= 70]
    if not good:
        return f"I couldn't find an open task like \"{wanted}\". Ask \"what are my tasks?\" to see them."
    if len(good) > 1 and good[0][0] - good[1][0] < 10:
        listed = joined([f"\"{t.title}\"" + (f" (due {t.due_at.astimezone(reading.ctx.tz):%a %Y-%m-%d})" if t.due_at
                                             else "") for _, _, t in good[:5]], "or")
        return f"Which task do you mean: {listed}? Tell me again with more of its title."
    return [("complete_task", {"task_id": str(good[0][2].id)})]


def list_tasks(reading: Reading, m: re.Match[str]) -> Reply | None:
    t, today = reading.text.lower(), reading.today
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
    return [("list_my_tasks", tool_args(status=status, due_within_days=days))]


# --- 5. add a contact -----------------------------------------------------------------------------



def add_contact(reading: Reading, m: re.Match[str]) -> Reply | None:
    text = f"{m['rest']} {m.groupdict().get('more') or ''}"
    company_name = None
    if lead := re.match(r"^(?:at|from|@)\s+(?P<company>[^:]+?)\s*:\s*(?P<rest>.+)$", text.strip(), re.I | re.S):
        company_name, text = lead["company"], lead["rest"]  # "new contact at Atlas Foods: Owen Byrne, CFO"
    emails = find_emails(text)
    email = emails[0].value if emails else None
    for found in reversed(emails):
        text = text[:found.start] + " " + text[found.end:]
    phone = next((ph.value for ph in find_phones(text) if len(re.sub(r"\D", "", ph.value)) >= 7), None)
    text = text.replace(phone, " ") if phone else text
    segments = [tidy(s) for s in re.split(r"\s*[,;()]\s*|\s+[-–—]\s+", text) if tidy(s)]
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
        elif company_name is None and _company_exists(reading, seg):
            company_name = seg
        else:
            title = title or seg
    company_id = reading.find(company_name, ("company",)).id if company_name else _company_by_domain(reading, email)
    if email:
        same = [h for h in search(reading.ctx.session, actor=reading.ctx.actor, q=email, kinds=("contact",))
                if h.score >= 100]
        if same:
            return f"{same[0].label} is already in the CRM with {email}."
    first, _, last = name.partition(" ")
    return [("create_contact", tool_args(first_name=first, last_name=last or None, title=title or None,
                                         email=email,
                                         phone=tidy(phone) if phone else None, company_id=company_id))]


def _company_exists(reading: Reading, name: str) -> bool:
    """A bare segment of the line is the company when a company's name starts with it ("Nordlys")."""
    hits = search(reading.ctx.session, actor=reading.ctx.actor, q=name, kinds=("company",), fuzzy=False)
    return any(reading.tier(h, name) <= 1 for h in hits)


def _company_by_domain(reading: Reading, email: str | None) -> str | None:
    if not email:
        return None
    domain = email.rsplit("@", 1)[1].lower()
    hits = search(reading.ctx.session, actor=reading.ctx.actor, q=domain, kinds=("company",), fuzzy=False)
    exact = [h for h in hits if h.score >= 100]
    return str(exact[0].id) if len(exact) == 1 else None
