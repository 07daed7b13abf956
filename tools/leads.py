"""Lead tools: explain a contact's lead score (read) and propose routing unassigned leads (write)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from store.errors import ValidationFailed
from store.services import lead_routing, lead_scoring
from tools.base import Preview, ToolContext, as_uuid, read_tool, write_tool


class LeadScoreArgs(BaseModel):
    contact_id: uuid.UUID = Field(description="The contact's id, from find_records.")


@read_tool(LeadScoreArgs)
def lead_score(ctx: ToolContext, args: LeadScoreArgs) -> str:
    """Explain a contact's lead score (0-100, learned from which past contacts converted): its fit part
    (title, company size, industry, region, source) and engagement part (meetings, calls, emails, inbound,
    recency), with the top reasons in plain words. Use it for "why is this lead scored 72?" or "is she a good
    lead?"."""
    explanation = lead_scoring.explain_lead(ctx.session, ctx.actor, as_uuid(args.contact_id), now=ctx.now)
    return explanation.text()


class RouteLeadsArgs(BaseModel):
    contact_ids: list[uuid.UUID] = Field(
        default_factory=list,
        description="Only these leads (ids from find_records); empty: every unassigned lead.")
    limit: int = Field(50, ge=1, le=500, description="At most this many leads, oldest first.")


def _plan(ctx: ToolContext, a: RouteLeadsArgs) -> list[lead_routing.Assignment]:
    return lead_routing.route_unassigned(ctx.session, actor=ctx.actor, now=ctx.now,
                                         contact_ids=[as_uuid(c) for c in a.contact_ids] or None,
                                         limit=a.limit, dry_run=True)


def _preview_route(ctx: ToolContext, a: RouteLeadsArgs) -> Preview:
    plan = _plan(ctx, a)
    if not plan:
        raise ValidationFailed("there are no unassigned leads to route" + (" among those contacts"
                                                                           if a.contact_ids else ""))
    diff = [{"field": p.contact + (f" ({p.company})" if p.company else ""), "before": "unassigned",
             "after": f"{p.user}: {p.reason}" if p.assigned else f"stays unassigned: {p.reason}"} for p in plan]
    assigned = sum(p.assigned for p in plan)
    summary = f"Route {len(plan)} unassigned lead{'s' if len(plan) != 1 else ''} by the territory rules: " \
              f"{assigned} to reps" + (f", {len(plan) - assigned} stay unassigned" if assigned < len(plan) else "")
    return Preview(summary=summary, diff=diff)


@write_tool(RouteLeadsArgs, preview=_preview_route)
def route_leads(ctx: ToolContext, a: RouteLeadsArgs) -> dict[str, Any]:
    """Route unassigned leads to reps by the territory rules (region, industry, company size), round-robin
    within a territory and within each rep's capacity. Managers and admins only. It is proposed for approval
    with each lead -> rep and the reason; once approved, routing runs again at that moment (capacity and the
    rotation as they are then) and every assignment is logged with its reason."""
    done = lead_routing.route_unassigned(ctx.session, actor=ctx.actor, now=ctx.now,
                                         contact_ids=[as_uuid(c) for c in a.contact_ids] or None, limit=a.limit)
    assigned = [d for d in done if d.assigned]
    return {"kind": "lead_assignments", "assigned": len(assigned), "unassigned": len(done) - len(assigned),
            "label": f"{len(assigned)} of {len(done)} leads assigned",
            "assignments": [{"contact_id": str(d.contact_id), "user_id": str(d.user_id) if d.user_id else None,
                             "reason": d.reason} for d in done]}
