"""The rules of the offline ingestion extractor: pure functions over the sentences of an email or a call.

Each rule reads one sentence and says what it states clearly, or nothing. agents/offline/ingest.py
decides who said it (the rep or the customer) and turns what the rules find into proposals.

Dates (the rep's calendar; `today` is the email's or call's date in the rep's time zone) are read by
agents/offline/dates.py, the one date grammar, with the spellings people write in mail.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from rapidfuzz import fuzz

from agents.offline.dates import dates_in
from agents.offline.numbers import find_new_amount


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


GREETING = re.compile(r"^(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening)|hallo|ol[áa]|bonjour)\b"
                      r"[^.!?]{0,40}[,!:]?$|^(?:thanks?|thank\s+you|many\s+thanks|cheers|best|regards|kind\s+regards|"
                      r"best\s+regards)(?:\s+(?:so\s+much|again|a\s+lot|in\s+advance))?[,.!]*$", re.I)


def is_greeting(sentence: str) -> bool:
    return bool(GREETING.match(squash(sentence)))


# Words addressed to a machine, not to a person: never a reason for a proposal (see test_ingest_offline).
INJECTION = re.compile(
    r"\b(?:ignore\s+(?:all\s+|any\s+|the\s+)?(?:previous|prior|above|earlier|your)|system\s+prompt|"
    r"(?:previous|prior|above|earlier|your|new|these|my|all|following|original|real)\s+instructions?|"
    r"ai\s+(?:assistant|agent|model)|llm|chatgpt|language\s+model|as\s+an\s+ai|you\s+are\s+now|jailbreak|"
    r"developer\s+mode|(?:delete|erase|wipe|remove|export)\s+(?:all|every|the\s+whole|the\s+entire)|"
    r"create\s+(?:a|the)\s+(?:task|contact|deal)|mark\s+(?:this|the)\s+deal|(?:set|change|update)\s+the\s+deal)\b|"
    r"\b(?:assistant|system|agent|bot)\s*:", re.I)


def addresses_the_machine(sentence: str) -> bool:
    return bool(INJECTION.search(sentence))


def is_question(sentence: str) -> bool:
    return sentence.rstrip(" \"')").endswith("?")


NEGATION = re.compile(r"\b(?:not|never|no\s+longer|nothing)\b|n['’]t\b", re.I)
HEDGE = re.compile(r"\b(?:if|once|when|whether|unless|might|may|maybe|perhaps|hope|hoping|assuming|"
                   r"would|could|should)\b", re.I)

# --- amounts ---------------------------------------------------------------------------------------

MONEY_WORDS = re.compile(r"\b(?:budget|price|pricing|amount|value|total|deal|contract|quote|offer|proposal|"
                         r"acv|arr|cost|fee|fees|license|licen[cs]ing|subscription|spend)\b", re.I)
CHANGE_CUE = re.compile(
    r"->|→|=>|\bfrom\b.+\bto\b|"
    r"\b(?:increas|rais|bump|revis|reduc|lower|decreas|adjust|mov|go|goes|going|grow|updat|came|come|comes)\w*\s+"
    r"(?:it\s+|that\s+|this\s+|the\s+\w+\s+)?(?:up\s+|down\s+)?to\b|"
    r"\b(?:budget|price|amount|value|total|deal\s+size|contract\s+value|acv|arr)\b[^.?!]{0,40}?"
    r"\b(?:is\s+now|are\s+now|now|has\s+been\s+(?:increased|raised|approved|updated|revised|reduced|lowered)|"
    r"comes\s+to|came\s+to|signed\s+off)\b|"
    r"\bnew\s+(?:budget|price|amount|value|total|quote|deal\s+size)\b|"
    r"\bapprov\w*\s+(?:a\s+|the\s+)?(?:budget\s+)?(?:for|of|at)\b", re.I)


def amount_change(sentence: str) -> tuple[Decimal, str | None] | None:
    """The deal's new amount when the sentence states one ("48k -> 62k", "the budget is now $62,000")."""
    if is_question(sentence) or NEGATION.search(sentence) or not CHANGE_CUE.search(sentence):
        return None
    found = find_new_amount(sentence)
    if found is None:
        return None
    value, currency = found.value
    m = re.search(re.escape(found.phrase), sentence)
    suffixed = bool(re.search(r"\d\s?(?:k|m|mm|mn|thousand|million)\b", found.phrase, re.I))
    if not (currency or suffixed or MONEY_WORDS.search(sentence)):
        return None  # "from 800 to 1,200 trucks" is not money
    if m and re.match(r"\s*(?:%|percent|users?|seats?|licenses?|trucks?|vehicles?|units?|people|employees|"
                      r"devices?|sites?|locations?|hours?|days?|months?|years?)\b", sentence[m.end():], re.I):
        return None
    return (value, currency) if value > 0 else None


# --- stages ----------------------------------------------------------------------------------------

LOST = re.compile(
    r"\b(?:decided|decision)\s+(?:is\s+)?not\s+to\s+(?:move\s+forward|proceed|go\s+ahead|continue|pursue|buy|purchase)|"
    r"(?:\bnot|n['’]t)\s+(?:be\s+)?(?:moving|going)\s+(?:forward|ahead)|"
    r"\b(?:went|go|going|gone|decided\s+to\s+go|chose\s+to\s+go)\s+with\s+(?:another|a\s+different|an\s+alternative|"
    r"a\s+competing|a\s+competitor|the\s+competition|a\s+cheaper)\b|"
    r"\b(?:chose|chosen|selected|picked)\s+(?:another|a\s+different|a\s+competing|a\s+competitor|an\s+alternative)\b|"
    r"\bno\s+longer\s+(?:interested|pursuing|moving\s+forward|considering)|"
    r"\b(?:cancel(?:l?ed|ling)?|drop(?:ped)?|kill(?:ed)?)\s+(?:the|this|our)\s+(?:project|evaluation|deal|purchase|"
    r"initiative)", re.I)
WON = re.compile(
    r"\b(?:decided|agreed)\s+to\s+(?:go|move\s+forward|proceed|work|partner)\s+with\s+"
    r"(?:you\b|your\s+(?:solution|platform|product|offer|proposal|company|team))|"
    r"\b(?:chosen|chose|selected|picked)\s+(?:you\b|your\s+(?:solution|platform|product|offer|proposal|company))|"
    r"\b(?:we(?:'ve|\s+have)|I(?:'ve|\s+have))\s+(?:just\s+)?(?:signed|countersigned|executed)\s+"
    r"(?:the|our|your)\s+(?:contract|agreement|order\s+form|msa|proposal|quote)|"
    r"\b(?:contract|agreement|order\s+form|msa|quote)\s+(?:is|has\s+been|was)\s+(?:now\s+)?(?:fully\s+)?"
    r"(?:signed|countersigned|executed)|"
    r"\battached\s+(?:is\s+)?(?:the\s+)?(?:signed|countersigned|executed)\s+(?:contract|agreement|order\s+form|quote)|"
    r"\bsigned\s+(?:contract|agreement|order\s+form)\s+(?:is\s+)?attached|"
    r"\b(?:purchase\s+order|PO)\s+(?:is\s+|has\s+been\s+)?(?:attached|issued|approved)", re.I)
DELAY = re.compile(r"\b(?:until|yet|for\s+now|right\s+now|at\s+the\s+moment|this\s+(?:quarter|year)|postpone\w*|"
                   r"on\s+hold|pause\w*|delay\w*|revisit|later)\b", re.I)
NEGOTIATION = re.compile(
    r"\bredlin\w*|\bred-lines?\b|\bmark(?:ed)?-?up\s+(?:of\s+)?(?:the\s+)?(?:contract|msa|agreement)|"
    r"\b(?:send|share|forward)\s+(?:us\s+|me\s+|over\s+)*(?:the|your|a)\s+(?:draft\s+)?"
    r"(?:contract|msa|master\s+services?\s+agreement|order\s+form)\b|"
    r"\b(?:legal|procurement)\s+(?:team\s+)?(?:is|are|has|have)\s+(?:now\s+)?(?:reviewing|reviewed|review)\s+"
    r"(?:the|your)\s+(?:contract|msa|terms|agreement)|"
    r"\b(?:contract|msa|agreement)\s+(?:negotiation|terms\s+(?:are\s+)?(?:under|in)\s+review)", re.I)
PROPOSAL = re.compile(r"\b(?:send|share|prepare|put\s+together)\s+(?:us\s+|me\s+|over\s+)*(?:a|an|your)\s+"
                      r"(?:formal\s+|written\s+|detailed\s+|first\s+)?(?:proposal|quote|quotation|offer)\b", re.I)
DEMO = re.compile(r"\b(?:schedule|book|set\s+up|arrange|organi[sz]e|see)\s+(?:a|the|an)\s+(?:product\s+|live\s+|"
                  r"technical\s+)?demo(?:nstration)?\b", re.I)

# The stage a signal moves to, by the words in the pipeline's stage names.
STAGE_WORDS = {"won": ("won",), "lost": ("lost",), "negotiation": ("negotiat", "contract", "legal", "commit"),
               "proposal": ("proposal", "quote"), "demo": ("demo",)}


def stage_signal(sentence: str) -> str | None:
    """won / lost / negotiation / proposal / demo when the sentence plainly says so."""
    if is_question(sentence) and not REQUEST.search(sentence):
        return None  # "could you send us the contract?" asks for a step; other questions state nothing
    if LOST.search(sentence):
        return None if DELAY.search(sentence) else "lost"  # "not moving forward until Q2" is a delay
    if WON.search(sentence) and not HEDGE.search(sentence) and not NEGATION.search(sentence):
        return "won"
    if NEGATION.search(sentence):
        return None
    for signal, rx in (("negotiation", NEGOTIATION), ("proposal", PROPOSAL), ("demo", DEMO)):
        if rx.search(sentence):
            return signal
    return None


def stage_for(signal: str, current: str, stage_names: list[str]) -> str | None:
    """The stage a signal means in this pipeline, when it is forward of `current` (never backwards)."""
    lowered = [s.lower() for s in stage_names]
    cur = current.lower()
    if any(w in cur for w in ("won", "lost")) or cur not in lowered:
        return None  # a closed deal stays closed; an unknown stage cannot be compared
    for i, name in enumerate(lowered):
        if any(word in name for word in STAGE_WORDS[signal]):
            if signal in ("won", "lost"):
                return stage_names[i]
            if "won" in name or "lost" in name:
                continue
            return stage_names[i] if i > lowered.index(cur) else None
    return None


# --- close dates -----------------------------------------------------------------------------------

CLOSE_CUE = re.compile(r"\b(?:sign(?!\s*-?\s*off)\w*|countersign\w*|signature|execute\s+the\s+(?:contract|agreement)|"
                       r"clos(?:e|ing)\s+(?:the\s+)?(?:deal|contract|this|it)|purchase\s+order|PO|"
                       r"contract\s+start|award\s+the\s+contract)\b", re.I)
NOT_CLOSE = re.compile(r"\b(?:go-?\s?live|going\s+live|launch\w*|roll-?\s?out|kick-?\s?off|start\w*|pilot|"
                       r"implementation|onboarding|deploy\w*|once|after|when|until|delivery|install\w*|nda|"
                       r"non-?disclosure|confidentiality|questionnaire|dpa|w-?9|security|registration)\b", re.I)
PLAN = re.compile(r"\b(?:plan\w*|expect\w*|aim\w*|target\w*|intend\w*|hope|on\s+track|schedul\w*|will|going\s+to|"
                  r"ready\s+to|want\s+to|like\s+to|can|should)\b|['’]ll\b", re.I)


def close_date(sentence: str, today: date) -> date | None:
    """The date the customer plans to sign ("we plan to sign by December 15"); a go-live is not one."""
    if is_question(sentence) or NEGATION.search(sentence) or not PLAN.search(sentence) or re.search(
            r"\b(?:please|could\s+you|can\s+you)\b|\bfor\s+(?:e-?)?signature\b", sentence, re.I):
        return None
    for cue in CLOSE_CUE.finditer(sentence):
        for hit in dates_in(sentence, today):
            between = sentence[cue.end():hit.start]
            if 0 <= hit.start - cue.end() <= 40 and not NOT_CLOSE.search(between) and hit.value > today:
                return hit.value
    return None


# --- tasks -----------------------------------------------------------------------------------------

TASK_VERBS = ("send", "resend", "re-send", "share", "forward", "email", "e-mail", "call", "ring", "ping",
              "reach out", "get back", "come back", "circle back", "report back", "follow up", "follow-up",
              "schedule", "reschedule", "book", "set up", "arrange", "organize", "organise", "prepare",
              "put together", "pull together", "draft", "write", "update", "revise", "review", "check", "confirm",
              "provide", "deliver", "return", "complete", "fill in", "fill out", "sign", "countersign", "submit",
              "upload", "introduce", "loop in", "look into", "investigate", "finalize", "finalise", "present",
              "walk", "demo", "run", "invite", "get", "answer", "respond", "reply", "clarify", "propose", "issue",
              "resolve", "fix", "add")
_VERBS = "|".join(re.escape(v).replace(r"\ ", r"\s+") for v in sorted(TASK_VERBS, key=len, reverse=True))
_ADVERBS = r"(?:(?:also|then|definitely|certainly|happily|gladly|quickly|just|still|please|kindly|try\s+to|" \
           r"make\s+sure\s+(?:to|(?:that\s+)?(?:I|we)\s+)|be\s+able\s+to)\s+)*"
COMMITMENT = re.compile(
    rf"\b(?:(?:I|we)\s*(?:['’]ll|\s+will|\s+shall|\s+can|\s+am\s+going\s+to|['’]m\s+going\s+to|\s+are\s+going\s+to|"
    rf"['’]re\s+going\s+to|\s+plan\s+to|\s+promise\s+to|\s+intend\s+to)|let\s+me)\s+{_ADVERBS}"
    rf"(?P<act>(?:{_VERBS})\b.*)$", re.I | re.S)
REQUEST = re.compile(
    rf"\b(?:(?:could|can|would|will)\s+you(?:\s+guys|\s+all)?|please|kindly|"
    rf"(?:we|I)(?:['’]d|\s+would)?\s+(?:need|ask|require|request|expect|like)\s+you\s+to|"
    rf"(?:we|I)(?:['’]d|\s+would)\s+(?:appreciate|love)\s+(?:it\s+)?if\s+you\s+could|"
    rf"(?:it\s+would|it['’]d|would)\s+be\s+(?:great|helpful|good|ideal)\s+if\s+you\s+could|"
    rf"you\s+(?:need|have)\s+to|make\s+sure\s+(?:to|you))\s+{_ADVERBS}(?P<act>(?:{_VERBS})\b.*)$", re.I | re.S)
_CUT = re.compile(r"\s*(?:[,;:()?!]|\.(?:\s|$)|\s[-–—]\s|\s(?:so(?!\s+(?:much|many|far)\b)|"
                  r"as\s+(?:we|I|you|they|discussed|agreed|promised|requested)|because|since|in\s+order\s+to|which|"
                  r"that\s+way|if|once|when|while|unless|and\s+(?:then|let|we|I|you|they|also)|then|ahead\s+of|"
                  r"prior\s+to|before|after|at\s+the\s+latest|latest|no\s+later\s+than|not\s+later\s+than)\b)", re.I)
_BACK = re.compile(r"\b(?P<v>get\s+back|come\s+back|circle\s+back|report\s+back|follow[\s-]+up|reach\s+out)\s+"
                   r"(?P<prep>to|with)\s+(?:you|us|me)\b", re.I)
_REACH = re.compile(r"^(?P<v>call|ring|ping|phone|email|e-mail|text|contact|meet|invite)\s+(?:you|us|me)\b", re.I)
_DETERMINERS = r"(?:the|a|an|this|that|these|those)"
_TRAILING = re.compile(r"(?:\s+(?:please|as\s+well|too|also|again|over|through|for\s+(?:you|us|me)|to\s+(?:you|us|me)|"
                       r"with\s+(?:you|us|me)|asap|today|now|by|on|before|until|till|due|for|to|the))+$", re.I)


def task_title(act: str, date_span: tuple[int, int] | None, counterpart: str | None, subject: str) -> str:
    """A short imperative from what follows "I'll" / "could you" ("send you the revised quote by thu" ->
    "Send revised quote"); the date phrase is cut out, "get back to you" names the customer."""
    if date_span:
        lead = re.search(r"(?:\b(?:no|not)\s+later\s+than|\bby|\bon|\bbefore|\buntil|\btill|\bdue|\bfor)\s*$",
                         act[:date_span[0]], re.I)
        act = act[:lead.start() if lead else date_span[0]] + " " + act[date_span[1]:]
    act = squash(act)
    cut = _CUT.search(act, 1)
    act = act[:cut.start()] if cut else act
    act = _BACK.sub(lambda b: squash(b["v"]) + (f" {b['prep'].lower()} {counterpart}" if counterpart else ""), act)
    if (reach := _REACH.match(act)) is not None:  # "call me" -> "Call Ines"
        act = f"{reach['v']} {counterpart or 'back'}" + act[reach.end():]
    else:
        act = re.sub(rf"^((?:{_VERBS}))\s+(?:you|us|me|it|them)\b(?!\s*(?:know|up|in)\b)", r"\1", act, flags=re.I)
        act = re.sub(rf"^((?:{_VERBS}))\s+{_DETERMINERS}\s+", r"\1 ", act, flags=re.I)
    act = re.sub(r"\s+(?:to|for|with)\s+(?:you|us|me)\b", "", act, flags=re.I)
    act = re.sub(r"\b(?:your|our|my)\s+", "", act, flags=re.I)
    act = _TRAILING.sub("", squash(act)).strip(" ,.;:-")
    if len(act) > 80:
        act = act[:80].rsplit(" ", 1)[0]
    if len(act.split()) < 2 and subject:
        act = f"{act} re: {subject}"
    return act[:1].upper() + act[1:]


def title_key(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower())
    return " ".join(w for w in words if w not in {"the", "a", "an", "to", "re", "for", "on", "of"})


def same_task(a: str, b: str) -> bool:
    """Two task titles mean the same to-do ("Send revised quote" ~ "send the revised quote to Borealis")."""
    ka, kb = title_key(a), title_key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    shorter = min(ka, kb, key=len)
    return len(shorter.split()) >= 2 and fuzz.token_set_ratio(ka, kb) >= 90
