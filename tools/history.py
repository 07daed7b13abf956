""""Why is Borealis in negotiation?": a record's changes, who made and approved each, and the evidence."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from store.services import history as history_service
from tools.base import ToolContext, as_uuid, read_tool
from tools.read import Kind

SHOWN = 15  # the latest changes say why a record is as it is now


class HistoryArgs(BaseModel):
    kind: Kind
    id: uuid.UUID = Field(description="The record's id, from find_records.")
    field: str | None = Field(None, description="Only changes to this field, e.g. stage_id, amount, close_date.")


def _show(value: Any) -> str:
    return "-" if value in (None, "", []) else str(value)


@read_tool(HistoryArgs)
def record_history(ctx: ToolContext, args: HistoryArgs) -> str:
    """Why a contact, company or deal is as it is: each change (before -> after), when, who made it and
    through which door, and for changes the user approved from a proposal who approved it and the evidence
    (the email, call or message it came from). Use it for "why is Borealis in negotiation?" (field stage_id)
    or "who changed the amount?"."""
    changes = history_service.changes(ctx.session, actor=ctx.actor, entity=args.kind, id=as_uuid(args.id),
                                      field=args.field)
    if not changes:
        return "No recorded changes" + (f" to {args.field}" if args.field else "") + " for that record."
    lines = [] if len(changes) <= SHOWN else [f"(the latest {SHOWN} of {len(changes)} changes)"]
    for c in changes[-SHOWN:]:
        what = "; ".join(f"{k}: {_show(before)} -> {_show(after)}" for k, (before, after) in list(c.fields.items())[:6])
        line = f"{c.at.astimezone(ctx.tz):%Y-%m-%d %H:%M} {c.action} by {c.by} via {c.surface}"
        lines.append(line + (f": {what}" if what and c.action != "create" else ""))
        if c.proposal is not None:
            lines.append(f"  approved by {c.approved_by or 'the user'} from the proposal '{c.proposal.summary}'")
            lines += [f"  evidence ({ev.get('source', 'source')}): \"{str(ev['quote'])[:300]}\""
                      for ev in (c.proposal.evidence or [])[:2] if ev.get("quote")]
        elif c.from_proposal:
            lines.append("  made from a proposal you cannot see")
        if c.note:
            lines.append(f"  note: {c.note}")
    return "\n".join(lines)
