"""Socket Mode: the bot connects out to Slack over a WebSocket, so it needs no public URL.

Needs an app-level token (xapp-..., scope connections:write) in CRM_SLACK_APP_TOKEN. The same
Bolt app and SlackBot answer as over HTTP; Slack's messages arrive over the socket instead
of as signed requests (the token authenticates the connection).
"""

from __future__ import annotations

from typing import Any

from store.errors import CRMError


def handler(bot: Any) -> Any:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from channels.slack.app import build_app

    token = bot.settings.slack_app_token
    if token is None or not token.get_secret_value().startswith("xapp-"):
        raise CRMError("Socket Mode needs an app-level token: create one under Basic Information -> App-Level "
                       "Tokens (scope connections:write) and set CRM_SLACK_APP_TOKEN=xapp-...")
    return SocketModeHandler(build_app(bot, socket_mode=True), token.get_secret_value(), web_client=bot.client)


def connect(bot: Any) -> Any:
    """Connect in the background (returns the handler; `.close()` disconnects)."""
    socket = handler(bot)
    socket.connect()
    return socket
