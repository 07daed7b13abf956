"""A store whose schema is missing or behind: every `crm` command that needs it says what to run
(`crm setup`, `crm migrate`), not a SQLAlchemy traceback; and nothing is written."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect
from typer.testing import CliRunner

from crm import app

runner = CliRunner()

NEED_THE_SCHEMA = [
    ["seed", "--demo"], ["user", "list"], ["user", "add", "sam@acme.example", "--name", "Sam"],
    ["token", "create", "--user", "sam@acme.example"], ["token", "list"], ["token", "revoke", "crm_abcdef"],
    ["export", "contacts"], ["import", "contacts", "{csv}"], ["brief", "Borealis", "--as", "sam@acme.example"],
    ["jobs", "list"], ["win-probability", "train"],
]


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "Traceback" not in result.output and "sqlalchemy" not in text.lower(), text
    return result.exit_code, text


def test_every_command_on_a_never_migrated_store_says_run_crm_setup(cli_env: Path, tmp_path: Path) -> None:
    from store.db import get_engine

    csv = tmp_path / "c.csv"
    csv.write_text("email\nines@borealis.example\n")
    for args in NEED_THE_SCHEMA:
        code, text = run(*(a.replace("{csv}", str(csv)) for a in args))
        assert code == 1 and "has no CRM tables yet: run `crm setup`" in text, (args, text)
    assert inspect(get_engine()).get_table_names() == []  # nothing was created on the way

    code, text = run("setup", "--no-demo")  # what it said to run
    assert code == 0, text
    assert run("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin")[0] == 0
    assert "sam@acme.example" in run("user", "list")[1]


def test_a_store_behind_the_code_says_run_crm_migrate(cli_env: Path) -> None:
    from store.db import get_sessionmaker

    assert run("setup", "--no-demo")[0] == 0
    assert run("migrate", "--downgrade", "0005")[0] == 0
    get_sessionmaker.cache_clear()  # each `crm` is a process of its own: the check runs once per process
    code, text = run("user", "list")
    assert code == 1 and "is at schema revision 0005" in text and "run `crm migrate`" in text, text
    assert run("migrate")[0] == 0
    assert run("user", "list")[0] == 0
