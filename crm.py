"""The `crm` command: every channel's subcommands (channels/cli.py) and `crm eval` (evals/cli.py).

It sits above every layer, so no layer needs to name a higher one to be a command.
"""

from channels.cli import app
from evals.cli import eval_cmd

app.command("eval")(eval_cmd)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
