"""`crm chat`: the agent in the terminal, against a fresh demo database, with the offline model.

Each test commits for real (the CLI's own units of work) into a fresh database from the
`cli_env` fixture; conversations are checkpointed beside it, so a second `crm chat`
continues where the first stopped.
"""

from __future__ import annotations

from datetime import UTC, date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from crm import app
from store.db import unit_of_work
from store.models import Activity, Approval, AuditLog, Deal, Stage, Task, User
from store.models.enums import ApprovalStatus

PRIYA = "priya@demo.agentcrm.dev"
BOREALIS = "Borealis – Fleet Telematics"


@pytest.fixture
def demo(cli_env, monkeypatch):  # type: ignore[no-untyped-def]
    for name in ("CRM_LLM_MODEL", "CRM_LLM_BASE_URL"):  # the offline model, whatever .env says
        monkeypatch.setenv(name, "")
    from store.settings import get_settings

    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["setup"])
    assert result.exit_code == 0, result.output
    return cli_env


def chat(*lines: str, thread: str = "t1") -> str:
    result = CliRunner().invoke(app, ["chat", "--user", PRIYA, "--thread", thread], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def borealis_stage() -> str:
    with unit_of_work() as session:
        return session.scalar(select(Stage.name).join(Deal, Deal.stage_id == Stage.id).where(Deal.name == BOREALIS))


def approvals() -> list[Approval]:
    """The proposals made in conversations (the demo's submitted quote waits in Dana's approval queue too)."""
    with unit_of_work() as session:
        return list(session.scalars(select(Approval).where(Approval.thread_id.is_not(None))
                                    .order_by(Approval.created_at)))


def test_approving_at_the_prompt_writes_once(demo) -> None:  # type: ignore[no-untyped-def]
    assert borealis_stage() == "Negotiation"
    out = chat("move Borealis to proposal", "a", "/quit")

    assert "offline model" in out  # which model answers is said at start
    assert f"Update deal {BOREALIS}" in out and "Negotiation" in out and "Proposal" in out  # the diff
    assert "executed" in out
    assert borealis_stage() == "Proposal"
    [approval] = approvals()
    assert approval.status == ApprovalStatus.executed and approval.surface.value == "cli"
    with unit_of_work() as session:
        priya = session.scalar(select(User).where(User.email == PRIYA))
        assert approval.decided_by_id == priya.id
        entries = session.scalars(select(AuditLog).where(AuditLog.approval_id == approval.id)).all()
    assert [e.actor_id for e in entries] == [priya.id]


def test_rejecting_at_the_prompt_changes_nothing_and_tells_the_agent(demo) -> None:  # type: ignore[no-untyped-def]
    out = chat("move Borealis to proposal", "r", "wrong deal, that is the renewal", "/quit")

    assert "rejected" in out and "wrong deal, that is the renewal" in out
    assert borealis_stage() == "Negotiation"
    [approval] = approvals()
    assert approval.status == ApprovalStatus.rejected
    assert approval.decision == {"kind": "reject", "text": "wrong deal, that is the renewal"}


def test_a_skipped_proposal_waits_for_the_next_session(demo) -> None:  # type: ignore[no-untyped-def]
    out = chat("log a call with Ines at Borealis about the pilot", "s", "hello again", "/quit")
    assert "skipped" in out
    assert "wait for a decision" in out  # the agent will not go on while the proposal waits
    with unit_of_work() as session:
        assert not session.scalars(select(Activity).where(Activity.subject.ilike("%about the pilot%"))).all()

    out = chat("a", "/quit")  # same thread, a new process: the proposal is asked about again
    assert "1 proposal(s) in this conversation wait for your decision" in out and "executed" in out
    with unit_of_work() as session:
        [call] = session.scalars(select(Activity).where(Activity.subject.ilike("%about the pilot%"))).all()
    assert call.type.value == "call"


def test_editing_at_the_prompt_changes_only_what_was_typed(demo) -> None:  # type: ignore[no-untyped-def]
    """Driven through ChatSession's injectable input and output."""
    from rich.console import Console

    from channels.cli_chat import ChatSession, _make_runner
    from store.models.enums import Surface
    from store.services.org import actor_for_user, get_workspace, user_by_email

    with unit_of_work() as session:
        ws = get_workspace(session, slug="default")
        actor = actor_for_user(user_by_email(session, workspace_id=ws.id, email=PRIYA), Surface.cli)
    script = iter(["remind me to send the revised quote to Borealis on thursday", "e", "/quit"])
    prompts: list[str] = []
    console = Console(record=True, width=140)

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        if prompt.strip().startswith("due_date"):
            return "2026-12-02"
        if prompt.startswith("  "):  # any other field: keep it
            return ""
        return next(script)

    ChatSession(runner=_make_runner(), actor=actor, thread="edit", ask=ask, say=console.print).run()
    out = console.export_text()

    assert any(p.strip().startswith("title") for p in prompts)  # every argument was offered
    assert "executed" in out and "due_date" in out and "2026-12-02" in out
    with unit_of_work() as session:
        task = session.scalar(select(Task).where(Task.title.ilike("%revised quote%")).order_by(Task.created_at.desc()))
    due = task.due_at if task.due_at.tzinfo else task.due_at.replace(tzinfo=UTC)
    assert due.astimezone(ZoneInfo("America/Los_Angeles")).date() == date(2026, 12, 2)
    [approval] = approvals()
    assert approval.decision["kind"] == "edit" and approval.decision["args"]["due_date"] == "2026-12-02"
    assert approval.args["due_date"] != "2026-12-02"  # the proposal keeps what the agent proposed


def test_unknown_user_is_a_clear_error(demo) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["chat", "--user", "nobody@example.com"], input="/quit\n")
    assert result.exit_code == 1
    assert "no user with email nobody@example.com" in result.output


def test_a_proposal_decided_in_crm_chat_redraws_its_slack_card(demo, fake_slack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 16: decided in the terminal, a proposal's Slack card no longer offers live buttons."""
    import json

    from slack_sdk import WebClient

    from store.settings import get_settings

    chat("move Borealis to proposal", "s", "/quit")  # it waits
    [approval] = approvals()
    # The card Slack shows for it, where the bot posted it.
    card = WebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url).chat_postMessage(
        channel="DPRIYA", text=f"Proposal: {approval.summary}", blocks=[{"type": "actions", "elements": []}])
    with unit_of_work() as session:
        row = session.get(Approval, approval.id)
        row.source_ref = {**row.source_ref, "slack_cards": [{"channel": "DPRIYA", "ts": card["ts"]}]}
    monkeypatch.setenv("CRM_SLACK_BOT_TOKEN", fake_slack.bot_token)
    monkeypatch.setenv("CRM_SLACK_API_URL", fake_slack.api_url)
    get_settings.cache_clear()

    out = chat("/inbox", "a", "/quit")

    assert "executed" in out and borealis_stage() == "Proposal"
    update = fake_slack.last("chat.update").params
    assert update["channel"] == "DPRIYA" and update["ts"] == card["ts"]
    shown = json.dumps(update)
    assert "Approved by Priya" in shown and '"actions"' not in shown.replace(" ", "")
