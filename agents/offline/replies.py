"""What an intent handler answers: tool calls or a sentence, and the helpers that build them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from agents.offline.records import Reading, Ref

Call = tuple[str, dict[str, Any]]
Reply = str | list[Call]
Handler = Callable[[Reading, re.Match[str]], Reply | None]  # None: not mine after all, try the next


def tool_args(**values: Any) -> dict[str, Any]:
    """Tool arguments without the unset ones (the tools' defaults apply)."""
    return {k: v for k, v in values.items() if v is not None and v != []}


def only_id(refs: list[Ref], kind: str) -> str | None:
    ids = [r.id for r in refs if r.kind == kind]
    return ids[0] if len(ids) == 1 else None


def joined(names: list[str], word: str = "and") -> str:
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + f" {word} " + names[-1]
