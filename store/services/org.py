"""Users, teams, the workspace itself, and API tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit, normalize
from store.actor import Actor
from store.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from store.models import ApiToken, Approval, Company, Pipeline, Stage, Team, User, Workspace
from store.models.enums import AuditAction, Role, StageKind, Surface
from store.permissions import require_role
from store.services.approvals import check_policy, visible_to
from store.services.crud import Access, EntitySpec, register
from store.services.inbox_settings import check_inbox_settings
from store.types import utcnow

TOKEN_PREFIX = "crm_"
SHOWN = 10  # characters of a token kept (and listed) to tell tokens apart: "crm_" and 6 more


def _prepare_user(session: Session, actor: Actor, values: dict[str, Any], existing: Any) -> dict[str, Any]:
    if "email" in values:
        values["email"] = normalize.email(values["email"])
    return values


def _refuse_user_delete(session: Session, actor: Actor, obj: User) -> None:
    raise Conflict(
        f"users are deactivated, not deleted, so their records keep an owner: "
        f"PATCH /api/v1/users/{obj.id} with {{\"is_active\": false}}"
    )


users = register(EntitySpec(
    name="user", plural="users", model=User, access=Access.WORKSPACE,
    refs={"team_id": "team"}, unique=("email",), search=("name", "email"), default_sort="name",
    prepare=_prepare_user, before_delete=_refuse_user_delete,
))
teams = register(EntitySpec(name="team", plural="teams", model=Team, access=Access.WORKSPACE,
                            unique=("name",), search=("name",), default_sort="name"))


# --- workspaces -------------------------------------------------------------------------

DEFAULT_STAGES = [
    ("Qualification", 10, StageKind.open),
    ("Discovery", 20, StageKind.open),
    ("Demo", 40, StageKind.open),
    ("Proposal", 60, StageKind.open),
    ("Negotiation", 80, StageKind.open),
    ("Closed Won", 100, StageKind.won),
    ("Closed Lost", 0, StageKind.lost),
]


def get_workspace(session: Session, *, slug: str) -> Workspace | None:
    return session.scalar(select(Workspace).where(Workspace.slug == slug))


def workspace_by_id(session: Session, workspace_id: uuid.UUID) -> Workspace | None:
    """The workspace with this id (the caller's own: an actor's or a row's)."""
    return session.get(Workspace, workspace_id)


def user_by_id(session: Session, user_id: uuid.UUID | None) -> User | None:
    """The user with this id (None for no id): a requester, an owner, the acting user."""
    return session.get(User, user_id) if user_id is not None else None


def create_workspace(session: Session, *, name: str, slug: str, currency: str = "USD",
                     own_domains: list[str] | None = None) -> Workspace:
    """A workspace with its default sales pipeline."""
    ws = Workspace(name=name, slug=slug, default_currency=normalize.currency(currency),
                   own_domains=own_domains or [])
    session.add(ws)
    session.flush()
    pipeline = Pipeline(workspace_id=ws.id, name="Sales", is_default=True)
    session.add(pipeline)
    session.flush()
    session.add_all(
        Stage(workspace_id=ws.id, pipeline_id=pipeline.id, name=n, position=i, probability=p, kind=k)
        for i, (n, p, k) in enumerate(DEFAULT_STAGES)
    )
    session.flush()
    return ws


def ensure_workspace(session: Session, *, slug: str, name: str | None = None,
                     currency: str = "USD") -> tuple[Workspace, bool]:
    ws = get_workspace(session, slug=slug)
    if ws is not None:
        return ws, False
    return create_workspace(session, name=name or slug.title(), slug=slug, currency=currency), True


def update_workspace(session: Session, *, actor: Actor, changes: dict[str, Any]) -> Workspace:
    """Admins change the workspace's name, currency, time zone, own domains and settings."""
    require_role(actor, Role.admin, what="change the workspace")
    ws = session.get(Workspace, actor.workspace_id)
    assert ws is not None
    if changes.get("default_currency"):
        changes["default_currency"] = normalize.currency(changes["default_currency"])
    if changes.get("own_domains") is not None:
        changes["own_domains"] = [normalize.domain(d) for d in changes["own_domains"]]
    if changes.get("settings") is not None:
        check_policy(changes["settings"])
    if changes.get("timezone"):
        try:
            ZoneInfo(changes["timezone"])
        except (KeyError, ValueError) as exc:
            raise ValidationFailed(f"unknown time zone '{changes['timezone']}' (e.g. Europe/Lisbon)",
                                   field="timezone") from exc
    if changes.get("settings") is not None:
        check_inbox_settings(changes["settings"])
    before = audit.snapshot(ws)
    for key, value in changes.items():
        setattr(ws, key, value)
    session.flush()
    old, new = audit.changes(before, audit.snapshot(ws))
    if new:
        audit.record(session, actor, action=AuditAction.update, entity_type="workspace", entity_id=ws.id,
                     before=old, after=new)
    return ws


# --- tokens -----------------------------------------------------------------------------


def _hash(token: str) -> str:
    # Tokens are 256 random bits, so one SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, user: User, name: str = "", actor: Actor | None = None) -> str:
    """A new bearer token for `user`; only its hash is stored, the token is returned once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(workspace_id=user.workspace_id, user_id=user.id, name=name,
                   token_hash=_hash(token), prefix=token[:SHOWN], created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(session, actor or Actor.system(user.workspace_id), action=AuditAction.create,
                 entity_type="api_token", entity_id=row.id,
                 after={"user_id": str(user.id), "name": name, "prefix": row.prefix})
    return token


def list_tokens(session: Session, *, actor: Actor, user_id: uuid.UUID | None = None) -> list[tuple[ApiToken, User]]:
    """The tokens the actor may manage (their own; an admin's: everyone's in the workspace), newest first."""
    query = (select(ApiToken, User).join(User, User.id == ApiToken.user_id)
             .where(ApiToken.workspace_id == actor.workspace_id).order_by(ApiToken.created_at.desc()))
    if not actor.is_admin:
        query = query.where(ApiToken.user_id == actor.user_id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return [(token, user) for token, user in session.execute(query).all()]


def find_token(session: Session, *, actor: Actor, ref: str) -> ApiToken:
    """One token the actor may manage, by id, by the prefix `crm token list` shows, or by the whole token.
    Another user's token is not found for a non-admin (its existence is not revealed)."""
    ref = ref.strip()
    query = select(ApiToken).where(ApiToken.workspace_id == actor.workspace_id)
    if not actor.is_admin:
        query = query.where(ApiToken.user_id == actor.user_id)
    try:
        query = query.where(ApiToken.id == uuid.UUID(ref))
    except ValueError:
        if not ref.startswith(TOKEN_PREFIX) or len(ref) < len(TOKEN_PREFIX) + 3:
            raise ValidationFailed(f"'{ref}' is not a token id or prefix: give the id or the prefix that "
                                   "`crm token list` shows (crm_...)", field="token") from None
        is_whole = len(ref) > 16  # longer than any listed prefix: the token itself
        query = query.where(ApiToken.token_hash == _hash(ref) if is_whole
                            else ApiToken.prefix.startswith(ref[:SHOWN], autoescape=True))
    found = list(session.scalars(query.limit(10)))
    if not found:
        raise NotFound(f"no token '{ref}' that you may manage; list them with `crm token list` "
                       "(GET /api/v1/tokens)")
    if len(found) > 1:
        ids = ", ".join(f"{t.id} ({t.prefix}..., {t.name or 'no name'})" for t in found)
        raise Conflict(f"'{ref}' matches several tokens: {ids}; give the id")
    return found[0]


def revoke_token(session: Session, *, actor: Actor, ref: str) -> ApiToken:
    """Revoke a token (see `find_token`): every request with it is refused from now on. A user revokes
    their own; an admin anyone's in the workspace. Revoking it again changes nothing."""
    token = find_token(session, actor=actor, ref=ref)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        audit.record(session, actor, action=AuditAction.update, entity_type="api_token", entity_id=token.id,
                     before={"revoked_at": None}, after={"revoked_at": token.revoked_at.isoformat()},
                     note="revoked")
    return token


def actor_for_user(user: User, surface: Surface) -> Actor:
    return Actor(workspace_id=user.workspace_id, user_id=user.id, role=user.role,
                 team_id=user.team_id, surface=surface, timezone=user.timezone)


def check_active(user: User) -> None:
    """A deactivated user acts through no door (their records keep them as owner)."""
    if not user.is_active:
        raise Unauthorized(f"user {user.email} is deactivated; an admin reactivates it with "
                           f"PATCH /api/v1/users/{user.id} {{\"is_active\": true}}")


def acting_as(session: Session, *, workspace_id: uuid.UUID, email: str, surface: Surface) -> Actor:
    """The actor for a door that names its user by email (the CLI's --as and --user)."""
    user = user_by_email(session, workspace_id=workspace_id, email=email)
    check_active(user)
    return actor_for_user(user, surface)


def authenticate(session: Session, *, token: str, surface: Surface = Surface.api) -> Actor:
    """The acting user for a bearer token, or Unauthorized saying what to fix."""
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthorized("malformed token: expected 'Authorization: Bearer crm_...'")
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _hash(token))
    ).first()
    if row is None or row[0].revoked_at is not None:
        raise Unauthorized("unknown or revoked token; create one with `crm token create --user EMAIL`")
    api_token, user = row
    check_active(user)
    now = utcnow()
    # Stamped at most once a minute: a write on every read request would contend for
    # SQLite's single write lock for nothing.
    if api_token.last_used_at is None or now - api_token.last_used_at > timedelta(minutes=1):
        api_token.last_used_at = now
    return actor_for_user(user, surface)


def user_by_email(session: Session, *, workspace_id: uuid.UUID, email: str) -> User:
    user = session.scalar(select(User).where(User.workspace_id == workspace_id,
                                             User.email == normalize.email(email)))
    if user is None:
        raise NotFound(f"no user with email {email}; add one with `crm user add`")
    return user


def admin_actor(session: Session, workspace: Workspace, surface: Surface) -> Actor:
    """The first active admin, or the system itself when there is none yet (fresh install)."""
    admin = session.scalar(select(User).where(User.workspace_id == workspace.id, User.role == Role.admin,
                                              User.is_active.is_(True)).order_by(User.created_at))
    return actor_for_user(admin, surface) if admin else Actor.system(workspace.id, surface)


# Proposals are read here; they are made and decided by the agent's approval gate. Who sees one is
# the approvals service's rule (its requester and whoever may decide it), not the team-read of
# owned records: a proposal carries evidence (email text, a call) its requester's teammates may not read.
approvals = register(EntitySpec(
    name="approval", plural="approvals", model=Approval, access=Access.RULE, visible=visible_to,
    default_sort="-created_at", creatable=False, updatable=False, deletable=False,
))


def user_by_slack_id(session: Session, *, workspace_id: uuid.UUID, slack_user_id: str) -> User | None:
    return session.scalar(select(User).where(User.workspace_id == workspace_id,
                                             User.slack_user_id == slack_user_id))


def user_for_slack_email(session: Session, *, workspace_id: uuid.UUID, email: str) -> User | None:
    """The CRM user a Slack profile's email names (addresses compare case-insensitively)."""
    try:
        address = normalize.email(email)
    except ValidationFailed:  # a profile without a valid address matches nobody
        return None
    return session.scalar(select(User).where(User.workspace_id == workspace_id, User.email == address))


def link_slack_user(session: Session, *, user: User, slack_user_id: str) -> None:
    """Remember which Slack account is this user (found by email once), audited."""
    before = user.slack_user_id
    user.slack_user_id = slack_user_id
    session.flush()
    audit.record(session, Actor.system(user.workspace_id, Surface.slack), action=AuditAction.update,
                 entity_type="user", entity_id=user.id, before={"slack_user_id": before},
                 after={"slack_user_id": slack_user_id}, note="linked to Slack by email")


def active_users(session: Session, *, workspace_id: uuid.UUID) -> list[User]:
    """Everyone who uses the CRM in the workspace (deactivated users aside), by name."""
    return list(session.scalars(select(User).where(User.workspace_id == workspace_id, User.is_active.is_(True))
                                .order_by(User.name)))


def find_users(session: Session, *, workspace_id: uuid.UUID, query: str) -> list[User]:
    """Active users a person might mean by `query`: an email, a full name, or a first or last name
    ("Dana", "dana's"). The best kind of match wins: exact email, then full name, then a name part."""
    q = query.strip().lower().removesuffix("'s").removesuffix("’s").strip()
    if not q:
        return []
    users = active_users(session, workspace_id=workspace_id)
    for match in (lambda u: u.email.lower() == q, lambda u: u.name.lower() == q,
                  lambda u: q in u.name.lower().split() or u.email.lower().split("@")[0] == q,
                  lambda u: u.name.lower().startswith(q)):
        found = [u for u in users if match(u)]
        if found:
            return found
    return []


def find_teams(session: Session, *, workspace_id: uuid.UUID, query: str) -> list[Team]:
    """The teams a person might mean by `query`: "EMEA", "the EMEA team", "emea's", "West team's"
    (an empty query: every team)."""
    q = query.strip().lower().replace("’", "'")
    q = q.removeprefix("the ").removesuffix("'s").removesuffix(" team").removesuffix("'s").strip()
    teams = list(session.scalars(select(Team).where(Team.workspace_id == workspace_id).order_by(Team.name)))
    if not q:
        return teams
    exact = [t for t in teams if t.name.lower() == q]
    return exact or [t for t in teams if t.name.lower().startswith(q)]


def team_by_name(session: Session, *, workspace_id: uuid.UUID, name: str) -> Team | None:
    return session.scalar(select(Team).where(Team.workspace_id == workspace_id, Team.name == name))


def users_of(session: Session, *, workspace_id: uuid.UUID) -> list[User]:
    """Every user of the workspace, deactivated ones too, by role then name."""
    return list(session.scalars(select(User).where(User.workspace_id == workspace_id).order_by(User.role, User.name)))


def users_with_teams(session: Session, *, workspace_id: uuid.UUID) -> list[tuple[User, str | None]]:
    """Every user of the workspace with their team's name, by email."""
    return [(u, t) for u, t in session.execute(select(User, Team.name).outerjoin(Team, Team.id == User.team_id)
                                               .where(User.workspace_id == workspace_id).order_by(User.email))]


def has_companies(session: Session, *, workspace_id: uuid.UUID) -> bool:
    """Does the workspace hold any company yet (is it more than a fresh install)?"""
    return session.scalar(select(Company.id).where(Company.workspace_id == workspace_id).limit(1)) is not None


def seed_team(session: Session, *, workspace_id: uuid.UUID, name: str) -> Team:
    """A team made by a seeding script (the demo, the evals' world): no actor, no audit entry."""
    team = Team(workspace_id=workspace_id, name=name)
    session.add(team)
    session.flush()
    return team


def seed_user(session: Session, *, workspace_id: uuid.UUID, email: str, name: str, role: Role,
              timezone: str | None = None, team_id: uuid.UUID | None = None, quota: Any = None) -> User:
    """A user made by a seeding script (the demo, the evals' world): no actor, no audit entry."""
    user = User(workspace_id=workspace_id, email=email, name=name, role=role, team_id=team_id, quota=quota,
                **({"timezone": timezone} if timezone is not None else {}))
    session.add(user)
    session.flush()
    return user

