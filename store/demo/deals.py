"""Deals and their stage history: amounts, forecasts, dated moves."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import store.demo.words as words
from store.demo.accounts import pick_source
from store.demo.world import FC, LOST, REP_WIN, WON, Ctx, Event, Plan
from store.models import (
    Company,
    Contact,
    Deal,
    DealContact,
    DealHistory,
)
from store.models.enums import (
    DealContactRole,
    ForecastCategory,
)


def deal_count(rng: random.Random, company: Company) -> int:
    if company.owner_id is None:
        return 0
    return rng.choices([0, 1, 2, 3, 4], weights=[10, 35, 33, 15, 7])[0]


def _amount(rng: random.Random) -> Decimal:
    raw = math.exp(rng.uniform(math.log(5000), math.log(250000)))
    step = rng.choices([1000, 5000, 50], weights=[50, 20, 30])[0]
    return Decimal(min(250000, max(5000, round(raw / step) * step)))


def _round500(value: Decimal) -> Decimal:
    return min(Decimal(250000), max(Decimal(5000), (value / 500).quantize(Decimal(1), ROUND_HALF_UP) * 500))


def _forecast(rng: random.Random, pos: int) -> ForecastCategory:
    """A category consistent with the stage: late stages lean to commit, closed is closed."""
    r = rng.random()
    by_stage = {
        2: FC.best_case if r < 0.2 else FC.pipeline,
        3: FC.commit if r < 0.15 else FC.best_case if r < 0.7 else FC.pipeline,
        4: FC.commit if r < 0.6 else FC.best_case,
        WON: FC.closed,
        LOST: FC.omitted,
    }
    return by_stage.get(pos, FC.pipeline)


def _stage_path(rng: random.Random, target: int, end: int | None) -> list[int]:
    """Stage positions a deal visits: forward, sometimes skipping one or going back one."""
    path = [0 if rng.random() < 0.85 or target == 0 else 1]
    while path[-1] < target:
        step = 2 if path[-1] + 2 <= target and rng.random() < 0.1 else 1
        path.append(path[-1] + step)
        if 0 < path[-1] < target and rng.random() < 0.06:
            path.append(path[-1] - 1)
    return path if end is None else [*path, end]


def _times(rng: random.Random, start: datetime, end: datetime, n: int) -> list[datetime]:
    """n strictly increasing whole-second times, the first at start and the last at end."""
    if n == 1:
        return [start]
    span = int((end - start).total_seconds())
    out = [start]
    for off in [*sorted(rng.randint(1, span - 1) for _ in range(n - 2)), span]:
        out.append(max(start + timedelta(seconds=off), out[-1] + timedelta(seconds=1)))
    return out


def _kinds(rng: random.Random, path: list[int], n_slips: int, n_amounts: int) -> list[str]:
    """The order of changes after creation; a won/lost move is always the last one."""
    kinds = ["stage"] * (len(path) - 1) + ["slip"] * n_slips + ["amount"] * n_amounts
    closing = path[-1] in (WON, LOST)
    if closing:
        kinds.remove("stage")
    rng.shuffle(kinds)
    return [*kinds, "stage"] if closing else kinds


def _events(
    rng: random.Random,
    path: list[int],
    span: tuple[datetime, datetime],
    amount: Decimal,
    close: date,
    slips: list[int],
    n_amounts: int,
) -> list[Event]:
    """Walk the changes from the creation state, one event (one history row) each."""
    kinds = _kinds(rng, path, len(slips), n_amounts)
    times = _times(rng, span[0], span[1], len(kinds) + 1)
    events = [Event(times[0], path[0], False, amount, close, _forecast(rng, path[0]))]
    steps, slip_days = iter(path[1:]), iter(slips)
    for at, kind in zip(times[1:], kinds, strict=True):
        pos, moved, fc = events[-1].pos, False, events[-1].forecast
        if kind == "stage":
            pos, moved = next(steps), True
            fc = _forecast(rng, pos)
            if pos in (WON, LOST):
                close = at.date()
        elif kind == "slip":
            close = close + timedelta(days=next(slip_days))
        else:
            factors = ["0.8", "0.9", "1.15", "1.2", "1.3"]
            rng.shuffle(factors)
            amount = next(a for f in factors if (a := _round500(amount * Decimal(f))) != amount)
        events.append(Event(at, pos, moved, amount, close, fc))
    return events


def _closed_events(
    ctx: Ctx, owner_key: str, source: str, amount: Decimal, slips: list[int], n_amounts: int
) -> tuple[list[Event], datetime]:
    rng = ctx.rng
    p_win = 0.3 * words.SOURCE_WIN[source] * REP_WIN[owner_key]
    p_win *= 0.75 if amount > 100000 else 1.1 if amount < 20000 else 1.0
    won = rng.random() < p_win
    target = (4 if rng.random() < 0.9 else 3) if won else rng.choices(range(5), [25, 25, 20, 18, 12])[0]
    path = _stage_path(rng, target, WON if won else LOST)
    cycle = timedelta(days=rng.randint(10 + 7 * len(path), 35 + 22 * len(path)))
    closed_at = ctx.days_ago(rng.uniform(1, 725 - cycle.days))
    created = closed_at - cycle
    close0 = created.date() + timedelta(days=rng.randint(20, 90))
    events = _events(rng, path, (created, closed_at), amount, close0, slips, n_amounts)
    if not won and ctx.quiet.random() < 0.65:
        # Most lost deals go quiet first: the rep marks them lost weeks after the last touch.
        last = events[-1]
        at = min(last.at + timedelta(days=ctx.quiet.uniform(20, 75)), ctx.now - timedelta(hours=1))
        events[-1] = Event(at, last.pos, last.moved, last.amount, at.date(), last.forecast)
    return events, closed_at


def _open_events(ctx: Ctx, amount: Decimal, slips: list[int], n_amounts: int) -> tuple[list[Event], datetime]:
    rng = ctx.rng
    pos = rng.choices(range(5), weights=[27, 25, 20, 16, 12])[0]
    path = _stage_path(rng, pos, None)
    stale = rng.random() < 0.2  # nothing has happened for a month or more
    last = ctx.days_ago(rng.uniform(31, 100) if stale else rng.uniform(0.3, 25))
    created = last - timedelta(days=rng.randint(7 + 10 * len(path), 30 + 25 * len(path)))
    if rng.random() < (0.35 if stale else 0.08):  # overdue: the close date passed, nobody moved it
        final = ctx.today - timedelta(days=rng.randint(1, 40))
    else:
        final = ctx.today + timedelta(days=rng.randint(3 + (4 - pos) * 12, 60 + (4 - pos) * 30))
    close0 = final - timedelta(days=sum(slips))
    if close0 < created.date() + timedelta(days=7):
        slips, close0 = [], final
    events = _events(rng, path, (created, last), amount, close0, slips, n_amounts)
    return events, last if stale else max(last, ctx.days_ago(rng.uniform(0.1, 7)))


def generic_deal(ctx: Ctx, company: Company) -> None:
    rng = ctx.rng
    owner_key, owner = ctx.user(company.owner_id)
    source = company.source if rng.random() < 0.8 else pick_source(rng)
    amount = _amount(rng)
    n_amounts = 1 if rng.random() < 0.25 else 0
    slips = [rng.randint(14, 45) for _ in range(rng.choices([0, 1, 2], weights=[60, 27, 13])[0])]
    if rng.random() < 0.6:
        events, act_end = _closed_events(ctx, owner_key, source, amount, slips, n_amounts)
    else:
        events, act_end = _open_events(ctx, amount, slips, n_amounts)
    theme = rng.choice(words.DEAL_THEMES)
    name = _deal_name(ctx, company, theme, events[0].at)
    deal = ctx.add(
        Deal(
            name=name,
            pipeline_id=ctx.stages[0].pipeline_id,
            owner_id=owner.id,
            company_id=company.id,
            currency="USD",
            source=source,
        )
    )
    contacts = _deal_contacts(ctx, deal, company)
    pos = events[-1].pos
    if pos == LOST:
        deal.lost_reason = rng.choices(list(words.LOST_REASONS), weights=list(words.LOST_REASONS.values()))[0]
    elif pos != WON and not (act_end < ctx.days_ago(30) and rng.random() < 0.3):
        deal.next_step = rng.choice(words.NEXT_STEPS[pos]).format(first=contacts[0].first_name)
    apply_history(ctx, deal, events)
    ctx.plans.append(Plan(deal, company, owner, contacts, events, act_end, theme))


def _deal_name(ctx: Ctx, company: Company, theme: str, created: datetime) -> str:
    short = company.name.split(" ")[0]
    candidates = [
        f"{short} – {theme}",
        f"{company.name} – {theme}",
        f"{company.name} – {theme} ({created.year})",
    ]
    name = next((n for n in candidates if n not in ctx.deal_names), f"{candidates[1]} ({created.date()})")
    ctx.deal_names.add(name)
    return name


def _deal_contacts(ctx: Ctx, deal: Deal, company: Company) -> list[Contact]:
    rng = ctx.rng
    pool = ctx.contacts_of[company.id]
    chosen = rng.sample(pool, min(len(pool), rng.randint(1, 3)))
    for i, contact in enumerate(chosen):
        if contact.title in words.EXECUTIVE_TITLES:
            role = rng.choice([DealContactRole.decision_maker, DealContactRole.economic_buyer])
        elif contact.title in words.TECHNICAL_TITLES:
            role = DealContactRole.technical_buyer
        else:
            role = rng.choice([DealContactRole.champion, DealContactRole.influencer, DealContactRole.user])
        ctx.add(DealContact(deal_id=deal.id, contact_id=contact.id, role=role, is_primary=i == 0))
    return chosen


def apply_history(ctx: Ctx, deal: Deal, events: list[Event]) -> None:
    """One DealHistory row per event; the deal ends in the last event's state."""
    prev: Event | None = None
    for ev in events:
        ctx.add(
            DealHistory(
                deal_id=deal.id,
                changed_at=ev.at,
                changed_by_id=deal.owner_id,
                from_stage_id=ctx.stages[prev.pos].id if ev.moved and prev else None,
                stage_id=ctx.stages[ev.pos].id,
                amount=ev.amount,
                currency=deal.currency,
                close_date=ev.close_date,
                probability=None,
                forecast_category=ev.forecast,
                owner_id=deal.owner_id,
            )
        )
        prev = ev
    last = events[-1]
    deal.stage_id = ctx.stages[last.pos].id
    deal.amount, deal.close_date, deal.forecast_category = last.amount, last.close_date, last.forecast
    deal.probability = None  # the stage's probability applies
    deal.stage_entered_at = max((e.at for e in events if e.moved), default=events[0].at)
    deal.closed_at = last.at if last.pos in (WON, LOST) else None
    deal.created_at, deal.updated_at = events[0].at, last.at
    if deal.company_id:
        ctx.seen(deal.company_id, events[0].at)


