"""Pipeline and forecast summaries for a caller's scope (the full analytics come later).

Scope: "mine" (deals the actor owns), "team" (their team's), "all" (every deal they can
read), a `Rep` (one named person's: "why did Dana's forecast drop?", checked by `rep_scope`)
or a `TeamScope` (a named team's: "the EMEA team's pipeline", checked by `team_scope`).
`answer_scope` turns what was asked into the scope answered and says, in words an answer can
quote, what was asked and is not in the numbers ("all" for a rep is their team's) and why.
Amounts are summed per currency: converting needs rates the CRM does not keep.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, case, func, select, true
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import PermissionDenied, ValidationFailed
from store.models import Deal, Stage, Team, User, Workspace
from store.models.enums import ForecastCategory, Role, StageKind
from store.permissions import team_member_ids
from store.services.crud import readable, spec_for


@dataclass(frozen=True)
class Rep:
    """One named person's records, or a named manager's team ("Dana's forecast" is her team's).
    Build it with `rep_scope`, which checks the actor may see them."""

    user_id: uuid.UUID
    name: str
    team_id: uuid.UUID | None = None  # set for a manager: everyone in their team

    def __str__(self) -> str:
        return f"{self.name}'s team" if self.team_id else self.name

    def owners(self, workspace_id: uuid.UUID) -> Any:
        """The owner ids this scope covers, as a SELECT (a team) or a one-item list."""
        if self.team_id is None:
            return [self.user_id]
        return select(User.id).where(User.workspace_id == workspace_id, User.team_id == self.team_id)


@dataclass(frozen=True)
class TeamScope:
    """A named team's records ("the EMEA team's pipeline"). Build it with `team_scope`, which
    checks the actor may see them."""

    team_id: uuid.UUID
    name: str

    def __str__(self) -> str:
        return f"{self.name} team"

    def owners(self, workspace_id: uuid.UUID) -> Any:
        return select(User.id).where(User.workspace_id == workspace_id, User.team_id == self.team_id)


Scope = Literal["mine", "team", "all"] | Rep | TeamScope


def rep_scope(session: Session, *, actor: Actor, user_id: uuid.UUID) -> Rep:
    """A scope of one person's numbers (a manager's: their team's): oneself; for a manager, someone in
    their team; for an admin, anyone in the workspace. A rep sees only their own numbers."""
    user = session.get(User, user_id)
    if user is None or user.workspace_id != actor.workspace_id:
        raise ValidationFailed(f"no user with id {user_id}")
    team = user.team_id if user.role == Role.manager else None
    if actor.is_admin or user.id == actor.user_id:
        return Rep(user.id, user.name, team)
    if actor.role == Role.manager and actor.team_id is not None and user.team_id == actor.team_id:
        return Rep(user.id, user.name, team)
    if actor.role == Role.manager:
        raise PermissionDenied(f"{user.name} is not in your team: you can see the numbers of your team only")
    raise PermissionDenied(f"you can see your own numbers only, not {user.name}'s")


def team_scope(session: Session, *, actor: Actor, team_id: uuid.UUID) -> TeamScope:
    """A scope of one named team's numbers: one's own team; for an admin, any team in the workspace."""
    team = session.get(Team, team_id)
    if team is None or team.workspace_id != actor.workspace_id:
        raise ValidationFailed(f"no team with id {team_id}")
    if actor.is_admin or team.id == actor.team_id:
        return TeamScope(team.id, team.name)
    own = session.get(Team, actor.team_id) if actor.team_id else None
    mine = f"your own team's ({own.name})" if own else "your own"
    raise PermissionDenied(f"you can see {mine} numbers only, not the {team.name} team's")


@dataclass(frozen=True)
class Answered:
    """The scope a question is answered for: its label (a title's words: "West team", "Priya Raman");
    when it is narrower than what was asked, what is left out (`refused`) and why, and what the
    numbers cover (`shown`), each in words an answer can quote."""

    scope: Scope
    label: str
    refused: str | None = None
    why: str | None = None
    shown: str | None = None

    def heading(self) -> str:
        """The line an answer starts with when it was narrowed; empty when it was not."""
        if not self.refused:
            return ""
        return f"Not shown: {self.refused} ({self.why}). Shown: {self.shown}."


def answer_scope(session: Session, *, actor: Actor, scope: Scope | None = None, user_id: uuid.UUID | None = None,
                 team_id: uuid.UUID | None = None) -> Answered:
    """The scope to answer a question about `scope`, a named person (`user_id`) or a named team
    (`team_id`), with its label. A person or team the actor may not see is refused (PermissionDenied
    saying why: a rep sees their own numbers, a manager their team's). A scope wider than what they
    may see is answered with the part they may see, saying what is left out and why: a non-admin's
    "all" is their team's and unassigned deals; "team" without a team is one's own deals."""
    if user_id is not None:
        named: Scope = rep_scope(session, actor=actor, user_id=user_id)
        return Answered(named, scope_label(session, actor=actor, scope=named))
    if team_id is not None:
        named = team_scope(session, actor=actor, team_id=team_id)
        return Answered(named, scope_label(session, actor=actor, scope=named))
    scope = scope or default_scope(actor)
    label = scope_label(session, actor=actor, scope=scope)
    if scope == "all" and not actor.is_admin:
        team = session.get(Team, actor.team_id) if actor.team_id else None
        mine = f"the {team.name} team's" if team else "your own"
        return Answered(scope, label, "other teams' deals", "only admins see every team's numbers",
                        f"the deals you can read: {mine} and unassigned ones")
    if scope == "team" and actor.team_id is None and not actor.is_admin:
        return Answered(scope, label, "a team's deals", "you are in no team", f"your own deals ({label})")
    return Answered(scope, label)


def scope_label(session: Session, *, actor: Actor, scope: Scope) -> str:
    """A scope in a title's words: "Priya Raman", "West team", "Dana Whitfield's team", "EMEA team",
    "All teams" (an admin's all), "All deals you can see" (anyone else's)."""
    if isinstance(scope, Rep | TeamScope):
        return str(scope)
    me = session.get(User, actor.user_id) if actor.user_id else None
    if (scope == "mine" or (scope == "team" and actor.team_id is None and not actor.is_admin)) and me is not None:
        return me.name  # without a team, one's team is oneself
    if scope == "team" and actor.team_id is not None:
        team = session.get(Team, actor.team_id)
        return f"{team.name} team" if team else "Team"
    return "All teams" if actor.is_admin else "All deals you can see"


def default_scope(actor: Actor) -> Scope:
    return {Role.rep: "mine", Role.manager: "team", Role.admin: "all"}[actor.role]  # type: ignore[return-value]


def owner_in_scope(actor: Actor, scope: Scope, owner_col: Any) -> ColumnElement[bool]:
    """Whose records a scope covers, for any owner column (a deal's, an activity's, a past
    owner in the deal history): mine; my team's (without a team: mine, or all for an admin);
    all; or one named person's. What the actor may read at all is filtered separately (`readable`)."""
    if isinstance(scope, Rep | TeamScope):
        return owner_col.in_(scope.owners(actor.workspace_id))  # type: ignore[no-any-return]
    if scope == "mine":
        if actor.user_id is None:
            raise ValidationFailed("'mine' needs a user; use scope 'all'")
        return owner_col == actor.user_id  # type: ignore[no-any-return]
    if scope == "team":
        if actor.team_id is None:
            return true() if actor.is_admin else owner_col == actor.user_id  # type: ignore[no-any-return]
        return owner_col.in_(team_member_ids(actor))  # type: ignore[no-any-return]
    return true()


def scoped_deals(actor: Actor, scope: Scope) -> Select[Any]:
    return readable(spec_for("deal"), actor).where(owner_in_scope(actor, scope, Deal.owner_id))


@dataclass
class StageLine:
    stage: str
    kind: str
    deals: int
    amount: dict[str, Decimal]
    weighted: dict[str, Decimal]


def pipeline_by_stage(session: Session, *, actor: Actor, scope: Scope) -> list[StageLine]:
    """Open deals per stage: count, amount and probability-weighted amount, per currency."""
    deals = scoped_deals(actor, scope).subquery()
    d = deals.c
    prob = func.coalesce(d.probability, Stage.probability)
    rows = session.execute(
        select(Stage.name, Stage.kind, Stage.position, d.currency, func.count(d.id),
               func.coalesce(func.sum(d.amount), 0), func.coalesce(func.sum(d.amount * prob / 100), 0))
        .join(deals, deals.c.stage_id == Stage.id)
        .where(Stage.kind == StageKind.open)
        .group_by(Stage.name, Stage.kind, Stage.position, d.currency)
        .order_by(Stage.position)
    ).all()
    lines: dict[str, StageLine] = {}
    for name, kind, _pos, currency, count, amount, weighted in rows:
        line = lines.setdefault(name, StageLine(name, kind.value, 0, {}, {}))
        line.deals += count
        line.amount[currency] = Decimal(amount).quantize(Decimal("0.01"))
        line.weighted[currency] = Decimal(weighted).quantize(Decimal("0.01"))
    return list(lines.values())


@dataclass
class OwnerLine:
    owner_id: uuid.UUID | None  # None: deals nobody owns
    owner: str
    deals: int
    amount: dict[str, Decimal]
    weighted: dict[str, Decimal]


def pipeline_by_owner(session: Session, *, actor: Actor, scope: Scope) -> list[OwnerLine]:
    """Open deals per owner: count, amount and probability-weighted amount, per currency."""
    deals = scoped_deals(actor, scope).subquery()
    d = deals.c
    prob = func.coalesce(d.probability, Stage.probability)
    rows = session.execute(
        select(d.owner_id, User.name, d.currency, func.count(d.id),
               func.coalesce(func.sum(d.amount), 0), func.coalesce(func.sum(d.amount * prob / 100), 0))
        .select_from(deals).join(Stage, d.stage_id == Stage.id).outerjoin(User, User.id == d.owner_id)
        .where(Stage.kind == StageKind.open)
        .group_by(d.owner_id, User.name, d.currency)
    ).all()
    lines: dict[uuid.UUID | None, OwnerLine] = {}
    for owner_id, name, currency, count, amount, weighted in rows:
        line = lines.setdefault(owner_id, OwnerLine(owner_id, name or "Unassigned", 0, {}, {}))
        line.deals += count
        line.amount[currency] = Decimal(amount).quantize(Decimal("0.01"))
        line.weighted[currency] = Decimal(weighted).quantize(Decimal("0.01"))
    return sorted(lines.values(), key=lambda line: (line.owner_id is None, line.owner.lower()))


@dataclass
class Forecast:
    start: date
    end: date
    scope: str
    # currency -> amount, per forecast category of open deals closing in the period
    commit: dict[str, Decimal] = field(default_factory=dict)
    best_case: dict[str, Decimal] = field(default_factory=dict)
    pipeline: dict[str, Decimal] = field(default_factory=dict)
    weighted: dict[str, Decimal] = field(default_factory=dict)
    closed_won: dict[str, Decimal] = field(default_factory=dict)
    open_deals: int = 0
    won_deals: int = 0
    deals: list[dict[str, Any]] = field(default_factory=list)  # the deals counted, largest first
    # The quota of the people in scope for the period, in the workspace currency (None: nobody
    # in scope has one, or the scope is not one set of people, e.g. a rep asking for "all").
    quota: Decimal | None = None
    quota_currency: str | None = None


def forecast(session: Session, *, actor: Actor, scope: Scope, start: date, end: date, top: int = 10) -> Forecast:
    """Deals closing in [start, end]: open ones by forecast category, and closed-won."""
    result = Forecast(start=start, end=end, scope=str(scope))
    deals = scoped_deals(actor, scope).where(Deal.close_date >= start, Deal.close_date <= end).subquery()
    d = deals.c
    prob = func.coalesce(d.probability, Stage.probability)
    won = Stage.kind == StageKind.won
    rows = session.execute(
        select(d.currency, d.forecast_category, won.label("won"), Stage.kind, func.count(d.id),
               func.coalesce(func.sum(d.amount), 0), func.coalesce(func.sum(d.amount * prob / 100), 0))
        .join(deals, deals.c.stage_id == Stage.id)
        .where(Stage.kind != StageKind.lost)
        .group_by(d.currency, d.forecast_category, won, Stage.kind)
    ).all()
    buckets = {ForecastCategory.commit: result.commit, ForecastCategory.best_case: result.best_case,
               ForecastCategory.pipeline: result.pipeline}
    for currency, category, is_won, _kind, count, amount, weighted in rows:
        amount, weighted = Decimal(amount), Decimal(weighted)
        if is_won:
            result.won_deals += count
            _add(result.closed_won, currency, amount)
            continue
        if category == ForecastCategory.omitted:
            continue
        result.open_deals += count
        _add(buckets.get(category, result.pipeline), currency, amount)
        _add(result.weighted, currency, weighted)
    top_rows = session.execute(
        select(d.id, d.name, d.amount, d.currency, d.close_date, d.forecast_category, Stage.name,
               case((Stage.kind == StageKind.won, "won"), else_="open"))
        .join(deals, deals.c.stage_id == Stage.id).where(Stage.kind != StageKind.lost)
        .order_by(d.amount.desc().nulls_last(), d.id).limit(top)
    ).all()
    result.deals = [{"id": str(r[0]), "name": r[1], "amount": r[2], "currency": r[3], "close_date": r[4],
                     "forecast_category": r[5].value, "stage": r[6], "status": r[7]} for r in top_rows]
    result.quota = quota(session, actor=actor, scope=scope, start=start, end=end)
    if result.quota is not None:
        ws = session.get(Workspace, actor.workspace_id)
        result.quota_currency = ws.default_currency if ws else "USD"
    return result


def quota(session: Session, *, actor: Actor, scope: Scope, start: date, end: date) -> Decimal | None:
    """The quota of the people in scope for [start, end]: users' quarterly quotas, prorated by the
    period's share of a quarter (whole months count as thirds; other spans by days)."""
    people = select(User.quota).where(User.workspace_id == actor.workspace_id, User.is_active.is_(True),
                                      User.quota.is_not(None))
    if isinstance(scope, Rep | TeamScope):
        people = people.where(User.id.in_(scope.owners(actor.workspace_id)))
    elif scope == "mine":
        people = people.where(User.id == actor.user_id)
    elif scope == "team" and actor.team_id is not None:
        people = people.where(User.id.in_(team_member_ids(actor)))
    elif scope == "team":
        people = people.where(User.id == actor.user_id)
    elif not actor.is_admin:
        return None
    total = session.scalar(select(func.sum(people.subquery().c.quota)))
    if total is None:
        return None
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    whole_months = start.day == 1 and (end + timedelta(days=1)).day == 1
    share = Decimal(months) / 3 if whole_months else Decimal((end - start).days + 1) / Decimal("91.3125")
    return (Decimal(total) * share).quantize(Decimal("0.01"))


def _add(bucket: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    bucket[currency] = (bucket.get(currency, Decimal(0)) + amount).quantize(Decimal("0.01"))


def quarter_bounds(day: date, offset: int = 0) -> tuple[date, date]:
    q = (day.month - 1) // 3 + offset
    year = day.year + q // 4
    q %= 4
    start = date(year, q * 3 + 1, 1)
    end_month = q * 3 + 3  # 3, 6, 9, 12
    end = date(year + end_month // 12, end_month % 12 + 1, 1)  # first day of the next quarter
    return start, end - timedelta(days=1)


def month_bounds(day: date, offset: int = 0) -> tuple[date, date]:
    month = day.month - 1 + offset
    year = day.year + month // 12
    start = date(year, month % 12 + 1, 1)
    nxt = date(day.year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return start, nxt - timedelta(days=1)
