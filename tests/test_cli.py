"""The `crm` command, run as an admin would run it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crm import app

runner = CliRunner()


def crm(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_every_subcommand_has_help() -> None:
    import typer.main

    group = typer.main.get_command(app)
    paths = [[name] for name in group.commands]  # type: ignore[attr-defined]
    for sub in ("user", "token"):
        paths += [[sub, name] for name in group.commands[sub].commands]  # type: ignore[attr-defined]
    for path in paths:
        out = crm(*path, "--help")
        assert "Usage" in out and len(out) > 80, path


def test_users_and_tokens(cli_env) -> None:
    crm("setup", "--no-demo")
    added = crm("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin")
    assert "added sam@acme.example (admin)" in added
    crm("user", "add", "Priya@Acme.example", "--name", "Priya Raman", "--team", "West")
    listing = crm("user", "list")
    assert "priya@acme.example" in listing and "rep" in listing and "West" in listing
    assert "sam@acme.example" in listing and "admin" in listing

    token = crm("token", "create", "--user", "priya@acme.example").strip()
    assert token.startswith("crm_") and "\n" not in token and len(token) > 30  # only the token

    bad = runner.invoke(app, ["token", "create", "--user", "nobody@acme.example"])
    assert bad.exit_code == 1 and "crm user add" in bad.output
    dup = runner.invoke(app, ["user", "add", "priya@acme.example", "--name", "Again"])
    assert dup.exit_code == 1 and "already exists" in dup.output

    # The token works against the API, as the user it was made for.
    from fastapi.testclient import TestClient

    from channels.api.app import create_app

    with TestClient(create_app()) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["email"] == "priya@acme.example"


@pytest.mark.slow
def test_setup_loads_demo_once_and_prints_tokens(cli_env) -> None:
    first = crm("setup")
    assert "loading the demo workspace" in first
    assert "priya" in first.lower() and "crm_" in first
    tokens_file = cli_env / "demo-tokens.json"
    assert tokens_file.exists() and oct(tokens_file.stat().st_mode & 0o777) == "0o600"
    again = crm("setup")  # a restart keeps the data and does not seed twice
    assert "loading the demo workspace" not in again
    import json

    token = json.loads(tokens_file.read_text())
    priya_token = next(v for k, v in token.items() if k.startswith("priya"))
    from fastapi.testclient import TestClient

    from channels.api.app import create_app

    with TestClient(create_app()) as client:
        deals = client.get("/api/v1/deals", headers={"Authorization": f"Bearer {priya_token}"})
        assert deals.status_code == 200 and deals.json()["total"] > 10


def test_a_deactivated_user_acts_through_no_cli_door(cli_env) -> None:
    from sqlalchemy import select

    from store.db import unit_of_work
    from store.models import User

    crm("setup", "--no-demo")
    crm("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin")
    crm("user", "add", "priya@acme.example", "--name", "Priya Raman", "--team", "West")
    with unit_of_work() as session:  # she left; her records stay hers
        session.scalar(select(User).where(User.email == "priya@acme.example")).is_active = False
    for args in (["export", "contacts", "--as", "priya@acme.example"], ["chat", "--user", "priya@acme.example"],
                 ["win-probability", "deals", "--user", "priya@acme.example"]):
        result = runner.invoke(app, args, input="/quit\n")
        assert result.exit_code == 1, (args, result.output)
        assert "priya@acme.example is deactivated" in result.output, args
    crm("export", "contacts")  # the admin still can


def test_commands_that_load_the_embedding_model_print_no_progress_bars(cli_env, monkeypatch) -> None:
    """`crm reindex` loads the bundled all-MiniLM on first use: no "Loading weights ... 103/103" on the
    terminal, only what the command itself says."""
    from memory import embeddings, reset_memory
    from store.db import unit_of_work
    from store.settings import get_settings
    from tests import factories as f

    crm("setup", "--no-demo")
    with unit_of_work() as session:
        from store.services.org import get_workspace

        ws = get_workspace(session, slug=get_settings().default_workspace)
        rep = f.user(session, ws, name="Priya Raman")
        f.create(session, rep, "note", body="Ines wants the pilot in January.")
    monkeypatch.setenv("CRM_CHROMA_PATH", str(cli_env / "chroma"))
    get_settings.cache_clear()
    reset_memory()
    monkeypatch.setattr(embeddings, "_models", {})  # this process loads the model again, as a fresh `crm` does
    try:
        result = runner.invoke(app, ["reindex"])
    finally:
        reset_memory()
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "memory rebuilt" in result.stdout and "'notes': 1" in result.stdout
    noise = result.stdout + result.stderr
    assert "Loading weights" not in noise and "it/s" not in noise, noise
