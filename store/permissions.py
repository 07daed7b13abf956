"""Visibility and write rules, as SQL clauses so every query can carry them.

- admin: reads and writes everything in the workspace;
- manager: reads and writes records owned by their team (and unowned ones);
- rep: reads records owned by their team (and unowned ones), writes only their own
  (and unowned ones, which a rep may pick up).

Unreadable records answer 404 (their existence is not revealed); readable but not
writable ones answer 403 with who can change them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, true

from store.actor import Actor
from store.errors import PermissionDenied
from store.models import User
from store.models.enums import Role


def team_member_ids(actor: Actor) -> Select[tuple[uuid.UUID]]:
    return select(User.id).where(User.workspace_id == actor.workspace_id, User.team_id == actor.team_id)


def owner_readable(actor: Actor, owner_col: Any) -> ColumnElement[bool]:
    """Rows whose owner the actor may read (the workspace filter is applied separately)."""
    if actor.is_admin:
        return true()
    clauses = [owner_col.is_(None)]
    if actor.user_id is not None:
        clauses.append(owner_col == actor.user_id)
    if actor.team_id is not None:
        clauses.append(owner_col.in_(team_member_ids(actor)))
    return or_(*clauses)


def readable_owner_ids(session: Any, actor: Actor) -> set[uuid.UUID] | None:
    """`owner_readable` as values, for a filter outside SQL (the vector index): the workspace's users
    whose records the actor reads besides unowned ones; None for every owner (an admin). The clause
    itself picks them, so the rule is written once."""
    if actor.is_admin:
        return None
    return set(session.scalars(select(User.id).where(User.workspace_id == actor.workspace_id,
                                                     owner_readable(actor, User.id))))


def can_write_owner(session: Any, actor: Actor, owner_id: uuid.UUID | None) -> bool:
    if actor.is_admin or owner_id is None or owner_id == actor.user_id:
        return True
    if actor.role != Role.manager or actor.team_id is None:
        return False
    team = session.scalar(select(User.team_id).where(User.id == owner_id))
    return team == actor.team_id


def check_can_assign(session: Any, actor: Actor, owner_id: uuid.UUID | None) -> None:
    """May the actor make `owner_id` the owner of a record?"""
    if owner_id is None or owner_id == actor.user_id or actor.is_admin:
        return
    if actor.role == Role.manager and can_write_owner(session, actor, owner_id):
        return
    raise PermissionDenied(
        "you can only assign records to yourself"
        + (" or to members of your team" if actor.role == Role.manager else "")
        + "; ask a manager or admin to reassign it"
    )


def require_role(actor: Actor, *roles: Role, what: str) -> None:
    if actor.role not in roles and not actor.is_admin:
        names = " or ".join(r.value for r in roles if r != Role.admin) or "admin"
        raise PermissionDenied(f"only {names}s and admins can {what}")
