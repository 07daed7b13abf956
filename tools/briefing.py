"""The memory part of a meeting brief: what was promised and what worries the customer, each
quoted from an email, note or call with its citation.

Deterministic on purpose (it runs with the offline model too): the passages memory finds
for the account are split into sentences, and a sentence counts as a promise or a risk by
its wording. An LLM reading the brief can say more; it cannot say less than the sources.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from mail.body import sentences
from tools.base import ToolContext

PROMISE = re.compile(
    r"\b(?:i['’]ll|i will|we['’]ll|we will|i can|we can|let me|i promise|we promise|promised|"
    r"will (?:send|share|get back|follow up|confirm|prepare|deliver))\b", re.IGNORECASE)
RISK = re.compile(
    r"\b(?:concern(?:ed|s)?|worr(?:y|ied)|risk|competitor|cheaper|budget (?:cut|freeze)|delay(?:ed)?|postpone|"
    r"on hold|security review|legal review|blocker|block(?:ed|ing)|push ?back|too expensive|not convinced|"
    r"another vendor|re-?evaluat\w*)\b", re.IGNORECASE)
# Sentences addressed to a machine are data, not material for a brief.
INJECTION = re.compile(r"\b(?:ignore (?:all |any )?(?:previous|prior) instructions|system prompt|ai assistant)\b",
                       re.IGNORECASE)
QUERIES = ("commitments, promises and next steps we agreed", "concerns, risks, objections and blockers")


def memory_sections(ctx: ToolContext, *, name: str, company_id: uuid.UUID | None,
                    deal_id: uuid.UUID | None) -> tuple[list[str], list[str], list[str]]:
    """(promised lines, risk lines, source lines), each citing where it came from.

    Memory that cannot be reached costs the brief these sections, not the brief itself."""
    from memory import get_memory
    from tools.recall import citation

    try:
        memory = get_memory()
        scope: dict[str, Any] = {"company_id": company_id} if company_id else {"deal_id": deal_id}
        found = {}
        for query in QUERIES:
            for hit in memory.search(ctx.session, ctx.actor, f"{name}: {query}", k=6, **scope):
                found.setdefault(hit.chunk_id or (hit.id, hit.detail[:40]), hit)
    except Exception as exc:  # noqa: BLE001  (the rest of the brief stands on SQL)
        return [], [], [f"- memory unavailable: {str(exc)[:200]} (`crm reindex` rebuilds it)"]
    hits = sorted(found.values(), key=lambda h: (h.date is not None, h.date), reverse=True)
    promised: list[str] = []
    risks: list[str] = []
    for hit in hits:
        for _, sentence in sentences(hit.detail):
            line = " ".join(sentence.split())
            if len(line) < 12 or INJECTION.search(line):
                continue
            if PROMISE.search(line) and len(promised) < 3:
                promised.append(f"- “{line[:220]}” {citation(ctx, hit)}")
            elif RISK.search(line) and len(risks) < 2:
                risks.append(f"- “{line[:220]}” {citation(ctx, hit)}")
    sources = [f"- {citation(ctx, hit)}" for hit in hits[:4]]
    return promised, risks, sources
