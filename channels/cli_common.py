"""What every `crm` subcommand module shares: the consoles, the workspace option, failing with a message.

Apart from channels/cli.py, which registers the subcommands, so that they need not import it back.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

WorkspaceOpt = Annotated[str | None, typer.Option("--workspace", "-w",
                                                  help="Workspace slug (default: CRM_DEFAULT_WORKSPACE).")]


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _workspace(session, slug: str | None):  # type: ignore[no-untyped-def]
    from store.services.org import get_workspace
    from store.settings import get_settings

    slug = slug or get_settings().default_workspace
    ws = get_workspace(session, slug=slug)
    if ws is None:
        _fail(f"no workspace '{slug}'; run `crm setup` first")
    return ws
