"""A believable, deterministic demo workspace.

`seed_demo` fills an existing workspace with two years of sales history: a West team
(manager Dana, reps Priya, Jordan, Mateo, Aisha), an EMEA team (Lena), admin Sam, a
"Sales" pipeline, companies with contacts, deals whose stage history tells a dated
story, activities, notes, tasks, products and quotes. The Borealis Logistics account
from STORIES.md is always there, as the stories describe it.

Same `seed` and `today` -> the same content (ids differ). Every date is relative to
`today`; everything that "happened" happened before midnight UTC at its start.
The caller owns the transaction: rows are flushed, never committed.
"""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.demo import words
from store import pricing
from store.models import (
    Activity,
    ActivityTarget,
    Approval,
    Base,
    Company,
    Contact,
    CustomFieldDefinition,
    Deal,
    DealContact,
    DealHistory,
    Email,
    EmailParticipant,
    Note,
    Pipeline,
    Product,
    Quote,
    QuoteLineItem,
    Stage,
    Task,
    Team,
    Territory,
    TerritoryMember,
    User,
    Workspace,
)
from store.models.enums import (
    ActivityType,
    CustomFieldEntity,
    CustomFieldType,
    DealContactRole,
    Direction,
    EmailParticipantRole,
    ForecastCategory,
    LeadStatus,
    LifecycleStage,
    Priority,
    QuoteStatus,
    Role,
    Surface,
    TaskStatus,
)
from store.services import activity_rollup, quotes
from store.services.org import DEFAULT_STAGES
from store.types import uuid7

DEMO_DOMAIN = "demo.agentcrm.dev"
SOURCE = "seed"  # provenance of every seeded activity, note, task and email
WON, LOST = 5, 6  # stage positions; 0-4 are the open stages
FC = ForecastCategory

# (key, name, role, team, time zone, quarterly quota, win-rate multiplier)
PEOPLE = [
    ("sam", "Sam Okafor", Role.admin, None, "America/New_York", None, 0.0),
    ("dana", "Dana Whitfield", Role.manager, "West", "America/Los_Angeles", Decimal("710000"), 0.0),
    ("priya", "Priya Raman", Role.rep, "West", "America/Los_Angeles", Decimal("200000"), 1.25),
    ("jordan", "Jordan Ellis", Role.rep, "West", "America/Denver", Decimal("180000"), 1.0),
    ("mateo", "Mateo Alvarez", Role.rep, "West", "America/Los_Angeles", Decimal("160000"), 0.7),
    ("aisha", "Aisha Bello", Role.rep, "West", "America/Chicago", Decimal("170000"), 0.95),
    ("lena", "Lena Fischer", Role.rep, "EMEA", "Europe/Berlin", Decimal("180000"), 1.05),
]
WEST_REPS = {"priya": 30, "jordan": 25, "mateo": 22, "aisha": 23}  # share of non-EMEA accounts
REP_WIN = {key: mult for key, _, role, _, _, _, mult in PEOPLE if role == Role.rep}

STAGES = DEFAULT_STAGES  # (name, probability, kind): the pipeline every workspace starts with

PRODUCTS = [  # (sku, name, unit price, billing period)
    ("PLAT-LIC", "Platform licence (per seat)", "1000.00", "year"),
    ("TELE-MOD", "Telematics module", "14000.00", "year"),
    ("ONB-STD", "Onboarding package", "7500.00", None),
    ("ONB-ENT", "Enterprise onboarding", "18000.00", None),
    ("SUP-PRM", "Premium support", "4500.00", "year"),
    ("SUP-ENT", "Enterprise support (24/7)", "12000.00", "year"),
    ("API-ADD", "API access add-on", "6000.00", "year"),
    ("TRN-DAY", "Training day (remote)", "2200.00", None),
]
TIERS = ["Strategic", "Enterprise", "Mid-market", "SMB"]


@dataclass
class DemoSummary:
    workspace_id: uuid.UUID
    users: list[tuple[str, str, str]]  # (email, name, role)
    counts: dict[str, int]  # table name -> rows created


@dataclass
class _Event:
    """A deal's state right after one change (one DealHistory row)."""

    at: datetime
    pos: int  # stage position
    moved: bool  # a stage move (False at creation and for amount/date changes)
    amount: Decimal
    close_date: date
    forecast: ForecastCategory


@dataclass
class _Plan:
    deal: Deal
    company: Company
    owner: User
    contacts: list[Contact]
    events: list[_Event]
    act_end: datetime  # the last activity on the deal (before any post-close ones)
    theme: str
    scripted: bool = False  # told by hand (Borealis): no generated activities, notes or tasks


@dataclass
class _Ctx:
    rng: random.Random
    ws: uuid.UUID
    today: date
    now: datetime
    rows: dict[type, list[Any]] = field(default_factory=lambda: defaultdict(list))
    users: dict[str, User] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    products: dict[str, Product] = field(default_factory=dict)
    contacts_of: dict[uuid.UUID, list[Contact]] = field(default_factory=dict)
    first_seen: dict[uuid.UUID, datetime] = field(default_factory=dict)
    deal_names: set[str] = field(default_factory=set)
    # A second stream for later additions to the story, so that they leave the main stream
    # (and with it every other record) as it was.
    quiet: random.Random = field(default_factory=random.Random)
    plans: list[_Plan] = field(default_factory=list)

    def add(self, obj: Any, at: datetime | None = None) -> Any:
        """Queue a row: id and workspace set now, so rows can link before any flush."""
        obj.id = obj.id or uuid7()
        obj.workspace_id = self.ws
        if at is not None:
            obj.created_at = obj.updated_at = at
        self.rows[type(obj)].append(obj)
        return obj

    def seen(self, record_id: uuid.UUID, at: datetime) -> None:
        if record_id not in self.first_seen or at < self.first_seen[record_id]:
            self.first_seen[record_id] = at

    def days_ago(self, days: float) -> datetime:
        return self.now - timedelta(seconds=int(days * 86400))

    def user(self, user_id: uuid.UUID | None) -> tuple[str, User]:
        return next((k, u) for k, u in self.users.items() if u.id == user_id)


def seed_demo(
    session: Session,
    *,
    workspace: Workspace,
    seed: int = 7,
    today: date | None = None,
    companies: int = 300,
) -> DemoSummary:
    """Fill `workspace` with demo data; flushes, never commits (the caller owns the transaction)."""
    today = today or date.today()
    ctx = _Ctx(random.Random(seed), workspace.id, today, datetime.combine(today, time(0), UTC))
    ctx.quiet = random.Random(seed * 7919 + 1)
    workspace.own_domains = [*(d for d in workspace.own_domains or [] if d != DEMO_DOMAIN), DEMO_DOMAIN]

    _org(ctx)
    _pipeline(ctx, session)
    borealis = _borealis_company(ctx)
    others = [_company(ctx, name) for name in _company_names(ctx.rng, companies - 1)]
    for company in others:
        _contacts(ctx, company)
    for company in others:
        for _ in range(_deal_count(ctx.rng, company)):
            _generic_deal(ctx, company)
    _borealis_story(ctx, borealis)
    for plan in ctx.plans:
        if not plan.scripted:
            _deal_activities(ctx, plan)
            _deal_notes_and_tasks(ctx, plan)
    with_deals = {plan.company.id for plan in ctx.plans}
    for company in others:
        if company.id not in with_deals:
            _prospecting(ctx, company)
    _lifecycle(ctx, [borealis, *others])
    _discount_quote(ctx)
    _custom_fields(ctx, [borealis, *others])
    _territories(ctx)
    _engaged_wins(ctx)
    _fix_created_at(ctx)

    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:  # parents before children
        batch = [row for cls, rows in ctx.rows.items() if cls.__table__ is table for row in rows]
        if batch:
            session.add_all(batch)
            session.flush()
            counts[table.name] = len(batch)
    activity_rollup.rebuild(session, workspace.id)  # the daily activity counts, as the activity service keeps them
    users = [(u.email, u.name, u.role.value) for u in ctx.users.values()]
    return DemoSummary(workspace_id=workspace.id, users=users, counts=counts)


# --- organisation: teams, users, products, pipeline, territories, custom fields ------------


def _org(ctx: _Ctx) -> None:
    since = ctx.days_ago(800)
    for name in ("West", "EMEA"):
        ctx.teams[name] = ctx.add(Team(name=name), since)
    for key, name, role, team, tz, quota, _ in PEOPLE:
        team_id = ctx.teams[team].id if team else None
        user = User(email=f"{key}@{DEMO_DOMAIN}", name=name, role=role, team_id=team_id, timezone=tz, quota=quota)
        ctx.users[key] = ctx.add(user, since)
    for sku, name, price, period in PRODUCTS:
        product = Product(name=name, sku=sku, unit_price=Decimal(price), currency="USD", billing_period=period)
        ctx.products[sku] = ctx.add(product, since)


def _territories(ctx: _Ctx) -> None:
    since = ctx.days_ago(800)
    for name, priority, regions, team, members, capacity in [
        ("EMEA", 10, ["EMEA"], "EMEA", ["lena"], 40),
        ("North America & APAC", 20, ["NA", "APAC"], "West", list(WEST_REPS), 60),
    ]:
        rules = {"regions": regions}
        territory = ctx.add(Territory(name=name, priority=priority, rules=rules, team_id=ctx.teams[team].id), since)
        for key in members:
            ctx.add(TerritoryMember(territory_id=territory.id, user_id=ctx.users[key].id, capacity=capacity))


def _custom_fields(ctx: _Ctx, companies: list[Company]) -> None:
    rng, since = ctx.rng, ctx.days_ago(800)
    tier = CustomFieldDefinition(
        entity=CustomFieldEntity.company,
        key="tier",
        label="Account tier",
        type=CustomFieldType.select,
        options=TIERS,
        description="Segment by size; drives support level and routing.",
    )
    term = CustomFieldDefinition(
        entity=CustomFieldEntity.deal,
        key="contract_term_months",
        label="Contract term (months)",
        type=CustomFieldType.number,
        options=[],
        description="Length of the contract being negotiated.",
    )
    ctx.add(tier, since)
    ctx.add(term, since)
    for company in companies:
        if not company.custom_fields and rng.random() < 0.75:
            n = company.employee_count or 0
            level = 0 if n >= 2000 else 1 if n >= 500 else 2 if n >= 100 else 3
            company.custom_fields = {"tier": TIERS[level]}
    for plan in ctx.plans:
        if plan.events[-1].pos in (3, 4, WON) and not plan.deal.custom_fields and rng.random() < 0.8:
            plan.deal.custom_fields = {"contract_term_months": rng.choice([12, 12, 24, 36])}


def _pipeline(ctx: _Ctx, session: Session) -> None:
    """The "Sales" pipeline: the one create_workspace made if it is there, with any stage it lacks."""
    since = ctx.days_ago(800)
    pipeline = session.scalar(select(Pipeline).where(Pipeline.workspace_id == ctx.ws, Pipeline.name == "Sales"))
    if pipeline is None:
        pipeline = ctx.add(Pipeline(name="Sales", is_default=True), since)
        existing: dict[str, Stage] = {}
    else:
        stages = session.scalars(select(Stage).where(Stage.pipeline_id == pipeline.id)).all()
        existing = {stage.name: stage for stage in stages}
    last = max((stage.position for stage in existing.values()), default=-1)
    for name, probability, kind in STAGES:
        stage = existing.get(name)
        if stage is None:
            last += 1
            stage = Stage(pipeline_id=pipeline.id, name=name, position=last, probability=probability, kind=kind)
            ctx.add(stage, since)
        ctx.stages.append(stage)


# --- companies and contacts ----------------------------------------------------------------


def _company_names(rng: random.Random, n: int) -> list[str]:
    names = [f"{p} {s}" for p in words.COMPANY_PREFIXES for s in words.COMPANY_SUFFIXES]
    if not 0 <= n <= len(names):
        raise ValueError(f"companies must be between 1 and {len(names) + 1} (Borealis is always one)")
    rng.shuffle(names)
    return names[:n]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _phone(rng: random.Random, loc: tuple[Any, ...]) -> str:
    return loc[3] + "".join(str(rng.randint(0, 9)) for _ in range(loc[4]))


def _source(rng: random.Random) -> str:
    return rng.choices(list(words.SOURCES), weights=list(words.SOURCES.values()))[0]


def _owner_key(rng: random.Random, region: str) -> str | None:
    if rng.random() < 0.15:
        return None  # nobody works this account yet
    if region == "EMEA" and rng.random() < 0.85:
        return "lena"
    return rng.choices(list(WEST_REPS), weights=list(WEST_REPS.values()))[0]


def _company(ctx: _Ctx, name: str) -> Company:
    rng = ctx.rng
    loc = rng.choices(words.LOCATIONS, weights=words.LOCATION_WEIGHTS)[0]
    industry = words.COMPANY_SUFFIXES[name.split(" ", 1)[1]]
    employees = int(math.exp(rng.uniform(math.log(20), math.log(20000))))
    owner = _owner_key(rng, loc[1])
    domain = f"{_slug(name)}.example"
    company = Company(
        name=name,
        domain=domain,
        industry=industry,
        employee_count=employees,
        annual_revenue=Decimal(employees * rng.randint(80, 400) * 1000),
        phone=_phone(rng, loc),
        website=f"https://{domain}",
        country=loc[0],
        region=loc[1],
        city=loc[2],
        description=f"{industry} company based in {loc[2]}, about {employees} people.",
        source=_source(rng),
        owner_id=ctx.users[owner].id if owner else None,
    )
    return ctx.add(company, ctx.days_ago(rng.uniform(30, 760)))


def _contacts(ctx: _Ctx, company: Company) -> None:
    rng = ctx.rng
    loc = next(loc for loc in words.LOCATIONS if loc[2] == company.city)
    used: set[str] = set()
    for title in rng.sample(words.TITLES, rng.randint(2, 4)):
        first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)
        local = f"{first}.{last}".lower()
        while local in used:
            local = f"{first[0]}{last}{rng.randint(2, 99)}".lower()
        used.add(local)
        _contact(ctx, company, first, last, title, loc, email=f"{local}@{company.domain}")


def _contact(
    ctx: _Ctx, company: Company, first: str, last: str, title: str, loc: tuple[Any, ...], *, email: str
) -> Contact:
    rng = ctx.rng
    contact = Contact(
        first_name=first,
        last_name=last,
        email=email,
        phone=_phone(rng, loc),
        title=title,
        company_id=company.id,
        owner_id=company.owner_id,
        source=company.source if rng.random() < 0.8 else _source(rng),
        country=company.country,
        timezone=loc[5],
    )
    ctx.contacts_of.setdefault(company.id, []).append(contact)
    return ctx.add(contact, company.created_at)


def _lifecycle(ctx: _Ctx, companies: list[Company]) -> None:
    """Lifecycle stage, lead status and score follow what happened with the company."""
    rng = ctx.rng
    outcomes: dict[uuid.UUID, set[int]] = defaultdict(set)
    on_open_deal: set[uuid.UUID] = set()
    for plan in ctx.plans:
        pos = plan.events[-1].pos
        outcomes[plan.company.id].add(pos)
        if pos < WON:
            on_open_deal.update(c.id for c in plan.contacts)
    stage_ = LifecycleStage
    scores = {
        stage_.subscriber: (0, 30),
        stage_.lead: (10, 55),
        stage_.mql: (35, 70),
        stage_.sql: (50, 85),
        stage_.opportunity: (55, 90),
        stage_.customer: (60, 95),
        stage_.evangelist: (75, 100),
        stage_.other: (0, 40),
    }
    for company in companies:
        seen = outcomes[company.id]
        for contact in ctx.contacts_of[company.id]:
            status: LeadStatus | None
            if WON in seen:
                stage, status = rng.choice([stage_.customer] * 5 + [stage_.evangelist]), None
            elif contact.id in on_open_deal:
                stage, status = stage_.opportunity, LeadStatus.open_deal
            elif seen:
                stage = rng.choice([stage_.sql, stage_.mql, stage_.other])
                status = rng.choice([LeadStatus.connected, LeadStatus.bad_timing, LeadStatus.in_progress])
            else:
                stage = rng.choices([stage_.subscriber, stage_.lead, stage_.mql, stage_.sql], [15, 45, 28, 12])[0]
                status = rng.choice(
                    [LeadStatus.new, LeadStatus.open, LeadStatus.attempted_to_contact, LeadStatus.connected]
                    + [LeadStatus.unqualified]
                )
            contact.lifecycle_stage, contact.lead_status = stage, status
            contact.lead_score = rng.randint(*scores[stage])


def _fix_created_at(ctx: _Ctx) -> None:
    """A company or contact exists before anything that happened with it."""
    for row in (*ctx.rows[Company], *ctx.rows[Contact]):
        first = ctx.first_seen.get(row.id)
        if first is not None and first <= row.created_at:
            row.created_at = row.updated_at = first - timedelta(days=3)


# --- deals and their history ---------------------------------------------------------------


def _deal_count(rng: random.Random, company: Company) -> int:
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
) -> list[_Event]:
    """Walk the changes from the creation state, one event (one history row) each."""
    kinds = _kinds(rng, path, len(slips), n_amounts)
    times = _times(rng, span[0], span[1], len(kinds) + 1)
    events = [_Event(times[0], path[0], False, amount, close, _forecast(rng, path[0]))]
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
        events.append(_Event(at, pos, moved, amount, close, fc))
    return events


def _closed_events(
    ctx: _Ctx, owner_key: str, source: str, amount: Decimal, slips: list[int], n_amounts: int
) -> tuple[list[_Event], datetime]:
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
        events[-1] = _Event(at, last.pos, last.moved, last.amount, at.date(), last.forecast)
    return events, closed_at


def _open_events(ctx: _Ctx, amount: Decimal, slips: list[int], n_amounts: int) -> tuple[list[_Event], datetime]:
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


def _generic_deal(ctx: _Ctx, company: Company) -> None:
    rng = ctx.rng
    owner_key, owner = ctx.user(company.owner_id)
    source = company.source if rng.random() < 0.8 else _source(rng)
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
    _apply_history(ctx, deal, events)
    ctx.plans.append(_Plan(deal, company, owner, contacts, events, act_end, theme))


def _deal_name(ctx: _Ctx, company: Company, theme: str, created: datetime) -> str:
    short = company.name.split(" ")[0]
    candidates = [
        f"{short} – {theme}",
        f"{company.name} – {theme}",
        f"{company.name} – {theme} ({created.year})",
    ]
    name = next((n for n in candidates if n not in ctx.deal_names), f"{candidates[1]} ({created.date()})")
    ctx.deal_names.add(name)
    return name


def _deal_contacts(ctx: _Ctx, deal: Deal, company: Company) -> list[Contact]:
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


def _apply_history(ctx: _Ctx, deal: Deal, events: list[_Event]) -> None:
    """One DealHistory row per event; the deal ends in the last event's state."""
    prev: _Event | None = None
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


# --- activities, notes, tasks --------------------------------------------------------------


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


def _stage_at(plan: _Plan, at: datetime) -> int:
    i = bisect_right([e.at for e in plan.events], at) - 1
    return plan.events[max(0, i)].pos


def _activity(
    ctx: _Ctx,
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


def _fill(ctx: _Ctx, template: str, plan: _Plan | None, contact: Contact, company: Company, pos: int) -> str:
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
    ctx: _Ctx, plan: _Plan | None, company: Company, owner: User, pool: list[Contact], at: datetime, pos: int
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
    _activity(ctx, kind, at, owner, subject, body, contacts=contacts, company=company, deal=deal, **extra)


def _deal_activities(ctx: _Ctx, plan: _Plan) -> None:
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


def _engaged_wins(ctx: _Ctx) -> None:
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


def _prospecting(ctx: _Ctx, company: Company) -> None:
    """Outreach to a company that has no deal: a few emails and calls to its contacts."""
    rng = ctx.rng
    owner_id = company.owner_id or ctx.users[rng.choice(list(WEST_REPS))].id
    _, owner = ctx.user(owner_id)
    for _ in range(rng.randint(0, 4)):
        at = _work_time(rng, ctx.days_ago(700), ctx.days_ago(1), owner.timezone)
        _one_activity(ctx, None, company, owner, ctx.contacts_of[company.id], at, 0)


def _due(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(17, 0), ZoneInfo(tz)).astimezone(UTC)


def _task(
    ctx: _Ctx,
    plan: _Plan,
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


def _note(ctx: _Ctx, plan: _Plan, body: str, at: datetime, *, pinned: bool = False) -> Note:
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


def _deal_notes_and_tasks(ctx: _Ctx, plan: _Plan) -> None:
    rng, tz = ctx.rng, plan.owner.timezone
    start, end = plan.events[0].at, plan.act_end

    def text(templates: list[str]) -> str:
        return _fill(ctx, rng.choice(templates), plan, plan.contacts[0], plan.company, 0)

    if rng.random() < 0.35:
        _note(ctx, plan, text(words.NOTE_BODIES), _work_time(rng, start, end, tz), pinned=rng.random() < 0.1)
    if (end - start).days > 10 and rng.random() < 0.6:  # something done along the way
        created = _work_time(rng, start, end - timedelta(days=5), tz)
        due = _due((created + timedelta(days=4)).date(), tz)
        _task(
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
    created = min(end, _due(due_day, tz) - timedelta(days=rng.randint(2, 7)))
    _task(ctx, plan, text(words.TASK_TITLES), _due(due_day, tz), created)


# --- quotes --------------------------------------------------------------------------------


def _quote(
    ctx: _Ctx,
    plan: _Plan,
    number: str,
    title: str,
    lines: list[tuple[str, Decimal, Decimal]],  # (sku, quantity, line discount %)
    *,
    discount: Decimal,
    status: QuoteStatus,
    created: datetime,
) -> Quote:
    products = [ctx.products[sku] for sku, _, _ in lines]
    line_totals = [pricing.line_total(q, p.unit_price, d) for (_, q, d), p in zip(lines, products, strict=True)]
    totals = pricing.quote_totals(line_totals, discount_percent=discount, tax_percent=Decimal(0))
    quote = Quote(
        number=number,
        deal_id=plan.deal.id,
        owner_id=plan.owner.id,
        title=title,
        status=status,
        currency="USD",
        valid_until=ctx.today + timedelta(days=30),
        discount_percent=discount,
        tax_percent=Decimal(0),
        subtotal=totals.subtotal,
        discount_total=totals.discount_total,
        tax_total=totals.tax_total,
        total=totals.total,
        terms="Net 30. Annual items billed yearly in advance.",
    )
    ctx.add(quote, created)
    for i, ((_, qty, disc), product) in enumerate(zip(lines, products, strict=True)):
        item = QuoteLineItem(
            quote_id=quote.id,
            product_id=product.id,
            position=i,
            description=product.name,
            quantity=qty,
            list_price=product.unit_price,
            unit_price=product.unit_price,
            discount_percent=disc,
            line_total=line_totals[i],
        )
        ctx.add(item)
    return quote


def _discount_quote(ctx: _Ctx) -> None:
    """A 30% discount quote waiting for Dana's approval (STORIES.md): Jordan's, in Proposal, if any."""
    candidates = [
        p for p in ctx.plans if not p.scripted and p.events[-1].pos in (3, 4) and p.act_end > ctx.days_ago(30)
    ]
    if not candidates:
        return
    plan = min(candidates, key=lambda p: (p.owner is not ctx.users["jordan"], p.events[-1].pos != 3))
    amount = plan.deal.amount or Decimal(0)
    seats = Decimal(max(5, round((amount / Decimal("0.7") - 7500) / 1000)))  # ~the deal amount after 30%
    lines = [("PLAT-LIC", seats, Decimal(0)), ("ONB-STD", Decimal(1), Decimal(0))]
    title = f"{plan.deal.name} – proposal"
    status = QuoteStatus.pending_approval
    quote = _quote(ctx, plan, "Q-1002", title, lines, discount=Decimal(30), status=status, created=plan.act_end)
    # Submitted as the quote service submits it: a proposal in Dana's inbox (web, API, Slack
    # "inbox"); approving it there approves the quote, rejecting it sends the quote back to draft.
    priced = [quotes.Line(ctx.products[sku].id, ctx.products[sku].name, qty, ctx.products[sku].unit_price,
                          ctx.products[sku].unit_price, disc) for sku, qty, disc in lines]
    terms = quotes.judge(priced, currency=quote.currency, discount_percent=quote.discount_percent,
                         tax_percent=quote.tax_percent, threshold=quotes.DEFAULT_MANAGER_DISCOUNT)
    summary, diff = quotes.submission_text(quote.number, plan.deal.name, terms)
    ctx.add(Approval(tool=quotes.APPROVE_TOOL, args={"quote_id": str(quote.id)}, summary=summary, diff=diff,
                     evidence=[], surface=Surface.web, requested_by_id=plan.owner.id, approver_role="manager",
                     source_ref={"record": {"kind": "quote", "id": str(quote.id), "label": quote.number},
                                 "submitted": True}), plan.act_end)


# --- Borealis Logistics (STORIES.md) -------------------------------------------------------


def _borealis_company(ctx: _Ctx) -> Company:
    loc = next(loc for loc in words.LOCATIONS if loc[2] == "Seattle")
    company = Company(
        name="Borealis Logistics",
        domain="borealis-logistics.example",
        industry="Logistics",
        employee_count=850,
        annual_revenue=Decimal("210000000"),
        phone=_phone(ctx.rng, loc),
        website="https://borealis-logistics.example",
        country="US",
        region="NA",
        city="Seattle",
        description="Regional freight carrier: 420 trucks, six depots in the Pacific Northwest.",
        source="referral",
        owner_id=ctx.users["priya"].id,
        custom_fields={"tier": "Enterprise"},
    )
    ctx.add(company, ctx.days_ago(120))
    domain = company.domain
    _contact(ctx, company, "Ines", "Duarte", "Head of Operations", loc, email=f"ines.duarte@{domain}")
    _contact(ctx, company, "Marco", "Bellini", "VP Engineering", loc, email=f"marco.bellini@{domain}")
    return company


def _local(ctx: _Ctx, days_ago: int, hour: int, minute: int = 0) -> datetime:
    """A time in Priya's zone, `days_ago` days before today."""
    day = ctx.today - timedelta(days=days_ago)
    return datetime.combine(day, time(hour, minute), ZoneInfo(ctx.users["priya"].timezone)).astimezone(UTC)


def _borealis_deal(ctx: _Ctx, company: Company) -> _Plan:
    priya = ctx.users["priya"]
    ines, marco = ctx.contacts_of[company.id]
    final_close = date(ctx.today.year + 1, 1, 30)  # "they want the pilot in Jan"
    first_close = final_close - timedelta(days=46)
    k40, k48 = Decimal("40000"), Decimal("48000")
    events = [
        _Event(_local(ctx, 78, 14), 0, False, k40, first_close, FC.pipeline),
        _Event(_local(ctx, 71, 11), 1, True, k40, first_close, FC.pipeline),
        _Event(_local(ctx, 52, 12, 30), 2, True, k40, first_close, FC.pipeline),
        _Event(_local(ctx, 30, 14), 3, True, k48, first_close, FC.best_case),
        _Event(_local(ctx, 20, 10), 3, False, k48, final_close, FC.best_case),  # slipped into January
        _Event(_local(ctx, 6, 11, 30), 4, True, k48, final_close, FC.commit),
    ]
    deal = Deal(
        name="Borealis – Fleet Telematics",
        pipeline_id=ctx.stages[0].pipeline_id,
        owner_id=priya.id,
        company_id=company.id,
        currency="USD",
        source="referral",
        next_step="Call with Ines and Marco on pilot scope, then send the revised quote",
        description="Pilot at two depots in January, then rollout across 420 trucks and six depots.",
        custom_fields={"contract_term_months": 24},
    )
    ctx.add(deal)
    ctx.deal_names.add(deal.name)
    ctx.add(DealContact(deal_id=deal.id, contact_id=ines.id, role=DealContactRole.champion, is_primary=True))
    ctx.add(DealContact(deal_id=deal.id, contact_id=marco.id, role=DealContactRole.technical_buyer))
    _apply_history(ctx, deal, events)
    plan = _Plan(deal, company, priya, [ines, marco], events, _local(ctx, 6, 10), "fleet telematics", True)
    ctx.plans.append(plan)
    return plan


def _borealis_story(ctx: _Ctx, company: Company) -> None:
    """Priya's 10:00 with Borealis: the deal, its people, what was said and promised, open tasks."""
    plan = _borealis_deal(ctx, company)
    priya = plan.owner
    people = dict(zip(("ines", "marco"), plan.contacts, strict=True))
    emails: dict[str, Email] = {}
    for item in words.BOREALIS_TIMELINE:
        at = _local(ctx, item["days"], *item["time"])
        who = [people[k] for k in item["who"]]
        kind = ActivityType(item["type"])
        extra: dict[str, Any] = {}
        if kind == ActivityType.meeting:
            extra = {"outcome": "held", "duration_minutes": item["minutes"]}
        elif kind == ActivityType.call:
            extra = {
                "outcome": "connected",
                "duration_minutes": item["minutes"],
                "direction": Direction.outbound,
            }
        else:
            inbound = item.get("inbound", False)
            reply_to = emails[item["reply_to"]].message_id if "reply_to" in item else None
            email = _email(ctx, plan, item["email"], item["subject"], item["body"], at, who, inbound, reply_to)
            emails[item["email"]] = email
            extra = {"direction": email.direction, "email_id": email.id}
        _activity(
            ctx,
            kind,
            at,
            priya,
            item["subject"],
            item["body"],
            contacts=who,
            company=company,
            deal=plan.deal,
            **extra,
        )
    _note(ctx, plan, words.BOREALIS_NOTE, _local(ctx, 6, 12), pinned=True)
    thursday = ctx.today + timedelta(days=(3 - ctx.today.weekday()) % 7)
    for title, due_days, created_days, done, who_key in words.BOREALIS_TASKS:
        due = _local(ctx, due_days, 17) if due_days is not None else _due(thursday, priya.timezone)
        done_at = due - timedelta(hours=3) if done else None
        _task(
            ctx,
            plan,
            title,
            due,
            _local(ctx, created_days, 14),
            done_at=done_at,
            contact=people[who_key],
            priority=Priority.high,
        )
    lines = [
        ("PLAT-LIC", Decimal(40), Decimal(10)),
        ("ONB-STD", Decimal(1), Decimal(0)),
        ("SUP-PRM", Decimal(1), Decimal(0)),
    ]
    sent = emails["borealis-proposal"].sent_at or ctx.now
    _quote(
        ctx,
        plan,
        "Q-1001",
        "Borealis Fleet Telematics – pilot and rollout",
        lines,
        discount=Decimal(0),
        status=QuoteStatus.sent,
        created=sent - timedelta(minutes=20),
    )


def _email(
    ctx: _Ctx,
    plan: _Plan,
    key: str,
    subject: str,
    body: str,
    at: datetime,
    contacts: list[Contact],
    inbound: bool,
    in_reply_to: str | None,
) -> Email:
    """A stored email between the deal owner and contacts, with its participants."""
    me = (plan.owner.email, plan.owner.name, None)
    them = [(c.email or "", c.full_name, c) for c in contacts]
    sender, recipients = (them[0], [me]) if inbound else (me, them)
    email = Email(
        message_id=f"<{key}@{DEMO_DOMAIN}>",
        in_reply_to=in_reply_to,
        subject=subject,
        sent_at=at,
        direction=Direction.inbound if inbound else Direction.outbound,
        from_address=sender[0],
        body_text=body,
        deal_id=plan.deal.id,
        owner_id=plan.owner.id,
        source=SOURCE,
    )
    email.thread_key = in_reply_to or email.message_id
    ctx.add(email, at)
    roles = [EmailParticipantRole.sender] + [EmailParticipantRole.to] * len(recipients)
    for role, (address, name, contact) in zip(roles, [sender, *recipients], strict=True):
        contact_id = contact.id if contact else None
        ctx.add(EmailParticipant(email_id=email.id, role=role, address=address, name=name, contact_id=contact_id))
    return email
