"""What the manager's dashboard adds to the pipeline services: quota attainment and the forecast
split by owner ("forecast by rep").

The chat tools (tools/read.py) and the dashboard API (channels/api/dashboard.py) both compute
attainment here, so the page and the bot give the same numbers. The per-owner
forecast counts deals exactly as `pipeline.forecast` does (same scope, same period, same
categories), so its rows add up to the forecast's totals. Amounts stay per currency.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from store.actor import Actor
from store.models import Deal, Stage, User, Workspace
from store.models.enums import ForecastCategory, Role, StageKind
from store.permissions import team_member_ids
from store.services.pipeline import Scope, scoped_deals

_CENT = Decimal("0.01")


@dataclass
class Attainment:
    closed_won: Decimal  # share of the quota won, 0.3 = 30%
    with_commit: Decimal  # closed won + commit, as a share of the quota


def attainment(closed_won: dict[str, Decimal], commit: dict[str, Decimal], quota: Decimal | None,
               quota_currency: str | None) -> Attainment | None:
    """Closed won (and closed won + commit) against a quota, counting only the quota's currency.
    None without a quota (or a zero one)."""
    if not quota:
        return None
    won = closed_won.get(quota_currency or "", Decimal(0))
    committed = won + commit.get(quota_currency or "", Decimal(0))
    return Attainment(won / quota, committed / quota)


@dataclass
class OwnerForecast:
    owner_id: uuid.UUID | None  # None: deals nobody owns
    owner: str
    commit: dict[str, Decimal] = field(default_factory=dict)
    best_case: dict[str, Decimal] = field(default_factory=dict)
    pipeline: dict[str, Decimal] = field(default_factory=dict)
    weighted: dict[str, Decimal] = field(default_factory=dict)
    closed_won: dict[str, Decimal] = field(default_factory=dict)
    open_deals: int = 0
    won_deals: int = 0
    deals: list[dict[str, Any]] = field(default_factory=list)  # this owner's deals counted, largest first
    # This person's quota for the period (workspace currency), where the caller may see it: their own,
    # their team's for a manager, everyone's for an admin.
    quota: Decimal | None = None
    quota_currency: str | None = None

    @property
    def attainment(self) -> Attainment | None:
        return attainment(self.closed_won, self.commit, self.quota, self.quota_currency)


def forecast_by_owner(session: Session, *, actor: Actor, scope: Scope, start: date, end: date,
                      top: int = 10) -> list[OwnerForecast]:
    """`pipeline.forecast` per owner: deals in scope closing in [start, end], open ones by forecast
    category and closed-won, each owner with up to `top` of their deals (largest first). People in
    scope with a quota and nothing closing in the period get a row of zeros: a rep with an empty
    quarter is what a manager most needs to see. Ordered by name, deals nobody owns last (as
    `pipeline.pipeline_by_owner`)."""
    deals = scoped_deals(actor, scope).where(Deal.close_date >= start, Deal.close_date <= end).subquery()
    d = deals.c
    prob = func.coalesce(d.probability, Stage.probability)
    won = Stage.kind == StageKind.won
    rows = session.execute(
        select(d.owner_id, d.currency, d.forecast_category, won.label("won"), func.count(d.id),
               func.coalesce(func.sum(d.amount), 0), func.coalesce(func.sum(d.amount * prob / 100), 0))
        .join(deals, d.stage_id == Stage.id)
        .where(Stage.kind != StageKind.lost)
        .group_by(d.owner_id, d.currency, d.forecast_category, won)
    ).all()
    lines: dict[uuid.UUID | None, OwnerForecast] = {}
    for owner_id, currency, category, is_won, count, amount, weighted in rows:
        line = lines.setdefault(owner_id, OwnerForecast(owner_id, "Unassigned"))
        amount, weighted = Decimal(amount), Decimal(weighted)
        if is_won:  # the same rules as pipeline.forecast
            line.won_deals += count
            _add(line.closed_won, currency, amount)
            continue
        if category == ForecastCategory.omitted:
            continue
        line.open_deals += count
        buckets = {ForecastCategory.commit: line.commit, ForecastCategory.best_case: line.best_case,
                   ForecastCategory.pipeline: line.pipeline}
        _add(buckets.get(category, line.pipeline), currency, amount)
        _add(line.weighted, currency, weighted)

    rank = func.row_number().over(partition_by=d.owner_id, order_by=(d.amount.desc().nulls_last(), d.id)).label("n")
    ranked = (select(d.id, d.owner_id, d.name, d.amount, d.currency, d.close_date, d.forecast_category,
                     Stage.name.label("stage"), case((won, "won"), else_="open").label("status"), rank)
              .join(deals, d.stage_id == Stage.id).where(Stage.kind != StageKind.lost)).subquery()
    for r in session.execute(select(ranked).where(ranked.c.n <= top).order_by(ranked.c.owner_id, ranked.c.n)).all():
        if r.owner_id not in lines:  # only omitted deals: not counted, not listed
            continue
        lines[r.owner_id].deals.append({"id": str(r.id), "name": r.name, "amount": r.amount, "currency": r.currency,
                                        "close_date": r.close_date, "forecast_category": r.forecast_category.value,
                                        "stage": r.stage, "status": r.status})

    people = _quota_people(session, actor=actor, scope=scope)
    for user_id, (_name, _quota) in people.items():
        lines.setdefault(user_id, OwnerForecast(user_id, _name))
    known = [i for i in lines if i is not None]
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(known))).all()) if known else {}
    share = _quarter_share(start, end)
    ws = session.get(Workspace, actor.workspace_id)
    for owner_id, line in lines.items():
        if owner_id is not None:
            line.owner = names.get(owner_id) or "Unknown user"
        person = people.get(owner_id) if owner_id is not None else None
        if person is not None and person[1] is not None:
            line.quota = (Decimal(person[1]) * share).quantize(_CENT)
            line.quota_currency = ws.default_currency if ws else "USD"

    return sorted(lines.values(), key=lambda line: (line.owner_id is None, line.owner.lower()))


def _quota_people(session: Session, *, actor: Actor, scope: Scope) -> dict[uuid.UUID, tuple[str, Decimal | None]]:
    """Active people in scope whose quota the caller may see: the same people `pipeline.quota`
    counts for the scope, narrowed to the caller (a rep), their team (a manager) or anyone (an admin)."""
    query = select(User.id, User.name, User.quota).where(User.workspace_id == actor.workspace_id,
                                                         User.is_active.is_(True), User.quota.is_not(None))
    if not isinstance(scope, str):  # a named person (pipeline.Rep: a manager's is their team) or team
        query = query.where(User.id.in_(scope.owners(actor.workspace_id)))
    elif scope == "mine" or (scope == "team" and actor.team_id is None):
        query = query.where(User.id == actor.user_id)
    elif scope == "team":
        query = query.where(User.id.in_(team_member_ids(actor)))
    elif not actor.is_admin:
        return {}  # as pipeline.quota: a non-admin's "all" is not one set of people
    if actor.role == Role.rep:
        query = query.where(User.id == actor.user_id)
    elif actor.role == Role.manager and actor.team_id is not None:
        query = query.where(User.id.in_(team_member_ids(actor)))
    elif actor.role == Role.manager:
        query = query.where(User.id == actor.user_id)
    return {user_id: (name, quota) for user_id, name, quota in session.execute(query).all()}


def _quarter_share(start: date, end: date) -> Decimal:
    """The period's share of a quarter, as `pipeline.quota` prorates: whole months count as thirds,
    other spans by days. (A copy of its two lines: pipeline.py is not ours to refactor right now.)"""
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    whole_months = start.day == 1 and (end + timedelta(days=1)).day == 1
    return Decimal(months) / 3 if whole_months else Decimal((end - start).days + 1) / Decimal("91.3125")


def _add(bucket: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    bucket[currency] = (bucket.get(currency, Decimal(0)) + amount).quantize(_CENT)
