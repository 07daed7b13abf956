"""Leads: an explainable lead score learned from history, and routing of new leads to reps.

Lead score
----------
A logistic model (store/ml.py) over two named groups of features per contact:

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

Evaluation. Examples are ordered by the contact's `created_at`; the most recent 25% are
held out, the model is fitted on the rest, and the report gives Brier score, ROC AUC and a
reliability table on the held-out contacts for the model and for a baseline. The baseline
is the training set's conversion rate for everyone: the honest "no model" answer. The
hand-set `Contact.lead_score` is not used as the baseline: it is typically set by people
who already know the outcome (the demo draws it from the lifecycle stage, which *is* the
label), and once `score_leads` has run it holds this model's own output. The stored model
is the one evaluated (fitted on the earlier 75%), so the report describes what is in use.

Scores are `round(100 * p)`, written to `Contact.lead_score` for leads (lifecycle
subscriber, lead, MQL, SQL) by `score_leads`: derived data like a search index, not an
agent write, so there is no proposal and no audit entry (and `updated_at` is kept).

Routing
-------
`route_lead` / `route_unassigned` match a lead's company (region, country, industry,
employee count) against the active territories in priority order (rules as
store/services/config.py validates them; an empty rule matches everything), then pick
among that territory's members round-robin: the one assigned longest ago first (never
first; ties by when they were added), skipping inactive users and members at capacity
(open leads they own: contacts in a lead stage with them as owner; no capacity =
unlimited). When every member of a matching territory is full it tries the next
matching territory; when nothing fits the lead stays unassigned. Every outcome, assigned
or not, is a LeadAssignment row with its reason and an audit entry; an assignment sets
the contact's owner through crud.update (permission checks, audit entry, events).
Only managers and admins route; a manager only to members of their team.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from store import audit, ml
from store.actor import Actor
from store.errors import NotFound, ValidationFailed
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
    LeadAssignment,
    ScoringModel,
    Territory,
    TerritoryMember,
    User,
)
from store.models.enums import (
    ActivityType,
    AuditAction,
    Direction,
    EmailParticipantRole,
    LifecycleStage,
    Role,
)
from store.permissions import can_write_owner, require_role
from store.services import crud, scoring_models, spec_for
from store.types import utcnow

KIND = "lead_score"
LEAD_STAGES = (LifecycleStage.subscriber, LifecycleStage.lead, LifecycleStage.mql, LifecycleStage.sql)
CONVERTED_STAGES = (LifecycleStage.opportunity, LifecycleStage.customer, LifecycleStage.evangelist)
MIN_PER_CLASS = 10  # converted and unconverted contacts needed to train
TEST_SHARE = 0.25
L2_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # the penalty is chosen on the latest fifth of the training part
DEFAULT_L2 = 3.0  # when that fifth or the rest lacks an outcome to choose on
COUNT_CAP = 10  # engagement counts above this add nothing (one noisy account must not dominate)
RECENCY_CAP_DAYS = 365
FEATURE_VERSION = 1

_EXEC = re.compile(r"\b(ceo|coo|cfo|cto|cio|ciso|cmo|cro|cpo|chief|president|vp|svp|evp|vice[- ]president|"
                   r"founder|co-founder|owner|head of|director|managing partner|general manager)\b", re.I)
_TECH = re.compile(r"\b(cto|cio|ciso|engineer\w*|architect|developer|devops|it|technical|technology|security|"
                   r"data|software|infrastructure|platform|systems)\b", re.I)
SIZE_BUCKETS = ((50, "1-49"), (200, "50-199"), (1000, "200-999"), (5000, "1000-4999"))


# --- features ----------------------------------------------------------------------------------


@dataclass
class _Facts:
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


def _fit(facts: _Facts) -> dict[str, float]:
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


def _engagement(facts: _Facts, ref: datetime) -> dict[str, float]:
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


def features(facts: _Facts, ref: datetime) -> dict[str, float]:
    """The contact's features as of `ref` (engagement counts only what happened by then)."""
    return _fit(facts) | _engagement(facts, ref)


def _load(session: Session, workspace_id: uuid.UUID, contacts: Sequence[Contact]) -> dict[uuid.UUID, _Facts]:
    """Contacts with their company and their engagement events, in a few queries."""
    ids = [c.id for c in contacts]
    company_ids = {c.company_id for c in contacts if c.company_id}
    companies = {co.id: co for chunk in _chunks(list(company_ids))
                 for co in session.scalars(select(Company).where(Company.id.in_(chunk)))}
    facts = {c.id: _Facts(c, companies.get(c.company_id) if c.company_id else None) for c in contacts}
    for chunk in _chunks(ids):
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


def _chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
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
    for chunk in _chunks([c.id for c in unknown]):  # the audit entry that set a converted stage
        rows = session.execute(
            select(AuditLog.entity_id, AuditLog.created_at, AuditLog.after)
            .where(AuditLog.workspace_id == workspace_id, AuditLog.entity_type == "contact",
                   AuditLog.entity_id.in_(chunk)).order_by(AuditLog.created_at)).all()
        for entity_id, at, after in rows:
            if out.get(entity_id) is None and (after or {}).get("lifecycle_stage") in converted:
                out[entity_id] = at
    return out


# --- training ------------------------------------------------------------------------------------


def _measure(probs: Sequence[float], labels: Sequence[int]) -> dict[str, Any]:
    table = ml.reliability(probs, labels)
    return {"brier": ml.brier(probs, labels), "auc": ml.auc(probs, labels), "log_loss": ml.log_loss(probs, labels),
            "ece": ml.expected_calibration_error(table),
            "reliability": [{"lo": b.lo, "hi": b.hi, "examples": b.examples, "predicted": b.predicted,
                             "observed": b.observed} for b in table]}


def training_set(session: Session, *, workspace_id: uuid.UUID, now: datetime | None = None,
                 ) -> tuple[list[dict[str, float]], list[int], list[datetime], dict[str, int]]:
    """(features, labels, contact created_at, counts) for every contact with a known outcome by `now`."""
    now = now or utcnow()
    contacts = session.scalars(select(Contact).where(Contact.workspace_id == workspace_id,
                                                     Contact.created_at <= now)
                               .order_by(Contact.created_at, Contact.id)).all()
    converted_at = _conversion_times(session, workspace_id, contacts)
    facts = _load(session, workspace_id, contacts)
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


def train_lead_score(session: Session, *, workspace_id: uuid.UUID, trained_by_id: uuid.UUID | None = None,
                     now: datetime | None = None) -> tuple[ScoringModel, dict[str, Any]]:
    """Fit the lead score on the workspace's history, evaluate it on the latest 25%, store it.

    Raises ValidationFailed when there is too little history to learn from.
    """
    now = now or utcnow()
    xs, ys, created, counts = training_set(session, workspace_id=workspace_id, now=now)
    pos, neg = counts["converted"], counts["unconverted"]
    if pos < MIN_PER_CLASS or neg < MIN_PER_CLASS:
        raise ValidationFailed(
            f"the lead score needs at least {MIN_PER_CLASS} converted and {MIN_PER_CLASS} unconverted contacts; "
            f"found {pos} converted and {neg} unconverted"
            + (f" ({counts['excluded_unknown_conversion_time']} converted with no known conversion time left out)"
               if counts["excluded_unknown_conversion_time"] else ""), field="history")
    cut = len(xs) - max(1, round(len(xs) * TEST_SHARE))
    train_x, train_y, test_x, test_y = xs[:cut], ys[:cut], xs[cut:], ys[cut:]
    if len(set(train_y)) < 2:
        raise ValidationFailed(f"the earliest {len(train_y)} contacts (the training part) are all "
                               f"{'converted' if train_y[0] else 'unconverted'}; nothing to learn from yet",
                               field="history")
    # The penalty: the best log loss on the latest fifth of the training part (again by time). Many
    # one-hot features (industries, sources) and a few hundred examples overfit easily; the test part
    # is never looked at for this choice.
    holdout = max(1, len(train_x) // 5)
    tunable = len(set(train_y[:-holdout])) == 2 and holdout >= 5
    trained = ml.train(train_x, train_y, l2_grid=L2_GRID, holdout=holdout if tunable else 0, score="log_loss",
                       decimals=6, default_l2=DEFAULT_L2)
    model, l2 = trained.model, trained.l2
    rate = sum(train_y) / len(train_y)
    probs = model.predict(test_x).tolist()
    report: dict[str, Any] = {
        "kind": KIND,
        "label": "converted: on a deal, or lifecycle opportunity/customer/evangelist",
        "as_of": now.isoformat(),
        "examples": {"train": len(train_y), "test": len(test_y), **counts,
                     "test_converted": int(sum(test_y))},
        "split": {"by": "contact created_at", "test_from": created[cut].isoformat()},
        "l2": l2,
        "model": _measure(probs, test_y),
        "baseline": {"name": "training conversion rate for everyone", "p": rate,
                     **_measure([rate] * len(test_y), test_y)},
        "weights": sorted(({"feature": n, "group": _group(n), "coef": c} for n, c in zip(model.features, model.coef,
                                                                                     strict=True)),
                          key=lambda w: -abs(w["coef"]))[:15],
    }
    row = scoring_models.save(session, workspace_id=workspace_id, kind=KIND, model=model, report=report,
                              train_examples=len(train_y), test_examples=len(test_y), trained_by_id=trained_by_id,
                              settings={"feature_version": FEATURE_VERSION, "count_cap": COUNT_CAP,
                                        "recency_cap_days": RECENCY_CAP_DAYS})
    return row, report


def _group(feature: str) -> str:
    return "fit" if feature.startswith("fit:") else "engagement"


# --- scoring and explaining ------------------------------------------------------------------------


def _model(session: Session, workspace_id: uuid.UUID) -> scoring_models.Stored:
    stored = scoring_models.latest(session, workspace_id=workspace_id, kind=KIND)
    if stored is None:
        raise NotFound("there is no lead score model yet: an admin trains one with `crm leads train`",
                       entity="scoring_model")
    return stored


def score(p: float) -> int:
    return int(round(100 * p))


def score_leads(session: Session, *, workspace_id: uuid.UUID, now: datetime | None = None) -> dict[str, Any]:
    """Write Contact.lead_score for the workspace's leads from the model in use; returns counts."""
    now = now or utcnow()
    stored = _model(session, workspace_id)
    leads = session.scalars(select(Contact).where(Contact.workspace_id == workspace_id,
                                                  Contact.lifecycle_stage.in_(LEAD_STAGES))).all()
    facts = _load(session, workspace_id, leads)
    probs = stored.model.predict([features(facts[c.id], now) for c in leads]).tolist()
    changes = [{"b_id": c.id, "b_score": score(p)} for c, p in zip(leads, probs, strict=True)
               if c.lead_score != score(p)]
    if changes:
        table = Contact.__table__
        # Core UPDATE keeping updated_at: a re-score is derived data, not an edit of the contact.
        stmt = (update(table).where(table.c.id == bindparam("b_id"))
                .values(lead_score=bindparam("b_score"), updated_at=table.c.updated_at))
        session.connection().execute(stmt, changes)
        for c in leads:
            session.expire(c, ["lead_score"])
    return {"leads": len(leads), "changed": len(changes), "model_id": stored.id,
            "trained_at": stored.trained_at}


@dataclass
class Reason:
    text: str  # "VP Operations title (executive)"
    logit: float  # its share of the log-odds against the average contact
    group: str  # "fit" | "engagement"

    def __str__(self) -> str:
        return f"{self.text} ({self.logit if abs(self.logit) >= 0.05 else 0.0:+.1f})"


@dataclass
class Explanation:
    contact_id: uuid.UUID
    contact: str
    score: int
    probability: float
    average_score: int  # the average contact's score (the model's intercept)
    fit: float  # fit features' share of the log-odds
    engagement: float  # engagement features' share
    reasons: list[Reason]  # every factor, largest effect first
    model_id: uuid.UUID
    trained_at: datetime
    stored_score: int | None  # what Contact.lead_score holds now

    def text(self, top: int = 5) -> str:
        lines = [f"{self.contact}: lead score {self.score}/100 (the average contact scores {self.average_score}).",
                 f"Fit {self.fit:+.1f}, engagement {self.engagement:+.1f} (log-odds against the average contact).",
                 "Top reasons: " + "; ".join(str(r) for r in self.reasons[:top]) + "."]
        if self.stored_score is not None and self.stored_score != self.score:
            lines.append(f"(The stored score is {self.stored_score}; `crm leads score` refreshes it.)")
        lines.append(f"Model trained {self.trained_at:%Y-%m-%d}.")
        return "\n".join(lines)


_FACTORS = {  # engagement feature -> factor
    "eng:meetings_30d": "meetings", "eng:meetings_90d": "meetings", "eng:calls_30d": "calls",
    "eng:calls_90d": "calls", "eng:emails_30d": "emails", "eng:emails_90d": "emails", "eng:other_90d": "other",
    "eng:inbound_90d": "inbound", "eng:days_since_last": "recency", "eng:never_engaged": "recency",
}


def _factor(feature: str) -> str:
    if feature.startswith("fit:"):
        name = feature[4:]
        return "title" if name.startswith("title_") else name.split("=", 1)[0]
    return _FACTORS.get(feature, feature)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _describe(factor: str, facts: _Facts, x: dict[str, float]) -> str:
    c, co = facts.contact, facts.company
    if factor == "title":
        executive, technical = title_kind(c.title)
        kinds = [k for k, on in (("executive", executive), ("technical", technical)) if on]
        return (f"{c.title} title" if c.title else "no title") + f" ({' and '.join(kinds) or 'not executive'})"
    if factor == "size":
        n = co.employee_count if co else None
        return f"company of {n:,} employees" if n is not None else "company size unknown"
    if factor == "industry":
        return f"industry {co.industry}" if co and co.industry else "industry unknown"
    if factor in ("region", "country"):
        key = next(k for k in x if k.startswith(f"fit:{factor}="))
        value = key.split("=", 1)[1]
        return f"{factor} {value}" if value != "unknown" else "region unknown"
    if factor == "source":
        key = next(k for k in x if k.startswith("fit:source="))
        return f"source {key.split('=', 1)[1]}"
    if factor in ("meetings", "calls", "emails"):
        word = factor[:-1]
        recent, older = int(x.get(f"eng:{factor}_30d", 0)), int(x.get(f"eng:{factor}_90d", 0))
        if recent:
            return _plural(recent, word) + " in 30 days" + (f" (+{older} in the 60 before)" if older else "")
        return _plural(older, word) + " in 31-90 days" if older else f"no {factor} in 90 days"
    if factor == "other":
        n = int(x.get("eng:other_90d", 0))
        return _plural(n, "other touch").replace("touchs", "touches") + " in 90 days"
    if factor == "inbound":
        n = int(x.get("eng:inbound_90d", 0))
        return f"{n} inbound emails/calls in 90 days" if n else "nothing inbound in 90 days"
    if factor == "recency":
        if x.get("eng:never_engaged"):
            return "no activity logged"
        days = int(x["eng:days_since_last"])
        return "last activity over a year ago" if days >= RECENCY_CAP_DAYS else f"last activity {days} days ago"
    return factor


def explain(stored: scoring_models.Stored, facts: _Facts, now: datetime) -> Explanation:
    x = features(facts, now)
    model = stored.model
    parts = model.explain(x)
    by_factor: dict[str, float] = defaultdict(float)
    groups: dict[str, str] = {}
    for part in parts:
        f = _factor(part.feature)
        by_factor[f] += part.logit
        groups[f] = _group(part.feature)
    # A one-hot value the model never saw (a new industry) adds nothing, but still deserves a line.
    for name in x:
        f = _factor(name)
        if f not in by_factor and x[name]:
            by_factor[f] += 0.0
            groups[f] = _group(name)
    reasons = sorted((Reason(_describe(f, facts, x), logit, groups[f]) for f, logit in by_factor.items()),
                     key=lambda r: -abs(r.logit))
    p = float(model.predict([x])[0])
    c = facts.contact
    return Explanation(
        contact_id=c.id, contact=c.full_name or c.email or str(c.id), score=score(p), probability=p,
        average_score=score(1 / (1 + math.exp(-model.intercept))),
        fit=sum(r.logit for r in reasons if r.group == "fit"),
        engagement=sum(r.logit for r in reasons if r.group == "engagement"),
        reasons=reasons, model_id=stored.id, trained_at=stored.trained_at, stored_score=c.lead_score)


def explain_lead(session: Session, actor: Actor, contact_id: uuid.UUID, *, now: datetime | None = None) -> Explanation:
    """A contact's lead score with its fit and engagement parts and the reasons in plain words.

    Only for a contact the actor may read (NotFound otherwise, as for any record)."""
    contact = crud.get(session, spec_for("contact"), actor=actor, id=contact_id)
    stored = _model(session, actor.workspace_id)
    facts = _load(session, actor.workspace_id, [contact])[contact.id]
    return explain(stored, facts, now or utcnow())


def contact_by_email(session: Session, actor: Actor, email: str) -> Contact:
    contact = session.scalar(crud.readable(spec_for("contact"), actor).where(Contact.email == email.strip().lower()))
    if contact is None:
        raise NotFound(f"no contact with email {email} that you can see", entity="contact")
    return contact


# --- routing -----------------------------------------------------------------------------------------


@dataclass
class Assignment:
    """One routing outcome: a lead given to a rep, or left unassigned, and why."""

    contact_id: uuid.UUID
    contact: str
    company: str | None
    user_id: uuid.UUID | None
    user: str | None
    territory_id: uuid.UUID | None
    territory: str | None
    reason: str
    previous_owner_id: uuid.UUID | None = None
    id: uuid.UUID | None = None  # the LeadAssignment row; None in a dry run

    @property
    def assigned(self) -> bool:
        return self.user_id is not None


def _rule_match(territory: Territory, contact: Contact, company: Company | None) -> str | None:
    """Why the lead matches the territory's rules (a phrase), or None when it does not."""
    rules = territory.rules or {}
    said: list[str] = []

    def norm(values: Any) -> set[str]:
        return {str(v).strip().lower() for v in (values or [])}

    if rules.get("regions"):
        region = company.region if company else None
        if not region or region.strip().lower() not in norm(rules["regions"]):
            return None
        said.append(f"region {region}")
    if rules.get("countries"):
        country = (company.country if company and company.country else None) or contact.country
        if not country or country.strip().lower() not in norm(rules["countries"]):
            return None
        said.append(f"country {country.upper()}")
    if rules.get("industries"):
        industry = company.industry if company else None
        if not industry or industry.strip().lower() not in norm(rules["industries"]):
            return None
        said.append(f"industry {industry}")
    low, high = rules.get("min_employees"), rules.get("max_employees")
    if low is not None or high is not None:
        n = company.employee_count if company else None
        if n is None or (low is not None and n < int(low)) or (high is not None and n > int(high)):
            return None
        span = f"{low}-{high}" if low is not None and high is not None else f">= {low}" if low is not None \
            else f"<= {high}"
        said.append(f"{n:,} employees ({span})")
    return (", ".join(said) + " matched") if said else "catch-all: no rules"


def _lead_profile(contact: Contact, company: Company | None) -> str:
    if company is None:
        return "no company" + (f", country {contact.country}" if contact.country else "")
    bits = [f"region {company.region or '?'}", f"industry {company.industry or '?'}",
            f"{company.employee_count:,} employees" if company.employee_count is not None else "size ?"]
    return ", ".join(bits)


def _label(contact: Contact) -> str:
    return contact.full_name or contact.email or str(contact.id)


class _Router:
    """The routing state for one run: territories, members, open-lead counts, the rotation."""

    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session, self.actor, self.now = session, actor, now
        ws = actor.workspace_id
        self.territories = session.scalars(select(Territory).where(Territory.workspace_id == ws,
                                                                   Territory.active.is_(True))
                                           .order_by(Territory.priority, Territory.name)).all()
        members = session.scalars(select(TerritoryMember).where(TerritoryMember.workspace_id == ws)
                                  .order_by(TerritoryMember.id)).all()
        self.members: dict[uuid.UUID, list[TerritoryMember]] = defaultdict(list)
        for m in members:
            self.members[m.territory_id].append(m)
        self.users = {u.id: u for u in session.scalars(select(User).where(User.workspace_id == ws))}
        self.open = defaultdict(int, session.execute(
            select(Contact.owner_id, func.count()).where(Contact.workspace_id == ws,
                                                         Contact.lifecycle_stage.in_(LEAD_STAGES),
                                                         Contact.owner_id.is_not(None))
            .group_by(Contact.owner_id)).all())
        # The rotation as this run sees it (a dry run books assignments here only).
        self.last: dict[uuid.UUID, datetime | None] = {m.id: m.last_assigned_at for m in members}
        self._may_assign: dict[uuid.UUID, bool] = {}
        self._tick = 0

    def may_assign(self, user_id: uuid.UUID) -> bool:
        if user_id not in self._may_assign:
            self._may_assign[user_id] = can_write_owner(self.session, self.actor, user_id)
        return self._may_assign[user_id]

    def load(self, m: TerritoryMember) -> str:
        cap = "unlimited" if m.capacity is None else str(m.capacity)
        return f"{self.open[m.user_id]}/{cap} open leads"

    def _why_not(self, m: TerritoryMember) -> str | None:
        user = self.users.get(m.user_id)
        if user is None or not user.is_active:
            return "inactive"
        if m.capacity is not None and self.open[m.user_id] >= m.capacity:
            return f"full, {self.load(m)}"
        if not self.may_assign(m.user_id):
            return "not in your team"
        return None

    def plan(self, contact: Contact, company: Company | None) -> tuple[TerritoryMember | None, Territory | None,
                                                                       str]:
        """The member to give the lead to (and the territory), or None, with the reason."""
        full: list[str] = []
        for territory in self.territories:
            matched = _rule_match(territory, contact, company)
            if matched is None:
                continue
            rotation = sorted(self.members.get(territory.id, []),
                              key=lambda m: (self.last[m.id] is not None, self.last[m.id] or self.now, m.id))
            skipped: list[str] = []
            for m in rotation:
                why = self._why_not(m)
                if why is None:
                    name = self.users[m.user_id].name
                    reason = f"territory {territory.name} ({matched}); round-robin: {name} was next; {self.load(m)}"
                    if skipped:
                        reason += f"; skipped {', '.join(skipped)}"
                    if full:
                        reason = f"{'; '.join(full)}; then {reason}"
                    return m, territory, reason
                skipped.append(f"{self.users[m.user_id].name if m.user_id in self.users else 'a removed user'}"
                               f" ({why})")
            full.append(f"territory {territory.name} ({matched}) but "
                        + (f"no one could take it: {', '.join(skipped)}" if skipped else "it has no members"))
        if full:
            return None, None, "; ".join(full) + "; left unassigned"
        return None, None, f"no active territory matches ({_lead_profile(contact, company)}); left unassigned"

    def take(self, m: TerritoryMember, previous_owner: uuid.UUID | None, *, write: bool) -> datetime:
        """Book the assignment in the rotation (strictly increasing within a run) and the counts."""
        stamp = self.now + timedelta(microseconds=self._tick)
        self._tick += 1
        self.last[m.id] = stamp
        self.open[m.user_id] += 1
        if previous_owner is not None and self.open[previous_owner] > 0:
            self.open[previous_owner] -= 1
        if write:
            m.last_assigned_at = stamp
        return stamp


def _route(router: _Router, contacts: Sequence[Contact], *, dry_run: bool) -> list[Assignment]:
    session, actor = router.session, router.actor
    company_ids = list({c.company_id for c in contacts if c.company_id})
    companies = {co.id: co for chunk in _chunks(company_ids)
                 for co in session.scalars(select(Company).where(Company.id.in_(chunk)))}
    out: list[Assignment] = []
    spec = spec_for("contact")
    for contact in contacts:
        company = companies.get(contact.company_id) if contact.company_id else None
        member, territory, reason = router.plan(contact, company)
        user = router.users[member.user_id] if member else None
        previous = contact.owner_id
        result = Assignment(contact.id, _label(contact), company.name if company else None,
                            user.id if user else None, user.name if user else None,
                            territory.id if territory else None, territory.name if territory else None,
                            reason, previous)
        stamp = router.now
        if member is not None:
            stamp = router.take(member, previous, write=not dry_run)
            if not dry_run:
                crud.update(session, spec, actor=actor, id=contact.id, data={"owner_id": member.user_id})
        if not dry_run:
            row = LeadAssignment(workspace_id=actor.workspace_id, contact_id=contact.id,
                                 user_id=result.user_id, previous_owner_id=previous,
                                 territory_id=result.territory_id, reason=reason[:1000], assigned_at=stamp,
                                 assigned_by_id=actor.user_id, approval_id=actor.approval_id)
            session.add(row)
            session.flush()
            audit.record(session, actor, action=AuditAction.create, entity_type="lead_assignment", entity_id=row.id,
                         after=audit.snapshot(row), approval_id=actor.approval_id, note=reason[:1000])
            result.id = row.id
        out.append(result)
    return out


def _check_may_route(actor: Actor) -> None:
    require_role(actor, Role.manager, Role.admin, what="route leads")


def route_lead(session: Session, *, actor: Actor, contact_id: uuid.UUID, now: datetime | None = None,
               dry_run: bool = False) -> Assignment:
    """Route one lead (whoever owns it now) by the territory rules; logged with its reason."""
    _check_may_route(actor)
    contact = crud.get(session, spec_for("contact"), actor=actor, id=contact_id)
    if contact.lifecycle_stage not in LEAD_STAGES:
        raise ValidationFailed(f"{_label(contact)} is at lifecycle stage {contact.lifecycle_stage.value}, not a "
                               "lead; only subscribers, leads, MQLs and SQLs are routed", field="contact_id")
    return _route(_Router(session, actor, now or utcnow()), [contact], dry_run=dry_run)[0]


def unassigned_leads(session: Session, *, actor: Actor, contact_ids: Sequence[uuid.UUID] | None = None,
                     limit: int | None = None) -> Sequence[Contact]:
    """Leads with no owner that the actor can see, oldest first."""
    query = (crud.readable(spec_for("contact"), actor)
             .where(Contact.owner_id.is_(None), Contact.lifecycle_stage.in_(LEAD_STAGES))
             .order_by(Contact.created_at, Contact.id))
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def route_unassigned(session: Session, *, actor: Actor, now: datetime | None = None,
                     contact_ids: Sequence[uuid.UUID] | None = None, limit: int | None = None,
                     dry_run: bool = False) -> list[Assignment]:
    """Route every unassigned lead (or those of `contact_ids` still unassigned), oldest first.

    `dry_run`: the same decisions, nothing written."""
    _check_may_route(actor)
    leads = unassigned_leads(session, actor=actor, contact_ids=contact_ids, limit=limit)
    return _route(_Router(session, actor, now or utcnow()), leads, dry_run=dry_run)


def assignments_for(session: Session, *, actor: Actor, contact_id: uuid.UUID) -> Sequence[LeadAssignment]:
    """The routing log of one contact the actor may read, newest first."""
    crud.get(session, spec_for("contact"), actor=actor, id=contact_id)
    return session.scalars(select(LeadAssignment).where(LeadAssignment.workspace_id == actor.workspace_id,
                                                        LeadAssignment.contact_id == contact_id)
                           .order_by(LeadAssignment.assigned_at.desc(), LeadAssignment.id.desc())).all()
