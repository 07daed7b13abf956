"""`crm slack`: the Slack app's manifest, a connection check, and Socket Mode."""

from __future__ import annotations

import json
import threading
import time
from importlib.resources import files
from typing import Annotated, Any

import typer

from channels.cli_common import console, err

PLACEHOLDER = "https://crm.example.com"


def manifest(base_url: str | None, *, socket: bool = False) -> dict[str, Any]:
    """The app manifest (channels/slack/manifest.json) for this server: request URLs under
    `base_url`, or none at all in Socket Mode."""
    data: dict[str, Any] = json.loads(files("channels").joinpath("slack/manifest.json").read_text("utf-8"))
    if socket:
        data["settings"]["socket_mode_enabled"] = True
        data["settings"]["event_subscriptions"].pop("request_url", None)
        data["settings"]["interactivity"].pop("request_url", None)
        for command in data["features"]["slash_commands"]:
            command.pop("url", None)
        return data
    base = (base_url or PLACEHOLDER).rstrip("/")
    return json.loads(json.dumps(data).replace(PLACEHOLDER, base))


def slack_cmd(
    socket: Annotated[bool, typer.Option("--socket", help="Connect over Socket Mode (no public URL needed; "
                                                          "needs CRM_SLACK_APP_TOKEN) and run until Ctrl-C.")] = False,
    print_manifest: Annotated[bool, typer.Option("--manifest", help="Print the app manifest to paste into "
                                                                    "api.slack.com/apps -> Create New App.")] = False,
    url: Annotated[str | None, typer.Option(help="This server's public URL, for the manifest's request URLs "
                                                 "(default CRM_PUBLIC_URL).")] = None,
) -> None:
    """Slack: print the app manifest, check the connection, or run the bot over Socket Mode."""
    from store.settings import get_settings

    settings = get_settings()
    if print_manifest:
        typer.echo(json.dumps(manifest(url or settings.public_url, socket=socket), indent=2))
        return
    if settings.slack_bot_token is None:
        err.print("CRM_SLACK_BOT_TOKEN is not set: install the app to your workspace and copy its Bot User OAuth "
                  "Token (OAuth & Permissions). `crm slack --manifest --url https://your.host` prints the app "
                  "manifest to create it from.")
        raise typer.Exit(1)
    from slack_sdk.errors import SlackApiError

    from channels.slack.bot import SlackBot
    from store.db import get_sessionmaker

    bot = SlackBot(settings=settings, sessions=get_sessionmaker())
    try:
        auth = bot.auth()
    except SlackApiError as exc:
        err.print(f"Slack refused the bot token: {exc.response.get('error')}. Copy the Bot User OAuth Token again.")
        raise typer.Exit(1) from exc
    except OSError as exc:
        err.print(f"cannot reach Slack at {settings.slack_api_url}: {exc}")
        raise typer.Exit(1) from exc
    console.print(f"connected to Slack workspace {auth.get('team')} ({auth.get('team_id')}) as @{auth.get('user')}")
    if not socket:
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        ok = "set" if settings.slack_signing_secret else "NOT SET (CRM_SLACK_SIGNING_SECRET)"
        console.print(f"signing secret: {ok}. Over HTTP, `crm serve` answers {base}/slack/events, "
                      f"{base}/slack/interactive and {base}/slack/commands.")
        return
    from channels.slack.socket import handler
    from flows.background import Background
    from store.errors import CRMError

    try:
        socket_handler = handler(bot)
    except CRMError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from exc
    # The jobs (a call shared in Slack) and the memory sync run in this process; the inbox's
    # SMTP listener stays with `crm serve`.
    running = Background(bot.sessions, settings, slack_bot=bot).start()
    socket_handler.connect()
    # slack_sdk logs a failed connection and keeps retrying instead of raising: say what happened.
    for _ in range(50):
        if socket_handler.client.is_connected():
            break
        time.sleep(0.2)
    if socket_handler.client.is_connected():
        console.print("Socket Mode: connected; Ctrl-C stops")
    else:
        err.print("Socket Mode: not connected yet (Slack unreachable, or the app token was refused: see the log "
                  "above); retrying every 10 s. Ctrl-C stops.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        socket_handler.close()
        running.stop()
