"""Plain factory functions for test data. Each returns real rows made through the services."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from store.actor import Actor
from store.models import Team, User, Workspace
from store.models.enums import Role, Surface
from store.services import crud, spec_for
from store.services.org import actor_for_user, create_token, create_workspace

_n = itertools.count(1)


def workspace(session: Session, name: str = "Acme Sales") -> Workspace:
    i = next(_n)
    return create_workspace(session, name=f"{name} {i}", slug=f"ws-{i}", own_domains=["acme-sales.example"])


def team(session: Session, ws: Workspace, name: str = "West") -> Team:
    t = Team(workspace_id=ws.id, name=f"{name}-{next(_n)}")
    session.add(t)
    session.flush()
    return t


def user(session: Session, ws: Workspace, *, role: Role = Role.rep, team: Team | None = None,
         name: str | None = None) -> User:
    i = next(_n)
    u = User(workspace_id=ws.id, email=f"user{i}@acme-sales.example", name=name or f"User {i}", role=role,
             team_id=team.id if team else None)
    session.add(u)
    session.flush()
    return u


def actor(u: User, surface: Surface = Surface.api) -> Actor:
    return actor_for_user(u, surface)


def create(session: Session, who: User | Actor, entity: str, **data: Any) -> Any:
    a = who if isinstance(who, Actor) else actor(who)
    return crud.create(session, spec_for(entity), actor=a, data=data)


@dataclass
class Api:
    """An HTTP client that acts as one user (their bearer token on every request)."""

    client: TestClient
    user: User
    token: str

    def _h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(f"/api/v1{path}", headers=self._h(), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(f"/api/v1{path}", json=json, headers=self._h(), **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch(f"/api/v1{path}", json=json, headers=self._h(), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(f"/api/v1{path}", headers=self._h(), **kw)


def api(session: Session, client: TestClient, u: User) -> Api:
    token = create_token(session, user=u)
    session.commit()
    return Api(client, u, token)


@dataclass
class World:
    """A workspace with two teams: West (manager Dana, reps Priya and Raj) and East (rep Eve),
    plus an admin; and a second workspace with its own admin."""

    ws: Workspace
    west: Team
    east: Team
    admin: User
    dana: User
    priya: User
    raj: User
    eve: User
    other_ws: Workspace
    other_admin: User


def world(session: Session) -> World:
    ws = workspace(session)
    west, east = team(session, ws, "West"), team(session, ws, "East")
    w = World(
        ws=ws, west=west, east=east,
        admin=user(session, ws, role=Role.admin, name="Sam Admin"),
        dana=user(session, ws, role=Role.manager, team=west, name="Dana Manager"),
        priya=user(session, ws, team=west, name="Priya Raman"),
        raj=user(session, ws, team=west, name="Raj Patel"),
        eve=user(session, ws, team=east, name="Eve East"),
        other_ws=(other := workspace(session, "Other Co")),
        other_admin=user(session, other, role=Role.admin),
    )
    session.commit()
    return w


@contextmanager
def demo(tmp_path: Path, today: date, companies: int = 20) -> Iterator[tuple[Session, Workspace]]:
    """A small demo workspace (`store.demo.seed_demo`) in a SQLite file of its own, committed: what the
    demo writes behind the services (its records and the derived data it fills) can be checked."""
    from store.db import make_engine
    from store.demo import seed_demo
    from store.models.base import Base

    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            workspace = Workspace(name="Demo", slug="demo")
            session.add(workspace)
            session.flush()
            seed_demo(session, workspace=workspace, today=today, companies=companies)
            session.commit()
            yield session, workspace
    finally:
        engine.dispose()
