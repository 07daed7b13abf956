"""Tenancy and people: workspaces, teams, users, API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, IdMixin, TimestampMixin, WorkspaceMixin, str_enum
from store.models.enums import Role
from store.types import Money


class Workspace(IdMixin, TimestampMixin, Base):
    __tablename__ = "workspaces"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    default_currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The company's own mail domains: never turned into customer companies.
    own_domains: Mapped[list[Any]] = mapped_column(default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)

    @property
    def workspace_id(self) -> uuid.UUID:
        return self.id


class Team(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))


class User(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.rep)
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    # IANA zone: "next Tuesday" is parsed and dates are shown in it.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Quarterly quota in the workspace currency.
    quota: Mapped[Decimal | None] = mapped_column(Money())
    is_active: Mapped[bool] = mapped_column(default=True)
    slack_user_id: Mapped[str | None] = mapped_column(String(32), index=True)


class ApiToken(IdMixin, WorkspaceMixin, Base):
    """A bearer token. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # First characters, so a user can tell their tokens apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
