"""A believable, deterministic demo workspace.

`seed_demo` fills an existing workspace with two years of sales history: a West team
(manager Dana, reps Priya, Jordan, Mateo, Aisha), an EMEA team (Lena), admin Sam, a
"Sales" pipeline, companies with contacts, deals whose stage history tells a dated
story, activities, notes, tasks, products and quotes. The Borealis Logistics account
from STORIES.md is always there, as the stories describe it.

Same `seed` and `today` -> the same content (ids differ). Every date is relative to
`today`; everything that "happened" happened before midnight UTC at its start.
The caller owns the transaction: rows are flushed, never committed.

The package, one thing a file: `world` (the cast, the catalogue and a run's state), `org`,
`accounts` (companies and contacts), `deals` (and their history), `activities` (with notes
and tasks), `quotes`, `borealis` (the scripted account) and `words` (names and templates).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time

from sqlalchemy.orm import Session

from store.demo.accounts import add_contacts, company_names, fix_created_at, lifecycle, new_company
from store.demo.activities import deal_activities, deal_notes_and_tasks, engaged_wins, prospecting
from store.demo.borealis import borealis_company, borealis_story
from store.demo.deals import deal_count, generic_deal
from store.demo.org import custom_fields, org, pipeline, territories
from store.demo.quotes import discount_quote
from store.demo.world import DEMO_DOMAIN, Ctx, DemoSummary
from store.models import Base, Workspace
from store.services import activity_rollup

__all__ = ["DEMO_DOMAIN", "DemoSummary", "seed_demo"]


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
    ctx = Ctx(random.Random(seed), workspace.id, today, datetime.combine(today, time(0), UTC))
    ctx.quiet = random.Random(seed * 7919 + 1)
    workspace.own_domains = [*(d for d in workspace.own_domains or [] if d != DEMO_DOMAIN), DEMO_DOMAIN]

    org(ctx)
    pipeline(ctx, session)
    borealis = borealis_company(ctx)
    others = [new_company(ctx, name) for name in company_names(ctx.rng, companies - 1)]
    for company in others:
        add_contacts(ctx, company)
    for company in others:
        for _ in range(deal_count(ctx.rng, company)):
            generic_deal(ctx, company)
    borealis_story(ctx, borealis)
    for plan in ctx.plans:
        if not plan.scripted:
            deal_activities(ctx, plan)
            deal_notes_and_tasks(ctx, plan)
    with_deals = {plan.company.id for plan in ctx.plans}
    for company in others:
        if company.id not in with_deals:
            prospecting(ctx, company)
    lifecycle(ctx, [borealis, *others])
    discount_quote(ctx)
    custom_fields(ctx, [borealis, *others])
    territories(ctx)
    engaged_wins(ctx)
    fix_created_at(ctx)

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
