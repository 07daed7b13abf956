"""Win probability: learned from the workspace's own won and lost deals, explained per deal.

What a deal looked like while it was open is rebuilt from `deal_history` and its
activities. Every closed deal gives one snapshot every two weeks of its open life (the
first a week after creation), each labelled with how the deal ended. Each deal's
snapshots together weigh as much as one deal, so a long deal does not outvote a short
one. Features, all as of the snapshot's moment:

- stage, and days in it; deal age; the close date's pushes and whether it has passed,
  and days left to it;
- activities (calls, meetings, emails, notes) on the deal in the last 30 days, days
  since the last one, none at all yet;
- amount (log), source, owner.

Nothing from after the snapshot is used: a deal's final stage or close time would
give the answer away.

**Held-out test.** Deals are ordered by when they closed. The model learns from the
first 75% and is scored on the last 25% (the most recent, like the deals it will be
asked about). The scores are the Brier score, log loss, AUC and a reliability table.
The baseline scored on the same snapshots is what the forecast uses today: the
deal's probability if someone set one, else its stage's. The model in use is then
refitted on every closed deal, and the report says so.
"""

from __future__ import annotations

import math
import uuid
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from store import ml
from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Activity, ActivityTarget, Deal, DealHistory, Stage, User
from store.models.enums import StageKind
from store.services import scoring_models
from store.services.crud import get, spec_for
from store.services.pipeline import Scope, scoped_deals

KIND = "win_probability"
STEP_DAYS = 14
FIRST_DAYS = 7
MAX_SNAPSHOTS = 26  # a year of fortnights per deal
TEST_SHARE = 0.25
MIN_DEALS = 30  # closed deals in all
MIN_EACH = 5  # wins and losses, in the training part and in the test part
L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)  # tried on the learning part alone (see train)
DEFAULT_L2 = 30.0  # when the learning part has too few wins or losses to choose on


class NotEnoughHistory(ValidationFailed):
    pass


@dataclass
class _Row:
    at: datetime
    stage_id: uuid.UUID
    amount: Decimal | None
    close_date: date | None
    probability: int | None


@dataclass
class _Deal:
    id: uuid.UUID
    name: str
    source: str | None
    owner_id: uuid.UUID | None
    created_at: datetime
    closed_at: datetime | None
    won: int | None  # 1 won, 0 lost, None open
    rows: list[_Row] = field(default_factory=list)
    activities: list[datetime] = field(default_factory=list)  # sorted


@dataclass(frozen=True)
class _StageInfo:
    name: str
    kind: StageKind
    probability: int


def _stages(session: Session, workspace_id: uuid.UUID) -> dict[uuid.UUID, _StageInfo]:
    rows = session.execute(select(Stage.id, Stage.name, Stage.kind, Stage.probability)
                           .where(Stage.workspace_id == workspace_id)).all()
    return {r[0]: _StageInfo(r[1], r[2], r[3]) for r in rows}


def _load(session: Session, deals: Select[Any]) -> dict[uuid.UUID, _Deal]:
    """The deals selected by `deals` (a SELECT of Deal rows), with their history and activity times."""
    sub = deals.subquery()
    ids = select(sub.c.id)
    won_kind = select(Stage.kind).where(Stage.id == sub.c.stage_id).scalar_subquery()
    out: dict[uuid.UUID, _Deal] = {}
    for did, name, source, owner, created, closed, kind in session.execute(
            select(sub.c.id, sub.c.name, sub.c.source, sub.c.owner_id, sub.c.created_at, sub.c.closed_at, won_kind)):
        won = 1 if kind == StageKind.won else 0 if kind == StageKind.lost else None
        out[did] = _Deal(did, name, source, owner, created, closed if won is not None else None, won)
    for did, at, stage_id, amount, close_date, prob in session.execute(
            select(DealHistory.deal_id, DealHistory.changed_at, DealHistory.stage_id, DealHistory.amount,
                   DealHistory.close_date, DealHistory.probability)
            .where(DealHistory.deal_id.in_(ids)).order_by(DealHistory.deal_id, DealHistory.changed_at)):
        out[did].rows.append(_Row(at, stage_id, amount, close_date, prob))
    for did, at in session.execute(
            select(ActivityTarget.deal_id, Activity.occurred_at)
            .join(Activity, Activity.id == ActivityTarget.activity_id).where(ActivityTarget.deal_id.in_(ids))):
        out[did].activities.append(at)
    for deal in out.values():
        deal.activities.sort()
        if deal.rows:
            deal.created_at = min(deal.created_at, deal.rows[0].at)
    return out


@dataclass
class _Snapshot:
    features: dict[str, float]
    baseline: float  # the forecast's probability at that moment, 0-1
    stage: str


def _snapshot(deal: _Deal, t: datetime, stages: dict[uuid.UUID, _StageInfo], *,
              current: Deal | None = None) -> _Snapshot | None:
    """The deal as it was at `t`, or None if it was not open then. `current`: use the live row's
    stage, amount, close date and probability (history may lag an edit made outside the services)."""
    upto = [r for r in deal.rows if r.at <= t]
    if current is not None:
        state = _Row(t, current.stage_id, current.amount, current.close_date, current.probability)
    elif upto:
        state = upto[-1]
    else:
        return None
    stage = stages.get(state.stage_id)
    if stage is None or stage.kind != StageKind.open:
        return None
    entered, pushes, prev = deal.created_at, 0, None
    for r in upto:
        if prev is not None and r.stage_id != prev.stage_id:
            entered = r.at
        if prev is not None and r.close_date and prev.close_date and r.close_date > prev.close_date:
            pushes += 1
        prev = r
    if current is not None and current.stage_entered_at is not None:
        entered = current.stage_entered_at
    elif current is not None and prev is not None and prev.stage_id != current.stage_id:
        entered = t  # moved outside the services: no history row, no entry time
    days = (t - deal.created_at).total_seconds() / 86400
    in_stage = max(0.0, (t - entered).total_seconds() / 86400)
    n_before = bisect_right(deal.activities, t)
    recent = n_before - bisect_left(deal.activities, t - timedelta(days=30))
    since = (t - deal.activities[n_before - 1]).total_seconds() / 86400 if n_before else days
    f: dict[str, float] = {
        f"stage={stage.name}": 1.0,
        "days_in_stage": math.log1p(in_stage),
        "deal_age": math.log1p(max(days, 0.0)),
        "activities_30d": math.log1p(recent),
        "days_since_activity": math.log1p(max(since, 0.0)),
        "no_activity_yet": 1.0 if n_before == 0 else 0.0,
        "close_date_pushes": float(min(pushes, 5)),
        f"source={deal.source or '(none)'}": 1.0,
        f"owner={deal.owner_id or '(none)'}": 1.0,
    }
    if state.amount is not None and state.amount > 0:
        f["amount"] = math.log(float(state.amount))
    else:
        f["no_amount"] = 1.0
    if state.close_date is not None:
        left = (state.close_date - t.date()).days
        f["close_date_passed"] = 1.0 if left < 0 else 0.0
        f["days_to_close"] = max(-180, min(left, 365)) / 30
    baseline = (state.probability if state.probability is not None else stage.probability) / 100
    return _Snapshot(f, baseline, stage.name)


def _snapshots(deal: _Deal, stages: dict[uuid.UUID, _StageInfo]) -> list[_Snapshot]:
    assert deal.closed_at is not None
    out = []
    t = deal.created_at + timedelta(days=FIRST_DAYS)
    if t >= deal.closed_at:
        t = deal.created_at + (deal.closed_at - deal.created_at) / 2
    while t < deal.closed_at and len(out) < MAX_SNAPSHOTS:
        snap = _snapshot(deal, t, stages)
        if snap is not None:
            out.append(snap)
        t += timedelta(days=STEP_DAYS)
    return out


@dataclass
class _Set:
    features: list[dict[str, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    deals: int = 0
    won: int = 0

    def add(self, deal: _Deal, snaps: list[_Snapshot]) -> None:
        if not snaps:
            return
        assert deal.won is not None
        self.deals += 1
        self.won += deal.won
        for s in snaps:
            self.features.append(s.features)
            self.labels.append(deal.won)
            self.weights.append(1 / len(snaps))
            self.baseline.append(s.baseline)


def _scores(probs: Any, data: _Set) -> dict[str, Any]:
    return {"brier": round(ml.brier(probs, data.labels, data.weights), 4),
            "log_loss": round(ml.log_loss(probs, data.labels, data.weights), 4),
            "auc": None if (a := ml.auc(probs, data.labels, data.weights)) is None else round(a, 4)}


def train(session: Session, *, workspace_id: uuid.UUID, trained_by_id: uuid.UUID | None = None,
          now: datetime | None = None) -> tuple[Any, dict[str, Any]]:
    """Learn from the workspace's closed deals, test on the most recent quarter of them, store
    the model (refitted on all of them) with its report. Returns (the stored row, the report)."""
    now = now or datetime.now(UTC)
    stages = _stages(session, workspace_id)
    closed = select(Deal).where(Deal.workspace_id == workspace_id, Deal.closed_at.is_not(None),
                                Deal.stage_id.in_([sid for sid, s in stages.items() if s.kind != StageKind.open]))
    deals = sorted((d for d in _load(session, closed).values() if d.won is not None and d.closed_at),
                   key=lambda d: (d.closed_at, d.id))
    wins = sum(d.won or 0 for d in deals)
    if len(deals) < MIN_DEALS or min(wins, len(deals) - wins) < 2 * MIN_EACH:
        raise NotEnoughHistory(
            f"win probability needs at least {MIN_DEALS} closed deals with {2 * MIN_EACH} wins and {2 * MIN_EACH} "
            f"losses to learn from; this workspace has {len(deals)} ({wins} won, {len(deals) - wins} lost). "
            "The forecast keeps using the stage probabilities until then.")
    cut = int(len(deals) * (1 - TEST_SHARE))
    # The penalty is chosen on the last quarter of the learning deals, fitted on the rest: the same
    # split by time as the test, never looking at the test deals.
    tune_cut = int(cut * (1 - TEST_SHARE))
    train_set, test_set, all_set, tune_fit, tune_check = _Set(), _Set(), _Set(), _Set(), _Set()
    for i, deal in enumerate(deals):
        snaps = _snapshots(deal, stages)
        (train_set if i < cut else test_set).add(deal, snaps)
        all_set.add(deal, snaps)
        if i < cut:
            (tune_fit if i < tune_cut else tune_check).add(deal, snaps)
    for name, part in (("learning", train_set), ("test", test_set)):
        if min(part.won, part.deals - part.won) < MIN_EACH:
            raise NotEnoughHistory(
                f"the {name} part ({part.deals} deals, {part.won} won) needs at least {MIN_EACH} wins and "
                f"{MIN_EACH} losses; close more deals or wait for more history")
    tunable = min(tune_fit.won, tune_fit.deals - tune_fit.won, tune_check.won, tune_check.deals - tune_check.won) >= 2
    trained = ml.train(train_set.features, train_set.labels, weights=train_set.weights, l2_grid=L2_GRID,
                       holdout=len(tune_check.labels) if tunable else 0, score="brier", decimals=4,
                       default_l2=DEFAULT_L2)
    model, l2 = trained.model, trained.l2
    probs = model.predict(test_set.features)
    m_table = ml.reliability(probs, test_set.labels, test_set.weights)
    b_table = ml.reliability(test_set.baseline, test_set.labels, test_set.weights)
    model_scores, base_scores = _scores(probs, test_set), _scores(test_set.baseline, test_set)
    final = ml.LogisticModel.fit(all_set.features, all_set.labels, weights=all_set.weights, l2=l2)
    names = _owner_names(session, workspace_id)
    better = model_scores["brier"] < base_scores["brier"]
    report: dict[str, Any] = {
        "kind": KIND,
        "trained_at": now.isoformat(timespec="seconds"),
        "history": {"closed_deals": len(deals), "won": wins, "lost": len(deals) - wins,
                    "snapshots": len(all_set.labels), "first_closed": deals[0].closed_at.date().isoformat(),  # type: ignore[union-attr]
                    "last_closed": deals[-1].closed_at.date().isoformat()},  # type: ignore[union-attr]
        "split": {"learning_deals": train_set.deals, "learning_won": train_set.won,
                  "test_deals": test_set.deals, "test_won": test_set.won, "test_snapshots": len(test_set.labels),
                  "test_closed_from": deals[cut].closed_at.date().isoformat()},  # type: ignore[union-attr]
        "test": {"model": model_scores, "baseline": base_scores,
                 "model_ece": round(ml.expected_calibration_error(m_table), 4),
                 "baseline_ece": round(ml.expected_calibration_error(b_table), 4),
                 "brier_skill_vs_baseline": round(1 - model_scores["brier"] / base_scores["brier"], 4)
                 if base_scores["brier"] else None},
        "reliability": [
            {"bin": f"{m.lo:.1f}-{m.hi:.1f}",
             "model_deals": round(m.weight, 1), "model_predicted": _r(m.predicted), "model_observed": _r(m.observed),
             "baseline_deals": round(b.weight, 1), "baseline_predicted": _r(b.predicted),
             "baseline_observed": _r(b.observed)}
            for m, b in zip(m_table, b_table, strict=True)],
        "weights": [{"feature": f, "label": _feature_label(f, names), "weight": round(c / s, 4)}
                    for f, c, s in sorted(zip(final.features, final.coef, final.scale, strict=True),
                                          key=lambda t: -abs(t[1]))],
        "penalty": {"l2": l2, "tried": trained.tried},
        # The forecast's stage probabilities are the fallback: a model that does not beat them on
        # deals it never saw is reported, and its chances are shown as a second opinion only.
        "use_model": better,
        "verdict": (f"in use: on held-out deals its Brier score is {model_scores['brier']:.4f} against the stage "
                    f"baseline's {base_scores['brier']:.4f}" if better else
                    f"not used: on held-out deals its Brier score is {model_scores['brier']:.4f}, no better than "
                    f"the stage baseline's {base_scores['brier']:.4f}; answers keep the stage probabilities"),
        "in_use": f"refitted on all {len(deals)} closed deals ({len(all_set.labels)} snapshots) after the test",
    }
    row = scoring_models.save(session, workspace_id=workspace_id, kind=KIND, model=final, report=report,
                              train_examples=len(train_set.labels), test_examples=len(test_set.labels),
                              trained_by_id=trained_by_id,
                              settings={"step_days": STEP_DAYS, "first_days": FIRST_DAYS, "l2": l2,
                                        "test_share": TEST_SHARE})
    return row, report


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _owner_names(session: Session, workspace_id: uuid.UUID) -> dict[str, str]:
    return {str(i): n for i, n in session.execute(select(User.id, User.name).where(User.workspace_id == workspace_id))}


def _feature_label(feature: str, owners: dict[str, str]) -> str:
    if feature.startswith("owner="):
        key = feature.split("=", 1)[1]
        return f"owner {owners.get(key, 'nobody' if key == '(none)' else 'a former user')}"
    if "=" in feature:
        family, value = feature.split("=", 1)
        return f"{family} {value}"
    return feature.replace("_", " ")


# --- predictions ------------------------------------------------------------------------------


@dataclass
class Reason:
    text: str
    effect: float  # log-odds points, + raises the chance


@dataclass
class DealChance:
    deal_id: uuid.UUID
    name: str
    stage: str
    amount: Decimal | None
    currency: str
    close_date: date | None
    probability: float  # the model's, 0-1
    baseline: float  # the forecast's (set probability or the stage's), 0-1
    reasons: list[Reason]
    trusted: bool  # the model beat the baseline on held-out deals when it was trained


def _reasons(model: ml.LogisticModel, snap: _Snapshot, names: dict[str, str], top: int) -> list[Reason]:
    """The largest effects, one-hot families merged: 'stage Proposal' is one reason, not seven."""
    merged: dict[str, float] = defaultdict(float)
    f = snap.features
    for c in model.explain(f):
        family = c.feature.split("=", 1)[0] if "=" in c.feature else c.feature
        merged[family] += c.logit
    texts = {
        "stage": f"in stage {snap.stage}",
        "days_in_stage": f"{math.expm1(f['days_in_stage']):.0f} days in this stage",
        "deal_age": f"open for {math.expm1(f['deal_age']):.0f} days",
        "activities_30d": f"{math.expm1(f['activities_30d']):.0f} activities in the last 30 days",
        "days_since_activity": ("no activity yet" if f.get("no_activity_yet") else
                                f"last activity {math.expm1(f['days_since_activity']):.0f} days ago"),
        "no_activity_yet": "no activity yet" if f.get("no_activity_yet") else "has had activity",
        "close_date_pushes": f"close date pushed {f['close_date_pushes']:.0f} times",
        "source": "source " + next((k.split("=", 1)[1] for k in f if k.startswith("source=")), "(none)"),
        "owner": _feature_label(next((k for k in f if k.startswith("owner=")), "owner=(none)"), names),
        "amount": f"amount {math.exp(f['amount']):,.0f}" if "amount" in f else "no amount",
        "no_amount": "no amount" if f.get("no_amount") else "has an amount",
        "close_date_passed": "close date has passed" if f.get("close_date_passed") else "close date ahead",
        "days_to_close": f"{f.get('days_to_close', 0) * 30:.0f} days to the close date",
    }
    ranked = sorted(merged.items(), key=lambda kv: -abs(kv[1]))
    return [Reason(texts.get(k, k), round(v, 2)) for k, v in ranked[:top] if abs(v) >= 0.05]


def predict(session: Session, *, actor: Actor, deals: Select[Any], top_reasons: int = 3,
            now: datetime | None = None) -> list[DealChance] | None:
    """The model's chance for each open deal in `deals` (already scoped to what the actor may
    read), with its top reasons. None when no model has been trained for the workspace."""
    stored = scoring_models.latest(session, workspace_id=actor.workspace_id, kind=KIND)
    if stored is None:
        return None
    now = now or datetime.now(UTC)
    stages = _stages(session, actor.workspace_id)
    open_ids = [sid for sid, s in stages.items() if s.kind == StageKind.open]
    selected = deals.where(Deal.stage_id.in_(open_ids))
    live = {d.id: d for d in session.scalars(selected)}
    data = _load(session, selected)
    names = _owner_names(session, actor.workspace_id)
    out = []
    for did, deal in data.items():
        snap = _snapshot(deal, now, stages, current=live[did])
        if snap is None:
            continue
        p = float(stored.model.predict([snap.features])[0])
        d = live[did]
        out.append(DealChance(did, deal.name, snap.stage, d.amount, d.currency, d.close_date, p, snap.baseline,
                              _reasons(stored.model, snap, names, top_reasons), bool(stored.report.get("use_model"))))
    return sorted(out, key=lambda c: (-(c.amount or 0), c.name))


def deal_chance(session: Session, *, actor: Actor, deal_id: uuid.UUID, top_reasons: int = 4,
                now: datetime | None = None) -> DealChance | None:
    """One deal's chance (NotFound if the actor may not read it; None before any training)."""
    deal = get(session, spec_for("deal"), actor=actor, id=deal_id)
    chances = predict(session, actor=actor, deals=select(Deal).where(Deal.id == deal.id), top_reasons=top_reasons,
                      now=now)
    if chances is None:
        return None
    if not chances:
        raise ValidationFailed(f"{deal.name} is closed: win probability is for open deals")
    return chances[0]


def scope_chances(session: Session, *, actor: Actor, scope: Scope, start: date | None = None,
                  end: date | None = None, now: datetime | None = None) -> list[DealChance] | None:
    """The open deals in a scope (closing in [start, end] when given), each with its chance."""
    deals = scoped_deals(actor, scope)
    if start is not None and end is not None:
        deals = deals.where(Deal.close_date >= start, Deal.close_date <= end)
    return predict(session, actor=actor, deals=deals, now=now)


def stored_report(session: Session, *, workspace_id: uuid.UUID) -> dict[str, Any] | None:
    stored = scoring_models.latest(session, workspace_id=workspace_id, kind=KIND)
    return None if stored is None else stored.report


def format_report(report: dict[str, Any], *, title: str = "Win probability: calibration report") -> str:
    """The report as Markdown: what it learned from, the held-out scores next to the baseline's,
    the reliability table side by side, and the strongest weights."""
    h, s, t = report["history"], report["split"], report["test"]
    m, b = t["model"], t["baseline"]
    lines = [
        f"# {title}", "",
        f"Trained {report['trained_at']} on {h['closed_deals']} closed deals ({h['won']} won, {h['lost']} lost), "
        f"closed {h['first_closed']} to {h['last_closed']}; {h['snapshots']} snapshots (one per two weeks of each "
        "deal's open life, each deal weighing one).", "",
        f"Held out: the {s['test_deals']} most recently closed deals ({s['test_won']} won, closed from "
        f"{s['test_closed_from']}), {s['test_snapshots']} snapshots; the model learned from the "
        f"{s['learning_deals']} before them ({s['learning_won']} won).", "",
        "| on the held-out deals | learned model | stage baseline |",
        "|---|---|---|",
        f"| Brier score (lower is better) | {m['brier']:.4f} | {b['brier']:.4f} |",
        f"| log loss (lower is better) | {m['log_loss']:.4f} | {b['log_loss']:.4f} |",
        f"| AUC (higher is better) | {_fmt(m['auc'])} | {_fmt(b['auc'])} |",
        f"| expected calibration error | {t['model_ece']:.4f} | {t['baseline_ece']:.4f} |",
        "",
        f"Brier skill against the baseline: {_pct(t['brier_skill_vs_baseline'])} "
        "(the share of the baseline's squared error the model removes).", "",
        "## Reliability (held-out deals; a row: predicted chance in that bin vs the share that was won)", "",
        "| predicted | model: deals | model: predicted | model: won | baseline: deals | baseline: predicted "
        "| baseline: won |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["reliability"]:
        lines.append(f"| {row['bin']} | {row['model_deals']:g} | {_fmt(row['model_predicted'])} | "
                     f"{_fmt(row['model_observed'])} | {row['baseline_deals']:g} | {_fmt(row['baseline_predicted'])} "
                     f"| {_fmt(row['baseline_observed'])} |")
    lines += ["", "Deals are weighted: each deal's snapshots add up to one deal.", "",
              "## Strongest weights (log-odds per unit of the feature; one-hot features per yes)", "",
              "| feature | weight |", "|---|---|"]
    lines += [f"| {w['label']} | {w['weight']:+.3f} |" for w in report["weights"][:15]]
    lines += ["", f"Verdict: {report['verdict']}.", "",
              f"The stored model was {report['in_use']}; the penalty (L2 {report['penalty']['l2']:g}) was chosen on "
              "the last quarter of the learning deals, before the test.", ""]
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.1f}%"
