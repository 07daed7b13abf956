"""`crm win-probability`: train the win-probability model, read its calibration report, score deals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from channels.cli_common import WorkspaceOpt, err

winprob_app = typer.Typer(help="The learned win probability: train it, read its calibration report, "
                               "see a deal's chance and reasons.", no_args_is_help=True)

ReportOpt = Annotated[Path | None, typer.Option("--report-file", help="Also write the report (Markdown) here.")]


def _workspace(session, slug: str | None):  # type: ignore[no-untyped-def]
    from channels.cli_common import _workspace as find

    return find(session, slug)


def _emit(text: str, report_file: Path | None) -> None:
    typer.echo(text)
    if report_file is not None:
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(text)
        err.print(f"report written to {report_file}")


@winprob_app.command("train")
def train_cmd(workspace: WorkspaceOpt = None, report_file: ReportOpt = None) -> None:
    """Learn from the workspace's won and lost deals, test on the most recent quarter of them, store the
    model and its report, and print the report (held-out Brier score and reliability next to the stage
    probabilities). Run it again as deals close; the newest model is the one in use."""
    from store.db import unit_of_work
    from store.services import winprob

    with unit_of_work() as session:
        ws = _workspace(session, workspace)
        try:
            row, report = winprob.train(session, workspace_id=ws.id)
        except winprob.NotEnoughHistory as exc:
            err.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from None
        text = winprob.format_report(report, title=f"Win probability: calibration report ({ws.name})")
    _emit(text, report_file)
    err.print(f"stored as model {row.id}")


@winprob_app.command("report")
def report_cmd(workspace: WorkspaceOpt = None, report_file: ReportOpt = None) -> None:
    """Print the stored report of the model in use (without retraining)."""
    from store.db import unit_of_work
    from store.services import winprob

    with unit_of_work(readonly=True) as session:
        ws = _workspace(session, workspace)
        report = winprob.stored_report(session, workspace_id=ws.id)
        name = ws.name
    if report is None:
        err.print("[red]error:[/red] no win-probability model yet: run `crm win-probability train`")
        raise typer.Exit(1)
    _emit(winprob.format_report(report, title=f"Win probability: calibration report ({name})"), report_file)


@winprob_app.command("deals")
def deals_cmd(user: Annotated[str, typer.Option("--user", help="Whose view: the user's email (their scope "
                                                               "and permissions).")],
              deal: Annotated[str | None, typer.Option(help="One deal's id: its chance and reasons.")] = None,
              workspace: WorkspaceOpt = None) -> None:
    """The open deals a user sees, with the learned chance next to the stage's (or one deal's reasons)."""
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.models.enums import Surface
    from store.services.org import acting_as
    from tools.base import ToolContext
    from tools.scores import WinProbabilityArgs, win_probability

    with unit_of_work(readonly=True) as session:
        ws = _workspace(session, workspace)
        try:
            actor = acting_as(session, workspace_id=ws.id, email=user, surface=Surface.cli)
            args = WinProbabilityArgs(deal_id=deal) if deal else WinProbabilityArgs(limit=25)  # type: ignore[arg-type]
            typer.echo(win_probability.run(ToolContext(actor=actor, session=session), args))
        except CRMError as exc:
            err.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from None
