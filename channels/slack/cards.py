"""Block Kit for proposals: the approval card, its decided form, and the Edit modal.

A card carries the proposal's id in its buttons' values; everything else is read from
the store when a button is clicked, so a card can never approve something it does not show
(an edit re-previews the proposal and the card is redrawn from the stored row).
"""

from __future__ import annotations

import json
import types
import typing
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from channels.slack.text import clip, mrkdwn
from store.models import Approval
from store.models.enums import ApprovalStatus
from tools import TOOLS

APPROVE, EDIT, REJECT = "approval_approve", "approval_edit", "approval_reject"
EDIT_VIEW = "approval_edit_view"


def _value(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "_(empty)_"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return clip(str(value), 300)


def diff_lines(diff: list[dict[str, Any]]) -> str:
    lines = []
    for change in diff[:20]:
        field = str(change.get("field", "")).replace("_", " ")
        before, after = change.get("before"), change.get("after")
        if before in (None, "", "-", []):  # a new record: only what it will be
            lines.append(f"• *{field}*: {_value(after)}")
        else:
            lines.append(f"• *{field}*: ~{_value(before)}~ → {_value(after)}")
    if len(diff) > 20:
        lines.append(f"… and {len(diff) - 20} more changes")
    return "\n".join(lines)


def evidence_line(evidence: list[dict[str, Any]]) -> str | None:
    """Why the agent proposes it, with where the words came from."""
    for item in evidence:
        quote = str(item.get("quote") or "").strip()
        source = item.get("source", "")
        if not quote:
            continue
        where = {"email": "the email", "call": "the call", "slack": "your message", "chat": "your message",
                 "api": "your message"}.get(source, source or "the source")
        if item.get("part") == "attachment" and item.get("filename"):
            where = f"the attachment {item['filename']}"
        elif item.get("start") is not None:
            seconds = int(float(item["start"]))
            speaker = f", {item['speaker']}" if item.get("speaker") else ""
            where = f"the call at {seconds // 60}:{seconds % 60:02d}{speaker}"
        flag = "" if item.get("verified", True) else " ⚠️ _not found word for word in the source_"
        if item.get("sender_authenticated") is False:
            flag += " ⚠️ _the email's sender could not be authenticated_"
        return f"From {where}: “{clip(quote, 400)}”{flag}"
    return None


def _decided_line(approval: Approval, decider: str | None) -> str:
    who = decider or "someone"
    kind = (approval.decision or {}).get("kind")
    if approval.status == ApprovalStatus.executed:
        how = "Edited and approved" if kind == "edit" else "Auto-approved" if kind == "auto" else "Approved"
        return f"✅ {how} by {who}: done."
    if approval.status == ApprovalStatus.failed:
        return f"⚠️ Approved by {who} but it failed: {clip(approval.error or '', 500)} Nothing was changed."
    if approval.status == ApprovalStatus.approved:
        return f"⏳ Approved by {who}; applying it…"
    if kind == "respond":
        return f"💬 {who} answered instead: “{clip(str(approval.decision.get('text', '')), 300)}”"
    reason = (approval.decision or {}).get("text")
    return f"❌ Rejected by {who}" + (f": “{clip(str(reason), 300)}”" if reason else ".")


def card(approval: Approval, *, requester: str | None = None, decider: str | None = None) -> dict[str, Any]:
    """The card as `chat.postMessage`/`chat.update` arguments: {"text", "blocks"}."""
    pending = approval.status == ApprovalStatus.pending
    title = f"*{'Proposal' if pending else 'Proposal decided'}:* {mrkdwn(approval.summary)}"
    blocks: list[dict[str, Any]] = [{"type": "section", "block_id": f"summary:{approval.id}",
                                     "text": {"type": "mrkdwn", "text": clip(title, 2900)}}]
    if approval.diff:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(diff_lines(approval.diff), 2900)}})
    context = []
    why = evidence_line(approval.evidence or [])
    if why:
        context.append(why)
    if pending and approval.approver_role == "manager":
        context.append(f"Needs a manager's approval{f' (asked by {requester})' if requester else ''}.")
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(c, 2900)} for c in context]})
    if pending:
        value = str(approval.id)
        buttons = [{"type": "button", "action_id": APPROVE, "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary", "value": value}]
        if approval.tool in TOOLS and editable_fields(approval.tool):  # nothing to edit: no Edit button
            buttons.append({"type": "button", "action_id": EDIT, "text": {"type": "plain_text", "text": "Edit"},
                            "value": value})
        buttons.append({"type": "button", "action_id": REJECT, "text": {"type": "plain_text", "text": "Reject"},
                        "style": "danger", "value": value})
        blocks.append({"type": "actions", "block_id": f"decide:{approval.id}", "elements": buttons})
    else:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _decided_line(approval, decider)}]})
    text = f"Proposal: {approval.summary}" if pending else f"{_decided_line(approval, decider)} {approval.summary}"
    return {"text": clip(text, 3000), "blocks": blocks}


# --- the Edit modal ------------------------------------------------------------------------------

Kind = Literal["text", "long_text", "number", "integer", "date", "datetime", "choice", "list", "bool"]
LONG_FIELDS = {"body", "description", "next_step", "text", "content", "lost_reason"}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type inside Optional[...], whether None is allowed)."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            return inner[0], True
    return annotation, False


def _kind(name: str, annotation: Any) -> tuple[Kind, list[str]] | None:
    """How a field is edited in the modal; None for what a form cannot sensibly hold (ids, line items)."""
    t, _ = _unwrap(annotation)
    if t is uuid.UUID or (isinstance(t, type) and issubclass(t, BaseModel)):
        return None
    if get_origin(t) is list:
        (item,) = get_args(t) or (str,)
        return ("list", []) if item is str else None
    if get_origin(t) is Literal:
        return "choice", [str(a) for a in get_args(t)]
    if isinstance(t, type) and issubclass(t, Enum):
        return "choice", [str(m.value) for m in t]
    if t is bool:
        return "bool", ["yes", "no"]
    if t is date:
        return "date", []
    if t is datetime:
        return "datetime", []
    if t is Decimal or t is float:
        return "number", []
    if t is int:
        return "integer", []
    if t is str:
        return ("long_text" if name in LONG_FIELDS else "text"), []
    return None


def editable_fields(tool_name: str) -> list[tuple[str, Kind, list[str], bool]]:
    """(field, kind, choices, optional) for each field of the tool's arguments a person can edit."""
    model = TOOLS[tool_name].args
    out = []
    for name, info in model.model_fields.items():
        kind = _kind(name, info.annotation)
        if kind is not None:
            out.append((name, kind[0], kind[1], not info.is_required()))
    return out


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit)}


def _element(name: str, kind: Kind, choices: list[str], current: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"action_id": name}
    if kind == "date":
        element["type"] = "datepicker"
        if current:
            element["initial_date"] = str(current)[:10]
    elif kind == "choice" or kind == "bool":
        element["type"] = "static_select"
        element["options"] = [{"text": _plain(c), "value": c} for c in choices[:100]]
        value = ("yes" if current else "no") if kind == "bool" and current is not None else current
        if value is not None and str(value) in choices:
            element["initial_option"] = {"text": _plain(str(value)), "value": str(value)}
    elif kind in ("number", "integer"):
        element["type"] = "number_input"
        element["is_decimal_allowed"] = kind == "number"
        if current is not None:
            element["initial_value"] = str(current)
    else:
        element["type"] = "plain_text_input"
        element["multiline"] = kind == "long_text"
        if kind == "datetime":
            element["placeholder"] = _plain("2026-12-03T15:00:00+01:00")
        if current not in (None, "", []):
            element["initial_value"] = ", ".join(current) if isinstance(current, list) else str(current)
    return element


def edit_modal(approval: Approval, *, card_channel: str | None, card_ts: str | None,
               thread_ts: str | None) -> dict[str, Any]:
    """A modal holding the proposal's fields, pre-filled with what the agent proposed."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn",
                                                                  "text": clip(mrkdwn(approval.summary), 2900)}}]
    for name, kind, choices, optional in editable_fields(approval.tool):
        blocks.append({"type": "input", "block_id": name, "optional": optional,
                       "label": _plain(name.replace("_", " ").capitalize(), 2000),
                       "element": _element(name, kind, choices, approval.args.get(name))})
    meta = {"approval": str(approval.id), "channel": card_channel, "ts": card_ts, "thread_ts": thread_ts}
    return {"type": "modal", "callback_id": EDIT_VIEW, "private_metadata": json.dumps(meta),
            "title": _plain("Edit proposal", 24), "submit": _plain("Approve"), "close": _plain("Cancel"),
            "blocks": blocks}


def _read(kind: Kind, state: dict[str, Any]) -> Any:
    if kind == "date":
        return state.get("selected_date")
    if kind in ("choice", "bool"):
        option = state.get("selected_option")
        value = option.get("value") if option else None
        return (value == "yes") if kind == "bool" and value is not None else value
    value = state.get("value")
    if value is None or not str(value).strip():
        return None
    if kind == "list":
        return [v.strip() for v in str(value).split(",") if v.strip()]
    if kind == "integer":
        try:
            return int(str(value).strip())
        except ValueError:
            return str(value)  # pydantic names what is wrong with it
    if kind == "number":
        try:
            return str(Decimal(str(value).strip()))
        except InvalidOperation:
            return str(value)
    return str(value)


def changed_args(approval: Approval, values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The arguments the modal changed (a cleared optional field becomes None)."""
    changes: dict[str, Any] = {}
    for name, kind, _, _ in editable_fields(approval.tool):
        state = values.get(name, {}).get(name)
        if state is None:
            continue
        new, old = _read(kind, state), approval.args.get(name)
        if _same(new, old):
            continue
        changes[name] = new
    return changes


def _same(new: Any, old: Any) -> bool:
    if new in (None, "", []) and old in (None, "", []):
        return True
    if new is None or old is None:
        return False
    try:
        return Decimal(str(new)) == Decimal(str(old))
    except (InvalidOperation, ValueError):
        return str(new) == (", ".join(old) if isinstance(old, list) and not isinstance(new, list) else str(old)) \
            or new == old
