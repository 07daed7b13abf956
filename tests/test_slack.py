"""Slack end to end: a real Bolt app behind the real FastAPI routes, requests signed the way
Slack signs them, and the real slack_sdk WebClient talking to a local fake of Slack's Web
API that records every call (tests/fake_slack.py). The agent is the offline model on the
test's database; jobs run on the real in-process queue.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from channels.slack.text import mrkdwn
from store import events
from store.models import Activity, Approval, AuditLog, CallRecording, Deal, Job, Task, Transcript, User
from store.models.enums import ApprovalStatus, JobStatus, Surface
from tests import factories as f
from tests.fake_slack import action_body, command_body, event_body, signed_headers, view_submission_body
from tests.test_calls import VTT

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
STORY = "call w/ Ines + Marco at Borealis, they want the pilot in Jan, 48k -> 62k if we add the telematics module, " \
        "send revised quote by thu"


_ts = itertools.count(1)


def next_ts() -> str:
    return f"1800000000.{next(_ts):06d}"


class Slack:
    """Slack as the test drives it: people write, click and submit; the bot answers through the fake."""

    def __init__(self, client: TestClient, fake: Any, bot: Any, ingestion: Any, crm: dict[str, Any]) -> None:
        self.client, self.fake, self.bot, self.ingestion, self.crm = client, fake, bot, ingestion, crm

    def post(self, path: str, body: str | bytes, content_type: str, *, timestamp: int | None = None,
             secret: str = SECRET, headers: dict[str, str] | None = None) -> Any:
        signed = signed_headers(secret, body, timestamp=timestamp, content_type=content_type)
        return self.client.post(path, content=body, headers={**signed, **(headers or {})})

    def event(self, event: dict[str, Any], *, event_id: str | None = None, settle: bool = True,
              headers: dict[str, str] | None = None, timestamp: int | None = None, secret: str = SECRET) -> Any:
        body, ctype = event_body(event, event_id=event_id or f"Ev{uuid.uuid4().hex[:10]}")
        r = self.post("/slack/events", body, ctype, headers=headers, timestamp=timestamp, secret=secret)
        if settle:
            self.settle()
        return r

    def dm(self, user: str, text: str, *, thread_ts: str | None = None, **extra: Any) -> str:
        ts = next_ts()
        event = {"type": "message", "channel": f"D{user}", "channel_type": "im", "user": user, "text": text,
                 "ts": ts, "team": "T0001", **({"thread_ts": thread_ts} if thread_ts else {}), **extra}
        r = self.event(event)
        assert r.status_code == 200, r.text
        return ts

    def click(self, user: str, action_id: str, approval_id: Any, card: dict[str, Any]) -> Any:
        payload = {"type": "block_actions", "user": {"id": user, "team_id": "T0001"}, "team": {"id": "T0001"},
                   "trigger_id": f"trig-{uuid.uuid4().hex[:6]}", "channel": {"id": card["channel"]},
                   "container": {"type": "message", "channel_id": card["channel"], "message_ts": card["ts"]},
                   "message": {"ts": card["ts"], "thread_ts": card.get("thread_ts")},
                   "actions": [{"action_id": action_id, "value": str(approval_id), "block_id": "decide",
                                "type": "button"}]}
        body, ctype = action_body(payload)
        r = self.post("/slack/interactive", body, ctype)
        assert r.status_code == 200, r.text
        self.settle()
        return r

    def settle(self) -> None:
        """Wait until the bot's threads and the job queue are both idle (they feed each other)."""
        for _ in range(6):
            self.bot.wait(timeout=60)
            self.ingestion.wait()
        self.bot.wait(timeout=60)

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.fake.messages.get(channel, []) if m.get("thread_ts") == thread_ts]

    def cards(self, channel: str, thread_ts: str | None = None) -> dict[str, dict[str, Any]]:
        """The approval cards posted in a channel (or one thread of it), by proposal id."""
        out = {}
        for m in self.fake.messages.get(channel, []):
            if thread_ts is not None and m.get("thread_ts") != thread_ts:
                continue
            for block in m.get("blocks") or []:
                if block.get("type") == "actions":
                    out[block["elements"][0]["value"]] = {**m, "channel": channel}
        return out


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or []) + (message.get("text") or "")


@pytest.fixture
def crm(session):  # type: ignore[no-untyped-def]
    w = f.world(session)
    co = f.create(session, w.priya, "company", name="Borealis Logistics", domain="borealis.example")
    ines = f.create(session, w.priya, "contact", first_name="Ines", last_name="Duarte", company_id=co.id,
                    email="ines@borealis.example")
    marco = f.create(session, w.priya, "contact", first_name="Marco", last_name="Bellini", company_id=co.id,
                     email="marco@borealis.example")
    deal = f.create(session, w.priya, "deal", name="Borealis – Fleet Telematics", amount=Decimal("48000"),
                    company_id=co.id, close_date=quarter_end(date.today()))
    session.commit()
    return {"w": w, "company": co, "ines": ines, "marco": marco, "deal": deal}


def quarter_end(day: date) -> date:
    """The last day of `day`'s quarter (the forecast the manager asks about counts the deal)."""
    next_quarter = (day.month - 1) // 3 * 3 + 4  # 13 means January next year
    return date(day.year + next_quarter // 13, (next_quarter - 1) % 12 + 1, 1) - timedelta(days=1)


@pytest.fixture
def slack(session_factory, crm, ingestion, fake_slack, monkeypatch):  # type: ignore[no-untyped-def]
    from channels.api.app import create_app
    from channels.slack.bot import SlackBot
    from store.settings import get_settings

    w = crm["w"]
    monkeypatch.setenv("CRM_SLACK_BOT_TOKEN", fake_slack.bot_token)
    monkeypatch.setenv("CRM_SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("CRM_SLACK_API_URL", fake_slack.api_url)
    monkeypatch.setenv("CRM_DEFAULT_WORKSPACE", w.ws.slug)
    get_settings.cache_clear()
    settings = get_settings()
    ingestion.queue.settings = settings
    for slack_id, user in (("UPRIYA", w.priya), ("UDANA", w.dana), ("URAJ", w.raj)):
        fake_slack.add_user(slack_id, user.email, name=user.name)
    # One thread: the test's database is one connection, so work must not overlap.
    bot = SlackBot(settings=settings, sessions=session_factory, runner=ingestion.runner, threads=1)
    stops = [events.on(events.JOB_FINISHED, bot.on_job_finished),
             events.on(events.APPROVAL_DECIDED, bot.on_decided_elsewhere)]
    app = create_app(session_factory, agent=ingestion.runner, slack_bot=bot)
    with TestClient(app) as client:
        yield Slack(client, fake_slack, bot, ingestion, crm)
    for stop in stops:
        stop()
    bot.close()


# --- conversations ------------------------------------------------------------------------------


def test_a_dm_gets_a_reply_in_its_thread(slack) -> None:
    ts = slack.dm("UPRIYA", "brief me on Borealis")
    replies = slack.thread("DUPRIYA", ts)
    assert replies, slack.fake.calls
    assert "Borealis" in replies[0]["text"] and "48,000" in "".join(m["text"] for m in replies)
    # The CRM user was found by the Slack profile's email, once, and remembered.
    assert [c.params["user"] for c in slack.fake.calls_to("users.info")] == ["UPRIYA"]
    slack.dm("UPRIYA", "my tasks")
    assert len(slack.fake.calls_to("users.info")) == 1


def test_every_request_is_acknowledged_before_the_agent_works(slack) -> None:
    release, started = threading.Event(), threading.Event()
    real = slack.bot._runner

    class SlowRunner:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def send(self, **kwargs: Any) -> Any:
            started.set()
            assert release.wait(30)
            return real.send(**kwargs)

    slack.bot._runner = SlowRunner()
    ts = next_ts()
    began = time.monotonic()
    r = slack.event({"type": "message", "channel": "DUPRIYA", "channel_type": "im", "user": "UPRIYA",
                     "text": "brief me on Borealis", "ts": ts, "team": "T0001"}, settle=False)
    assert r.status_code == 200 and time.monotonic() - began < 3
    assert started.wait(10) and not slack.thread("DUPRIYA", ts)  # the agent is still at work: no reply yet
    release.set()
    slack.settle()
    assert slack.thread("DUPRIYA", ts)


def test_a_retried_event_is_processed_once(slack, session) -> None:
    ts = next_ts()
    event = {"type": "message", "channel": "DUPRIYA", "channel_type": "im", "user": "UPRIYA",
             "text": "move Borealis to negotiation", "ts": ts, "team": "T0001"}
    assert slack.event(event, event_id="Ev0RETRY").status_code == 200
    retry = slack.event(event, event_id="Ev0RETRY", headers={"X-Slack-Retry-Num": "1",
                                                             "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200
    assert len(slack.cards("DUPRIYA", ts)) == 1
    assert session.scalar(select(func.count()).select_from(Approval).where(
        Approval.requested_by_id == slack.crm["w"].priya.id)) == 1


def test_the_bots_own_and_other_bots_messages_are_ignored(slack) -> None:
    for event in ({"type": "message", "channel": "DUPRIYA", "channel_type": "im", "user": "UBOT", "text": "hi",
                   "ts": next_ts(), "bot_id": "BBOT"},
                  {"type": "message", "subtype": "bot_message", "channel": "DUPRIYA", "channel_type": "im",
                   "bot_id": "BOTHER", "text": "move Borealis to negotiation", "ts": next_ts()},
                  {"type": "message", "subtype": "message_changed", "channel": "DUPRIYA", "channel_type": "im",
                   "message": {"user": "UPRIYA", "text": "edited"}, "ts": next_ts()}):
        assert slack.event(event).status_code == 200
    assert not slack.fake.calls_to("chat.postMessage")


def test_an_unknown_user_is_told_how_to_get_access_and_nothing_else_happens(slack, session) -> None:
    slack.fake.add_user("USTRANGER", "stranger@elsewhere.example", name="Stranger")
    ts = slack.dm("USTRANGER", "move Borealis to negotiation")
    (reply,) = slack.thread("DUSTRANGER", ts)
    assert "stranger@elsewhere.example" in reply["text"] and "crm user add" in reply["text"]
    assert session.scalar(select(func.count()).select_from(Approval)) == 0
    assert session.scalar(select(User.id).where(User.slack_user_id == "USTRANGER")) is None
    # Someone from another organisation (a Slack Connect channel) is refused even with a known email.
    slack.fake.add_user("UOUTSIDER", slack.crm["w"].eve.email, name="Eve?", team_id="TOTHER")
    ts = slack.dm("UOUTSIDER", "brief me on Borealis")
    assert "another organisation" in slack.thread("DUOUTSIDER", ts)[0]["text"]


def test_forged_and_stale_requests_are_refused(slack) -> None:
    event = {"type": "message", "channel": "DUPRIYA", "channel_type": "im", "user": "UPRIYA",
             "text": "brief me on Borealis", "ts": next_ts(), "team": "T0001"}
    assert slack.event(event, secret="not-the-secret").status_code == 401
    assert slack.event(event, timestamp=int(time.time()) - 6 * 60).status_code == 401
    body, ctype = event_body(event, event_id="EvUNSIGNED")
    assert slack.client.post("/slack/events", content=body, headers={"Content-Type": ctype}).status_code == 401
    assert not slack.fake.calls_to("chat.postMessage")
    # Four minutes old is still within Slack's window.
    assert slack.event(event, timestamp=int(time.time()) - 4 * 60).status_code == 200


@pytest.mark.parametrize(("headers", "prefix"), [
    ({"X-Slack-Request-Timestamp": "abc"}, b""),
    ({"X-Slack-Request-Timestamp": "1e9"}, b""),
    ({"X-Slack-Signature": "v0=\u00e9t\u00e9"}, b""),
    ({}, b"\xff\xfe"),
], ids=["timestamp-abc", "timestamp-1e9", "signature-not-ascii", "body-not-utf8"])
def test_requests_whose_signature_cannot_even_be_checked_get_401_not_500(slack, headers, prefix) -> None:
    """slack_sdk reads the timestamp with int(), the body as UTF-8 and the signature as ASCII, and
    raised (a 500) before it compared anything."""
    event = {"type": "message", "channel": "DUPRIYA", "channel_type": "im", "user": "UPRIYA",
             "text": "brief me on Borealis", "ts": next_ts(), "team": "T0001"}
    body, ctype = event_body(event, event_id="EvMALFORMED")
    good = signed_headers(SECRET, body, content_type=ctype)
    sent = {k: v.encode("utf-8") for k, v in {**good, **headers}.items()}
    r = slack.client.post("/slack/events", content=prefix + body.encode(), headers=sent)
    assert r.status_code == 401, r.text
    assert r.json() == {"error": "invalid request"}
    assert not slack.fake.calls_to("chat.postMessage")
    # The same request, well signed, still goes through.
    assert slack.client.post("/slack/events", content=body, headers=good).status_code == 200


def test_slack_routes_say_what_to_set_when_slack_is_not_configured(http) -> None:
    r = http.post("/slack/events", content=b"{}")
    assert r.status_code == 503 and "CRM_SLACK_SIGNING_SECRET" in r.json()["message"]


# --- approval cards -----------------------------------------------------------------------------


def test_a_write_becomes_a_card_and_approve_changes_the_store_and_the_card(slack, session) -> None:
    ts = slack.dm("UPRIYA", STORY)
    cards = slack.cards("DUPRIYA", ts)
    by_tool = {session.get(Approval, uuid.UUID(i)).tool: (i, c) for i, c in cards.items()}
    assert set(by_tool) == {"log_activity", "update_deal", "create_task"}
    deal_id, deal_card = by_tool["update_deal"]
    shown = text_of(deal_card)
    assert "48000" in shown.replace(",", "") and "62000" in shown.replace(",", "")  # the diff
    assert "62k" in shown  # the evidence: her own words
    assert [b["text"]["text"] for b in deal_card["blocks"][-1]["elements"]] == ["Approve", "Edit", "Reject"]

    slack.click("UPRIYA", "approval_approve", deal_id, deal_card)
    session.expire_all()
    assert session.get(Deal, slack.crm["deal"].id).amount == Decimal("62000")
    update = slack.fake.last("chat.update")
    assert update.params["ts"] == deal_card["ts"] and "Approved by Priya Raman" in json.dumps(update.params)
    assert all(b["type"] != "actions" for b in update.params["blocks"])  # no buttons on a decided card

    # Rejecting another: nothing is written and the card says who rejected it.
    task_id, task_card = by_tool["create_task"]
    slack.click("UPRIYA", "approval_reject", task_id, task_card)
    session.expire_all()
    assert session.get(Approval, uuid.UUID(task_id)).status == ApprovalStatus.rejected
    assert session.scalar(select(func.count()).select_from(Task)) == 0
    assert "Rejected by Priya Raman" in json.dumps(slack.fake.last("chat.update").params)


def test_a_double_click_acts_once(slack, session) -> None:
    ts = slack.dm("UPRIYA", "log a call with Ines at Borealis, they want the pilot in January")
    ((approval_id, card),) = slack.cards("DUPRIYA", ts).items()
    slack.click("UPRIYA", "approval_approve", approval_id, card)
    slack.click("UPRIYA", "approval_approve", approval_id, card)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Activity).where(
        Activity.subject == "Call with Ines Duarte")) == 1
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.approval_id == uuid.UUID(approval_id))) == 1
    ephemeral = slack.fake.last("chat.postEphemeral").params
    assert ephemeral["user"] == "UPRIYA" and "already decided" in ephemeral["text"]


def test_someone_elses_click_is_refused_with_an_ephemeral_message(slack, session) -> None:
    ts = slack.dm("UPRIYA", "move Borealis to negotiation")
    ((approval_id, card),) = slack.cards("DUPRIYA", ts).items()
    slack.click("URAJ", "approval_approve", approval_id, card)
    ephemeral = slack.fake.last("chat.postEphemeral").params
    assert ephemeral["user"] == "URAJ" and "not yours to approve" in ephemeral["text"].lower()
    session.expire_all()
    assert session.get(Approval, uuid.UUID(approval_id)).status == ApprovalStatus.pending
    assert not slack.fake.calls_to("chat.update")
    # Her manager may decide it.
    slack.click("UDANA", "approval_approve", approval_id, card)
    session.expire_all()
    assert session.get(Approval, uuid.UUID(approval_id)).status == ApprovalStatus.executed
    assert "Approved by Dana Manager" in json.dumps(slack.fake.last("chat.update").params)


# "by thu" is resolved against the clock: Monday 23 November 2026, 10:40 in Priya's zone (UTC),
# after the call in STORIES.md, makes it Thursday the 26th whatever day the suite runs.
@time_machine.travel(datetime(2026, 11, 23, 10, 40, tzinfo=UTC), tick=True)
def test_edit_opens_a_modal_with_the_fields_and_submitting_applies_the_change(slack, session) -> None:
    ts = slack.dm("UPRIYA", STORY)
    task_id, card = next((i, c) for i, c in slack.cards("DUPRIYA", ts).items()
                         if session.get(Approval, uuid.UUID(i)).tool == "create_task")
    slack.click("UPRIYA", "approval_edit", task_id, card)
    view = slack.fake.last("views.open").params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs["due_date"]["type"] == "datepicker" and inputs["due_date"]["initial_date"] == "2026-11-26"
    assert inputs["title"]["initial_value"] == "Send revised quote"
    assert "deal_id" not in inputs  # ids are not hand-edited

    def submit(due: str) -> Any:
        values = {"title": {"title": {"type": "plain_text_input", "value": "Send revised quote"}},
                  "due_date": {"due_date": {"type": "datepicker", "selected_date": due}}}
        payload = {"type": "view_submission", "user": {"id": "UPRIYA", "team_id": "T0001"},
                   "team": {"id": "T0001"},
                   "view": {**view, "id": "V1", "state": {"values": values}}}
        body, ctype = view_submission_body(payload)
        r = slack.post("/slack/interactive", body, ctype)
        slack.settle()
        return r

    bad = submit("not-a-date")
    assert bad.status_code == 200 and bad.json()["response_action"] == "errors"
    assert "due_date" in bad.json()["errors"]
    session.expire_all()
    assert session.get(Approval, uuid.UUID(task_id)).status == ApprovalStatus.pending

    ok = submit("2026-11-25")  # Wednesday instead of Thursday
    assert ok.status_code == 200 and not ok.text.strip()
    session.expire_all()
    task = session.scalar(select(Task).where(Task.title == "Send revised quote"))
    assert task is not None and task.due_at.date().isoformat() == "2026-11-25"  # Priya's zone is UTC
    assert "Edited and approved by Priya Raman" in json.dumps(slack.fake.last("chat.update").params)


def test_deciding_on_the_web_redraws_the_slack_card(slack, session) -> None:
    ts = slack.dm("UPRIYA", "move Borealis to negotiation")
    ((approval_id, card),) = slack.cards("DUPRIYA", ts).items()
    api = f.api(session, slack.client, slack.crm["w"].priya)
    r = api.post(f"/approvals/{approval_id}/decision", json={"kind": "approve"})
    assert r.status_code == 200, r.text
    slack.settle()
    update = slack.fake.last("chat.update").params
    assert update["ts"] == card["ts"] and "Approved by Priya Raman" in json.dumps(update)
    # The conversation goes on in the Slack thread, not only on the web page, and only once.
    assert r.json()["turn"]["replies"]
    assert slack.thread("DUPRIYA", ts)[-1]["text"] == mrkdwn(r.json()["turn"]["replies"][-1])
    said = [m["text"] for m in slack.thread("DUPRIYA", ts)]
    replies = r.json()["turn"]["replies"]
    assert [said.count(mrkdwn(reply)) for reply in replies] == [1] * len(replies)


def test_deciding_in_the_terminal_redraws_the_slack_card_and_the_conversation_goes_on_once(slack, session) -> None:
    from channels.cli_chat import ChatSession

    ts = slack.dm("UPRIYA", "move Borealis to negotiation")
    ((approval_id, card),) = slack.cards("DUPRIYA", ts).items()
    before = len(slack.thread("DUPRIYA", ts))
    said: list[str] = []
    script = iter(["/waiting", "a", "/quit"])
    ChatSession(runner=slack.ingestion.runner, actor=f.actor(slack.crm["w"].priya, Surface.cli), thread="t",
                ask=lambda _: next(script), say=lambda text: said.append(str(text))).run()
    slack.settle()
    session.expire_all()
    assert session.get(Approval, uuid.UUID(approval_id)).status == ApprovalStatus.executed
    # The card shows the decision: no live buttons left for a click that would only meet a conflict.
    update = slack.fake.last("chat.update").params
    assert update["ts"] == card["ts"] and "Approved by Priya Raman" in json.dumps(update)
    assert all(b["type"] != "actions" for b in update["blocks"])
    # The conversation went on once: its answer is shown in the terminal and posted in its Slack thread, once each.
    replies = [line.removeprefix("[bold cyan]agent[/bold cyan] ") for line in said
               if line.startswith("[bold cyan]agent[/bold cyan]")]
    posted = [m["text"] for m in slack.thread("DUPRIYA", ts)[before:]]
    assert replies and len(posted) == len(replies)


# --- channels and /crm ----------------------------------------------------------------------------


def test_a_mention_in_a_channel_is_answered_in_its_thread_and_replies_continue_it(slack) -> None:
    ts = next_ts()
    slack.event({"type": "app_mention", "channel": "CSALES", "user": "UDANA", "ts": ts, "team": "T0001",
                 "text": "<@UBOT> what's our forecast this quarter?"})
    (answer,) = slack.thread("CSALES", ts)
    assert "commit" in answer["text"].lower() and "48,000" in answer["text"]
    # The channel message event for the same mention is not answered twice.
    slack.event({"type": "message", "channel": "CSALES", "channel_type": "channel", "user": "UDANA", "ts": ts,
                 "text": "<@UBOT> what's our forecast this quarter?"})
    assert len(slack.thread("CSALES", ts)) == 1
    # A reply in that thread needs no @mention; a thread the bot is not in is left alone.
    slack.event({"type": "message", "channel": "CSALES", "channel_type": "channel", "user": "UDANA",
                 "ts": next_ts(), "thread_ts": ts, "text": "show the team pipeline"})
    assert len(slack.thread("CSALES", ts)) == 2
    other = next_ts()
    slack.event({"type": "message", "channel": "CSALES", "channel_type": "channel", "user": "UDANA",
                 "ts": next_ts(), "thread_ts": other, "text": "lunch?"})
    assert not slack.thread("CSALES", other)


def test_a_manager_asks_for_a_chart_and_gets_an_image_in_the_thread(slack) -> None:
    ts = next_ts()
    slack.event({"type": "app_mention", "channel": "CSALES", "user": "UDANA", "ts": ts, "team": "T0001",
                 "text": "<@UBOT> chart the team pipeline by stage"})
    (upload,) = slack.fake.uploads
    assert upload["channel"] == "CSALES" and upload["thread_ts"] == ts
    assert upload["data"].startswith(b"\x89PNG")
    assert any("48,000" in m["text"] or "48k" in m["text"].lower() for m in slack.thread("CSALES", ts))


def test_the_slash_command_answers_in_a_thread_or_in_a_dm_when_not_in_the_channel(slack) -> None:
    body, ctype = command_body(text="brief me on Borealis", user_id="UPRIYA", channel_id="CSALES",
                               response_url=slack.fake.response_url("r1"))
    r = slack.post("/slack/commands", body, ctype)
    assert r.status_code == 200
    slack.settle()
    header = next(m for m in slack.fake.messages["CSALES"] if not m.get("thread_ts"))
    assert "brief me on Borealis" in header["text"]
    assert "Borealis" in slack.thread("CSALES", header["ts"])[0]["text"]

    slack.fake.not_in_channel("CPRIVATE")
    body, ctype = command_body(text="my tasks", user_id="UPRIYA", channel_id="CPRIVATE",
                               response_url=slack.fake.response_url("r2"))
    assert slack.post("/slack/commands", body, ctype).status_code == 200
    slack.settle()
    assert "our DM" in slack.fake.last("response_url").params["text"]
    assert any("my tasks" in m["text"] for m in slack.fake.messages["DUPRIYA"])

    help_ = slack.post("/slack/commands", *command_body(text="", user_id="UPRIYA", channel_id="CSALES"))
    assert help_.status_code == 200 and "brief me" in help_.text, help_.text


# --- emails and calls --------------------------------------------------------------------------


def test_proposals_from_a_forwarded_email_reach_the_rep_as_a_dm(slack, session) -> None:
    from flows.deliver import deliver
    from tests.test_ingest_email import CISO_BODY, forward

    raw = forward(slack.crm["w"].priya.email, body=CISO_BODY)
    deliver(raw, recipients=["inbox@crm.example"], mail_from=slack.crm["w"].priya.email, provider="smtp",
            sessions=slack.ingestion.sessions, settings=slack.ingestion.queue.settings)
    slack.settle()
    assert slack.fake.last("conversations.open").params["users"] == "UPRIYA"
    headline = next(m for m in slack.fake.messages["DUPRIYA"] if not m.get("thread_ts"))
    assert "Security questionnaire" in headline["text"] and "proposed update" in headline["text"]
    cards = slack.cards("DUPRIYA", headline["ts"])
    tools = {session.get(Approval, uuid.UUID(i)).tool for i in cards}
    assert "create_task" in tools and "log_activity" in tools
    assert "From the email" in json.dumps(list(cards.values()))


def test_a_transcript_shared_with_the_bot_goes_through_the_call_pipeline_into_the_thread(slack, session) -> None:
    slack.fake.add_file("FVTT", "discovery-call.vtt", "text/vtt", VTT.encode(), user="UPRIYA")
    ts = slack.dm("UPRIYA", "", subtype="file_share", files=[{"id": "FVTT", "name": "discovery-call.vtt"}])
    job = session.scalar(select(Job).where(Job.kind == "process_call"))
    assert job is not None and job.status == JobStatus.succeeded, job and job.error
    assert job.payload["reply_to"]["slack"]["thread_ts"] == ts
    messages = slack.thread("DUPRIYA", ts)
    progress = messages[0]
    assert progress["text"].startswith("✅") and "discovery-call.vtt" in progress["text"]  # updated in place
    cards = slack.cards("DUPRIYA", ts)
    tools = {session.get(Approval, uuid.UUID(i)).tool for i in cards}
    assert {"log_activity", "update_deal", "create_task"} <= tools
    assert "the call at 0:06, Ines Duarte" in json.dumps(list(cards.values()))


def test_a_recording_shared_with_the_bot_starts_a_transcription_job(slack, session, tiny_whisper_dir, tmp_path,
                                                                    monkeypatch) -> None:
    from store.settings import get_settings
    from tests.test_calls import make_wav

    monkeypatch.setenv("CRM_WHISPER_MODEL", str(tiny_whisper_dir))
    get_settings.cache_clear()
    slack.ingestion.queue.settings = get_settings()
    wav = make_wav(tmp_path / "call.wav").read_bytes()
    slack.fake.add_file("FWAV", "discovery.wav", "audio/wav", wav, user="UPRIYA")
    ts = slack.dm("UPRIYA", "", subtype="file_share", files=[{"id": "FWAV"}])
    rec = session.scalar(select(CallRecording).where(CallRecording.filename == "discovery.wav"))
    assert rec is not None and rec.source == "slack"
    transcript = session.scalar(select(Transcript).where(Transcript.call_recording_id == rec.id))
    assert transcript is not None and transcript.engine.startswith("faster-whisper:")
    assert slack.thread("DUPRIYA", ts)[0]["text"].startswith("✅")


def test_a_broken_file_share_is_reported_in_the_thread(slack, session) -> None:
    slack.fake.add_file("FZIP", "notes.zip", "application/zip", b"PK\x03\x04", user="UPRIYA")
    ts = slack.dm("UPRIYA", "", subtype="file_share", files=[{"id": "FZIP"}])
    (message,) = slack.thread("DUPRIYA", ts)
    assert message["text"].startswith("❌") and "notes.zip" in message["text"] and ".vtt" in message["text"]
    assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_file_shares_get_the_same_caps_as_every_door(slack, session, monkeypatch) -> None:
    """An oversize transcript is refused from its size in files.info, before it is downloaded; audio
    that does not decode is refused after, and not kept."""
    from store.settings import get_settings
    from tests.test_calls import RANDOM_MP3
    from tests.test_transcribe import many_cues

    monkeypatch.setenv("CRM_CALL_MAX_TRANSCRIPT_BYTES", "2048")
    get_settings.cache_clear()
    slack.bot.settings = slack.ingestion.queue.settings = get_settings()
    slack.fake.add_file("FBIG", "all-hands.vtt", "text/vtt", many_cues(400), user="UPRIYA")
    ts = slack.dm("UPRIYA", "", subtype="file_share", files=[{"id": "FBIG"}])
    (message,) = slack.thread("DUPRIYA", ts)
    assert message["text"] == ("❌ all-hands.vtt is 22 KiB; a transcript may be at most 2 KiB "
                               "(CRM_CALL_MAX_TRANSCRIPT_BYTES): split it into parts.")
    assert not slack.fake.calls_to("file_download")
    slack.fake.add_file("FMP3", "call.mp3", "audio/mpeg", RANDOM_MP3, user="UPRIYA")
    ts = slack.dm("UPRIYA", "", subtype="file_share", files=[{"id": "FMP3"}])
    assert slack.thread("DUPRIYA", ts)[-1]["text"].startswith("❌ call.mp3: not audio FFmpeg can decode")
    assert session.scalar(select(func.count()).select_from(CallRecording)) == 0
    assert session.scalar(select(func.count()).select_from(Job)) == 0


# --- the app manifest ---------------------------------------------------------------------------

# The scope each Slack Web API method the bot calls needs (api.slack.com/methods).
SCOPES = {"chat.postMessage": "chat:write", "chat.update": "chat:write", "chat.postEphemeral": "chat:write",
          "conversations.open": "im:write", "users.info": "users:read", "users.lookupByEmail": "users:read.email",
          "files.info": "files:read", "file_download": "files:read", "files.getUploadURLExternal": "files:write",
          "files.completeUploadExternal": "files:write", "views.open": None, "auth.test": None, "upload_url": None,
          "response_url": None}


def test_the_manifest_grants_every_scope_and_event_the_bot_uses(slack, session) -> None:
    from channels.cli_slack import manifest
    from flows.deliver import deliver
    from tests.test_ingest_email import CISO_BODY, forward

    ts = slack.dm("UPRIYA", STORY)
    cards = slack.cards("DUPRIYA", ts)
    first, card = next(iter(cards.items()))
    slack.click("URAJ", "approval_approve", first, card)  # refused: ephemeral
    slack.click("UPRIYA", "approval_edit", first, card)
    slack.click("UPRIYA", "approval_approve", first, card)
    slack.event({"type": "app_mention", "channel": "CSALES", "user": "UDANA", "ts": next_ts(), "team": "T0001",
                 "text": "<@UBOT> chart the team pipeline by stage"})
    slack.fake.add_file("FVTT", "call.vtt", "text/vtt", VTT.encode(), user="UPRIYA")
    slack.dm("UPRIYA", "", subtype="file_share", files=[{"id": "FVTT"}])
    deliver(forward(slack.crm["w"].priya.email, body=CISO_BODY), recipients=["inbox@crm.example"],
            mail_from=slack.crm["w"].priya.email, provider="smtp", sessions=slack.ingestion.sessions,
            settings=slack.ingestion.queue.settings)
    slack.settle()
    used = {c.method for c in slack.fake.calls}
    assert used - set(SCOPES) == set(), "add the new method's scope to SCOPES (and to the manifest)"
    granted = set(manifest(None)["oauth_config"]["scopes"]["bot"])
    assert {SCOPES[m] for m in used if SCOPES[m]} <= granted
    assert {"chat.postEphemeral", "views.open", "files.completeUploadExternal", "conversations.open",
            "file_download"} <= used
    events = set(manifest(None)["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "message.channels"} <= events and "commands" in granted


def test_the_manifest_names_this_servers_urls_or_none_in_socket_mode() -> None:
    from typer.testing import CliRunner

    from crm import app

    out = CliRunner().invoke(app, ["slack", "--manifest", "--url", "https://crm.acme.dev/"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["settings"]["event_subscriptions"]["request_url"] == "https://crm.acme.dev/slack/events"
    assert data["settings"]["interactivity"]["request_url"] == "https://crm.acme.dev/slack/interactive"
    assert data["features"]["slash_commands"][0]["url"] == "https://crm.acme.dev/slack/commands"
    socket = json.loads(CliRunner().invoke(app, ["slack", "--manifest", "--socket"]).output)
    assert socket["settings"]["socket_mode_enabled"] is True and "request_url" not in json.dumps(socket)


def test_a_discount_that_needs_a_manager_reaches_her_as_a_dm_and_she_approves_it_there(slack, session) -> None:
    from agents import gate
    from store.models import Quote
    from store.models.enums import Surface
    from tools import ToolContext

    w, deal = slack.crm["w"], slack.crm["deal"]
    ctx = ToolContext(actor=f.actor(w.priya, Surface.slack), session=session, thread_id="slack:quote-thread")
    proposed = gate.propose(ctx, tool_name="create_quote", tool_call_id="q1", evidence=[], raw_args={
        "deal_id": str(deal.id), "discount_percent": "30",
        "line_items": [{"description": "Fleet Telematics", "quantity": "1", "unit_price": "62000"}]})
    session.commit()
    assert proposed.pending and proposed.approval.approver_role == "manager"
    slack.bot.post_cards("DUPRIYA", "1800000000.999999", [proposed.approval.id])
    slack.settle()
    (rep_card,) = slack.cards("DUPRIYA").values()
    (manager_card,) = slack.cards("DUDANA").values()  # Dana, Priya's manager, got her own copy
    assert "manager" in text_of(rep_card).lower() and "30" in text_of(manager_card)

    slack.click("UPRIYA", "approval_approve", proposed.approval.id, rep_card)  # not hers to approve
    assert "not yours to approve" in slack.fake.last("chat.postEphemeral").params["text"].lower()
    slack.click("UDANA", "approval_approve", proposed.approval.id, manager_card)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Quote).where(Quote.deal_id == deal.id)) == 1
    assert session.scalar(select(Quote.status).where(Quote.deal_id == deal.id)) == "approved"  # ready to send
    updated = {c.params["channel"] for c in slack.fake.calls_to("chat.update")
               if "Approved by Dana Manager" in json.dumps(c.params)}
    assert updated == {"DUPRIYA", "DUDANA"}  # both copies show who decided


def test_a_submitted_quote_waits_in_the_managers_slack_approval_queue_and_she_approves_it_there(slack, session) -> None:
    w, deal = slack.crm["w"], slack.crm["deal"]
    product = f.create(session, w.admin, "product", name="Fleet Telematics", unit_price=Decimal("62000"))
    session.commit()
    priya = f.api(session, slack.client, w.priya)
    quote = priya.post("/quotes", json={"deal_id": str(deal.id), "discount_percent": "30",
                                        "line_items": [{"product_id": str(product.id)}]}).json()
    assert priya.post(f"/quotes/{quote['id']}/transitions", json={"to": "approved"}).status_code == 403
    assert priya.post(f"/quotes/{quote['id']}/transitions", json={"to": "pending_approval"}).status_code == 200

    slack.dm("UPRIYA", "waiting")
    assert "Nothing waits for your decision" in slack.fake.messages["DUPRIYA"][-1]["text"]
    slack.dm("UDANA", "waiting")
    ((approval_id, card),) = slack.cards("DUDANA").items()  # one card, though she is the manager asked
    assert quote["number"] in text_of(card) and "30% off list" in text_of(card)
    slack.click("UDANA", "approval_approve", approval_id, card)
    assert priya.get(f"/quotes/{quote['id']}").json()["status"] == "approved"
    assert any("Approved by Dana Manager" in json.dumps(c.params) for c in slack.fake.calls_to("chat.update"))


def _priyas_proposal(slack, session) -> Any:  # type: ignore[no-untyped-def]
    """A proposal of Priya's whose evidence is a private email: Dana (her manager) may decide it, Raj may not."""
    from agents import gate
    from store.models.enums import Surface
    from tools import ToolContext

    w, deal = slack.crm["w"], slack.crm["deal"]
    ctx = ToolContext(actor=f.actor(w.priya, Surface.slack), session=session, thread_id="slack:private")
    proposed = gate.propose(ctx, tool_name="update_deal", tool_call_id="p1",
                            raw_args={"deal_id": str(deal.id), "amount": "30000"},
                            evidence=[{"source": "email", "quote": "budget cut, keep it quiet"}])
    session.commit()
    assert proposed.pending
    return proposed.approval


def test_waiting_asked_in_a_channel_comes_as_a_dm_and_a_teammate_gets_nothing(slack, session) -> None:
    approval = _priyas_proposal(slack, session)
    for user in ("UDANA", "URAJ"):
        slack.event({"type": "app_mention", "channel": "CSALES", "user": user, "ts": next_ts(), "team": "T0001",
                     "text": "<@UBOT> waiting"})
    assert slack.cards("CSALES") == {}  # nothing of Priya's is shown to the whole channel
    assert "keep it quiet" not in json.dumps(slack.fake.messages.get("CSALES", []))
    assert list(slack.cards("DUDANA")) == [str(approval.id)]
    assert slack.cards("DURAJ") == {} and "Nothing waits" in slack.fake.messages["DURAJ"][-1]["text"]
    told = [c.params for c in slack.fake.calls_to("chat.postEphemeral")]
    assert {t["user"] for t in told if "our DM" in t["text"]} == {"UDANA", "URAJ"}


def test_edit_tells_someone_who_may_not_decide_nothing_about_the_proposal(slack, session) -> None:
    from agents import gate

    approval = _priyas_proposal(slack, session)
    slack.bot.post_cards("DUPRIYA", None, [approval.id])
    slack.settle()
    (card,) = slack.cards("DUPRIYA").values()
    gate.decide(session, actor=f.actor(slack.crm["w"].priya), approval_id=approval.id, kind="approve")
    session.commit()
    slack.click("URAJ", "approval_edit", approval.id, card)
    said = slack.fake.last("chat.postEphemeral").params["text"].lower()
    assert "not yours to approve" in said and "executed" not in said and "already decided" not in said
