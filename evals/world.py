"""Build a scenario's starting store through the product's own services.

The base world (`datasets/world.json`) and then the scenario's `setup` records are made
in order, each as its user, with the clock moved to the record's `at` time, so deal
history, `closed_at`, activity dates and tasks' ages are what a real workspace would hold.
Keys (`"@borealis"`) become ids as records are made; `Refs` keeps the mapping both ways.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import time_machine
from sqlalchemy import Date, DateTime, Numeric
from sqlalchemy.orm import Session

import store.services  # noqa: F401  (registers every entity spec)
from evals.schema import RecordSpec, Scenario, World, is_ref
from store.actor import Actor
from store.models import User
from store.models.enums import Role, Surface
from store.services import crud, spec_for
from store.services.org import actor_for_user, create_workspace, seed_team, seed_user, user_by_id
from store.services.sales import default_pipeline, stage_named, stages_of
from tools.base import label_of


class WorldError(ValueError):
    """A dataset names something the world does not have (a key, a stage, a field)."""


@dataclass
class Refs:
    workspace_id: uuid.UUID
    users: dict[str, User] = field(default_factory=dict)
    ids: dict[str, uuid.UUID] = field(default_factory=dict)  # key -> id (records and users)
    kinds: dict[str, str] = field(default_factory=dict)  # key -> kind
    labels: dict[str, str] = field(default_factory=dict)  # key -> what the product calls it
    by_id: dict[uuid.UUID, str] = field(default_factory=dict)  # id -> key

    def add(self, key: str, kind: str, id_: uuid.UUID, label: str) -> None:
        if key in self.ids:
            raise WorldError(f"key '@{key}' is defined twice")
        self.ids[key], self.kinds[key], self.labels[key], self.by_id[id_] = id_, kind, label, key

    def id_of(self, ref: str) -> uuid.UUID:
        key = ref[1:] if ref.startswith("@") else ref
        if key not in self.ids:
            raise WorldError(f"unknown record key '@{key}' (known: {', '.join(sorted(self.ids))})")
        return self.ids[key]

    def actor(self, user_key: str, surface: Surface = Surface.web) -> Actor:
        if user_key not in self.users:
            raise WorldError(f"unknown user '{user_key}' (known: {', '.join(self.users)})")
        return actor_for_user(self.users[user_key], surface)

    def manager_of(self, user_key: str) -> str | None:
        user = self.users[user_key]
        for key, other in self.users.items():
            if other.role == Role.manager and other.team_id == user.team_id and other.team_id is not None:
                return key
        return None


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise WorldError(f"time '{value}' needs an offset (e.g. +00:00)")
    return moment


@contextlib.contextmanager
def at(moment: str | datetime | None) -> Iterator[None]:
    """Run a block with the clock at `moment` (it ticks on from there)."""
    if moment is None:
        yield
        return
    with time_machine.travel(parse_time(moment) if isinstance(moment, str) else moment, tick=True):
        yield


def _resolve(value: Any, refs: Refs) -> Any:
    if is_ref(value):
        return refs.id_of(value)
    if isinstance(value, list):
        return [_resolve(v, refs) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, refs) for k, v in value.items()}
    return value


def _typed(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """JSON values to what the columns hold (dates, times, decimals)."""
    columns = spec_for(kind).columns
    out = {}
    for key, value in values.items():
        column = columns.get(key)
        if column is not None and isinstance(value, str):
            if isinstance(column.type, Date):
                value = date.fromisoformat(value)
            elif isinstance(getattr(column.type, "impl", column.type), DateTime):
                value = parse_time(value)
        if column is not None and isinstance(value, int | float) and isinstance(column.type, Numeric):
            value = Decimal(str(value))
        out[key] = value
    return out


def _stage_id(session: Session, workspace_id: uuid.UUID, name: str) -> uuid.UUID:
    pipeline = default_pipeline(session, workspace_id)
    stage = stage_named(session, pipeline.id, name)
    if stage is None:
        names = [s.name for s in stages_of(session, pipeline.id)]
        raise WorldError(f"no stage '{name}' (stages: {', '.join(names)})")
    return stage.id


def make_record(session: Session, refs: Refs, spec: RecordSpec) -> Any:
    actor = refs.actor(spec.as_, Surface.seed)
    fields = _resolve(dict(spec.fields), refs)
    with at(spec.at):
        if spec.kind == "deal_update":
            deal_id = fields.pop("deal")
            if "stage" in fields:
                fields["stage_id"] = _stage_id(session, refs.workspace_id, fields.pop("stage"))
            obj = crud.update(session, spec_for("deal"), actor=actor, id=deal_id, data=_typed("deal", fields))
        else:
            if spec.kind == "deal":
                if "stage" in fields:
                    fields["stage_id"] = _stage_id(session, refs.workspace_id, fields.pop("stage"))
                if "contacts" in fields:
                    fields["contacts"] = [{"contact_id": c} for c in fields["contacts"]]
            try:
                spec_for(spec.kind)
            except KeyError as exc:
                raise WorldError(f"unknown record kind '{spec.kind}'") from exc
            obj = crud.create(session, spec_for(spec.kind), actor=actor, data=_typed(spec.kind, fields))
    if spec.key:
        refs.add(spec.key, spec.kind, obj.id, label_of(obj))
    return obj


def build(session: Session, world: World, scenario: Scenario | None = None) -> Refs:
    """The base world plus the scenario's setup, committed; returns the keys' ids."""
    refs = build_base(session, world)
    extend(session, refs, scenario)
    return refs


def build_base(session: Session, world: World) -> Refs:
    """The world every scenario starts from, committed."""
    with at(world.records[0].at if world.records else None):
        ws = create_workspace(session, name=world.workspace, slug=world.slug, own_domains=world.own_domains)
        if world.settings:
            ws.settings = world.settings
        teams = {name: seed_team(session, workspace_id=ws.id, name=name) for name in world.teams}
        refs = Refs(workspace_id=ws.id)
        for u in world.users:
            user = seed_user(session, workspace_id=ws.id, email=u.email, name=u.name, role=Role(u.role),
                             timezone=u.timezone, team_id=teams[u.team].id if u.team else None,
                             quota=Decimal(str(u.quota)) if u.quota is not None else None)
            refs.users[u.key] = user
            refs.add(u.key, "user", user.id, u.name)
        _other_workspace(session, world)
    for spec in world.records:
        make_record(session, refs, spec)
    session.commit()
    return refs


def extend(session: Session, refs: Refs, scenario: Scenario | None) -> None:
    """A scenario's own records on top of the world, committed."""
    for spec in scenario.setup if scenario else []:
        make_record(session, refs, spec)
    session.commit()


def reattach(session: Session, refs: Refs) -> Refs:
    """The same keys in another copy of the database (ids are the same; the user rows are this session's)."""
    out = Refs(workspace_id=refs.workspace_id, ids=dict(refs.ids), kinds=dict(refs.kinds), labels=dict(refs.labels),
               by_id=dict(refs.by_id))
    for key, user in refs.users.items():
        mine = user_by_id(session, user.id)
        if mine is None:
            raise WorldError(f"user '{key}' is missing from this copy of the world")
        out.users[key] = mine
    return out


def _other_workspace(session: Session, world: World) -> None:
    """Another tenant on the same database, with records no one in ours may ever see."""
    other = world.other_workspace
    if not other:
        return
    ws = create_workspace(session, name=other["name"], slug=other["slug"])
    admin = seed_user(session, workspace_id=ws.id, email=other["admin"]["email"], name=other["admin"]["name"],
                      role=Role.admin)
    actor = actor_for_user(admin, Surface.api)
    company = crud.create(session, spec_for("company"), actor=actor, data={"name": other["company"]})
    crud.create(session, spec_for("deal"), actor=actor, data={"name": other["deal"], "company_id": company.id,
                                                              "amount": Decimal("5000000")})
