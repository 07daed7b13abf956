"""The chat page in a real browser: sign in, chat, approve and edit proposals, the approval queue ("Waiting for you").

The real app runs under uvicorn on a free localhost port, on a fresh database with the
demo data, with the offline model; Debian's Chromium is driven by PyPI `playwright`
(never `playwright install`: it downloads a browser and fails offline).
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PRIYA = "priya@demo.agentcrm.dev"
BOREALIS = "Borealis – Fleet Telematics"
TIMEOUT_MS = 20_000


@dataclass
class Server:
    url: str
    tokens: dict[str, str]


@pytest.fixture
def server(cli_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for name in ("CRM_LLM_MODEL", "CRM_LLM_BASE_URL"):  # the offline model, whatever .env says
        monkeypatch.setenv(name, "")
    from store.settings import get_settings

    get_settings.cache_clear()
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`)")
    pytest.importorskip("playwright.sync_api", reason="PyPI playwright is missing: `pip install playwright`")
    import uvicorn
    from langgraph.checkpoint.sqlite import SqliteSaver

    from agents.models import load_brain
    from agents.runner import AgentRunner
    from channels.api.app import create_app
    from crm import app as cli
    from store.db import get_sessionmaker

    result = CliRunner().invoke(cli, ["setup"])
    assert result.exit_code == 0, result.output
    tokens = json.loads((cli_env / "demo-tokens.json").read_text())
    saver = SqliteSaver(sqlite3.connect(str(tmp_path / "checkpoints.db"), check_same_thread=False))
    saver.setup()
    agent = AgentRunner(sessions=get_sessionmaker(), checkpointer=saver, brain=load_brain())
    app = create_app(agent=agent)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # a free port, held until uvicorn takes the socket over
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", tokens)
    uv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def page(server: Server, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 860})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        yield page
        page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def idle(page: Any) -> None:
    """Wait until the page has no request in flight (SQLite takes one writer at a time, and every
    request stamps its token's last use: see the report on concurrent requests)."""
    page.wait_for_selector('body[data-requests="0"]', state="attached")


def sign_in(page: Any, token: str) -> None:
    from playwright.sync_api import expect

    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("signed in as Priya Raman (rep)")).to_be_visible()
    idle(page)


def say(page: Any, text: str) -> None:
    idle(page)
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def chat_card(page: Any, summary: str) -> Any:
    return page.locator("#messages").get_by_role("article", name=re.compile("Proposal: " + re.escape(summary)))


def decide(server: Server, token: str, approval_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(f"{server.url}/api/v1/approvals/{approval_id}/decision", method="POST",
                                     data=json.dumps(body).encode(), headers={
                                         "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def borealis_stage() -> str:
    from store.db import unit_of_work
    from store.models import Deal, Stage

    with unit_of_work() as session:
        return session.scalar(select(Stage.name).join(Deal, Deal.stage_id == Stage.id).where(Deal.name == BOREALIS))


def test_sign_in_chat_approve_and_the_approval_queue(server: Server, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # A wrong token is refused in plain words, and nothing else shows.
    page.get_by_label("API token").fill("crm_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="token was not accepted")).to_be_visible()
    expect(page.get_by_role("heading", name="Chat")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "signin.png"))

    sign_in(page, server.tokens[PRIYA])
    waiting = page.get_by_role("region", name="Waiting for you")
    expect(waiting.get_by_text("Nothing waits for your decision.")).to_be_visible()

    assert borealis_stage() == "Negotiation"
    say(page, "move Borealis to proposal")
    card = chat_card(page, f"Update deal {BOREALIS}")
    expect(card).to_be_visible()
    expect(card.get_by_role("status")).to_have_text("Waiting for approval")
    expect(card.get_by_role("row", name=re.compile("stage"))).to_contain_text("Negotiation")
    expect(card.get_by_role("row", name=re.compile("stage"))).to_contain_text("Proposal")
    expect(card.locator("blockquote")).to_contain_text("move Borealis to proposal")
    expect(page.locator("#waiting-count")).to_have_text("1")
    expect(waiting.get_by_role("article")).to_have_count(1)
    assert borealis_stage() == "Negotiation"  # proposed, not written
    page.screenshot(path=str(tmp_path / "proposal.png"))

    card.get_by_role("button", name="Approve").click()
    expect(card.get_by_role("status")).to_have_text("Executed")
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#waiting-count")).to_have_text("0")
    expect(waiting.get_by_text("Nothing waits for your decision.")).to_be_visible()
    expect(page.locator("#messages .msg.assistant").last).to_contain_text("Done")  # the resumed turn
    expect(page.get_by_text("Waiting for your decision")).to_have_count(0)
    assert borealis_stage() == "Proposal"
    page.screenshot(path=str(tmp_path / "approved.png"))

    # A reload keeps the conversation (thread id and token in localStorage, history from the API).
    page.reload()
    expect(page.get_by_text("signed in as Priya Raman (rep)")).to_be_visible()
    expect(page.locator("#messages .msg.user")).to_contain_text(["move Borealis to proposal"])
    page.set_viewport_size({"width": 420, "height": 900})  # a phone: the approval queue goes under the chat
    page.screenshot(path=str(tmp_path / "narrow.png"), full_page=True)


def test_edit_a_proposal_then_decide_from_the_approval_queue(server: Server, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from store.db import unit_of_work
    from store.models import Approval, Task

    sign_in(page, server.tokens[PRIYA])
    page.get_by_role("button", name="New conversation").click()
    say(page, "remind me to send the revised quote to Borealis on thursday")
    card = chat_card(page, "Create task")
    expect(card).to_be_visible()

    card.get_by_role("button", name="Edit").click()
    due = card.get_by_label("due_date", exact=True)
    expect(due).not_to_have_value("")
    due.fill("next tuesday-ish")  # refused by the server: the card says why and stays open
    card.get_by_role("button", name="Save and approve").click()
    expect(card.get_by_role("alert")).to_contain_text("The edit was not accepted")
    due.fill("2026-12-02")
    page.screenshot(path=str(tmp_path / "edit.png"))
    card.get_by_role("button", name="Save and approve").click()
    expect(card.get_by_role("status")).to_have_text("Executed")
    expect(card).to_contain_text("2026-12-02")

    with unit_of_work() as session:
        task = session.scalar(select(Task).where(Task.title.ilike("%revised quote%")).order_by(Task.created_at.desc()))
        approval = session.scalar(select(Approval).where(Approval.tool == "create_task"))
    when = task.due_at if task.due_at.tzinfo else task.due_at.replace(tzinfo=UTC)
    assert when.astimezone(ZoneInfo("America/Los_Angeles")).date() == date(2026, 12, 2)
    assert approval.decision["kind"] == "edit"

    # A proposal decided from the approval queue: rejected with a reason typed in the card.
    say(page, "move Borealis to proposal")
    expect(chat_card(page, f"Update deal {BOREALIS}")).to_be_visible()
    waiting = page.get_by_role("region", name="Waiting for you")
    waiting_card = waiting.get_by_role("article", name=re.compile("Update deal"))
    waiting_card.get_by_role("button", name="Reject").click()
    waiting_card.get_by_label("Reason for rejecting").fill("wrong deal")
    waiting_card.get_by_role("button", name="Confirm reject").click()
    expect(chat_card(page, f"Update deal {BOREALIS}").get_by_role("status")).to_have_text("Rejected")
    expect(page.locator("#waiting-count")).to_have_text("0")
    expect(page.locator("#messages .msg.assistant").last).to_contain_text("wrong deal")
    assert borealis_stage() == "Negotiation"
    page.screenshot(path=str(tmp_path / "rejected.png"), full_page=True)

    # Decided elsewhere (another tab, Slack) meanwhile: the stale card says so instead of failing silently.
    say(page, "log a call with Ines at Borealis about the pilot")
    card = chat_card(page, "Log call")
    expect(card).to_be_visible()
    with unit_of_work() as session:
        pending = session.scalar(select(Approval).where(Approval.tool == "log_activity"))
    idle(page)
    decide(server, server.tokens[PRIYA], str(pending.id), {"kind": "reject", "reason": "logged it by hand"})
    card.get_by_role("button", name="Approve").click()
    expect(card.get_by_role("alert")).to_contain_text("Already handled")
    expect(card.get_by_role("status")).to_have_text("Rejected")  # the state it really is in
    expect(card).to_contain_text("logged it by hand")
    expect(page.locator("#waiting-count")).to_have_text("0")


def test_a_chart_the_agent_draws_is_shown_in_the_chat(server: Server, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    sign_in(page, server.tokens[PRIYA])
    say(page, "chart my pipeline by stage")
    figure = page.locator("#messages figure.chart")
    expect(figure.get_by_role("img", name=re.compile("Open pipeline by stage"))).to_be_visible()
    assert figure.locator("img").evaluate("img => img.naturalWidth") == 900  # the PNG itself, not a broken icon
    page.screenshot(path=str(tmp_path / "chart-in-chat.png"))
    # The image needs the token like every API call: without it, 401.
    chart = page.evaluate("() => [...performance.getEntriesByType('resource')].map(e => e.name)"
                          ".find(n => n.includes('/api/v1/charts/'))")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(chart, timeout=10)
    assert refused.value.code == 401
