"""The FastAPI application factory."""

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import store.services  # noqa: F401  (registers every entity)
from channels.api import chat, crud_routes, dashboard, data_routes, ingest_routes, pages, records
from store.db import get_sessionmaker
from store.errors import CRMError


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {_message_of(err)}")
    return "; ".join(parts)


def _message_of(err: Any) -> str:
    if err.get("type") == "string_unicode" and isinstance(err.get("input"), str):
        # JSON can spell half of a character ("\ud800"); pydantic's own words do not say so.
        return "not valid Unicode text: it holds a lone surrogate (half of a character, e.g. \\ud800); " \
               "send the whole character or remove it"
    return str(err["msg"])


def _safe(content: Any) -> Any:
    """`content` as JSON can always carry it: what the client sent is echoed back in errors, and
    a lone surrogate or a NaN in it must not turn a 4xx into a 500 while it is written out."""
    if isinstance(content, str):
        return content.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(content, float) and not math.isfinite(content):
        return str(content)
    if isinstance(content, dict):
        return {_safe(k): _safe(v) for k, v in content.items()}
    if isinstance(content, list | tuple):
        return [_safe(v) for v in content]
    return content


def create_app(session_factory: sessionmaker[Session] | None = None, agent: Any = None,
               background: bool = False, slack_bot: Any = None) -> FastAPI:
    """The app. `background=True` (what `crm serve` does) also runs the job queue, the inbox's
    SMTP listener, the memory sync and the Slack bot's notifications for the app's lifetime.
    `slack_bot`: a SlackBot to answer /slack/... (default: built from settings on first use)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        if not background:
            yield
            return
        from flows.background import Background
        from store.settings import get_settings

        settings = get_settings()
        bot = None
        if settings.slack_configured or settings.slack_socket_mode or app.state.slack_bot is not None:
            from channels.slack.http import slack_bot as bot_of

            bot = bot_of(app)
        doors: list[Any] = []  # started with the background, each returning how to stop it
        if settings.inbox_smtp_port:
            from channels.inbox.smtp import start_smtp

            doors.append(lambda: start_smtp(app.state.sessionmaker, settings).stop)
        if bot is not None and settings.slack_app_token is not None:
            from channels.slack.socket import connect

            doors.append(lambda: connect(bot).close)  # Socket Mode
        running = Background(app.state.sessionmaker, settings, slack_bot=bot, doors=doors).start()
        app.state.background = running
        try:
            yield
        finally:
            running.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Agent CRM",
        version="0.1.0",
        description="The CRM underneath the agent. Every request acts as the user its bearer token "
                    "belongs to, with that user's permissions.",
    )
    app.state.sessionmaker = session_factory or get_sessionmaker()
    # The agent (model + checkpointer) is built on first use unless a test passes one.
    app.state.agent = agent
    app.state.slack_bot = slack_bot

    @app.exception_handler(CRMError)
    def crm_error(_: Request, exc: CRMError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(_safe(exc.to_dict()), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_safe({"error": "validation_error", "message": _validation_message(exc),
                                   "detail": jsonable_encoder(exc.errors())}), status_code=422)

    @app.exception_handler(OperationalError)
    def operational_error(_: Request, exc: OperationalError) -> JSONResponse:
        if "locked" in str(exc.orig) or "busy" in str(exc.orig):
            return JSONResponse({"error": "busy", "message": "the database is busy with another write; "
                                 "retry in a moment"}, status_code=503, headers={"Retry-After": "1"})
        raise exc

    @app.exception_handler(DataError)
    def data_error(_: Request, exc: DataError) -> JSONResponse:
        # The services refuse what the database would (store/normalize.py `storable`, the column
        # checks in crud); this answers for a path they missed with the database's own reason,
        # a 422 rather than a 500: the value came from the request.
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "a value the database refuses"
        return JSONResponse(_safe({"error": "validation_error",
                                   "message": f"the database refused a value in this request: {reason}"}),
                            status_code=422)

    @app.exception_handler(IntegrityError)
    def integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        # The services check duplicates first; this is the race where two requests
        # create the same record at once and the unique index decides.
        return JSONResponse({"error": "conflict", "message": "this conflicts with an existing record "
                             "(it may have been created at the same moment); fetch it and retry"},
                            status_code=409)

    # chat.waiting_router first: GET /approvals/waiting before the CRUD routes' GET /approvals/{id}.
    api = [chat.waiting_router, *crud_routes.all_entity_routers(), crud_routes.audit_router(), records.router,
           data_routes.router, chat.router, ingest_routes.router, dashboard.router]
    for router in api:
        app.include_router(router, prefix="/api/v1")
    # Mail providers post here (their own auth: Mailgun's signature, basic auth for the others).
    app.include_router(ingest_routes.inbound_webhooks(app.state.sessionmaker))
    # Slack signs its own requests (the signing secret); Bolt checks them.
    from channels.slack.http import router as slack_router

    app.include_router(slack_router())

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {"ok": True}

    # The web pages (the chat page, the dashboard) and their one style sheet and script.
    app.include_router(pages.router())

    return app

