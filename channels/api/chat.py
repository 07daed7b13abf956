"""Chat with the agent over HTTP, and the approval queue: list the proposals waiting for me, decide them."""

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from agents.runner import AgentRunner, Turn, thread_key
from channels.api.deps import get_actor, get_session
from flows.decisions import decide_proposal
from store.actor import Actor
from store.db import unit_of_work
from store.errors import NotFound
from store.models import Approval
from store.schemas import read_schema
from store.services import approvals as approval_service

router = APIRouter(tags=["chat"])
# GET /approvals/waiting: its own router, mounted before the approvals' CRUD routes (GET /approvals/{id}).
waiting_router = APIRouter(tags=["chat"])
ApprovalOut = read_schema(Approval, "ApprovalOut", {"requested_by_name": (str | None, None)})


def approval_out(session: Session, approval: Approval) -> Any:
    """A proposal as the page shows it, with the name of who asked."""
    requester = approval.requester
    return ApprovalOut.model_validate(approval).model_copy(
        update={"requested_by_name": requester.name if requester else None})


def get_runner(request: Request) -> AgentRunner:
    app = request.app
    if getattr(app.state, "agent", None) is None:
        from flows.runtime import agent_runner

        app.state.agent = agent_runner(app.state.sessionmaker)
    return app.state.agent  # type: ignore[no-any-return]


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)


class FileOut(BaseModel):
    title: str
    filename: str
    mimetype: str
    url: str = Field(description="GET it with the same bearer token (a chart the agent drew).")


class TurnOut(BaseModel):
    thread: str
    replies: list[str]
    proposals: list[ApprovalOut]  # type: ignore[valid-type]
    waiting: bool
    files: list[FileOut] = []


CHART = re.compile(r"^[0-9a-f]{64}\.png$")  # store.files.keep names: <sha256>.png


def _file_out(file: dict[str, Any]) -> dict[str, Any] | None:
    name = Path(file.get("path", "")).name
    if not CHART.match(name):
        return None
    return {"title": file.get("title") or name, "filename": file.get("filename") or name,
            "mimetype": file.get("mimetype") or "image/png", "url": f"/api/v1/charts/{name}"}


def _turn_out(runner: AgentRunner, thread: str, turn: Turn) -> dict[str, Any]:
    with unit_of_work(runner.sessions, readonly=True) as session:  # short: names of who asked
        proposals = [approval_out(session, a) for a in turn.proposals]
    files = [out for out in (_file_out(f) for f in turn.files) if out]
    return {"thread": thread, "replies": turn.replies, "waiting": turn.waiting, "proposals": proposals,
            "files": files}


@router.get("/charts/{name}", summary="A chart image the agent drew in a conversation", response_class=FileResponse)
def chart_file(name: str, actor: Actor = Depends(get_actor)) -> Any:
    """Charts are named by the hash of their bytes, so only someone shown the chart can name it."""
    from store.settings import get_settings

    path = get_settings().files_dir / "charts" / name
    if not CHART.match(name) or not path.is_file():
        raise NotFound(f"no chart {name}")
    return FileResponse(path, media_type="image/png")


@router.post("/chat/threads/{thread}/messages", response_model=TurnOut,
             summary="Send a message; the reply and any proposals it made (stream=true for SSE)")
def send_message(thread: str, body: MessageIn, stream: bool = False, actor: Actor = Depends(get_actor),
                 runner: AgentRunner = Depends(get_runner)) -> Any:
    key = thread_key("api", actor.user_id, thread)
    if not stream:
        return _turn_out(runner, thread, runner.send(actor=actor, thread_id=key, text=body.text))

    def events() -> Iterator[str]:
        for event in runner.stream(actor=actor, thread_id=key, text=body.text):
            if event["type"] == "turn":
                payload = TurnOut.model_validate(_turn_out(runner, thread, event["turn"])).model_dump(mode="json")
                yield f"event: turn\ndata: {json.dumps(payload)}\n\n"
            else:
                yield f"event: {event['type']}\ndata: {json.dumps({'text': event['text']})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


class HistoryOut(BaseModel):
    thread: str
    messages: list[dict[str, str]]
    proposals: list[ApprovalOut]  # type: ignore[valid-type]


@router.get("/chat/threads/{thread}", response_model=HistoryOut,
            summary="A conversation so far, with every proposal it made (decided ones too)")
def history(thread: str, session: Session = Depends(get_session), actor: Actor = Depends(get_actor),
            runner: AgentRunner = Depends(get_runner)) -> Any:
    key = thread_key("api", actor.user_id, thread)
    messages = [{"role": m.type, "text": str(m.content)} for m in runner.history(key)
                if m.type in ("human", "ai") and str(m.content).strip()]
    return {"thread": thread, "messages": messages,
            "proposals": [approval_out(session, a) for a in approval_service.for_thread(
                session, actor=actor, thread_id=key)]}


@waiting_router.get("/approvals/waiting", response_model=list[ApprovalOut],
                    summary="Proposals waiting for my decision (the approval queue)")
def waiting_for_me(session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    return [approval_out(session, a) for a in approval_service.pending(session, actor=actor)]


@waiting_router.get("/inbox", response_model=list[ApprovalOut], deprecated=True,
                    summary="Deprecated alias of GET /approvals/waiting (proposals waiting for my decision)",
                    description="The old path of `GET /api/v1/approvals/waiting`, kept so existing clients go on "
                                "working; it answers the same. \"Inbox\" now means the mail inbox only.")
def waiting_for_me_old_path(session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    return waiting_for_me(session, actor)


class DecisionIn(BaseModel):
    kind: Literal["approve", "edit", "reject", "respond"]
    args: dict[str, Any] | None = Field(None, description="For edit: the arguments to change.")
    reason: str | None = Field(None, description="For reject: why (the agent is told).")
    message: str | None = Field(None, description="For respond: your answer to the agent.")


class DecisionOut(BaseModel):
    approval: ApprovalOut  # type: ignore[valid-type]
    turn: TurnOut | None


@router.post("/approvals/{id}/decision", response_model=DecisionOut,
             summary="Approve, edit, reject or respond to a proposal (it runs at most once)")
def decide(id: uuid.UUID, body: DecisionIn, request: Request, session: Session = Depends(get_session),
           actor: Actor = Depends(get_actor), runner: AgentRunner = Depends(get_runner)) -> Any:
    # Release this request's connection first: the decision and the conversation use their own
    # sessions, and a transaction held here would make them wait on it (SQLite has one write lock).
    session.close()
    decided = decide_proposal(runner, actor=actor, approval_id=id, kind=body.kind, args=body.args,
                              reason=body.reason, message=body.message, sessions=request.app.state.sessionmaker)
    approval, turn = decided.approval, None
    out = ApprovalOut.model_validate(approval).model_copy(
        update={"requested_by_name": decided.requester.name if decided.requester else None})
    if decided.turn is not None and approval.thread_id:
        turn = _turn_out(runner, approval.thread_id.split(":", 2)[-1], decided.turn)
    return {"approval": out, "turn": turn}
