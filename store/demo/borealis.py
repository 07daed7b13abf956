"""The Borealis Logistics account, told by hand as STORIES.md tells it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import store.demo.words as words
from store.demo.accounts import new_contact, phone_number
from store.demo.activities import add_activity, add_note, add_task, due_at
from store.demo.deals import apply_history
from store.demo.quotes import add_quote
from store.demo.world import DEMO_DOMAIN, FC, SOURCE, Ctx, Event, Plan
from store.models import (
    Company,
    Contact,
    Deal,
    DealContact,
    Email,
    EmailParticipant,
)
from store.models.enums import (
    ActivityType,
    DealContactRole,
    Direction,
    EmailParticipantRole,
    Priority,
    QuoteStatus,
)


def borealis_company(ctx: Ctx) -> Company:
    loc = next(loc for loc in words.LOCATIONS if loc[2] == "Seattle")
    company = Company(
        name="Borealis Logistics",
        domain="borealis-logistics.example",
        industry="Logistics",
        employee_count=850,
        annual_revenue=Decimal("210000000"),
        phone=phone_number(ctx.rng, loc),
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
    new_contact(ctx, company, "Ines", "Duarte", "Head of Operations", loc, email=f"ines.duarte@{domain}")
    new_contact(ctx, company, "Marco", "Bellini", "VP Engineering", loc, email=f"marco.bellini@{domain}")
    return company


def _local(ctx: Ctx, days_ago: int, hour: int, minute: int = 0) -> datetime:
    """A time in Priya's zone, `days_ago` days before today."""
    day = ctx.today - timedelta(days=days_ago)
    return datetime.combine(day, time(hour, minute), ZoneInfo(ctx.users["priya"].timezone)).astimezone(UTC)


def _borealis_deal(ctx: Ctx, company: Company) -> Plan:
    priya = ctx.users["priya"]
    ines, marco = ctx.contacts_of[company.id]
    final_close = date(ctx.today.year + 1, 1, 30)  # "they want the pilot in Jan"
    first_close = final_close - timedelta(days=46)
    k40, k48 = Decimal("40000"), Decimal("48000")
    events = [
        Event(_local(ctx, 78, 14), 0, False, k40, first_close, FC.pipeline),
        Event(_local(ctx, 71, 11), 1, True, k40, first_close, FC.pipeline),
        Event(_local(ctx, 52, 12, 30), 2, True, k40, first_close, FC.pipeline),
        Event(_local(ctx, 30, 14), 3, True, k48, first_close, FC.best_case),
        Event(_local(ctx, 20, 10), 3, False, k48, final_close, FC.best_case),  # slipped into January
        Event(_local(ctx, 6, 11, 30), 4, True, k48, final_close, FC.commit),
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
    apply_history(ctx, deal, events)
    plan = Plan(deal, company, priya, [ines, marco], events, _local(ctx, 6, 10), "fleet telematics", True)
    ctx.plans.append(plan)
    return plan


def borealis_story(ctx: Ctx, company: Company) -> None:
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
        add_activity(
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
    add_note(ctx, plan, words.BOREALIS_NOTE, _local(ctx, 6, 12), pinned=True)
    thursday = ctx.today + timedelta(days=(3 - ctx.today.weekday()) % 7)
    for title, due_days, created_days, done, who_key in words.BOREALIS_TASKS:
        due = _local(ctx, due_days, 17) if due_days is not None else due_at(thursday, priya.timezone)
        done_at = due - timedelta(hours=3) if done else None
        add_task(
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
    add_quote(
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
    ctx: Ctx,
    plan: Plan,
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
