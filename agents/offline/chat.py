"""The offline model: a deterministic stand-in for an LLM, so the CRM works with no keys.

A rep's message is matched against INTENTS, a list of (pattern -> handler) tried in order;
the first handler that accepts it answers with tool calls (validated by the tools' own
argument models) or with a sentence. Names are resolved as the acting user (see
agents/offline/records.py: another team's private records are never found). After tool
results it answers once, with them, and never calls tools again.

What it cannot do it says plainly: an ambiguous name gets a question listing the
candidates, an unknown one "I couldn't find ...", anything else the HELP text.
The handlers are in agents/offline/commands.py and questions.py; the date conventions in dates.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from pydantic import ValidationError

from agents.offline.commands import (
    TYPES,
    add_contact,
    complete_task,
    create_task,
    list_tasks,
    log_activity,
    note,
    task_with_date,
    update_deal,
    won_or_lost,
)
from agents.offline.phrases import ACTION_RE, normalize
from agents.offline.questions import (
    ANALYTICS_RE,
    WIN_PROB_RE,
    analytics,
    brief,
    chart,
    draft,
    forecast,
    forecast_changes,
    look_up,
    pipeline,
    win_probability,
)
from agents.offline.records import Reading, Unresolved
from agents.offline.replies import Call, Handler, Reply
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
    (_re(rf"^(?:please\s+)?(?:log(?:ged)?|record)\s+(?:a|an|my|the)?\s*(?P<type>{TYPES})s?\b\s*(?P<rest>.*)$"),
     log_activity),
    (_re(rf"^(?:just\s+)?(?:had|did)\s+(?:a|an|my|the)?\s*(?P<type>{TYPES})s?\b\s*(?P<rest>.*)$"), log_activity),
    (_re(rf"^(?P<type>{TYPES})\s+(?=with\b)(?P<rest>.+)$"), log_activity),
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
     lambda reading, m: "Which company or deal should I brief you on? Say it like \"brief me on Borealis\"."),
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
    (ACTION_RE, task_with_date),
]


# --- the model ----------------------------------------------------------------------------------


def interpret(reading: Reading) -> Reply:
    for pattern, handler in INTENTS:
        m = pattern.search(reading.text)
        if m is not None and (reply := handler(reading, m)) is not None:
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
        reading = Reading(ctx, normalize(raw))
        try:
            reply = interpret(reading) if reading.text else HELP
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
