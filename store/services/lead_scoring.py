"""Lead score: a logistic model (store/ml.py) over the lead features (store/services/lead_features.py),
trained on which contacts converted, written to the leads, and explained in plain words.

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
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from store import ml
from store.actor import Actor
from store.errors import NotFound, ValidationFailed
from store.models import Contact, ScoringModel
from store.services import crud, scoring_models, spec_for
from store.services.lead_features import (
    COUNT_CAP,
    FEATURE_VERSION,
    LEAD_STAGES,
    RECENCY_CAP_DAYS,
    Facts,
    features,
    load_facts,
    title_kind,
    training_set,
)
from store.types import utcnow

KIND = "lead_score"
MIN_PER_CLASS = 10  # converted and unconverted contacts needed to train
TEST_SHARE = 0.25
L2_GRID = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # the penalty is chosen on the latest fifth of the training part
DEFAULT_L2 = 3.0  # when that fifth or the rest lacks an outcome to choose on


def _measure(probs: Sequence[float], labels: Sequence[int]) -> dict[str, Any]:
    table = ml.reliability(probs, labels)
    return {"brier": ml.brier(probs, labels), "auc": ml.auc(probs, labels), "log_loss": ml.log_loss(probs, labels),
            "ece": ml.expected_calibration_error(table),
            "reliability": [{"lo": b.lo, "hi": b.hi, "examples": b.examples, "predicted": b.predicted,
                             "observed": b.observed} for b in table]}


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
    facts = load_facts(session, workspace_id, leads)
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


def _describe(factor: str, facts: Facts, x: dict[str, float]) -> str:
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


def explain(stored: scoring_models.Stored, facts: Facts, now: datetime) -> Explanation:
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
    facts = load_facts(session, actor.workspace_id, [contact])[contact.id]
    return explain(stored, facts, now or utcnow())


def contact_by_email(session: Session, actor: Actor, email: str) -> Contact:
    contact = session.scalar(crud.readable(spec_for("contact"), actor).where(Contact.email == email.strip().lower()))
    if contact is None:
        raise NotFound(f"no contact with email {email} that you can see", entity="contact")
    return contact
