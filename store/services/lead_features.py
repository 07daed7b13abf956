"""Lead features: what the lead score looks at for a contact, and the labelled history it learns from.

Two named groups of features per contact:

- **fit** (who they are): title seniority (executive and/or technical, from keywords),
  company size bucket, industry, region (or country when the region is unknown), source;
- **engagement** (what happened with them): meetings, calls and emails involving the contact
  in the last 30 days and 31-90 days before, other touches and inbound emails/calls in 90
  days, days since the last activity (or none ever).

Label: the contact *converted*: is on a deal (deal_contacts) or has lifecycle stage
opportunity, customer or evangelist.

Leakage. Engagement is counted as of a reference time: `now` for contacts that have not
converted, and the conversion time for those that did. Counting a converted contact's
activities up to today would teach the model that "lots of meetings" predicts conversion
when most of those meetings are the deal being worked *after* the conversion, and would
score every open lead low for not having them yet. The conversion time is the earliest
`created_at` of a deal they are on (no earlier than the contact's own creation: someone
added to a running deal joined it no earlier than they existed here); for a converted
lifecycle stage without a deal of their own, the earliest deal of their company, else
the audit entry that set the converted stage. Converted contacts with no known conversion
time are left out of training (counted in the report). Lifecycle stage `other`
(partners, vendors...) is neither a lead nor a conversion and is left out too.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import (
    Activity,
    ActivityTarget,
    AuditLog,
    Company,
    Contact,
    Deal,
    DealContact,
    Email,
    EmailParticipant,
)
from store.models.enums import ActivityType, Direction, EmailParticipantRole, LifecycleStage
from store.types import utcnow

LEAD_STAGES = (LifecycleStage.subscriber, LifecycleStage.lead, LifecycleStage.mql, LifecycleStage.sql)
CONVERTED_STAGES = (LifecycleStage.opportunity, LifecycleStage.customer, LifecycleStage.evangelist)
COUNT_CAP = 10  # engagement counts above this add nothing (one noisy account must not dominate)
RECENCY_CAP_DAYS = 365
FEATURE_VERSION = 1  # bump when the features change: older models' settings say what they saw

_EXEC = re.compile(r"\b(ceo|coo|cfo|cto|cio|ciso|cmo|cro|cpo|chief|president|vp|svp|evp|vice[- ]president|"
                   r"founder|co-founder|owner|head of|director|managing partner|general manager)\b", re.I)
_TECH = re.compile(r"\b(cto|cio|ciso|engineer\w*|architect|developer|devops|it|technical|technology|security|"
                   r"data|software|infrastructure|platform|systems)\b", re.I)
SIZE_BUCKETS = ((50, "1-49"), (200, "50-199"), (1000, "200-999"), (5000, "1000-4999"))


@dataclass
class Facts:
    """What the score looks at for one contact (loaded in bulk)."""

    contact: Contact
    company: Company | None
    # (when, kind: meeting|call|email|other, inbound)
    events: list[tuple[datetime, str, bool]] = field(default_factory=list)


def title_kind(title: str | None) -> tuple[bool, bool]:
    """(executive, technical) from the title's words: 'VP Engineering' is both, 'Data Analyst' technical."""
    text = title or ""
    return bool(_EXEC.search(text)), bool(_TECH.search(text))


def size_bucket(employees: int | None) -> str:
    if employees is None:
        return "unknown"
    for upper, name in SIZE_BUCKETS:
        if employees < upper:
            return name
    return "5000+"


def _fit(facts: Facts) -> dict[str, float]:
    c, co = facts.contact, facts.company
    executive, technical = title_kind(c.title)
    region = (co.region if co and co.region else None)
    country = (co.country if co and co.country else None) or c.country
    place = f"region={region}" if region else f"country={country.upper()}" if country else "region=unknown"
    out = {
        "fit:title_executive": float(executive),
        "fit:title_technical": float(technical),
        f"fit:size={size_bucket(co.employee_count if co else None)}": 1.0,
        f"fit:industry={(co.industry if co and co.industry else 'unknown')}": 1.0,
        f"fit:{place}": 1.0,
        f"fit:source={(c.source or (co.source if co else None) or 'unknown').lower()}": 1.0,
    }
    return out


def _engagement(facts: Facts, ref: datetime) -> dict[str, float]:
    counts: dict[str, float] = defaultdict(float)
    last: datetime | None = None
    for at, kind, inbound in facts.events:
        if at > ref:
            continue  # after the reference time: unknown then (and, for a conversion, its consequence)
        last = at if last is None or at > last else last
        age = (ref - at).total_seconds() / 86400
        if age > 90:
            continue
        window = "30d" if age <= 30 else "90d"
        if kind == "other":
            counts["eng:other_90d"] += 1
        else:
            counts[f"eng:{kind}s_{window}"] += 1
        if inbound:
            counts["eng:inbound_90d"] += 1
    out = {name: min(value, COUNT_CAP) for name, value in counts.items()}
    if last is None:
        out["eng:never_engaged"] = 1.0
        out["eng:days_since_last"] = float(RECENCY_CAP_DAYS)
    else:
        out["eng:days_since_last"] = float(min(RECENCY_CAP_DAYS, max(0.0, (ref - last).total_seconds() / 86400)))
    return out


def features(facts: Facts, ref: datetime) -> dict[str, float]:
    """The contact's features as of `ref` (engagement counts only what happened by then)."""
    return _fit(facts) | _engagement(facts, ref)


def load_facts(session: Session, workspace_id: uuid.UUID, contacts: Sequence[Contact]) -> dict[uuid.UUID, Facts]:
    """Contacts with their company and their engagement events, in a few queries."""
    ids = [c.id for c in contacts]
    company_ids = {c.company_id for c in contacts if c.company_id}
    companies = {co.id: co for chunk in chunks(list(company_ids))
                 for co in session.scalars(select(Company).where(Company.id.in_(chunk)))}
    facts = {c.id: Facts(c, companies.get(c.company_id) if c.company_id else None) for c in contacts}
    for chunk in chunks(ids):
        rows = session.execute(
            select(ActivityTarget.contact_id, Activity.type, Activity.direction, Activity.occurred_at)
            .join(Activity, Activity.id == ActivityTarget.activity_id)
            .where(ActivityTarget.workspace_id == workspace_id, ActivityTarget.contact_id.in_(chunk))
        ).all()
        for contact_id, kind, direction, at in rows:
            name = kind.value if kind in (ActivityType.meeting, ActivityType.call, ActivityType.email) else "other"
            facts[contact_id].events.append((at, name, direction == Direction.inbound))
        # Emails filed without an activity (an activity that has the email, any rep's copy of
        # it, is counted above). Several reps' copies of one message are one email.
        logged = (select(Email.message_id).join(Activity, Activity.email_id == Email.id)
                  .where(Activity.workspace_id == workspace_id))
        mail = session.execute(
            select(EmailParticipant.contact_id, Email.message_id, Email.direction, EmailParticipant.role,
                   func.coalesce(Email.sent_at, Email.created_at))
            .join(Email, Email.id == EmailParticipant.email_id)
            .where(EmailParticipant.workspace_id == workspace_id, EmailParticipant.contact_id.in_(chunk),
                   Email.message_id.not_in(logged))
        ).all()
        seen: dict[tuple[uuid.UUID, str], int] = {}
        for contact_id, message_id, direction, role, at in mail:
            inbound = direction == Direction.inbound or role == EmailParticipantRole.sender
            key = (contact_id, message_id)
            if key in seen:  # to and cc on one message, or two reps' copies: one email
                i = seen[key]
                prev = facts[contact_id].events[i]
                facts[contact_id].events[i] = (prev[0], prev[1], prev[2] or inbound)
                continue
            seen[key] = len(facts[contact_id].events)
            facts[contact_id].events.append((at, "email", inbound))
    return facts


def chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _conversion_times(session: Session, workspace_id: uuid.UUID,
                      contacts: Sequence[Contact]) -> dict[uuid.UUID, datetime | None]:
    """Converted contacts -> when they converted (None: converted, but when is unknown)."""
    on_deal = dict(session.execute(
        select(DealContact.contact_id, func.min(Deal.created_at)).join(Deal, Deal.id == DealContact.deal_id)
        .where(DealContact.workspace_id == workspace_id).group_by(DealContact.contact_id)).all())
    company_deal = dict(session.execute(
        select(Deal.company_id, func.min(Deal.created_at))
        .where(Deal.workspace_id == workspace_id, Deal.company_id.is_not(None)).group_by(Deal.company_id)).all())
    out: dict[uuid.UUID, datetime | None] = {}
    unknown: list[Contact] = []
    for c in contacts:
        if c.id in on_deal:
            out[c.id] = max(on_deal[c.id], c.created_at)
        elif c.lifecycle_stage in CONVERTED_STAGES:
            if c.company_id in company_deal:
                out[c.id] = max(company_deal[c.company_id], c.created_at)
            else:
                out[c.id] = None
                unknown.append(c)
    converted = {s.value for s in CONVERTED_STAGES}
    for chunk in chunks([c.id for c in unknown]):  # the audit entry that set a converted stage
        rows = session.execute(
            select(AuditLog.entity_id, AuditLog.created_at, AuditLog.after)
            .where(AuditLog.workspace_id == workspace_id, AuditLog.entity_type == "contact",
                   AuditLog.entity_id.in_(chunk)).order_by(AuditLog.created_at)).all()
        for entity_id, at, after in rows:
            if out.get(entity_id) is None and (after or {}).get("lifecycle_stage") in converted:
                out[entity_id] = at
    return out


def training_set(session: Session, *, workspace_id: uuid.UUID, now: datetime | None = None,
                 ) -> tuple[list[dict[str, float]], list[int], list[datetime], dict[str, int]]:
    """(features, labels, contact created_at, counts) for every contact with a known outcome by `now`."""
    now = now or utcnow()
    contacts = session.scalars(select(Contact).where(Contact.workspace_id == workspace_id,
                                                     Contact.created_at <= now)
                               .order_by(Contact.created_at, Contact.id)).all()
    converted_at = _conversion_times(session, workspace_id, contacts)
    facts = load_facts(session, workspace_id, contacts)
    xs: list[dict[str, float]] = []
    ys: list[int] = []
    created: list[datetime] = []
    counts = {"converted": 0, "unconverted": 0, "excluded_unknown_conversion_time": 0, "excluded_other_stage": 0}
    for c in contacts:
        when = converted_at.get(c.id)
        if c.id in converted_at and when is None:
            counts["excluded_unknown_conversion_time"] += 1
            continue
        if when is not None and when <= now:
            label, ref = 1, when
        elif c.lifecycle_stage == LifecycleStage.other:
            counts["excluded_other_stage"] += 1
            continue
        else:  # not converted (or not yet, as of `now`)
            label, ref = 0, now
        counts["converted" if label else "unconverted"] += 1
        xs.append(features(facts[c.id], ref))
        ys.append(label)
        created.append(c.created_at)
    return xs, ys, created, counts
