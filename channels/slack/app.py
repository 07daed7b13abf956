"""The Bolt app: Slack's events, button clicks, modals and `/crm`, each acknowledged at once.

Served over HTTP by the FastAPI app (`/slack/events`, `/slack/interactive`, `/slack/commands`,
all signed with the app's signing secret; Bolt refuses a bad signature or one older than
5 minutes) or over Socket Mode (`crm slack --socket`). The listeners only check the request
and hand the work to `SlackBot` (channels/slack/bot.py), which runs it after the ack. Nothing
here touches the database (an ack must never wait for a lock), except the Edit modal, whose
validation errors can only go back in the ack.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import App

from channels.slack import cards
from channels.slack.bot import HELP, SlackBot
from channels.slack.text import from_slack
from store.errors import CRMError, PermissionDenied, ValidationFailed

log = logging.getLogger("crm.slack")

# Message subtypes that are a person talking to the bot; every other one (edits, joins,
# other bots, the bot's own posts) is ignored.
PEOPLE_SUBTYPES = {None, "file_share", "thread_broadcast"}


def build_app(bot: SlackBot, *, socket_mode: bool = False) -> App:
    """The Bolt app. Over HTTP every request must carry Slack's signature; over Socket Mode the
    app-level token authenticates the connection instead."""
    settings = bot.settings
    if settings.slack_bot_token is None or (settings.slack_signing_secret is None and not socket_mode):
        raise CRMError("Slack is not configured: set CRM_SLACK_BOT_TOKEN and CRM_SLACK_SIGNING_SECRET "
                       "(the README's Slack section says where to find them)")
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    app = App(
        # The token travels in the client (whose base URL tests point at a local fake).
        signing_secret=secret,
        request_verification_enabled=not socket_mode,
        client=bot.client,
        # Listeners return in milliseconds (the work goes to the bot's threads), so answering
        # after them is within Slack's 3 seconds and lets a modal's errors go back in the ack.
        process_before_response=True,
        # auth.test runs on the first request, not at startup (Slack may be unreachable then).
        token_verification_enabled=False,
    )

    def _bot_or_edit(event: dict[str, Any]) -> bool:
        return bool(event.get("bot_id")) or event.get("subtype") not in PEOPLE_SUBTYPES

    def _message(event: dict[str, Any], body: dict[str, Any], *, mention: bool) -> None:
        if _bot_or_edit(event) or not event.get("user"):
            return
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        in_dm = event.get("channel_type") == "im" or str(channel).startswith("D")
        team = event.get("team") or body.get("team_id")
        text = from_slack(event.get("text") or "", bot_user_id=bot.bot_user_id)
        # Slack retries an event it thinks was lost (same event_id): the bot runs it once.
        bot.submit_event(body.get("event_id"), bot.message, slack_user=event["user"], team_id=team, channel=channel,
                         thread_ts=thread_ts, ts=ts, text=text, files=event.get("files") or [], in_dm=in_dm,
                         only_if_talking=not in_dm and not mention)

    @app.event("app_mention")
    def on_mention(event: dict[str, Any], body: dict[str, Any], ack: Any) -> None:
        ack()
        _message(event, body, mention=True)

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any], ack: Any) -> None:
        ack()
        in_dm = event.get("channel_type") == "im"
        # In channels the bot answers @mentions (the app_mention event) and replies in a thread
        # where that person already talks with it (checked after the ack); the rest is not for it.
        if not in_dm and (f"<@{bot.bot_user_id}>" in (event.get("text") or "") or not event.get("thread_ts")):
            return
        _message(event, body, mention=False)

    @app.command("/crm")
    def on_command(command: dict[str, Any], ack: Any, respond: Any) -> None:
        text = (command.get("text") or "").strip()
        if not text or text.lower() in ("help", "?"):
            ack(text=HELP)
            return
        ack()
        bot.submit(bot.command, slack_user=command["user_id"], team_id=command.get("team_id"),
                   channel=command["channel_id"], text=from_slack(text, bot_user_id=bot.bot_user_id),
                   response_url=command.get("response_url"))

    def _click(body: dict[str, Any], kind: str) -> None:
        action = body["actions"][0]
        channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
        message = body.get("message") or {}
        bot.submit(bot.decide, kind=kind, approval_id=action["value"], slack_user=body["user"]["id"],
                   team_id=(body.get("team") or {}).get("id") or body["user"].get("team_id"), channel=channel,
                   thread_ts=message.get("thread_ts") or message.get("ts"))

    @app.action(cards.APPROVE)
    def on_approve(body: dict[str, Any], ack: Any) -> None:
        ack()
        _click(body, "approve")

    @app.action(cards.REJECT)
    def on_reject(body: dict[str, Any], ack: Any) -> None:
        ack()
        _click(body, "reject")

    @app.action(cards.EDIT)
    def on_edit(body: dict[str, Any], ack: Any) -> None:
        ack()
        # views.open must use the trigger within 3 seconds of the click: done here, not later.
        channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
        message = body.get("message") or {}
        refusal = bot.edit_view(approval_id=body["actions"][0]["value"], slack_user=body["user"]["id"],
                                team_id=(body.get("team") or {}).get("id"), trigger_id=body["trigger_id"],
                                channel=channel, ts=message.get("ts"), thread_ts=message.get("thread_ts"))
        if refusal:
            bot.submit(bot.tell, channel=channel, slack_user=body["user"]["id"], text=refusal)

    @app.view(cards.EDIT_VIEW)
    def on_edit_submit(body: dict[str, Any], view: dict[str, Any], ack: Any) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        slack_user = body["user"]["id"]
        try:
            bot.submit_edit(approval_id=meta.get("approval", ""), slack_user=slack_user,
                            team_id=(body.get("team") or {}).get("id"),
                            values=view["state"]["values"], channel=meta.get("channel"),
                            thread_ts=meta.get("thread_ts"))
        except ValidationFailed as exc:
            ack(response_action="errors", errors=bot.modal_errors(meta.get("approval", ""), exc))
            return
        except (CRMError, PermissionDenied) as exc:
            ack(response_action="errors", errors={bot.first_block(meta.get("approval", "")): exc.message[:150]})
            return
        ack()  # the conversation goes on on the bot's threads (bot.apply)

    return app
