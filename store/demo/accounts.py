"""Companies, their contacts, lifecycle stages and creation times."""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

import store.demo.words as words
from store.demo.world import WEST_REPS, WON, Ctx
from store.models import (
    Company,
    Contact,
)
from store.models.enums import (
    LeadStatus,
    LifecycleStage,
)


def company_names(rng: random.Random, n: int) -> list[str]:
    names = [f"{p} {s}" for p in words.COMPANY_PREFIXES for s in words.COMPANY_SUFFIXES]
    if not 0 <= n <= len(names):
        raise ValueError(f"companies must be between 1 and {len(names) + 1} (Borealis is always one)")
    rng.shuffle(names)
    return names[:n]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def phone_number(rng: random.Random, loc: tuple[Any, ...]) -> str:
    return loc[3] + "".join(str(rng.randint(0, 9)) for _ in range(loc[4]))


def pick_source(rng: random.Random) -> str:
    return rng.choices(list(words.SOURCES), weights=list(words.SOURCES.values()))[0]


def _owner_key(rng: random.Random, region: str) -> str | None:
    if rng.random() < 0.15:
        return None  # nobody works this account yet
    if region == "EMEA" and rng.random() < 0.85:
        return "lena"
    return rng.choices(list(WEST_REPS), weights=list(WEST_REPS.values()))[0]


def new_company(ctx: Ctx, name: str) -> Company:
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
        phone=phone_number(rng, loc),
        website=f"https://{domain}",
        country=loc[0],
        region=loc[1],
        city=loc[2],
        description=f"{industry} company based in {loc[2]}, about {employees} people.",
        source=pick_source(rng),
        owner_id=ctx.users[owner].id if owner else None,
    )
    return ctx.add(company, ctx.days_ago(rng.uniform(30, 760)))


def add_contacts(ctx: Ctx, company: Company) -> None:
    rng = ctx.rng
    loc = next(loc for loc in words.LOCATIONS if loc[2] == company.city)
    used: set[str] = set()
    for title in rng.sample(words.TITLES, rng.randint(2, 4)):
        first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)
        local = f"{first}.{last}".lower()
        while local in used:
            local = f"{first[0]}{last}{rng.randint(2, 99)}".lower()
        used.add(local)
        new_contact(ctx, company, first, last, title, loc, email=f"{local}@{company.domain}")


def new_contact(
    ctx: Ctx, company: Company, first: str, last: str, title: str, loc: tuple[Any, ...], *, email: str
) -> Contact:
    rng = ctx.rng
    contact = Contact(
        first_name=first,
        last_name=last,
        email=email,
        phone=phone_number(rng, loc),
        title=title,
        company_id=company.id,
        owner_id=company.owner_id,
        source=company.source if rng.random() < 0.8 else pick_source(rng),
        country=company.country,
        timezone=loc[5],
    )
    ctx.contacts_of.setdefault(company.id, []).append(contact)
    return ctx.add(contact, company.created_at)


def lifecycle(ctx: Ctx, companies: list[Company]) -> None:
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


def fix_created_at(ctx: Ctx) -> None:
    """A company or contact exists before anything that happened with it."""
    for row in (*ctx.rows[Company], *ctx.rows[Contact]):
        first = ctx.first_seen.get(row.id)
        if first is not None and first <= row.created_at:
            row.created_at = row.updated_at = first - timedelta(days=3)


