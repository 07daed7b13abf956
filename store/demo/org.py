"""Organisation: teams, users, products, the pipeline, territories and custom fields."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.demo.world import DEMO_DOMAIN, PEOPLE, PRODUCTS, STAGES, TIERS, WEST_REPS, WON, Ctx
from store.models import (
    Company,
    CustomFieldDefinition,
    Pipeline,
    Product,
    Stage,
    Team,
    Territory,
    TerritoryMember,
    User,
)
from store.models.enums import (
    CustomFieldEntity,
    CustomFieldType,
)


def org(ctx: Ctx) -> None:
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


def territories(ctx: Ctx) -> None:
    since = ctx.days_ago(800)
    for name, priority, regions, team, members, capacity in [
        ("EMEA", 10, ["EMEA"], "EMEA", ["lena"], 40),
        ("North America & APAC", 20, ["NA", "APAC"], "West", list(WEST_REPS), 60),
    ]:
        rules = {"regions": regions}
        territory = ctx.add(Territory(name=name, priority=priority, rules=rules, team_id=ctx.teams[team].id), since)
        for key in members:
            ctx.add(TerritoryMember(territory_id=territory.id, user_id=ctx.users[key].id, capacity=capacity))


def custom_fields(ctx: Ctx, companies: list[Company]) -> None:
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


def pipeline(ctx: Ctx, session: Session) -> None:
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


