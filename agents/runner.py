"""What channels call: send a message to a conversation, resume it after decisions.

A conversation (LangGraph thread) belongs to one user; channels build thread ids that
name that user (`<surface>:<user id>:<their thread>`), so nobody can read or continue
someone else's conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command
from sqlalchemy.orm import Session, sessionmaker

from agents.graph import AgentContext, build_graph
from agents.models import Brain, RemoteBrain
from store import normalize
from store.actor import Actor
from store.db import unit_of_work
from store.models import Approval
from store.models.enums import ApprovalStatus
from store.services import approvals as approval_service


def thread_key(surface: str, user_id: Any, thread: str) -> str:
    return f"{surface}:{user_id}:{thread}"


def thread_for(kind: str, rep_id: Any, source_id: Any) -> str:
    """The ingestion conversation of one email or call for its rep."""
    return thread_key(kind, rep_id, str(source_id))


@dataclass
class Turn:
    thread_id: str
    replies: list[str] = field(default_factory=list)  # what the assistant said in this turn
    proposals: list[Approval] = field(default_factory=list)  # pending in this conversation
    # Files the tools made in this turn (charts): {"path", "filename", "title", "mimetype"}.
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return bool(self.proposals)


def _files(messages: list[AnyMessage]) -> list[dict[str, Any]]:
    return [f for m in messages if isinstance(m, ToolMessage) and isinstance(m.artifact, dict)
            for f in m.artifact.get("files", [])]


def _texts(messages: list[AnyMessage]) -> list[str]:
    return [str(m.content) for m in messages if isinstance(m, AIMessage) and str(m.content).strip()]


class AgentRunner:
    def __init__(self, *, sessions: sessionmaker[Session], checkpointer: BaseCheckpointSaver[Any],
                 brain: Brain, ingest_brain: Brain | None = None) -> None:
        self.sessions = sessions
        self.brain = brain
        # Emails and calls: an LLM reads them itself; offline, the deterministic extractor does.
        if ingest_brain is None:
            from agents.ingest import IngestBrain

            ingest_brain = brain if isinstance(brain, RemoteBrain) else IngestBrain()
        self.ingest_brain = ingest_brain
        self.graph = build_graph().compile(checkpointer=checkpointer)

    def _config(self, thread_id: str) -> dict[str, Any]:
        normalize.storable({"thread": thread_id})  # a client names its threads; PostgreSQL refuses NUL in them
        return {"configurable": {"thread_id": thread_id}}

    def _context(self, actor: Actor, thread_id: str, source: str, source_ref: dict[str, Any] | None) -> AgentContext:
        from agents.ingest import INGEST_SOURCES

        brain = self.ingest_brain if source in INGEST_SOURCES else self.brain
        return AgentContext(actor=actor, sessions=self.sessions, brain=brain, thread_id=thread_id,
                            source=source, source_ref=source_ref or {})

    def pending(self, actor: Actor, thread_id: str) -> list[Approval]:
        with unit_of_work(self.sessions, readonly=True) as session:
            rows = approval_service.for_thread(session, actor=actor, thread_id=thread_id)
            return [a for a in rows if a.status == ApprovalStatus.pending]

    def history(self, thread_id: str) -> list[AnyMessage]:
        state = self.graph.get_state(self._config(thread_id))
        return list(state.values.get("messages", [])) if state.values else []

    def send(self, *, actor: Actor, thread_id: str, text: str | HumanMessage, source: str = "chat",
             source_ref: dict[str, Any] | None = None) -> Turn:
        events = list(self.stream(actor=actor, thread_id=thread_id, text=text, source=source, source_ref=source_ref))
        return events[-1]["turn"]  # type: ignore[no-any-return]

    def stream(self, *, actor: Actor, thread_id: str, text: str | HumanMessage, source: str = "chat",
               source_ref: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Events as they happen: {"type": "token"|"message", "text"}, then {"type": "turn", "turn"}."""
        config = self._config(thread_id)
        if self.graph.get_state(config).next:
            waiting = self.pending(actor, thread_id)
            if waiting:
                yield {"type": "turn", "turn": Turn(thread_id, [
                    f"{len(waiting)} proposal(s) in this conversation wait for a decision; approve, edit or "
                    "reject them first, or start a new conversation."], waiting)}
                return
            self._resume(actor, thread_id)  # decided but never resumed (e.g. a crash in between)
        if isinstance(text, str):
            normalize.storable({"text": text})  # the checkpoint keeps it, and PostgreSQL refuses NUL
        before = len(self.history(thread_id))
        context = self._context(actor, thread_id, source, source_ref)
        message = text if isinstance(text, HumanMessage) else HumanMessage(text)
        for mode, payload in self.graph.stream({"messages": [message]}, config, context=context,
                                               stream_mode=["messages", "updates"]):
            if mode == "messages":
                chunk = payload[0]
                if isinstance(chunk, AIMessageChunk) and isinstance(chunk.content, str) and chunk.content:
                    yield {"type": "token", "text": chunk.content}
            elif mode == "updates" and "agent" in payload:
                for text_ in _texts(payload["agent"]["messages"]):
                    yield {"type": "message", "text": text_}
        yield {"type": "turn", "turn": self._turn(actor, thread_id, before)}

    def resume(self, *, actor: Actor, thread_id: str) -> Turn | None:
        """Continue a conversation once none of its proposals is pending; None while some still are."""
        if not self.graph.get_state(self._config(thread_id)).next or self.pending(actor, thread_id):
            return None
        before = len(self.history(thread_id))
        self._resume(actor, thread_id)
        return self._turn(actor, thread_id, before)

    def _resume(self, actor: Actor, thread_id: str) -> None:
        surface = thread_id.split(":", 1)[0]  # thread_key(): the conversation's surface comes first
        self.graph.invoke(Command(resume="decided"), self._config(thread_id),
                          context=self._context(actor, thread_id, surface, None))

    def _turn(self, actor: Actor, thread_id: str, before: int) -> Turn:
        new = self.history(thread_id)[before:]
        waiting = self.pending(actor, thread_id)
        return Turn(thread_id, _texts(new), waiting, _files(new))
