"""`crm import` and `crm export`: CSV files in and out, as the admin or as a named user.

Registered in channels/cli.py (shared helpers come from channels/cli_common.py, so this
module never imports its registrar):

    from channels.cli_data import export_cmd, import_cmd  # noqa: E402
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from channels.cli_common import WorkspaceOpt, console, err
from store.models.enums import Surface

ENTITIES = ("contacts", "companies", "deals")
# Files with more rows than this get a progress bar.
PROGRESS_FROM = 200

EntityArg = Annotated[str, typer.Argument(help="contacts, companies or deals.", show_default=False)]
AsOpt = Annotated[str | None, typer.Option("--as", help="Act as this user (email) with their permissions; "
                                                        "default: the workspace's admin.")]


def _actor(session: Any, ws: Any, as_email: str | None) -> Any:
    from store.services.org import acting_as, admin_actor

    if as_email:
        return acting_as(session, workspace_id=ws.id, email=as_email, surface=Surface.cli)
    return admin_actor(session, ws, Surface.cli)


def errors_path(file: Path) -> Path:
    """contacts.csv -> contacts.errors.csv, next to it."""
    return file.with_name(f"{file.stem}.errors.csv")


def _write_errors(path: Path, report: Any) -> None:
    # UTF-8 with a BOM so Excel shows accents; the importer reads it back as it is (the
    # two error columns are ignored), so fixing the rows and importing this file works.
    # Cells are neutralized as an export's are (this file is opened in a spreadsheet), each
    # value as the import read it, so importing this file reads what the first one did.
    from store.import_formats import cell_value, neutralize

    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["import_line", "import_error", *report.columns])
        for e in report.errors:
            writer.writerow([e.line, neutralize(e.reason),
                             *(neutralize(cell_value(e.values.get(c, ""))) for c in report.columns)])


def import_cmd(entity: EntityArg, file: Annotated[Path, typer.Argument(help="The CSV file (UTF-8 or Windows-1252; "
                                                                         "comma, semicolon or tab separated).")],
               dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row and report; write "
                                                                     "nothing.")] = False,
               workspace: WorkspaceOpt = None, as_email: AsOpt = None) -> None:
    """Import contacts, companies or deals from a CSV file (ours, or a HubSpot or Pipedrive export).

    Valid rows are created. Every other row is listed with its line number and the reason.

    Rejected rows are also written to NAME.errors.csv next to the file: fix them there, import that.

    Exit code 0: all rows imported; 2: some rejected (the others imported); 1: nothing imported.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from channels.cli_common import _fail, _workspace
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.import_formats import count_rows
    from store.importer import import_csv

    if entity not in ENTITIES:
        _fail(f"cannot import '{entity}'; import one of: {', '.join(ENTITIES)}")
    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    try:
        total = count_rows(data)  # reads the whole file first: an unreadable one fails before any write
    except CRMError as exc:
        _fail(exc.message)
    bar = Progress(TextColumn(f"importing {entity}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err, transient=True, disable=total < PROGRESS_FROM)
    try:
        with unit_of_work() as session, bar:
            task = bar.add_task("rows", total=total)
            ws = _workspace(session, workspace)
            actor = _actor(session, ws, as_email)
            report = import_csv(session, actor=actor, entity=entity, rows=data, dry_run=dry_run,
                                progress=lambda n: bar.update(task, completed=n))
    except CRMError as exc:
        _fail(exc.message)

    for note in report.notes:
        err.print(f"[yellow]note:[/yellow] {note}")
    if report.ignored_columns:
        err.print(f"ignored columns (not ours, HubSpot's or Pipedrive's): {', '.join(report.ignored_columns)}")
    made = "would be created (dry run: nothing was written)" if dry_run else "created"
    extra = f", plus {report.companies_created} new companies" if report.companies_created else ""
    rejected = f", [red]{len(report.errors)} rejected[/red]" if report.errors else ""
    console.print(f"{report.total_rows} rows: [green]{report.created} {entity} {made}[/green]{extra}{rejected}")
    if not report.errors:
        return
    table = Table("line", "reason", "row", title="Rejected rows")
    for e in report.errors:
        table.add_row(str(e.line), e.reason, ", ".join(v for v in e.values.values() if v)[:80])
    console.print(table)
    path = errors_path(file)
    try:
        _write_errors(path, report)
        console.print(f"rejected rows written to {path}: fix them there and import that file")
    except OSError as exc:
        err.print(f"[yellow]could not write {path}: {exc.strerror or exc}[/yellow]")
    raise typer.Exit(2)


def export_cmd(entity: EntityArg,
               out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here (default: standard "
                                                                             "output).")] = None,
               workspace: WorkspaceOpt = None, as_email: AsOpt = None) -> None:
    """Export contacts, companies or deals as CSV in the columns `crm import` reads back.

    Relations are emails, domains and names (owner_email, company_domain, stage): the file imports anywhere.

    Only what the acting user may read is written.
    """
    from channels.cli_common import _fail, _workspace
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.exporter import export_csv

    if entity not in ENTITIES:
        _fail(f"cannot export '{entity}'; export one of: {', '.join(ENTITIES)}")
    try:
        with unit_of_work() as session:
            ws = _workspace(session, workspace)
            actor = _actor(session, ws, as_email)
            if out is None:
                count = export_csv(session, actor=actor, entity=entity, out=sys.stdout)
            else:
                with out.open("w", encoding="utf-8", newline="") as fh:
                    count = export_csv(session, actor=actor, entity=entity, out=fh)
    except CRMError as exc:
        _fail(exc.message)
    except OSError as exc:
        _fail(f"cannot write {out or 'to standard output'}: {exc.strerror or exc}")
    err.print(f"exported {count} {entity}" + (f" to {out}" if out else ""))
