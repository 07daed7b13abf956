"""`crm chat`: talk to the agent in the terminal, and decide its proposals inline.

Registered in channels/cli.py:

    from channels.cli_chat import chat_cmd  # noqa: E402
    app.command("chat")(chat_cmd)

The agent runs in-process (the same AgentRunner the API uses) as the user named by
--user. Every write it proposes is shown with its diff and waits for
[a]pprove / [e]dit / [r]eject / [s]kip; decisions go through the approval gate, then
the conversation resumes. `ChatSession` takes its input and output functions as
arguments so tests drive it with a list of lines.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt
from rich.table import Table

from store.models.enums import Surface

HELP = ("Type a message and press Enter. Commands: /waiting (what waits for your decision; /inbox still works), "
        "/new (a new conversation), /help, /quit.")
CHOICES = "[a]pprove / [e]dit / [r]eject / [s]kip"

Ask = Callable[[str], str]
Say = Callable[[Any], None]


def _show(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _parse_edit(raw: str, current: Any) -> Any:
    """A typed value for an edited argument: JSON for lists, objects, numbers and booleans; text otherwise."""
    if isinstance(current, str) or current is None:
        return raw
    value = json.loads(raw)  # ValueError for the caller to explain
    if isinstance(current, dict | list) and not isinstance(value, type(current)):
        raise ValueError(f"expected a JSON {type(current).__name__}")
    return value


def edited_fields(approval: Any) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for the arguments a person changed when editing (the summary stays the original)."""
    decision = approval.decision or {}
    if decision.get("kind") != "edit":
        return []
    old, new = decision.get("original_args") or {}, decision.get("args") or {}
    return [(k, old.get(k), new.get(k)) for k in sorted({*old, *new}) if old.get(k) != new.get(k)]


def outcome_line(approval: Any) -> str:
    """What became of a decided proposal, in one line of rich markup."""
    status = getattr(approval.status, "value", approval.status)
    if status == "executed":
        label = (approval.result or {}).get("label")
        line = "[green]executed[/green]" + (f": {escape(label)}" if label else "")
        edits = edited_fields(approval)
        if edits:
            line += " [dim](your edits: " + ", ".join(
                f"{escape(k)} {escape(_show(a))} -> {escape(_show(b))}" for k, a, b in edits) + ")[/dim]"
        return line
    if status == "failed":
        return f"[red]failed[/red]: {escape(approval.error or 'unknown error')} Nothing was changed."
    if status == "rejected":
        text = (approval.decision or {}).get("text")
        return "[yellow]rejected[/yellow]: nothing was changed" + (f" (reason: {escape(text)})" if text else "")
    return f"[yellow]{escape(str(status))}[/yellow]"


class ChatSession:
    """One person's terminal conversation with the agent.

    `ask(prompt) -> str` reads a line (EOFError or KeyboardInterrupt ends the session);
    `say(renderable)` prints text or a rich renderable.
    """

    def __init__(self, *, runner: Any, actor: Any, thread: str, ask: Ask, say: Say) -> None:
        self.runner = runner
        self.actor = actor
        self.thread = thread
        self.ask = ask
        self.say = say
        self._went_on: list[Any] = []  # turns of conversations that went on after a decision

    @property
    def thread_id(self) -> str:
        from agents.runner import thread_key

        return thread_key("cli", self.actor.user_id, self.thread)

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        self.say(f"[dim]{HELP}[/dim]")
        self._greet_thread()
        while True:
            try:
                line = self.ask("[bold]you[/bold]").strip()
            except (EOFError, KeyboardInterrupt):
                self.say("")
                break
            if not line:
                continue
            if line in ("/quit", "/exit", "/q"):
                break
            if line == "/help":
                self.say(f"[dim]{HELP}[/dim]")
            elif line == "/new":
                self.thread = f"chat-{secrets.token_hex(4)}"
                self.say(f"[dim]new conversation '{self.thread}' (come back to it with --thread {self.thread})[/dim]")
            elif line in ("/waiting", "/inbox"):  # /inbox: the old name, kept
                self.waiting()
            elif line.startswith("/"):
                self.say(f"[yellow]unknown command {escape(line)}[/yellow]. {HELP}")
            else:
                self.send(line)
        self.say("[dim]bye[/dim]")

    def _greet_thread(self) -> None:
        history = [m for m in self.runner.history(self.thread_id) if m.type in ("human", "ai") and str(m.content)]
        if history:
            self.say(f"[dim]continuing conversation '{self.thread}' ({len(history)} messages so far; "
                     "/new starts another)[/dim]")
        pending = self.runner.pending(self.actor, self.thread_id)
        if pending:
            self.say(f"{len(pending)} proposal(s) in this conversation wait for your decision:")
            self.decide_all(pending)

    def send(self, text: str) -> None:
        try:
            turn = self.runner.send(actor=self.actor, thread_id=self.thread_id, text=text)
        except Exception as exc:  # noqa: BLE001  (say what broke; the conversation goes on)
            self.say(f"[red]error:[/red] {escape(str(exc) or type(exc).__name__)}")
            return
        self.show_turn(turn)

    def show_turn(self, turn: Any) -> None:
        for reply in turn.replies:
            self.say(f"[bold cyan]agent[/bold cyan] {escape(reply)}")
        if turn.proposals:
            self.decide_all(turn.proposals)

    # --- proposals -------------------------------------------------------------------------------

    def show_proposal(self, approval: Any, n: int, total: int) -> None:
        head = f"[bold]proposal {n}/{total}[/bold]" if total > 1 else "[bold]proposal[/bold]"
        self.say(f"{head}: {escape(approval.summary)}")
        if approval.diff:
            table = Table("field", "before", "", "after", box=None, pad_edge=False, show_header=True)
            for row in approval.diff:
                table.add_row(escape(str(row.get("field", ""))), escape(_show(row.get("before"))), "->",
                              f"[bold]{escape(_show(row.get('after')))}[/bold]")
            self.say(table)
        for ev in approval.evidence or []:
            if ev.get("quote"):
                self.say(f"  [dim]evidence ({escape(str(ev.get('source', 'source')))}):[/dim] "
                         f"\"{escape(str(ev['quote']))}\"")
        if approval.approver_role == "manager":
            self.say("  [yellow]this one needs a manager's approval[/yellow]")

    def decide_all(self, approvals: list[Any]) -> None:
        """Ask about each proposal; then show how every conversation that no longer waits went on."""
        self._went_on = went_on = []
        for n, approval in enumerate(approvals, 1):
            self.show_proposal(approval, n, len(approvals))
            self.decide_one(approval)
        for turn in went_on:
            if turn.thread_id != self.thread_id:
                self.say(f"[dim](in conversation {escape(turn.thread_id)})[/dim]")
            self.show_turn(turn)

    def decide_one(self, approval: Any) -> Any:
        """Ask until the proposal is decided or skipped; the decided approval, or None."""
        while True:
            try:
                choice = self.ask(escape(CHOICES)).strip().lower()
            except (EOFError, KeyboardInterrupt):
                return None
            if not choice:
                continue
            if choice in ("s", "skip"):
                self.say("[dim]skipped: it still waits for you (/waiting)[/dim]")
                return None
            if choice in ("a", "approve"):
                decided = self.apply(approval, "approve")
            elif choice in ("e", "edit"):
                args = self.edit_args(approval.args or {})
                if args is None:
                    continue
                decided = self.apply(approval, "edit", args=args)
            elif choice in ("r", "reject"):
                try:
                    reason = self.ask("reason (the agent is told; Enter for none)").strip()
                except (EOFError, KeyboardInterrupt):
                    return None
                decided = self.apply(approval, "reject", reason=reason or None)
            else:
                self.say("[yellow]answer a, e, r or s[/yellow]")
                continue
            if decided is not None:
                return decided

    def edit_args(self, args: dict[str, Any]) -> dict[str, Any] | None:
        self.say("[dim]for each field: type a new value, or press Enter to keep it "
                 "(lists and objects as JSON)[/dim]")
        changed: dict[str, Any] = {}
        for name, current in args.items():
            while True:
                try:
                    raw = self.ask(f"  {escape(name)} [dim]({escape(_show(current))})[/dim]")
                except (EOFError, KeyboardInterrupt):
                    return None
                if raw.strip() == "":
                    break
                try:
                    changed[name] = _parse_edit(raw.strip(), current)
                    break
                except ValueError as exc:
                    self.say(f"[red]not a valid value for {escape(name)}:[/red] {escape(str(exc))}")
        return changed

    def apply(self, approval: Any, kind: str, *, args: dict[str, Any] | None = None,
              reason: str | None = None) -> Any:
        """Decide (flows/decisions.py: the conversation goes on, as the user who asked, once none of
        its proposals waits; Slack cards are redrawn); the decided approval, or None (and the reason
        printed) when it was refused. How the conversation went on is shown by `decide_all`."""
        from flows.decisions import decide_proposal
        from store.errors import CRMError

        decided: list[Any] = []

        @contextmanager
        def said(done: Any) -> Iterator[None]:  # committed: say so before the agent goes on
            decided.append(done)
            self.say(outcome_line(done))
            yield

        try:
            went_on = decide_proposal(self.runner, actor=self.actor, approval_id=approval.id, kind=kind,  # type: ignore[arg-type]
                                      args=args, reason=reason, around_resume=said)
        except Exception as exc:  # noqa: BLE001  (decided: say what broke while the agent went on)
            if decided:
                self.say(f"[red]error while the agent went on:[/red] {escape(str(exc) or type(exc).__name__)}")
                return decided[0]
            if not isinstance(exc, CRMError):
                raise
            self.say(f"[red]not done:[/red] {escape(exc.message)}")
            if exc.status_code == 409:  # decided elsewhere meanwhile (web, Slack): nothing left to ask
                return approval
            return None
        if went_on.turn is not None:
            self._went_on.append(went_on.turn)
        return went_on.approval

    def waiting(self) -> None:
        """`/waiting`: the proposals waiting for this user's decision (the approval queue)."""
        from store.db import unit_of_work
        from store.services import approvals as approval_service

        with unit_of_work(self.runner.sessions) as session:
            rows = list(approval_service.pending(session, actor=self.actor))
        if not rows:
            self.say("nothing waits for your decision")
            return
        self.say(f"{len(rows)} proposal(s) wait for your decision:")
        self.decide_all(rows)


def _make_runner() -> Any:
    from agents.checkpoint import make_checkpointer
    from agents.models import load_brain
    from agents.runner import AgentRunner
    from store.db import get_sessionmaker

    return AgentRunner(sessions=get_sessionmaker(), checkpointer=make_checkpointer(), brain=load_brain())


def chat_cmd(user: Annotated[str, typer.Option("--user", help="Email of the user to chat as.")],
             thread: Annotated[str | None, typer.Option("--thread", help="Conversation name to continue "
                                                        "(default: 'default').")] = None,
             workspace: Annotated[str | None, typer.Option("--workspace", "-w",
                                                           help="Workspace slug (default: CRM_DEFAULT_WORKSPACE).")]
             = None) -> None:
    """Chat with the agent in the terminal; approve, edit or reject its proposals inline."""
    from agents.models import describe_model
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services.org import acting_as, get_workspace, user_by_email
    from store.settings import get_settings

    console = Console()
    slug = workspace or get_settings().default_workspace
    try:
        with unit_of_work() as session:
            ws = get_workspace(session, slug=slug)
            if ws is None:
                raise typer.BadParameter(f"no workspace '{slug}'; run `crm setup` first", param_hint="--workspace")
            actor = acting_as(session, workspace_id=ws.id, email=user, surface=Surface.cli)
            name = user_by_email(session, workspace_id=ws.id, email=user).name
    except CRMError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(exc.message)}")
        raise typer.Exit(1) from exc
    console.print(f"chatting as [bold]{escape(name)}[/bold] ({actor.role.value}) with the "
                  f"{escape(describe_model())}")

    def ask(prompt: str) -> str:
        return Prompt.ask(prompt, console=console)

    runner = _make_runner()
    stop = tell_slack(get_settings(), runner)
    try:
        ChatSession(runner=runner, actor=actor, thread=thread or "default", ask=ask, say=console.print).run()
    finally:
        stop()


def tell_slack(settings: Any, runner: Any) -> Callable[[], None]:
    """With Slack configured, a proposal decided in this terminal redraws its Slack cards (no live
    buttons left to click), and a Slack conversation hears how it went on; returns a function that stops."""
    if settings.slack_bot_token is None:  # the cards are redrawn with the Web API: the token is enough
        return lambda: None
    from channels.slack.bot import SlackBot
    from store import events

    bot = SlackBot(settings=settings, sessions=runner.sessions, runner=runner, threads=1)
    stop = events.on(events.APPROVAL_DECIDED, bot.on_decided_elsewhere)

    def close() -> None:
        stop()
        bot.close()

    return close
