"""`/slack/events`, `/slack/interactive` and `/slack/commands` on the FastAPI app.

One Bolt app answers all three (Slack says which kind of request it is); they are separate
paths so the manifest reads naturally. Bolt's dispatch is synchronous: it runs in the
threadpool, never on the event loop. Without Slack settings the paths answer 503 and say
which settings are missing.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from store.settings import get_settings

PATHS = ("/slack/events", "/slack/interactive", "/slack/commands")
_lock = threading.Lock()


def slack_bot(app: FastAPI) -> Any:
    """The app's SlackBot, built on first use from settings (or the one a test installed)."""
    with _lock:
        if getattr(app.state, "slack_bot", None) is None:
            from channels.slack.bot import SlackBot

            app.state.slack_bot = SlackBot(settings=get_settings(), sessions=app.state.sessionmaker,
                                           runner=getattr(app.state, "agent", None))
        return app.state.slack_bot


def bolt_app(app: FastAPI) -> Any:
    bot = slack_bot(app)
    with _lock:
        if getattr(app.state, "slack_bolt", None) is None:
            from channels.slack.app import build_app

            app.state.slack_bolt = build_app(bot)
        return app.state.slack_bolt


def _checkable(request: Request, body: bytes) -> bool:
    """Whether Bolt can check this request's signature at all. slack_sdk reads the timestamp with
    int(), the body as UTF-8 and compares the signature as ASCII, and raises (a 500) on anything
    else; such a request is no more signed than one with a wrong signature, and gets the same 401."""
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return timestamp.isascii() and timestamp.strip().isdigit() and signature.isascii()


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)

    async def handle(request: Request) -> Response:
        installed = getattr(request.app.state, "slack_bot", None) is not None
        if not installed and not get_settings().slack_configured:
            return JSONResponse({"error": "slack_not_configured", "message": (
                "Slack is not configured: set CRM_SLACK_BOT_TOKEN and CRM_SLACK_SIGNING_SECRET "
                "(the README's Slack section says where to find them)")}, status_code=503)
        from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response

        body = await request.body()
        if not _checkable(request, body):
            return JSONResponse({"error": "invalid request"}, status_code=401)
        bolt = bolt_app(request.app)
        response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    for path in PATHS:
        api.add_api_route(path, handle, methods=["POST"])
    return api
