"""The tool registry: each tool declared once, typed, marked read or write.

A tool's docstring is the model's contract and its pydantic model the arguments the
model may set. Everything the model must not choose (who is acting, the workspace,
today's date, the time zone, the conversation) is in `ToolContext`, which the channel
builds and the model never sees.

Read tools run at once. Write tools never write when called by the agent: they
`preview` a proposal (a readable diff), and `execute` runs only once a human approved
it (agents/gate.py).
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import CRMError
from store.types import utcnow

log = logging.getLogger("crm.tools")


@dataclass
class ToolContext:
    """What a tool knows that the model cannot set."""

    actor: Actor
    session: Session
    thread_id: str | None = None
    now: datetime = field(default_factory=utcnow)

    @property
    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.actor.timezone)
        except (KeyError, ValueError):
            return ZoneInfo("UTC")

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()


@dataclass
class Preview:
    """What a human sees before approving a write."""

    summary: str  # one line: "Move Borealis – Fleet Telematics to Negotiation"
    diff: list[dict[str, Any]]  # [{"field", "before", "after"}]
    record: dict[str, Any] | None = None  # {"kind", "id", "label"} of the record changed
    # Set by a tool for a named case that needs more than the requester's own approval.
    needs_role: Literal["manager"] | None = None
    reason: str | None = None


@dataclass
class ToolOutput:
    """A read tool's answer with files for the user (a chart image): the model reads `text`;
    the graph hands `files` to the channel, which shows or uploads them next to the answer.
    Each file: {"path": absolute path, "filename", "title", "mimetype"}."""

    text: str
    files: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.text


@dataclass
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    kind: Literal["read", "write"]
    run: Callable[[ToolContext, Any], Any]  # read: the answer (str or ToolOutput); write: execute after approval
    preview: Callable[[ToolContext, Any], Preview] | None = None

    def parse(self, raw: dict[str, Any]) -> BaseModel:
        return self.args.model_validate(raw)

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema of this tool."""
        params = self.args.model_json_schema()
        params.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": params}}


TOOLS: dict[str, Tool] = {}


def _register(kind: Literal["read", "write"], args: type[BaseModel],
              preview: Callable[[ToolContext, Any], Preview] | None = None) -> Callable[[Callable[..., Any]], Tool]:
    def wrap(fn: Callable[..., Any]) -> Tool:
        doc = inspect.cleandoc(fn.__doc__ or "")
        if not doc:
            raise TypeError(f"tool {fn.__name__} needs a docstring: it is the model's contract")
        tool = Tool(name=fn.__name__, description=doc, args=args, kind=kind, run=fn, preview=preview)
        if tool.name in TOOLS:
            raise ValueError(f"tool {tool.name} declared twice")
        TOOLS[tool.name] = tool
        return tool

    return wrap


def read_tool(args: type[BaseModel]) -> Callable[[Callable[..., Any]], Tool]:
    return _register("read", args)


def write_tool(args: type[BaseModel], *, preview: Callable[[ToolContext, Any], Preview]) -> Callable[
        [Callable[..., Any]], Tool]:
    return _register("write", args, preview)


def error_sentence(exc: Exception) -> str:
    """Any failure as one sentence the model can act on (never a stack trace)."""
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()]
        return "Invalid arguments: " + "; ".join(parts) + ". Fix them and call the tool again."
    if isinstance(exc, CRMError):
        return f"Error: {exc.message}."
    log.error("tool failed unexpectedly", exc_info=exc)  # the operator gets the traceback
    return f"Error: the tool failed unexpectedly ({type(exc).__name__}); tell the user it did not work."


def label_of(obj: Any) -> str:
    for attr in ("name", "full_name", "title", "subject", "number"):
        value = getattr(obj, attr, None)
        if value:
            return str(value)
    return str(getattr(obj, "id", ""))


def ref(kind: str, obj: Any) -> dict[str, Any]:
    return {"kind": kind, "id": str(obj.id), "label": label_of(obj)}


def as_uuid(value: str | uuid.UUID) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
