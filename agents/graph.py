"""The LangGraph agent: model <-> tools, with writes paused for approval.

    START -> agent -> (tool calls?) -> tools -> (proposals pending?) -> await_approval -> agent
                   \\-> END                   \\-> agent

`build_graph()` returns the uncompiled builder so tests compile it with their own
checkpointer. The acting user, the database and the model come in through the runtime
context, never through state the model could write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from sqlalchemy.orm import Session, sessionmaker

from agents import gate
from agents.models import Brain, RemoteBrain
from store.actor import Actor
from store.db import unit_of_work
from store.models.enums import ApprovalStatus
from store.services import approvals as approval_service
from tools import TOOLS, ToolContext, error_sentence

# Model calls allowed for one user message before the agent stops (a loop guard).
MAX_MODEL_CALLS = 8


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


@dataclass
class AgentContext:
    actor: Actor
    sessions: sessionmaker[Session]
    brain: Brain
    thread_id: str
    # Where the conversation happens (chat, slack, email...) and the pointer into it.
    source: str = "chat"
    source_ref: dict[str, Any] = field(default_factory=dict)


def _tool_ctx(runtime: Runtime[AgentContext], session: Session) -> ToolContext:
    return ToolContext(actor=runtime.context.actor, session=session, thread_id=runtime.context.thread_id)


def _since_last_human(messages: list[AnyMessage]) -> list[AnyMessage]:
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return messages[i + 1:]
    return messages


def _last_tool_request(messages: list[AnyMessage]) -> tuple[AIMessage | None, set[str]]:
    """The latest AI message with tool calls, and the ids of the calls already answered."""
    answered: set[str] = set()
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            answered.add(message.tool_call_id)
        elif isinstance(message, AIMessage) and message.tool_calls:
            return message, answered
    return None, answered


def agent(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    calls = sum(isinstance(m, AIMessage) for m in _since_last_human(state["messages"]))
    if calls >= MAX_MODEL_CALLS:
        return {"messages": [AIMessage(content="I stopped here: this took more steps than it should. "
                                       "Please rephrase or split the request.")]}
    brain = runtime.context.brain
    if isinstance(brain, RemoteBrain):  # an LLM: read what it needs, then call it with no transaction open
        with unit_of_work(runtime.context.sessions, readonly=True) as session:
            system = brain.prepare(_tool_ctx(runtime, session))
        return {"messages": [brain.complete(system, state["messages"])]}
    # The offline model looks names up as it goes (reads only).
    with unit_of_work(runtime.context.sessions, readonly=True) as session:
        reply = brain.respond(state["messages"], _tool_ctx(runtime, session))
    return {"messages": [reply]}


def tools(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    request, _ = _last_tool_request(state["messages"])
    assert request is not None
    human = next((m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)), None)
    out: list[ToolMessage] = []
    for call in request.tool_calls:
        call_id, name = call["id"] or "", call["name"]
        tool = TOOLS.get(name)
        args = dict(call["args"])
        quote = args.pop(EVIDENCE_ARG, None)
        evidence = [_evidence(runtime.context, human, quote if isinstance(quote, str) else None)]
        artifact = None
        # A read tool reads (on SQLite without the write lock, so a slow one blocks nobody);
        # a write tool stores its proposal.
        with unit_of_work(runtime.context.sessions, readonly=tool is None or tool.kind == "read") as session:
            ctx = _tool_ctx(runtime, session)
            if tool is None:
                content = f"Error: there is no tool '{name}'. Available: {', '.join(TOOLS)}."
            elif tool.kind == "read":
                try:
                    result = tool.run(ctx, tool.parse(args))
                    content = str(result)
                    # Files a read tool made (a chart) travel beside the text, for the channel to show.
                    files = getattr(result, "files", None)
                    artifact = {"files": files} if files else None
                except Exception as exc:  # noqa: BLE001  (a sentence for the model, not a crash)
                    content = error_sentence(exc)
            else:
                proposed = gate.propose(ctx, tool_name=name, raw_args=args, tool_call_id=call_id,
                                        evidence=evidence)
                if proposed.pending:
                    continue  # answered by await_approval once a human decided
                content = proposed.message
        out.append(ToolMessage(content=content, tool_call_id=call_id, name=name, artifact=artifact))
    return {"messages": out}


# A write tool call may carry the words that justify it; it is evidence, not an argument.
EVIDENCE_ARG = "evidence_quote"


def _evidence(context: AgentContext, human: HumanMessage | None, quote: str | None) -> dict[str, Any]:
    """Why a proposal exists: the user's message in a chat; in an email or a call, the quoted
    sentence and where it was found (or a plain flag when it is not in the source verbatim)."""
    base = {"source": context.source, **context.source_ref}
    passages = (human.additional_kwargs or {}).get("passages") if human else None
    if passages is None:
        return base | {"quote": quote or (str(human.content) if human else "")}
    if not quote:
        return base | {"quote": "", "verified": False, "note": "the model gave no quote for this"}
    where = locate(quote, passages)
    if where is None:
        return base | {"quote": quote, "verified": False, "note": "not found verbatim in the source"}
    return base | {"quote": quote, "verified": True, **where}


def await_approval(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    # Nothing before interrupt() has side effects: on resume this node runs again from here.
    request, answered = _last_tool_request(state["messages"])
    assert request is not None
    waiting = [c for c in request.tool_calls if c["id"] not in answered]
    ids = [c["id"] or "" for c in waiting]
    ctx = runtime.context
    while True:
        with unit_of_work(ctx.sessions, readonly=True) as session:
            rows = approval_service.for_thread(session, actor=ctx.actor,
                                               thread_id=ctx.thread_id, tool_call_ids=ids)
            pending = [str(a.id) for a in rows if a.status == ApprovalStatus.pending]
        if not pending:
            break
        interrupt({"thread_id": ctx.thread_id, "approvals": pending})
    with unit_of_work(ctx.sessions, readonly=True) as session:
        rows = approval_service.for_thread(session, actor=ctx.actor,
                                           thread_id=ctx.thread_id, tool_call_ids=ids)
        by_call = {a.tool_call_id: gate.outcome_message(session, a) for a in rows}
    return {"messages": [ToolMessage(content=by_call.get(c["id"], "Error: the proposal was lost."),
                                     tool_call_id=c["id"] or "", name=c["name"]) for c in waiting]}


def _after_agent(state: AgentState) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else END


def _after_tools(state: AgentState) -> str:
    request, answered = _last_tool_request(state["messages"])
    if request is not None and any(c["id"] not in answered for c in request.tool_calls):
        return "await_approval"
    return "agent"


def build_graph() -> StateGraph[AgentState, AgentContext]:
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_node("await_approval", await_approval)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", _after_agent, ["tools", END])
    graph.add_conditional_edges("tools", _after_tools, ["await_approval", "agent"])
    graph.add_edge("await_approval", "agent")
    return graph


# --- evidence: where a quote was found (an ingestion's passages) ---------------------------------------------


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def locate(quote: str, passages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The locator of the passage holding `quote` verbatim (whitespace and case aside), or None."""
    needle = _squash(quote)
    if not needle:
        return None
    for passage in passages:
        text = str(passage.get("text", ""))
        if needle in _squash(text):
            locator = dict(passage.get("locator") or {})
            offset = text.find(quote)
            if offset >= 0:
                locator["offset"] = offset
            return locator
    return None

