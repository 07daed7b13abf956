"""Activities, notes and tasks around the deals and the prospects."""

from __future__ import annotations

import random
from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import store.demo.words as words
from store.demo.world import SOURCE, WEST_REPS, WON, Ctx, Plan
from store.models import (
    Activity,
    ActivityTarget,
    Company,
    Contact,
    Deal,
    Note,
    Task,
    User,
)
from store.models.enums import (
    ActivityType,
    Direction,
    Priority,
    TaskStatus,
)


def _work_time(rng: random.Random, start: datetime, end: datetime, tz: str) -> datetime:
    """A random moment in (start, end), moved into working hours on a weekday where possible."""
    span = int((end - start).total_seconds())
    t = start + timedelta(seconds=rng.randint(1, max(1, span - 1)))
    zone = ZoneInfo(tz)
    day = t.astimezone(zone).date()
    if day.weekday() >= 5:
        day -= timedelta(days=day.weekday() - 4)
    local = datetime.combine(day, time(rng.randint(8, 17), rng.choice((0, 15, 30, 45))), zone)
    candidate = local.astimezone(UTC)
    return candidate if start < candidate < end else t


def _stage_at(plan: Plan, at: datetime) -> int:
    i = bisect_right([e.at for e in plan.events], at) - 1
    return plan.events[max(0, i)].pos


def add_activity(
    ctx: Ctx,
    kind: ActivityType,
    at: datetime,
    owner: User,
    subject: str,
    body: str,
    *,
    contacts: list[Contact],
    company: Company,
    deal: Deal | None = None,
    **extra: Any,
) -> Activity:
    """An activity and its targets: each contact, the deal and the company, one row each."""
    act = Activity(type=kind, subject=subject, body=body, occurred_at=at, owner_id=owner.id, source=SOURCE, **extra)
    ctx.add(act, at)
    for contact in contacts:
        ctx.add(ActivityTarget(activity_id=act.id, contact_id=contact.id))
        if contact.last_activity_at is None or at > contact.last_activity_at:
            contact.last_activity_at = at
        ctx.seen(contact.id, at)
    if deal is not None:
        ctx.add(ActivityTarget(activity_id=act.id, deal_id=deal.id))
        if deal.last_activity_at is None or at > deal.last_activity_at:
            deal.last_activity_at = at
    ctx.add(ActivityTarget(activity_id=act.id, company_id=company.id))
    ctx.seen(company.id, at)
    return act


def _fill(ctx: Ctx, template: str, plan: Plan | None, contact: Contact, company: Company, pos: int) -> str:
    rng = ctx.rng
    step = rng.choice(words.NEXT_STEPS[min(pos, 4)]).format(first=contact.first_name)
    amount = plan.deal.amount if plan else Decimal(rng.choice([10, 15, 20, 25, 40]) * 1000)
    return template.format(
        first=contact.first_name,
        co=company.name.split(" ")[0],
        theme=(plan.theme if plan else rng.choice(words.DEAL_THEMES)).lower(),
        amount=f"${amount:,.0f}" if amount is not None else "the budget",  # a deal may have no amount
        step=step,
        step_lower=step[0].lower() + step[1:],
        minutes=rng.choice([20, 25, 30, 40, 45]),
        risk=rng.choice(words.RISKS),
        competitor=rng.choice(words.COMPETITORS),
    )


def _one_activity(
    ctx: Ctx, plan: Plan | None, company: Company, owner: User, pool: list[Contact], at: datetime, pos: int
) -> None:
    rng = ctx.rng
    kinds = [ActivityType.email, ActivityType.call, ActivityType.meeting, ActivityType.note]
    kind = rng.choices(kinds, weights=[40, 30, 18, 12])[0]
    if plan is None and kind in (ActivityType.meeting, ActivityType.note):
        kind = ActivityType.call  # prospecting: nothing to meet about yet
    contact = pool[0] if rng.random() < 0.6 else rng.choice(pool)
    contacts = [contact]
    templates = words.BODIES[kind.value]
    replies = [t for i, t in enumerate(templates) if i != 2]  # template 2: voicemail / inbound email
    extra: dict[str, Any] = {}
    body = rng.choice(templates)
    if kind == ActivityType.call:
        outcome = rng.choices(["connected", "left voicemail", "no answer"], weights=[70, 20, 10])[0]
        connected = outcome == "connected"
        extra = {"outcome": outcome, "duration_minutes": rng.randint(5, 45) if connected else 1}
        extra["direction"] = Direction.outbound if rng.random() < 0.85 else Direction.inbound
        body = rng.choice(replies) if connected else templates[2]
    elif kind == ActivityType.meeting:
        extra = {"duration_minutes": rng.choice([30, 45, 60]), "outcome": "held"}
        others = [c for c in pool if c is not contact]
        if others and rng.random() < 0.5:
            contacts.append(rng.choice(others))
    elif kind == ActivityType.email:
        inbound = rng.random() < 0.35
        extra = {"direction": Direction.inbound if inbound else Direction.outbound}
        body = templates[2] if inbound else rng.choice(replies)
    else:
        contacts = []
    subject = rng.choice(words.SUBJECTS[kind.value][pos])
    if extra.get("direction") == Direction.inbound and kind == ActivityType.email and subject[:3] != "Re:":
        subject = f"Re: {subject}"
    subject, body = (
        _fill(ctx, subject, plan, contact, company, pos),
        _fill(ctx, body, plan, contact, company, pos),
    )
    deal = plan.deal if plan else None
    add_activity(ctx, kind, at, owner, subject, body, contacts=contacts, company=company, deal=deal, **extra)


def deal_activities(ctx: Ctx, plan: Plan) -> None:
    rng, start, tz = ctx.rng, plan.events[0].at, plan.owner.timezone
    n = min(16, max(2, (plan.act_end - start).days // 9 + rng.randint(1, 3)))
    times = sorted(_work_time(rng, start, plan.act_end, tz) for _ in range(n - 1)) + [plan.act_end]
    for at in times:
        _one_activity(ctx, plan, plan.company, plan.owner, plan.contacts, at, min(_stage_at(plan, at), 4))
    if plan.events[-1].pos == WON:  # kickoff and a check-in after the signature
        closed = plan.events[-1].at
        end = min(closed + timedelta(days=45), ctx.now - timedelta(hours=1))
        for _ in range(rng.randint(0, 2) if end > closed + timedelta(days=1) else 0):
            _one_activity(ctx, plan, plan.company, plan.owner, plan.contacts, _work_time(rng, closed, end, tz), 5)


def engaged_wins(ctx: Ctx) -> None:
    """Deals that were won were worked harder: about one more touch a fortnight while open.

    Drawn from the second stream, after everything else, so the rest of the demo is unchanged.
    """
    main, ctx.rng = ctx.rng, ctx.quiet
    try:
        for plan in ctx.plans:
            if plan.scripted or plan.events[-1].pos != WON:
                continue
            start, tz = plan.events[0].at, plan.owner.timezone
            for _ in range(max(1, (plan.act_end - start).days // 14)):
                at = _work_time(ctx.rng, start, plan.act_end, tz)
                _one_activity(ctx, plan, plan.company, plan.owner, plan.contacts, at, min(_stage_at(plan, at), 4))
    finally:
        ctx.rng = main


def prospecting(ctx: Ctx, company: Company) -> None:
    """Outreach to a company that has no deal: a few emails and calls to its contacts."""
    rng = ctx.rng
    owner_id = company.owner_id or ctx.users[rng.choice(list(WEST_REPS))].id
    _, owner = ctx.user(owner_id)
    for _ in range(rng.randint(0, 4)):
        at = _work_time(rng, ctx.days_ago(700), ctx.days_ago(1), owner.timezone)
        _one_activity(ctx, None, company, owner, ctx.contacts_of[company.id], at, 0)


def due_at(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(17, 0), ZoneInfo(tz)).astimezone(UTC)


def add_task(
    ctx: Ctx,
    plan: Plan,
    title: str,
    due: datetime,
    created: datetime,
    *,
    done_at: datetime | None = None,
    contact: Contact | None = None,
    priority: Priority | None = None,
) -> Task:
    task = Task(
        title=title,
        due_at=due,
        status=TaskStatus.done if done_at else TaskStatus.open,
        priority=priority or ctx.rng.choices(list(Priority), weights=[20, 60, 20])[0],
        completed_at=done_at,
        owner_id=plan.owner.id,
        created_by_id=plan.owner.id,
        deal_id=plan.deal.id,
        contact_id=(contact or plan.contacts[0]).id,
        company_id=plan.company.id,
        source=SOURCE,
    )
    return ctx.add(task, created)


def add_note(ctx: Ctx, plan: Plan, body: str, at: datetime, *, pinned: bool = False) -> Note:
    note = Note(
        body=body,
        pinned=pinned,
        owner_id=plan.owner.id,
        deal_id=plan.deal.id,
        company_id=plan.company.id,
        contact_id=plan.contacts[0].id,
        source=SOURCE,
    )
    return ctx.add(note, at)


def deal_notes_and_tasks(ctx: Ctx, plan: Plan) -> None:
    rng, tz = ctx.rng, plan.owner.timezone
    start, end = plan.events[0].at, plan.act_end

    def text(templates: list[str]) -> str:
        return _fill(ctx, rng.choice(templates), plan, plan.contacts[0], plan.company, 0)

    if rng.random() < 0.35:
        add_note(ctx, plan, text(words.NOTE_BODIES), _work_time(rng, start, end, tz), pinned=rng.random() < 0.1)
    if (end - start).days > 10 and rng.random() < 0.6:  # something done along the way
        created = _work_time(rng, start, end - timedelta(days=5), tz)
        due = due_at((created + timedelta(days=4)).date(), tz)
        add_task(
            ctx,
            plan,
            text(words.TASK_TITLES),
            due,
            created,
            done_at=created + timedelta(days=rng.randint(1, 4)),
        )
    if plan.events[-1].pos >= WON or rng.random() >= 0.75:
        return
    if end < ctx.days_ago(30):  # a stale deal: its follow-up is long overdue
        due_day = end.date() + timedelta(days=rng.randint(3, 10))
    else:  # overdue, due this week, or later
        low, high = rng.choices([(-10, -1), (0, 6 - ctx.today.weekday()), (7, 21)], weights=[25, 35, 40])[0]
        due_day = ctx.today + timedelta(days=rng.randint(low, high))
    created = min(end, due_at(due_day, tz) - timedelta(days=rng.randint(2, 7)))
    add_task(ctx, plan, text(words.TASK_TITLES), due_at(due_day, tz), created)


