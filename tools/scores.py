"""Learned scores as tools: a deal's chance to win, and the deals whose chance differs from the stage's."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from store.services import winprob
from tools.base import ToolContext, read_tool
from tools.read import money
from tools.scope import (
    END_HELP,
    REP_HELP,
    SCOPE_HELP,
    START_HELP,
    TEAM_HELP,
    Period,
    ScopeName,
    resolve_period,
    resolve_scope,
    with_heading,
)

NO_MODEL = ("No win-probability model has been trained for this workspace yet (an admin runs "
            "`crm win-probability train`); until then the forecast weighs deals by their stage's probability.")


class WinProbabilityArgs(BaseModel):
    deal_id: uuid.UUID | None = Field(None, description="One deal (its id from find_records): its chance and why.")
    period: Period | None = Field(None, description="Without deal_id: open deals closing in this period "
                                                    "(default: all open deals in scope).")
    start: date | None = Field(None, description=START_HELP)
    end: date | None = Field(None, description=END_HELP)
    scope: ScopeName | None = Field(None, description=SCOPE_HELP)
    rep: str | None = Field(None, description=REP_HELP)
    team: str | None = Field(None, description=TEAM_HELP)
    limit: int = Field(10, ge=1, le=50, description="Without deal_id: how many deals to list.")


def _pct(p: float) -> str:
    return f"{p * 100:.0f}%"


def _reasons(chance: winprob.DealChance) -> str:
    return "; ".join(f"{r.text} ({r.effect:+.2f})" for r in chance.reasons) or "no single strong reason"


@read_tool(WinProbabilityArgs)
def win_probability(ctx: ToolContext, args: WinProbabilityArgs) -> str:
    """A deal's chance to win, learned from this workspace's won and lost deals, with its top reasons
    (each reason's effect in log-odds points: + raises the chance), next to the stage's probability the
    forecast uses. Without deal_id: the open deals in scope (and period), largest first, with both numbers,
    and the pipeline weighted both ways; use it for "which deals are at risk?". Quote the numbers as given."""
    if args.deal_id is not None:
        one = winprob.deal_chance(ctx.session, actor=ctx.actor, deal_id=args.deal_id, now=ctx.now)
        if one is None:
            return NO_MODEL
        return "\n".join([f"{one.name} (id={one.deal_id}), {one.stage}, "
                          f"{one.amount or 0:,.0f} {one.currency}, closes {one.close_date or '-'}:",
                          *_verdict(ctx, one), f"Top reasons: {_reasons(one)}."])
    answered = resolve_scope(ctx, args.scope, args.rep, args.team)
    start = end = None
    label = "all open deals"
    if args.period is not None or args.start is not None:
        start, end, label = resolve_period(ctx, args.period or "this_quarter", args.start, args.end)
        label = f"open deals closing {label}"
    chances = winprob.scope_chances(ctx.session, actor=ctx.actor, scope=answered.scope, start=start, end=end,
                                    now=ctx.now)
    if chances is None:
        return NO_MODEL
    if not chances:
        return with_heading(answered, [f"No {label} in scope {answered.label}."])
    model_w: dict[str, Decimal] = defaultdict(Decimal)
    stage_w: dict[str, Decimal] = defaultdict(Decimal)
    for c in chances:
        model_w[c.currency] += (c.amount or Decimal(0)) * Decimal(str(round(c.probability, 4)))
        stage_w[c.currency] += (c.amount or Decimal(0)) * Decimal(str(round(c.baseline, 4)))
    trusted = chances[0].trusted
    out = [f"Win probability, {label}, scope {answered.label}: {len(chances)} deals.",
           f"Weighted by the learned chance: {money(dict(model_w))}; by stage probability: {money(dict(stage_w))}.",
           "" if trusted else "Note: the learned model did not beat the stage probabilities on held-out deals, so "
                              "the forecast keeps the stage's; read the learned chance as a second opinion.",
           f"Largest {min(args.limit, len(chances))}:"]
    for c in chances[: args.limit]:
        out.append(f"- {c.name}: learned {_pct(c.probability)} vs stage {_pct(c.baseline)} ({c.stage}, "
                   f"{c.amount or 0:,.0f} {c.currency}, closes {c.close_date or '-'}); {_reasons(c)} (id={c.deal_id})")
    risky = sorted((c for c in chances if c.probability <= c.baseline / 2), key=lambda c: c.probability / c.baseline)
    if risky:
        out.append("At risk (learned chance half the stage's or less): "
                   + ", ".join(f"{c.name} {_pct(c.probability)} vs {_pct(c.baseline)}" for c in risky[:8]) + ".")
    return with_heading(answered, [line for line in out if line])


def _verdict(ctx: ToolContext, one: winprob.DealChance) -> list[str]:
    report = winprob.stored_report(ctx.session, workspace_id=ctx.actor.workspace_id) or {}
    learned = report.get("history", {}).get("closed_deals")
    source = f"learned from {learned} closed deals" if learned else "learned from this workspace's history"
    if one.trusted:
        return [f"Chance to win: {_pct(one.probability)} ({source}); its stage alone says {_pct(one.baseline)}."]
    return [f"Chance to win: {_pct(one.baseline)} (the stage's probability: the learned model did not beat it on "
            f"held-out deals); the learned model says {_pct(one.probability)} ({source})."]
