"""The channels' `crm` subcommands, registered on one Typer app (the command itself: crm.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.table import Table
from typer.core import TyperGroup

from channels.cli_common import WorkspaceOpt, _fail, _workspace, console
from store.errors import CRMError
from store.models.enums import Role, Surface
from store.services.org import user_by_id


class _Commands(TyperGroup):
    """The root command group: a domain error that no command handled (the store's schema is not
    ready, say: "run `crm setup`") ends any command with its message, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CRMError as exc:
            _fail(exc.message)


app = typer.Typer(help="Agent CRM: the conversational CRM. Every subcommand has --help.",
                  no_args_is_help=True, add_completion=False, cls=_Commands)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
@app.command()
def migrate(downgrade: Annotated[str | None, typer.Option(help="Downgrade to this revision ('base' = empty).")]
            = None) -> None:
    """Bring the database schema up to date (or down, with --downgrade)."""
    from store import migrate as m
    from store.db import get_engine

    engine = get_engine()
    if downgrade:
        m.downgrade(engine, downgrade)
    else:
        m.upgrade(engine)
    console.print(f"schema at revision {m.current(engine) or 'base'} ({engine.url.render_as_string()})")


def _demo_tokens_file() -> Path:
    from store.settings import get_settings

    return get_settings().data_dir / "demo-tokens.json"


def _seed(session, ws, seed: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Load the demo workspace; return a fresh token per demo user."""
    from store.demo import seed_demo
    from store.services import winprob
    from store.services.org import create_token, user_by_email

    summary = seed_demo(session, workspace=ws, seed=seed)
    winprob.train(session, workspace_id=ws.id)  # the demo's two years of deals are enough to learn from
    tokens = {}
    for email, _name, _role in summary.users:
        user = user_by_email(session, workspace_id=ws.id, email=email)
        tokens[email] = create_token(session, user=user, name="demo")
    return tokens


@app.command()
def setup(no_demo: Annotated[bool, typer.Option("--no-demo", help="Never load demo data.")] = False,
          seed: Annotated[int, typer.Option(help="Random seed of the demo data.")] = 7) -> None:
    """Migrate, create the default workspace and, if the store is empty, load the demo workspace."""
    from store import migrate as m
    from store.db import get_engine, unit_of_work
    from store.services.org import ensure_workspace, has_companies, users_of
    from store.settings import get_settings

    settings = get_settings()
    m.upgrade(get_engine())
    tokens_file = _demo_tokens_file()
    with unit_of_work() as session:
        ws, created = ensure_workspace(session, slug=settings.default_workspace, name="Demo Company"
                                       if not no_demo else None, currency=settings.default_currency)
        empty = not has_companies(session, workspace_id=ws.id)
        if empty and not no_demo:
            console.print("loading the demo workspace (first run)...")
            tokens = _seed(session, ws, seed)
            tokens_file.parent.mkdir(parents=True, exist_ok=True)
            # Demo convenience only: these users exist to be tried. Real tokens are never written.
            tokens_file.write_text(json.dumps(tokens, indent=2))
            os.chmod(tokens_file, 0o600)
        users = users_of(session, workspace_id=ws.id)
    if empty and not no_demo:  # the demo's notes and emails into memory, so recall and briefs cite them
        from channels.cli_ingest import reindex_cmd

        reindex_cmd(workspace=ws.slug)
    console.print(f"[green]ready[/green]: workspace '{ws.slug}' in {settings.resolved_database_url}")
    if tokens_file.exists():
        tokens = json.loads(tokens_file.read_text())
        console.print("demo users (send a token as 'Authorization: Bearer <token>'):")
        for user in users:
            if user.email in tokens:
                # Plain lines, never wrapped: a token split over two lines cannot be pasted.
                typer.echo(f"  {user.role.value:<8} {user.email:<28} {tokens[user.email]}")
    elif not users:
        console.print("no users yet: `crm user add EMAIL --name NAME --role admin`, then `crm token create`")


@app.command("seed")
def seed_cmd(demo: Annotated[bool, typer.Option("--demo", help="Load the demo workspace.")] = False,
             seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
             if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing if there are companies.")]
             = False,
             workspace: WorkspaceOpt = None) -> None:
    """Load demo data into a workspace (created if missing)."""
    from store.db import unit_of_work
    from store.services.org import ensure_workspace, has_companies
    from store.settings import get_settings

    if not demo:
        _fail("say what to seed: `crm seed --demo`")
    with unit_of_work() as session:
        ws, _ = ensure_workspace(session, slug=workspace or get_settings().default_workspace)
        if if_empty and has_companies(session, workspace_id=ws.id):
            console.print("store not empty; nothing loaded")
            return
        tokens = _seed(session, ws, seed)
    for email, token in tokens.items():
        console.print(f"{email}\t{token}")


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="Interface (default CRM_HOST, 127.0.0.1).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (default CRM_PORT, 8000).")] = None) -> None:
    """Serve the web app and the HTTP API."""
    import uvicorn

    from channels.api.app import create_app
    from store.settings import get_settings

    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    base = settings.public_url or f"http://{host}:{port}"
    from agents.models import describe_model

    typer.echo(f"agent model: {describe_model(settings)}")
    typer.echo(f"open {base}/  (API under {base}/api/v1, docs at {base}/docs; Ctrl-C stops)")
    if settings.inbox_smtp_port:
        typer.echo(f"inbox: forward or BCC mail to {settings.inbox_address} (SMTP on "
                   f"{settings.inbox_smtp_host}:{settings.inbox_smtp_port}; webhooks at {base}/inbound/...)")
    typer.echo("jobs: " + (f"Celery workers via {settings.broker_url} (`crm worker`)" if settings.broker_url
                           else "in this process"))
    if settings.slack_socket_mode:
        typer.echo("slack: connecting over Socket Mode (CRM_SLACK_APP_TOKEN)")
    elif settings.slack_configured:
        typer.echo(f"slack: Slack sends requests to {base}/slack/events, /slack/interactive and /slack/commands")
    else:
        typer.echo("slack: not configured (set CRM_SLACK_BOT_TOKEN and CRM_SLACK_SIGNING_SECRET; README: Slack)")
    uvicorn.run(create_app(background=True), host=host, port=port, log_level="info")


@app.command()
def model() -> None:
    """Say which model the agent uses (an LLM endpoint from settings, or the offline model)."""
    from agents.models import describe_model

    typer.echo(describe_model())


@user_app.command("add")
def user_add(email: str, name: Annotated[str, typer.Option(help="Full name.")],
             role: Annotated[Role, typer.Option(help="rep, manager or admin.")] = Role.rep,
             team: Annotated[str | None, typer.Option(help="Team name (created if missing).")] = None,
             timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Lisbon.")] = "UTC",
             workspace: WorkspaceOpt = None) -> None:
    """Add a user to the workspace."""
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services import crud, spec_for
    from store.services.org import admin_actor, team_by_name

    try:
        with unit_of_work() as session:
            ws = _workspace(session, workspace)
            actor = admin_actor(session, ws, Surface.cli)
            team_id = None
            if team:
                row = team_by_name(session, workspace_id=ws.id, name=team)
                row = row or crud.create(session, spec_for("team"), actor=actor, data={"name": team})
                team_id = row.id
            user = crud.create(session, spec_for("user"), actor=actor, data={
                "email": email, "name": name, "role": role, "team_id": team_id, "timezone": timezone})
            console.print(f"added {user.email} ({user.role.value})")
    except CRMError as exc:
        _fail(exc.message)


@user_app.command("list")
def user_list(workspace: WorkspaceOpt = None) -> None:
    """List users: email, name, role, team."""
    from store.db import unit_of_work
    from store.services.org import users_with_teams

    with unit_of_work() as session:
        ws = _workspace(session, workspace)
        rows = users_with_teams(session, workspace_id=ws.id)
        table = Table("email", "name", "role", "team", "active")
        for user, team_name in rows:
            table.add_row(user.email, user.name, user.role.value, team_name or "", "yes" if user.is_active else "no")
    console.print(table)


@token_app.command("create")
def token_create(user: Annotated[str, typer.Option("--user", help="The user's email.")],
                 name: Annotated[str, typer.Option(help="What the token is for.")] = "",
                 workspace: WorkspaceOpt = None) -> None:
    """Create an API token for a user and print it (only the token: it is shown once)."""
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services.org import admin_actor, create_token, user_by_email

    try:
        with unit_of_work() as session:
            ws = _workspace(session, workspace)
            token = create_token(session, user=user_by_email(session, workspace_id=ws.id, email=user), name=name,
                                 actor=admin_actor(session, ws, Surface.cli))
    except CRMError as exc:
        _fail(exc.message)
    typer.echo(token)


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens (email).")] = None,
               workspace: WorkspaceOpt = None) -> None:
    """List API tokens, newest first: prefix, id, user, name, created, last used, and revoked if it is."""
    from store.db import unit_of_work
    from store.services.org import admin_actor, list_tokens, user_by_email

    def when(moment) -> str:  # type: ignore[no-untyped-def]
        return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"

    with unit_of_work(readonly=True) as session:
        ws = _workspace(session, workspace)
        user_id = user_by_email(session, workspace_id=ws.id, email=user).id if user else None
        # Plain lines, never wrapped: an id or prefix split over two lines cannot be pasted.
        lines = [f"{token.prefix}...  {token.id}  {owner.email}  {token.name or '-'}  created {when(token.created_at)}"
                 f"  last used {when(token.last_used_at)}" + (f"  REVOKED {when(token.revoked_at)}"
                                                                if token.revoked_at else "")
                 for token, owner in list_tokens(session, actor=admin_actor(session, ws, Surface.cli),
                                                 user_id=user_id)]
    for line in lines or ["no tokens" + (f" for {user}" if user else "")]:
        typer.echo(line)


@token_app.command("revoke")
def token_revoke(token: Annotated[str, typer.Argument(help="The token's id, the prefix `crm token list` shows "
                                                           "(crm_...), or the whole token.", show_default=False)],
                 workspace: WorkspaceOpt = None) -> None:
    """Revoke an API token: every request with it gets 401 from now on (it cannot be restored)."""
    from store.db import unit_of_work
    from store.services.org import admin_actor, revoke_token

    with unit_of_work() as session:
        ws = _workspace(session, workspace)
        row = revoke_token(session, actor=admin_actor(session, ws, Surface.cli), ref=token)
        owner = user_by_id(session, row.user_id)
        said = (f"revoked {row.prefix}... ({row.name or 'no name'}) of {owner.email if owner else '?'} at "
                f"{row.revoked_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(said)


from channels.cli_data import export_cmd, import_cmd  # noqa: E402  (defined there, registered here)

app.command("import")(import_cmd)
app.command("export")(export_cmd)

from channels.cli_chat import chat_cmd  # noqa: E402

app.command("chat")(chat_cmd)

from channels.cli_ingest import (  # noqa: E402
    brief_cmd,
    ingest_call_cmd,
    ingest_email_cmd,
    jobs_app,
    reindex_cmd,
    worker_cmd,
)

app.command("ingest-email")(ingest_email_cmd)
app.command("ingest-call")(ingest_call_cmd)
app.command("brief")(brief_cmd)
app.command("reindex")(reindex_cmd)
app.command("worker")(worker_cmd)
app.add_typer(jobs_app, name="jobs")

from channels.cli_slack import slack_cmd  # noqa: E402

app.command("slack")(slack_cmd)

from channels.cli_scores import winprob_app  # noqa: E402

app.add_typer(winprob_app, name="win-probability")

from channels.cli_leads import leads_app  # noqa: E402

app.add_typer(leads_app, name="leads")
