"""Read tools: they answer at once, with only what the acting user may read."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from store.models import Deal
from store.models.enums import TaskStatus
from store.services import analytics as analytics_service
from store.services import crud, details, org, spec_for
from store.services import dashboard as dashboard_service
from store.services import forecast_changes as changes_service
from store.services import pipeline as pipeline_service
from store.services import search as search_service
from store.services import timeline as timeline_service
from tools.base import ToolContext, as_uuid, read_tool
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

Kind = Literal["contact", "company", "deal"]


def money(amounts: dict[str, Decimal]) -> str:
    if not amounts:
        return "0"
    return ", ".join(f"{amount:,.0f} {currency}" for currency, amount in sorted(amounts.items()))


class FindArgs(BaseModel):
    query: str = Field(description="A name, email address, domain or phone number; typos are tolerated.")
    kind: Kind | None = Field(None, description="Only this kind of record.")


@read_tool(FindArgs)
def find_records(ctx: ToolContext, args: FindArgs) -> str:
    """Find contacts, companies and deals by name, email, domain or phone.

    Returns candidates with their ids. If more than one could be meant, list them and ask
    the user which one; never guess between candidates.
    """
    kinds = (args.kind,) if args.kind else ("contact", "company", "deal")
    hits = search_service.search(ctx.session, actor=ctx.actor, q=args.query, kinds=kinds, limit=8)
    if not hits:
        return f"No contact, company or deal matches '{args.query}'. Ask the user to check the name."
    lines = [f"- {h.kind} {h.label} ({h.detail}) id={h.id}" for h in hits]
    exact = [h for h in hits if h.score >= 100]
    note = "" if len(exact) == 1 or len(hits) == 1 else "\nSeveral match: ask the user which one they mean."
    return f"Matches for '{args.query}':\n" + "\n".join(lines) + note


class GetArgs(BaseModel):
    kind: Kind
    id: uuid.UUID = Field(description="The record's id, from find_records.")


def describe(ctx: ToolContext, kind: str, obj: Any) -> list[str]:
    session = ctx.session
    if kind == "contact":
        company = details.company_by_id(session, obj.company_id)
        return [f"contact {obj.full_name} id={obj.id}", f"title: {obj.title or '-'}",
                f"company: {company.name if company else '-'}", f"email: {obj.email or '-'}",
                f"phone: {obj.phone or '-'}", f"lifecycle: {obj.lifecycle_stage.value}"]
    if kind == "company":
        return [f"company {obj.name} id={obj.id}", f"domain: {obj.domain or '-'}",
                f"industry: {obj.industry or '-'}", f"employees: {obj.employee_count or '-'}"]
    stage = details.stage_by_id(session, obj.stage_id)
    company = details.company_by_id(session, obj.company_id)
    owner = org.user_by_id(session, obj.owner_id)
    people = details.deal_people(session, obj.id)
    return [f"deal {obj.name} id={obj.id}", f"company: {company.name if company else '-'}",
            f"stage: {stage.name if stage else '?'}",
            f"amount: {f'{obj.amount:,.0f} {obj.currency}' if obj.amount is not None else '-'}",
            f"close date: {obj.close_date or '-'}", f"forecast category: {obj.forecast_category.value}",
            f"next step: {obj.next_step or '-'}", f"owner: {owner.name if owner else '-'}",
            "people: " + (", ".join(f"{c.full_name} ({role.value}{', ' + c.title if c.title else ''})"
                                    for c, role in people) or "-")]


@read_tool(GetArgs)
def get_record(ctx: ToolContext, args: GetArgs) -> str:
    """Get one contact, company or deal with its details and its latest timeline entries."""
    obj = crud.get(ctx.session, spec_for(args.kind), actor=ctx.actor, id=as_uuid(args.id))
    lines = describe(ctx, args.kind, obj)
    items = timeline_service.timeline(ctx.session, actor=ctx.actor, kind=args.kind, record_id=obj.id, limit=8)
    lines.append("timeline (newest first):" if items else "timeline: nothing yet")
    for item in items:
        lines.append(f"  {item.at.astimezone(ctx.tz):%Y-%m-%d} {item.type}: {item.title or (item.body or '')[:80]}"
                     f"{' [' + item.status + ']' if item.status else ''} (id={item.id})")
    return "\n".join(lines)


class TasksArgs(BaseModel):
    status: Literal["open", "done"] = "open"
    due_within_days: int | None = Field(None, ge=0, description="Only tasks due within this many days.")


@read_tool(TasksArgs)
def list_my_tasks(ctx: ToolContext, args: TasksArgs) -> str:
    """List the user's own tasks (open by default), soonest due first, overdue marked."""
    due_before = ctx.now + timedelta(days=args.due_within_days) if args.due_within_days is not None else None
    tasks = details.my_tasks(ctx.session, actor=ctx.actor, status=TaskStatus(args.status), due_before=due_before)
    if not tasks:
        return f"You have no {args.status} tasks" + (f" due within {args.due_within_days} days." if
                                                      args.due_within_days is not None else ".")
    lines = []
    for t in tasks:
        due = t.due_at.astimezone(ctx.tz).strftime("%a %Y-%m-%d") if t.due_at else "no due date"
        overdue = " OVERDUE" if t.due_at and t.due_at < ctx.now and t.status == TaskStatus.open else ""
        lines.append(f"- {t.title} (due {due}{overdue}) id={t.id}")
    return f"Your {args.status} tasks:\n" + "\n".join(lines)


class PipelineArgs(BaseModel):
    scope: ScopeName | None = Field(None, description=SCOPE_HELP)
    rep: str | None = Field(None, description=REP_HELP)
    team: str | None = Field(None, description=TEAM_HELP)


@read_tool(PipelineArgs)
def pipeline_summary(ctx: ToolContext, args: PipelineArgs) -> str:
    """The open pipeline by stage: number of deals, total amount and probability-weighted amount."""
    answered = resolve_scope(ctx, args.scope, args.rep, args.team)
    lines = pipeline_service.pipeline_by_stage(ctx.session, actor=ctx.actor, scope=answered.scope)
    if not lines:
        return with_heading(answered, [f"No open deals in scope {answered.label}."])
    out = [f"Open pipeline ({answered.label}):"]
    for line in lines:
        out.append(f"- {line.stage}: {line.deals} deals, {money(line.amount)} (weighted {money(line.weighted)})")
    total = sum(line.deals for line in lines)
    out.append(f"Total: {total} open deals.")
    return with_heading(answered, out)


class ForecastArgs(BaseModel):
    period: Period = "this_quarter"
    start: date | None = Field(None, description=START_HELP)
    end: date | None = Field(None, description=END_HELP)
    scope: ScopeName | None = Field(None, description=SCOPE_HELP)
    rep: str | None = Field(None, description=REP_HELP)
    team: str | None = Field(None, description=TEAM_HELP)


@read_tool(ForecastArgs)
def forecast_summary(ctx: ToolContext, args: ForecastArgs) -> str:
    """The forecast for a period (a month, quarter or year; or start and end dates): commit, best case,
    pipeline, weighted and closed-won, quota attainment, with the largest deals counted."""
    answered = resolve_scope(ctx, args.scope, args.rep, args.team)
    start, end, label = resolve_period(ctx, args.period, args.start, args.end)
    fc = pipeline_service.forecast(ctx.session, actor=ctx.actor, scope=answered.scope, start=start, end=end)
    out = [f"Forecast {label}, scope {answered.label}:",
           f"- closed won: {money(fc.closed_won)} ({fc.won_deals} deals)",
           f"- commit: {money(fc.commit)}", f"- best case: {money(fc.best_case)}",
           f"- pipeline: {money(fc.pipeline)}", f"- weighted open: {money(fc.weighted)} ({fc.open_deals} open deals)"]
    att = dashboard_service.attainment(fc.closed_won, fc.commit, fc.quota, fc.quota_currency)
    if att is not None:
        out.append(f"- quota: {fc.quota:,.0f} {fc.quota_currency}; attainment {att.closed_won:.0%} (closed won), "
                   f"{att.with_commit:.0%} with commit")
    if fc.deals:
        out.append("Largest deals counted:")
        out += [f"  - {d['name']}: {d['amount'] or 0:,.0f} {d['currency']}, {d['stage']}, {d['forecast_category']}, "
                f"closes {d['close_date']} (id={d['id']})" for d in fc.deals]
    return with_heading(answered, out)


class ForecastChangesArgs(BaseModel):
    period: Period = "this_quarter"
    start: date | None = Field(None, description=START_HELP)
    end: date | None = Field(None, description=END_HELP)
    scope: ScopeName | None = Field(None, description=SCOPE_HELP)
    rep: str | None = Field(None, description=REP_HELP)
    team: str | None = Field(None, description=TEAM_HELP)
    since: date | None = Field(None, description="Compare with the forecast as it stood at the start of this day. "
                                                 "Default: 7 days ago.")


@read_tool(ForecastChangesArgs)
def forecast_changes(ctx: ToolContext, args: ForecastChangesArgs) -> str:
    """What changed in the forecast since a date, deal by deal: why did the forecast drop (or grow), what
    changed since last week, which deals slipped. Gives the totals then -> now (closed won, commit, best
    case, pipeline, weighted) and each deal that moved, largest change first: new, won, lost, pushed out
    of or pulled into the period, stage, amount, category, owner; with the amount it added or removed
    and its id."""
    answered = resolve_scope(ctx, args.scope, args.rep, args.team)
    start, end, label = resolve_period(ctx, args.period, args.start, args.end)
    since_day = args.since or ctx.today - timedelta(days=7)
    since = datetime.combine(since_day, time.min, tzinfo=ctx.tz)
    fc = changes_service.forecast_changes(ctx.session, actor=ctx.actor, scope=answered.scope, start=start, end=end,
                                          since=since)
    out = [f"Forecast {label}, scope {answered.label}: changes since {since_day} (then -> now)"]
    for bucket, title in (("closed_won", "closed won"), ("commit", "commit"), ("best_case", "best case"),
                          ("pipeline", "pipeline"), ("weighted", "weighted open")):
        out.append(f"- {title}: {money(getattr(fc.then, bucket))} -> {money(getattr(fc.now, bucket))}")
    out.append(f"- total counted: {money(fc.then.total)} -> {money(fc.now.total)} (net {_signed(fc.net)})")
    if not fc.deals:
        out.append("No deal in this period and scope changed since then.")
        return with_heading(answered, out)
    out.append(f"Deals that changed ({len(fc.deals)}), largest change first:")
    for deal in fc.deals:
        out.append(f"- {deal.name} ({deal.owner}): {'; '.join(c.text for c in deal.changes)}, "
                   f"{_deal_effect(deal)} (id={deal.id})")
    return with_heading(answered, out)


def _signed(amounts: dict[str, Decimal]) -> str:
    shown = {c: a for c, a in amounts.items() if a} or amounts
    if not shown:
        return "0"
    return ", ".join(f"{a:+,.0f} {c}" for c, a in sorted(shown.items()))


def _deal_effect(deal: changes_service.DealChange) -> str:
    """"-62,000 USD from commit", "+48,000 USD to best case", "commit -> closed won"."""
    old = deal.old_bucket.replace("_", " ") if deal.old_bucket else None
    new = deal.new_bucket.replace("_", " ") if deal.new_bucket else None
    amount = _signed(deal.delta)
    if old == new:
        if not any(deal.delta.values()):
            return f"no change to {old}" if old else "not counted then or now"
        return f"{amount} in {old}" if old else "not counted then or now"
    if old is None:
        return f"{amount} to {new}"
    if new is None:
        return f"{amount} from {old}"
    return f"{amount} ({old} -> {new})"

class BriefArgs(BaseModel):
    kind: Literal["company", "deal"]
    id: uuid.UUID


@read_tool(BriefArgs)
def brief(ctx: ToolContext, args: BriefArgs) -> str:
    """A meeting brief for a company or deal: the deal(s), the people and their roles, the last
    interactions with dates, open tasks, what was promised and risks (quoted from emails, notes
    and calls, with citations). Use it for "brief me on X" / "brief me for my call with X"."""
    session = ctx.session
    obj = crud.get(session, spec_for(args.kind), actor=ctx.actor, id=as_uuid(args.id))
    if args.kind == "company":
        deals = details.company_deals(session, actor=ctx.actor, company_id=obj.id)
        company = obj
    else:
        deals = [obj]
        company = details.company_by_id(session, obj.company_id)
    out = [f"Brief: {company.name if company else obj.name} (as of {ctx.today})"]
    open_deals = [d for d in deals if d.closed_at is None]
    for deal in open_deals or deals[:3]:
        out += ["", *describe(ctx, "deal", deal)]
    record_kind, record_id = (args.kind, obj.id)
    items = timeline_service.timeline(session, actor=ctx.actor, kind=record_kind, record_id=record_id, limit=20)
    past = [i for i in items if i.kind != "task"][:3]
    out.append("")
    out.append("Last interactions:" if past else "Last interactions: none logged")
    out += [f"- {i.at.astimezone(ctx.tz):%Y-%m-%d} {i.type}: {i.title or (i.body or '')[:100]} (id={i.id})"
            for i in past]
    open_tasks = [i for i in items if i.kind == "task" and i.status == "open"]
    out.append("Open tasks:" if open_tasks else "Open tasks: none")
    out += [f"- {i.title} due {i.at.astimezone(ctx.tz):%Y-%m-%d} (id={i.id})" for i in open_tasks]
    from tools.briefing import memory_sections

    main_deal = (open_deals or deals or [None])[0]
    promised, said_risks, sources = memory_sections(
        ctx, name=company.name if company else obj.name, company_id=company.id if company else None,
        deal_id=main_deal.id if main_deal is not None else None)
    out.append("What was promised:" if promised else "What was promised: nothing found in emails, notes or calls")
    out += promised
    risks = [f"- {r}" for r in _risks(ctx, open_deals, past)] + said_risks
    out.append("Risks:" if risks else "Risks: none spotted")
    out += risks
    if sources:
        out.append("Sources (from memory):")
        out += sources
    return "\n".join(out)


def _risks(ctx: ToolContext, deals: list[Deal], past: list[Any]) -> list[str]:
    risks = []
    if past and (ctx.now - past[0].at).days > 21:
        risks.append(f"no interaction for {(ctx.now - past[0].at).days} days")
    for deal in deals:
        if deal.close_date and deal.close_date < ctx.today:
            risks.append(f"{deal.name}: close date {deal.close_date} has passed")
        roles = details.deal_roles(ctx.session, deal.id)
        if roles and not {"economic_buyer", "decision_maker"} & {r.value for r in roles}:
            risks.append(f"{deal.name}: no economic buyer or decision maker identified")
        if not deal.next_step:
            risks.append(f"{deal.name}: no next step set")
    return risks


class DraftArgs(BaseModel):
    contact_id: uuid.UUID
    purpose: str = Field(description="What the email is for, e.g. 'follow up on the demo'.")
    deal_id: uuid.UUID | None = None


@read_tool(DraftArgs)
def draft_email(ctx: ToolContext, args: DraftArgs) -> str:
    """Draft an email to a contact. Returns the draft only; nothing is sent. To send it, the user
    must ask, and send_email will propose it for approval."""
    contact = crud.get(ctx.session, spec_for("contact"), actor=ctx.actor, id=as_uuid(args.contact_id))
    deal = crud.get(ctx.session, spec_for("deal"), actor=ctx.actor, id=as_uuid(args.deal_id)) if args.deal_id else None
    me = org.user_by_id(ctx.session, ctx.actor.user_id)
    subject = f"Following up: {deal.name}" if deal else f"Following up: {args.purpose}"
    next_step = f"\n\nAs a next step, I suggest: {deal.next_step}." if deal and deal.next_step else ""
    body = (f"Hi {contact.first_name or contact.full_name},\n\nThank you for your time. I wanted to {args.purpose}."
            f"{next_step}\n\nBest regards,\n{me.name if me else ''}")
    to = f"{contact.full_name} <{contact.email or 'no email on file'}>"
    return f"Draft (not sent) to {to}\nSubject: {subject}\n\n{body}"


class AnalyticsArgs(BaseModel):
    metric: Literal["win_rate", "deal_size", "sales_cycle", "stage_conversion", "days_in_stage", "stale_deals",
                    "activity_counts"]
    period: Period = "this_quarter"
    start: date | None = Field(None, description=START_HELP)
    end: date | None = Field(None, description=END_HELP)
    scope: ScopeName | None = Field(None, description=SCOPE_HELP)
    rep: str | None = Field(None, description=REP_HELP)
    team: str | None = Field(None, description=TEAM_HELP)
    by: Literal["source", "owner"] | None = Field(None, description="win_rate only: one line per deal source or "
                                                                     "per owner.")
    days: int = Field(14, ge=1, le=365, description="stale_deals only: no activity for at least this many days.")


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def _days_text(stats: analytics_service.DaysStats) -> str:
    if not stats.deals:
        return "no deals"
    return f"average {stats.average} days, median {stats.median} days ({stats.deals} deals)"


def _refs(refs: list[analytics_service.DealRef]) -> list[str]:
    return [f"  - {r.name}: {r.amount or 0:,.0f} {r.currency}, {r.stage} (id={r.id})" for r in refs]


@read_tool(AnalyticsArgs)
def pipeline_analytics(ctx: ToolContext, args: AnalyticsArgs) -> str:
    """Pipeline analytics for a period (default this quarter; or start and end) and scope, with the deals
    behind the numbers. metric: win_rate (won / (won + lost) of deals closed in the period; by source or
    owner), deal_size (average and median won amount per currency), sales_cycle (days from created to won
    and to lost), stage_conversion (of the deals that entered each stage in the period, how many later
    reached a later stage, were won, were lost), days_in_stage (average and median days in each stage, over
    stays that ended in the period), stale_deals (open deals with no activity for `days` days, oldest first;
    the period is ignored), activity_counts (activities per rep and type). Quote the numbers as given."""
    answered = resolve_scope(ctx, args.scope, args.rep, args.team)
    return with_heading(answered, [_analytics_text(ctx, args, answered)])


def _analytics_text(ctx: ToolContext, args: AnalyticsArgs, answered: pipeline_service.Answered) -> str:
    start, end, label = resolve_period(ctx, args.period, args.start, args.end)
    kw: dict[str, Any] = {"actor": ctx.actor, "scope": answered.scope, "tz": ctx.tz}
    session = ctx.session
    if args.metric == "stale_deals":
        stale = analytics_service.stale_deals(session, today=ctx.today, days=args.days, **kw)
        head = f"Stale deals, scope {answered.label}: {stale.total} open deals with no activity for {args.days}+ days"
        if not stale.deals:
            return head + "."
        lines = [head + (f" (oldest {len(stale.deals)} shown):" if stale.total > len(stale.deals) else ":")]
        lines += [f"- {s.name} ({s.owner}, {s.stage}, {s.amount or 0:,.0f} {s.currency}): {s.days} days since "
                  f"{'last activity' if s.last_activity else 'created, no activity'} (id={s.id})"
                  for s in stale.deals]
        return "\n".join(lines)
    kw.update(start=start, end=end)
    head = f"{args.metric.replace('_', ' ').capitalize()}, {label}, scope {answered.label}"
    if args.metric == "win_rate":
        wr = analytics_service.win_rate(session, by=args.by, **kw)
        t = wr.total
        out = [f"{head}: {_pct(t.rate)} ({t.won} won, {t.lost} lost of {t.closed} closed)"]
        if args.by:
            out += [f"- {line.group}: {_pct(line.rate)} ({line.won} won, {line.lost} lost)" for line in wr.lines]
        if wr.deals:
            out += ["Largest deals counted:", *_refs(wr.deals)]
        return "\n".join(out)
    if args.metric in ("deal_size", "sales_cycle"):
        dc = analytics_service.deal_size_and_cycle(session, **kw)
        if args.metric == "sales_cycle":
            out = [f"{head}:", f"- created to won: {_days_text(dc.won_cycle)}",
                   f"- created to lost: {_days_text(dc.lost_cycle)}"]
        elif not dc.won_amount:
            out = [f"{head}: no won deals with an amount."]
        else:
            out = [f"{head} (won deals):"]
            out += [f"- {s.currency}: average {s.average:,.2f}, median {s.median:,.2f}, total {s.total:,.2f} "
                    f"({s.deals} deals)" for s in dc.won_amount]
        if dc.deals:
            out += ["Largest won deals:", *_refs(dc.deals)]
        return "\n".join(out)
    if args.metric == "stage_conversion":
        conv = analytics_service.stage_conversion(session, **kw)
        if not conv:
            return f"{head}: no deal entered an open stage in this period."
        out = [f"{head} (deals that entered each stage in the period, and what they did since):"]
        for c in conv:
            ids = ", ".join(str(i) for i in c.deal_ids[:5])
            out.append(f"- {c.stage} ({c.pipeline}): {c.entered} entered, {c.advanced} moved on "
                       f"({_pct(c.conversion)}), {c.won} won ({_pct(c.win_rate)}), {c.lost} lost; e.g. ids {ids}")
        return "\n".join(out)
    if args.metric == "days_in_stage":
        times = analytics_service.days_in_stage(session, **kw)
        if not times:
            return f"{head}: no deal left a stage in this period."
        out = [f"{head} (stays that ended in the period):"]
        out += [f"- {t.stage} ({t.pipeline}): average {t.average_days} days, median {t.median_days} days "
                f"({t.stays} stays); longest: ids {', '.join(str(i) for i in t.deal_ids[:3])}" for t in times]
        return "\n".join(out)
    reps = analytics_service.activity_counts(session, **kw)
    if not reps:
        return f"{head}: no activities logged."
    out = [f"{head}: {sum(r.total for r in reps)} activities"]
    out += [f"- {r.owner}: {r.total} ({', '.join(f'{n} {t}' for t, n in sorted(r.by_type.items()))})" for r in reps]
    return "\n".join(out)
