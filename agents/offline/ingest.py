"""The offline ingestion extractor: an email or a call -> the CRM updates it clearly implies.

Used by agents/ingest.py when no LLM is configured (and as a floor under one). Pure: the input
is an `IngestInput` the lead built from SQL, the output `ProposedCall`s for the rep to approve,
each quoting the exact sentence (or transcript span) that justifies it. Conservative: a wrong
proposal costs the rep a click, a missed one less; what needs judgement is left to the LLM.

Who said it decides what it means:
- an inbound email's body is the customer's words; an outbound email's body the rep's;
- a call segment is the rep's when its speaker is the rep (full or first name), a customer's when
  it is one of `people`; an unnamed speaker ("SPEAKER_01") gives no tasks; in a recording without
  any speaker labels (whisper does not tell voices apart) a first-person dated commitment ("I will
  send the revised quote by Thursday") is taken as the rep's: the rep uploaded their own call, and
  approves or drops the task;
- attachments (a PDF questionnaire, a quote) only feed the summary: a document's text states
  nothing about this deal and may say anything.

The rules, in the order the proposals come:
1. log_activity, always when it can link to something: type email/call, the subject without
   "Re:/Fwd:", body = `summarize`, the people that are contacts, the matched companies, and the
   deal: the routed one (`routed_deal_id`), else the one candidate the forward note or subject
   names, else the only candidate; with several and no pointer, no deal (the LLM or the rep picks).
2. create_contact for an inbound email's sender who is not a contact, read from the signature (name,
   title, phone in E.164, address, company when the domain matched a company; none for free-mail; the
   body's tail from the sign-off when no signature was split off; nothing without a signature), and
   for a person the customer introduces with an address ("I've copied our CISO, Jana Novak
   (jana@borealis.example)") at a participant's domain. Never the rep, never the rep's own domain.
3. update_deal on the chosen deal, one proposal per change, each with its own quote: a new amount
   ("48k -> 62k", "the budget is now $62,000"; not in another currency than the deal's), a close
   date only from signing words ("we plan to sign by December 15"; a go-live, pilot or kick-off
   date is not a close date), a stage from explicit words (contract/redlines -> the negotiation-like
   stage, "send us a proposal" -> proposal, "book a demo" -> demo, "decided to go with you"/"signed
   the contract" -> won, "decided not to move forward"/"went with another vendor" -> lost), only
   forward and never out of a closed stage. The amount change also carries the next step (the rep's
   first task), as the chat model does.
4. create_task for the rep's dated commitments ("I'll send the revised quote by Thursday") in outbound
   mail and the rep's call segments, and for dated requests to the rep ("could you return the
   completed questionnaire by December 5?") in inbound mail and customers' call segments. The title
   is a short imperative; due dates follow agents/offline/dates.py; a task the rep already has open
   (same title, give or take articles) is not proposed again. Linked to the deal, else the
   counterpart contact, else the one company.
Questions (other than a request to the rep), negations and sentences addressed to a machine ("ignore
previous instructions", "AI assistant: ...") never lead to a proposal; only the four tools above are
ever proposed, whatever the text says.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from agents.ingest_types import DealInfo, IngestInput, Passage, Person, ProposedCall
from agents.offline import ingest_rules as r
from agents.offline.dates import dates_in, due_date, is_due_soon
from agents.offline.numbers import decimal_str
from mail.body import sentences
from mail.finder import find_emails, phone_e164
from mail.signature import SIGN_OFF, introduced, parse_signature
from store.import_formats import FREE_MAIL

SUBJECT_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|tr|sv|vs|rv)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
INTRO_CUE = re.compile(r"\b(?:cop(?:y|ied|ying)|cc|cc['’]?(?:d|ed|ing)|loop\w*\s+in|add(?:ed|ing)?|includ\w+|"
                       r"introduc\w+|meet|connect\w*|reach\s+out\s+to|contact|colleague)\b", re.I)
KEY_WORDS = re.compile(r"\b(?:pilot|budget|contract|questionnaire|security|decision|timeline|next\s+steps?|pricing|"
                       r"price|quote|proposal|sign\w*|legal|procurement|go-?live|deadline|risk|concern|competitor|"
                       r"integration|requirements?|approv\w*|telematics|module|renewal|discount|pain|priority)\b", re.I)


class Said:
    """One sentence of the source: its words, where it is, and whose words they are."""

    def __init__(self, text: str, offset: int, passage: Passage, who: str | None, part: str) -> None:
        self.text, self.offset, self.passage, self.who, self.part = text, offset, passage, who, part
        # What the rules read: typographic apostrophes made plain, same length so spans stay valid.
        self.plain = text.replace("\u2019", "'").replace("\u2018", "'")

    @property
    def locator(self) -> dict[str, Any]:
        if self.part == "transcript":
            return dict(self.passage.locator)
        return {**self.passage.locator, "offset": self.offset}

    @property
    def actionable(self) -> bool:
        return self.part != "attachment" and not r.addresses_the_machine(self.text) and not r.is_greeting(self.text)


# --- reading the input ---------------------------------------------------------------------------


UNLABELLED = "unlabelled"  # who said it, in a recording whose transcript names no speakers


def _first_name(name: str | None) -> str:
    return (name or "").strip().split(" ")[0].lower()


def _speaker(inp: IngestInput, label: Any) -> str | None:
    """'rep', 'customer' or None for a transcript speaker label."""
    said = str(label or "").strip().lower()
    if not said:
        return None
    if said in (inp.rep_name.lower(), _first_name(inp.rep_name), inp.rep_email.split("@")[0].lower()):
        return "rep"
    for person in inp.people:
        if person.name and said in (person.name.lower(), _first_name(person.name)):
            return "customer"
    return None


def _direction(inp: IngestInput) -> str:
    if inp.direction:
        return inp.direction
    return "inbound" if any(p.role == "from" for p in inp.people) else "outbound"


def said_in(inp: IngestInput) -> list[Said]:
    out = []
    direction = _direction(inp)
    unlabelled = inp.kind == "call" and not any(p.locator.get("speaker") for p in inp.passages)
    for passage in inp.passages:
        if inp.kind == "call":
            who = UNLABELLED if unlabelled else _speaker(inp, passage.locator.get("speaker"))
            part = "transcript"
        elif passage.locator.get("part") == "attachment":
            who, part = None, "attachment"
        else:
            who, part = ("rep" if direction == "outbound" else "customer"), "body"
        out += [Said(text, offset, passage, who, part) for offset, text in sentences(passage.text)]
    return out


def choose_deal(inp: IngestInput) -> DealInfo | None:
    """The deal this source is about (see the module docstring, rule 1)."""
    if inp.routed_deal_id:
        routed = next((d for d in inp.deals if d.id == inp.routed_deal_id), None)
        if routed:
            return routed
    pointer = f"{inp.forward_note} {inp.title}".lower()
    named = [d for d in inp.deals if any(len(w) >= 4 and w not in {"deal", "renewal", "pilot", "expansion"}
                                         and re.search(rf"\b{re.escape(w)}\b", pointer)
                                         for w in re.findall(r"\w+", d.name.lower()))]
    if len(named) == 1:
        return named[0]
    return inp.deals[0] if len(inp.deals) == 1 else None


def _counterpart(inp: IngestInput) -> Person | None:
    """The customer the source is with: the sender of inbound mail, the addressee of outbound, the one person
    on a call."""
    if inp.kind == "email":
        role = "from" if _direction(inp) == "inbound" else "to"
        return next((p for p in inp.people if p.role == role), None)
    return inp.people[0] if len(inp.people) == 1 else None


def _today(inp: IngestInput) -> date:
    try:
        tz = ZoneInfo(inp.timezone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    return inp.occurred_at.astimezone(tz).date()


def _domain(address: str | None) -> str:
    return address.rsplit("@", 1)[-1].lower() if address and "@" in address else ""


# --- 1. the activity --------------------------------------------------------------------------------


def summarize(inp: IngestInput, max_chars: int = 600) -> str:
    """An extractive summary for the activity's body: the sentences with dates, amounts, asks and decisions,
    in their order; the opening sentences when none stands out. Lines addressed to a machine are left out."""
    said = [s for s in said_in(inp) if s.part != "attachment" and not r.is_greeting(s.text)
            and not r.addresses_the_machine(s.text) and len(s.text.split()) >= 3]
    today = _today(inp)

    def score(s: Said) -> int:
        points = 3 * bool(dates_in(s.plain, today)) + 3 * bool(r.amount_change(s.plain))
        points += 3 * bool(r.COMMITMENT.search(s.plain) or r.REQUEST.search(s.plain))
        return points + 3 * bool(r.stage_signal(s.plain)) + 2 * len(KEY_WORDS.findall(s.text))

    def line(s: Said) -> str:
        speaker = s.passage.locator.get("speaker")
        return f"{speaker}: {r.squash(s.text)}" if s.part == "transcript" and speaker else r.squash(s.text)

    scores = [score(s) for s in said]
    ranked = sorted(range(len(said)), key=lambda i: (-scores[i], i))
    if not any(scores):
        ranked = list(range(len(said)))  # nothing stands out: the opening sentences
    chosen: list[int] = []
    used = 0
    for i in ranked:
        if chosen and scores[i] == 0 and any(scores):
            break
        cost = len(line(said[i])) + 1
        if used + cost <= max_chars:
            chosen.append(i)
            used += cost
    sep = "\n" if inp.kind == "call" else " "
    text = sep.join(line(said[i]) for i in sorted(chosen))
    files = [str(p.locator.get("filename")) for p in inp.passages if p.locator.get("part") == "attachment"]
    if files and used + 15 + sum(len(f) + 2 for f in files) <= max_chars:
        text = (text + sep if text else "") + "Attachments: " + ", ".join(files) + "."
    if not text and said:
        text = r.squash(said[0].text)
    return text[:max_chars - 1] + "…" if len(text) > max_chars else text


def _subject(inp: IngestInput) -> str:
    if inp.kind == "call":
        names = [p.name for p in inp.people if p.name]
        if names:
            return "Call with " + (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0])
        return f"Call: {inp.title}" if inp.title else "Call"
    return SUBJECT_PREFIX.sub("", inp.title).strip() or "(no subject)"


def _log(inp: IngestInput, said: list[Said], deal: DealInfo | None) -> ProposedCall | None:
    contact_ids = list(dict.fromkeys(str(p.contact_id) for p in inp.people if p.contact_id))
    company_ids = list(dict.fromkeys(str(c) for c in inp.company_ids))
    deal_ids = [str(deal.id)] if deal else []
    if not (contact_ids or company_ids or deal_ids):
        return None  # log_activity needs a record to hang on: the LLM or the rep must say which
    args: dict[str, Any] = {"type": inp.kind, "subject": _subject(inp)[:200], "body": summarize(inp) or None,
                            "occurred_at": inp.occurred_at.isoformat(), "contact_ids": contact_ids,
                            "company_ids": company_ids, "deal_ids": deal_ids}
    ends = [float(p.locator["end"]) for p in inp.passages if isinstance(p.locator.get("end"), int | float)]
    if inp.kind == "call" and ends:
        args["duration_minutes"] = max(1, math.ceil(max(ends) / 60))
    opening = next((s for s in said if s.actionable), None) or (said[0] if said else None)
    if opening is None:
        only = next((p for p in inp.passages if p.text.strip()), None)
        if only is not None:  # words but no sentence ("..."): the passage itself
            quote = only.text.strip()
            where = only.locator if inp.kind == "call" else {**only.locator, "offset": only.text.find(quote)}
            return ProposedCall("log_activity", _clean(args), quote, where)
        return ProposedCall("log_activity", _clean(args), inp.title, {"part": "subject"})
    return ProposedCall("log_activity", _clean(args), opening.text, opening.locator)


def _clean(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if v is not None and v != []}


# --- 2. contacts -----------------------------------------------------------------------------------


def _company_for(inp: IngestInput, address: str) -> str | None:
    domain = _domain(address)
    if not domain or domain in FREE_MAIL:
        return None
    ids = {p.company_id for p in inp.people if p.company_id and _domain(p.address) == domain}
    return str(ids.pop()) if len(ids) == 1 else None


def _may_add(inp: IngestInput, address: str | None, proposed: set[str]) -> bool:
    if not address or "@" not in address:
        return False
    address = address.lower()
    if address == inp.rep_email.lower() or _domain(address) == _domain(inp.rep_email) or address in proposed:
        return False
    return not any(p.contact_id and (p.address or "").lower() == address for p in inp.people)


def _contacts(inp: IngestInput, said: list[Said]) -> list[ProposedCall]:
    out: list[ProposedCall] = []
    proposed: set[str] = set()
    sender = next((p for p in inp.people if p.role == "from"), None)
    block = _signature_block(inp, sender) if sender else None
    if (inp.kind == "email" and _direction(inp) == "inbound" and sender and not sender.contact_id and block
            and _may_add(inp, sender.address, proposed)):
        text, where = block
        sig = parse_signature(text, sender.name, sender.address)
        if sig["quote"] and sig["first_name"]:
            phone = next((n for n in (phone_e164(p, sender.address) for p in sig["phones"]) if n), None)
            args = {"first_name": sig["first_name"], "last_name": sig["last_name"], "email": sender.address,
                    "title": sig["title"], "phone": phone, "company_id": _company_for(inp, sender.address or "")}
            locator = {**where, "offset": where["offset"] + text.find(sig["quote"])}
            out.append(ProposedCall("create_contact", _clean(args), sig["quote"], locator))
            proposed.add((sender.address or "").lower())
    domains = {_domain(p.address) for p in inp.people if p.address}
    for s in said:
        if s.who != "customer" or not s.actionable or not INTRO_CUE.search(s.text):
            continue
        for found in find_emails(s.text):
            address = found.value.lower()
            if _domain(address) not in domains or not _may_add(inp, address, proposed):
                continue
            person = introduced(s.text, found.start, found.end)
            if person is None:
                continue
            first, last, title = person
            args = {"first_name": first, "last_name": last, "email": address, "title": title,
                    "company_id": _company_for(inp, address)}
            out.append(ProposedCall("create_contact", _clean(args), s.text, s.locator))
            proposed.add(address)
    return out


def _signature_block(inp: IngestInput, sender: Person) -> tuple[str, dict[str, Any]] | None:
    """The sender's signature and where it lies: `inp.signature`, else the body's tail from the sign-off or the
    sender's name on a line of its own (when the signature was not split off)."""
    if inp.signature and inp.signature.strip():
        return inp.signature, {"part": "signature", "offset": 0}
    body = next((p for p in inp.passages if p.locator.get("part", "body") == "body"), None)
    if body is None or not sender.name:
        return None
    lines = list(re.finditer(r"[^\n]+", body.text))[-12:]
    name = r.squash(sender.name).lower()
    for m in lines:
        line = r.squash(m.group(0))
        if SIGN_OFF.match(line) or line.lower() == name:
            return body.text[m.start():], {**body.locator, "offset": m.start()}
    return None


# --- 3. the deal ------------------------------------------------------------------------------------

STRENGTH = {"demo": 1, "proposal": 2, "negotiation": 3, "won": 4, "lost": 4}
PAST = re.compile(r"\b(?:last\s+(?:year|time|quarter)|previous(?:ly)?|in\s+the\s+past|used\s+to|years?\s+ago)\b", re.I)


def _deal_updates(inp: IngestInput, said: list[Said], deal: DealInfo, next_step: str | None) -> list[ProposedCall]:
    out: list[ProposedCall] = []
    today = _today(inp)
    usable = [s for s in said if s.actionable]
    for s in usable:
        change = r.amount_change(s.plain)
        if change is None:
            continue
        value, currency = change
        if (currency and currency != deal.currency) or (deal.amount is not None and value == deal.amount):
            continue  # another currency is a judgement call; the same amount is no change
        args: dict[str, Any] = {"deal_id": str(deal.id), "amount": decimal_str(value)}
        if next_step and next_step != deal.next_step:
            args["next_step"] = next_step
        out.append(ProposedCall("update_deal", args, s.text, s.locator))
        break
    for s in usable:
        when = r.close_date(s.plain, today)
        if when and when != deal.close_date:
            out.append(ProposedCall("update_deal", {"deal_id": str(deal.id), "close_date": when.isoformat()},
                                    s.text, s.locator))
            break
    signals = [(sig, s) for s in usable if (sig := r.stage_signal(s.plain))
               and not (sig == "lost" and PAST.search(s.plain))]
    kinds = {sig for sig, _ in signals}
    if {"won", "lost"} <= kinds:
        return out  # both said: not clear
    best = max(signals, key=lambda x: STRENGTH[x[0]], default=None)
    if best:
        signal, s = best
        stage = r.stage_for(signal, deal.stage, deal.stage_names)
        if stage:
            args = {"deal_id": str(deal.id), "stage": stage}
            if signal == "lost":
                args["lost_reason"] = r.squash(s.text)[:300]
            out.append(ProposedCall("update_deal", args, s.text, s.locator))
    return out


# --- 4. tasks ---------------------------------------------------------------------------------------


def _tasks(inp: IngestInput, said: list[Said], deal: DealInfo | None) -> list[ProposedCall]:
    out: list[ProposedCall] = []
    today = _today(inp)
    other = _counterpart(inp)
    name = other.name.split()[0] if other and other.name else None
    link: dict[str, Any] = {}
    if deal:
        link["deal_id"] = str(deal.id)
    elif other and other.contact_id:
        link["contact_id"] = str(other.contact_id)
    elif len(inp.company_ids) == 1:
        link["company_id"] = str(inp.company_ids[0])
    titles = list(inp.existing_open_tasks)
    for s in said:
        if not s.actionable or s.who is None:
            continue
        commits = s.who in ("rep", UNLABELLED)  # unlabelled: only commitments, never requests
        m = (r.COMMITMENT if commits else r.REQUEST).search(s.plain)
        if m is None or (commits and r.is_question(s.plain)):
            continue
        hit = due_date(s.plain, today)
        if hit is None or not is_due_soon(hit.value, today):
            continue
        start = m.start("act")
        span = (hit.start - start, hit.end - start) if hit.start >= start else None
        title = r.task_title(m.group("act"), span, name, _subject(inp))
        if not title or any(r.same_task(title, t) for t in titles):
            continue
        titles.append(title)
        args = {"title": title, "due_date": hit.value.isoformat(), "description": r.squash(s.text)[:500], **link}
        out.append(ProposedCall("create_task", args, s.text, s.locator))
    return out


# --- all of it --------------------------------------------------------------------------------------


def extract(inp: IngestInput) -> list[ProposedCall]:
    """The proposals an email or a call clearly implies, each with the words that justify it."""
    said = said_in(inp)
    deal = choose_deal(inp)
    out: list[ProposedCall] = []
    log = _log(inp, said, deal)
    if log:
        out.append(log)
    out += _contacts(inp, said)
    tasks = _tasks(inp, said, deal)
    if deal:
        rep_tasks = [t for t in tasks if _said_by(t, said) in ("rep", UNLABELLED)]
        out += _deal_updates(inp, said, deal, rep_tasks[0].args["title"] if rep_tasks else None)
    return out + tasks


def _said_by(call: ProposedCall, said: list[Said]) -> str | None:
    return next((s.who for s in said if s.text == call.quote and s.locator == call.locator), None)


__all__ = ["choose_deal", "extract", "said_in", "summarize"]
