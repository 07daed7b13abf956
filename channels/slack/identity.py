"""Who is this Slack user in the CRM? Matched by email once, then by the stored Slack id.

Only members of the Slack workspace the bot is installed in are considered: a person from
another organisation in a shared (Slack Connect) channel never maps to a CRM user, even
with a matching address. Someone unknown is told how to get access, and nothing else happens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from store.db import unit_of_work
from store.errors import CRMError
from store.models import User, Workspace
from store.services import org
from store.services.org import user_by_id


@dataclass
class Refusal:
    """Why a Slack user cannot use the CRM, written to them."""

    text: str


def how_to_get_access(email: str | None) -> str:
    who = f"your Slack email ({email})" if email else "your Slack account"
    return (f"I don't know you yet: {who} doesn't match a user in Agent CRM, so I can't do anything for you. "
            "Ask your CRM admin to add you with the same email address "
            f"(`crm user add {email or 'you@yourcompany.com'} --name \"Your Name\"`), then write to me again.")


def identify(sessions: sessionmaker[Session], client: WebClient, *, workspace_slug: str, slack_user_id: str,
             team_id: str) -> User | Refusal:
    """The active CRM user behind `slack_user_id`, or a Refusal saying why not and what to do.
    Slack is asked between two short units of work, never inside one."""
    with unit_of_work(sessions, readonly=True) as session:
        workspace = _workspace(session, workspace_slug)
        user = org.user_by_slack_id(session, workspace_id=workspace.id, slack_user_id=slack_user_id)
    if user is None:
        try:
            profile = client.users_info(user=slack_user_id)["user"]
        except SlackApiError as exc:
            return Refusal(f"I couldn't read your Slack profile ({exc.response.get('error')}), so I can't tell "
                           "who you are. Ask your admin to check the app has the users:read and "
                           "users:read.email scopes.")
        if profile.get("deleted") or profile.get("is_bot"):
            return Refusal("Only people in this Slack workspace can use Agent CRM.")
        if profile.get("team_id") and profile.get("team_id") != team_id:
            return Refusal("You're in another organisation's Slack workspace: Agent CRM only works for members "
                           "of the workspace it is installed in.")
        email = (profile.get("profile") or {}).get("email")
        if not email:
            return Refusal("Your Slack profile shows me no email address, so I can't match you to a CRM user. "
                           "Ask your admin to give the app the users:read.email scope.")
        with unit_of_work(sessions) as session:
            user = org.user_for_slack_email(session, workspace_id=workspace.id, email=email)
            if user is None:
                return Refusal(how_to_get_access(email))
            if user.slack_user_id and user.slack_user_id != slack_user_id:
                return Refusal(f"The CRM user {user.email} is already linked to another Slack account; "
                               "ask your CRM admin to check which one is yours.")
            org.link_slack_user(session, user=user, slack_user_id=slack_user_id)
    if not user.is_active:
        return Refusal(f"Your CRM user ({user.email}) is deactivated; ask your CRM admin to reactivate it.")
    return user


def slack_id_for(sessions: sessionmaker[Session], client: WebClient, *, user_id: uuid.UUID,
                 team_id: str) -> str | None:
    """The Slack account of a CRM user (to DM them), found by email the first time."""
    with unit_of_work(sessions, readonly=True) as session:
        user = user_by_id(session, user_id)
        if user is None or not user.is_active:
            return None
        if user.slack_user_id:
            return user.slack_user_id
        email = user.email
    try:
        found = client.users_lookupByEmail(email=email)["user"]
    except SlackApiError:
        return None
    if found.get("deleted") or (found.get("team_id") and found.get("team_id") != team_id):
        return None
    with unit_of_work(sessions) as session:
        user = user_by_id(session, user_id)
        if user is None:
            return None
        if not user.slack_user_id:
            org.link_slack_user(session, user=user, slack_user_id=str(found["id"]))
        return user.slack_user_id


def _workspace(session: Session, slug: str) -> Workspace:
    workspace = org.get_workspace(session, slug=slug)
    if workspace is None:
        raise CRMError(f"the CRM workspace '{slug}' does not exist; run `crm setup` (or set CRM_DEFAULT_WORKSPACE)")
    return workspace
