"""Who is acting. Built by the channel from a token, a Slack user or the CLI; never by a model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from store.models.enums import Role, Surface


@dataclass(frozen=True)
class Actor:
    workspace_id: uuid.UUID
    user_id: uuid.UUID | None
    role: Role
    team_id: uuid.UUID | None
    surface: Surface
    timezone: str = "UTC"
    # Set while executing an approved proposal: every audit entry of the write names it.
    approval_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    def via(self, surface: Surface) -> Actor:
        return replace(self, surface=surface)

    @classmethod
    def system(cls, workspace_id: uuid.UUID, surface: Surface = Surface.system) -> Actor:
        """The product itself (migrations, seeding, imports run by an admin on the CLI)."""
        return cls(workspace_id=workspace_id, user_id=None, role=Role.admin, team_id=None, surface=surface)
