"""What the Slack bot does; `channels/slack/app.py` wires Slack's requests to it.

Every Slack request is acknowledged at once (Slack gives 3 seconds) and the work runs
here, on the bot's own threads: identify the user, run the agent as them, post the
replies in the thread, one approval card per proposal, charts as images. A Slack thread
is one conversation: its LangGraph thread id names the user, the channel and the thread.

Units of work are short and never span a Slack API call or a model call (SQLite has one
write lock); the store stays the truth, and a card is always redrawn from the stored proposal.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy.orm import Session, sessionmaker

from agents.runner import AgentRunner, Turn, thread_key
from channels.slack import cards
from channels.slack.identity import Refusal, identify, slack_id_for
from channels.slack.text import chunks, escape, mrkdwn, sentence
from flows.decisions import Decided, decide_proposal
from store.db import unit_of_work
from store.errors import Conflict, CRMError, NotFound, PermissionDenied, ValidationFailed
from store.models import Approval, User
from store.models.enums import ApprovalStatus, Surface
from store.services import approvals as approval_service
from store.services import org
from store.services.approvals import approval_by_id
from store.services.inbox import seen_token
from store.services.org import actor_for_user, get_workspace
from store.settings import Settings

log = logging.getLogger("crm.slack")

HELP = ("Ask me anything about your accounts, or tell me what happened: _\"call w/ Ines at Borealis, "
        "they want the pilot in Jan, send revised quote by thu\"_. I propose the updates and you approve them "
        "here. Try _\"brief me on Borealis\"_, _\"my tasks\"_, _\"forecast this quarter\"_, _\"chart the team "
        "pipeline by stage\"_, or drop a call recording in our DM. _\"waiting\"_ shows what waits for your approval.")


class SlackBot:
    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], client: WebClient | None = None,
                 runner: AgentRunner | None = None, threads: int = 4) -> None:
        if settings.slack_bot_token is None:
            raise CRMError("Slack is not configured: set CRM_SLACK_BOT_TOKEN (and CRM_SLACK_SIGNING_SECRET)")
        self.settings, self.sessions = settings, sessions
        self.client = client or WebClient(token=settings.slack_bot_token.get_secret_value(),
                                          base_url=settings.slack_api_url)
        # Slack answers 429 with Retry-After when a workspace posts fast (a manager's DM storm of cards).
        self.client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="crm-slack")
        self._futures: set[Future[Any]] = set()
        self._locks = [threading.Lock() for _ in range(64)]
        self._lock = threading.Lock()
        self._auth: dict[str, Any] | None = None

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def runner(self) -> AgentRunner:
        if self._runner is None:
            from flows.runtime import agent_runner

            return agent_runner(self.sessions)
        return self._runner

    def auth(self) -> dict[str, Any]:
        if self._auth is None:
            self._auth = dict(self.client.auth_test().data)  # type: ignore[arg-type]
        return self._auth

    @property
    def team_id(self) -> str:
        return self.settings.slack_team_id or str(self.auth()["team_id"])

    @property
    def bot_user_id(self) -> str:
        return str(self.auth()["user_id"])

    def submit(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Run after the acknowledgement; a failure is logged and told to the user where possible."""
        future = self._pool.submit(self._guard, fn, *args, **kwargs)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(lambda f: self._futures.discard(f))

    def submit_event(self, event_id: str | None, fn: Callable[..., None], **kwargs: Any) -> None:
        """Like `submit`, once per Slack event id (a retry of a delivered event does nothing)."""
        def once(**kw: Any) -> None:
            if event_id:
                with unit_of_work(self.sessions) as session:
                    if seen_token(session, "slack", str(event_id)):
                        log.info("Slack event %s seen before: ignored", event_id)
                        return
            fn(**kw)

        once.__name__ = getattr(fn, "__name__", "event")
        self.submit(once, **kwargs)

    def _guard(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  (the user hears it failed; the operator gets the trace)
            log.exception("Slack work %s failed", getattr(fn, "__name__", fn))
            channel, thread = kwargs.get("channel"), kwargs.get("thread_ts")
            if channel:
                try:
                    self.post(channel, thread, f"Sorry, that failed on my side ({type(exc).__name__}); the "
                                                "details are in the server log. Please try again.")
                except Exception:  # noqa: BLE001  (Slack itself may be what failed)
                    log.exception("could not tell the user in %s either", channel)

    def wait(self, timeout: float = 60) -> None:
        """Block until all work submitted so far (and the work it submitted) is done, or `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = [f for f in self._futures if not f.done()]
            if not pending:
                return
            wait(pending, timeout=max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    @contextmanager
    def _conversation(self, key: str) -> Iterator[None]:
        """One turn at a time per conversation (two quick messages in a thread queue up). The
        locks are striped: a bounded set, two conversations rarely share one."""
        with self._locks[zlib.crc32(key.encode()) % len(self._locks)]:
            yield

    def who(self, slack_user: str, team_id: str | None) -> User | Refusal:
        if team_id and team_id != self.team_id:
            return Refusal("Agent CRM only works for members of the Slack workspace it is installed in.")
        return identify(self.sessions, self.client, workspace_slug=self.settings.default_workspace,
                        slack_user_id=slack_user, team_id=self.team_id)

    def post(self, channel: str, thread_ts: str | None, text: str, **extra: Any) -> dict[str, Any]:
        return dict(self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, **extra).data)  # type: ignore[arg-type]

    def ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackApiError as exc:  # e.g. the bot is not in that channel: a DM still reaches them
            log.info("ephemeral to %s in %s failed (%s); sending a DM", user, channel, exc.response.get("error"))
            self.post(self.dm_channel(user), None, text)

    def dm_channel(self, slack_user: str) -> str:
        return str(self.client.conversations_open(users=slack_user)["channel"]["id"])

    # --- conversations ----------------------------------------------------------------------

    def message(self, *, slack_user: str, team_id: str | None, channel: str, thread_ts: str, ts: str, text: str,
                files: list[dict[str, Any]], in_dm: bool, only_if_talking: bool) -> None:
        """A message for the bot: files go to the call pipeline, words to the agent.
        `only_if_talking`: a channel thread reply without @mention, answered only where this
        person already talks with the bot."""
        if only_if_talking and not self.has_conversation(slack_user=slack_user, channel=channel, thread_ts=thread_ts):
            return
        if files:
            self.take_files(slack_user=slack_user, team_id=team_id, channel=channel, thread_ts=thread_ts, files=files,
                            in_dm=in_dm)
            if not text:
                return
        self.converse(slack_user=slack_user, team_id=team_id, channel=channel, thread_ts=thread_ts, ts=ts, text=text,
                      in_dm=in_dm)

    def converse(self, *, slack_user: str, team_id: str | None, channel: str, thread_ts: str, ts: str,
                 text: str, in_dm: bool) -> None:
        """One user message in a thread: the agent's replies, cards and charts go back in that thread."""
        who = self.who(slack_user, team_id)
        if isinstance(who, Refusal):
            if in_dm:
                self.post(channel, thread_ts, who.text)
            else:
                self.ephemeral(channel, slack_user, who.text, thread_ts)
            return
        if not text.strip() or text.strip().lower() in ("help", "?"):
            self.post(channel, thread_ts, HELP)
            return
        if text.strip().lower() in ("waiting", "approvals", "inbox"):  # "inbox": the old word, kept
            if in_dm:
                self.show_waiting(who, channel, thread_ts)
            else:  # the cards carry evidence others in the channel may not read: they go to the DM
                self.ephemeral(channel, slack_user, "I sent what waits for your decision to our DM.", thread_ts)
                self.show_waiting(who, self.dm_channel(slack_user), None)
            return
        actor = actor_for_user(who, Surface.slack)
        key = thread_key("slack", who.id, f"{channel}:{thread_ts}")
        with self._conversation(key):
            turn = self.runner.send(actor=actor, thread_id=key, text=text, source="slack",
                                    source_ref={"channel": channel, "ts": ts})
        self.post_turn(channel, thread_ts, turn, requester=who)

    def has_conversation(self, *, slack_user: str, channel: str, thread_ts: str) -> bool:
        """Whether this user already talks with the bot in this thread (so a reply needs no @mention)."""
        with unit_of_work(self.sessions, readonly=True) as session:
            ws = get_workspace(session, slug=self.settings.default_workspace)
            user = org.user_by_slack_id(session, workspace_id=ws.id, slack_user_id=slack_user) if ws else None
            user_id = user.id if user else None
        return user_id is not None and bool(self.runner.history(thread_key("slack", user_id, f"{channel}:{thread_ts}")))

    def post_turn(self, channel: str, thread_ts: str | None, turn: Turn, *, requester: User | None = None) -> None:
        for reply in turn.replies:
            for part in chunks(mrkdwn(reply)):
                self.post(channel, thread_ts, part, mrkdwn=True)
        for file in turn.files:
            self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, file=file["path"],
                                        filename=file.get("filename"), title=file.get("title"))
        self.post_cards(channel, thread_ts, [a.id for a in turn.proposals])

    # --- approval cards ---------------------------------------------------------------------

    def show_waiting(self, who: User, channel: str, thread_ts: str | None) -> None:
        """`waiting`: a card for each proposal waiting for this user's decision, wherever it was made
        (a quote a rep submitted on the web waits here for the manager). Only ever into their DM."""
        with unit_of_work(self.sessions, readonly=True) as session:
            waiting = [a.id for a in approval_service.pending(session, actor=actor_for_user(who, Surface.slack))]
        if not waiting:
            self.post(channel, thread_ts, "Nothing waits for your decision.")
            return
        self.post(channel, thread_ts, f"{len(waiting)} proposal(s) wait for your decision:")
        self.post_cards(channel, thread_ts, waiting)

    def post_cards(self, channel: str, thread_ts: str | None, approval_ids: list[uuid.UUID]) -> None:
        """A card per proposal not yet shown in this channel; managers get their own copy to decide."""
        for approval_id in approval_ids:
            with unit_of_work(self.sessions, readonly=True) as session:
                approval = approval_by_id(session, approval_id)
                if approval is None or any(c.get("channel") == channel for c in _cards(approval)):
                    continue
                message = cards.card(approval, requester=_name(approval.requester))
                managers = approval_service.managers_to_ask(session, approval=approval)
            managers = [i for i in (slack_id_for(self.sessions, self.client, user_id=m, team_id=self.team_id)
                                    for m in managers) if i]
            posted = self.post(channel, thread_ts, message["text"], blocks=message["blocks"])
            places = [{"channel": channel, "ts": posted["ts"]}]
            for manager_slack_id in managers:
                dm = self.dm_channel(manager_slack_id)
                if dm == channel:  # the manager asked in her own DM: one card is enough
                    continue
                copy = self.post(dm, None, message["text"], blocks=message["blocks"])
                places.append({"channel": dm, "ts": copy["ts"]})
            with unit_of_work(self.sessions) as session:
                approval = approval_by_id(session, approval_id)
                if approval is not None:
                    approval.source_ref = {**approval.source_ref, "slack_cards": _cards(approval) + places}

    def refresh_cards(self, approval_id: uuid.UUID) -> None:
        """Redraw every copy of a proposal's card from the store (who decided what)."""
        with unit_of_work(self.sessions, readonly=True) as session:
            approval = approval_by_id(session, approval_id)
            if approval is None:
                return
            message = cards.card(approval, requester=_name(approval.requester), decider=_name(approval.decider))
            places = _cards(approval)
        for place in places:
            try:
                self.client.chat_update(channel=place["channel"], ts=place["ts"], text=message["text"],
                                        blocks=message["blocks"])
            except SlackApiError as exc:  # a deleted card or a left channel: the others still update
                log.info("could not update card %s in %s: %s", place["ts"], place["channel"],
                         exc.response.get("error"))

    def decide(self, *, kind: str, approval_id: str, slack_user: str, team_id: str | None, channel: str,
               thread_ts: str | None, args: dict[str, Any] | None = None) -> None:
        """A button on a card: decide as the clicking user, redraw the card, continue the conversation."""
        who = self.who(slack_user, team_id)
        if isinstance(who, Refusal):
            self.ephemeral(channel, slack_user, who.text)
            return
        try:
            self.apply(who, kind=kind, approval_id=approval_id, args=args, channel=channel, thread_ts=thread_ts)
        except PermissionDenied as exc:
            self.ephemeral(channel, slack_user, f"🚫 {sentence(exc.message)}")
            return
        except Conflict as exc:
            self.ephemeral(channel, slack_user, f"Nothing done: {exc.message}.")
            self.refresh_cards(uuid.UUID(approval_id))
            return
        except (NotFound, ValidationFailed) as exc:
            self.ephemeral(channel, slack_user, f"Nothing done: {exc.message}.")
            return

    def apply(self, who: User, *, kind: str, approval_id: str, args: dict[str, Any] | None = None,
              channel: str | None, thread_ts: str | None, later: bool = False) -> Approval:
        """Decide (exactly once: the gate's conditional UPDATE) and go on with the conversation
        (flows/decisions.py); once all its proposals are decided the agent answers in the thread
        where the card is. `later`: the conversation goes on on the bot's threads."""
        try:
            target = uuid.UUID(approval_id)
        except ValueError as exc:
            raise NotFound(f"no proposal with id {approval_id}") from exc

        def show(decided: Decided) -> None:
            if decided.turn is not None and channel:
                self.post_turn(channel, thread_ts, decided.turn, requester=decided.requester)

        reason = "rejected in Slack" if kind == "reject" else None
        return decide_proposal(self.runner, actor=actor_for_user(who, Surface.slack), approval_id=target,
                               kind=kind, args=args, reason=reason, sessions=self.sessions,  # type: ignore[arg-type]
                               around_resume=self._going_on, show=show,
                               defer=self.submit if later else None).approval

    @contextmanager
    def _going_on(self, approval: Approval) -> Iterator[None]:
        """The decided card shows it at once; the conversation then goes on, one turn at a time."""
        self.refresh_cards(approval.id)
        with self._conversation(approval.thread_id or str(approval.id)):
            yield

    def edit_view(self, *, approval_id: str, slack_user: str, team_id: str | None, trigger_id: str,
                  channel: str, ts: str | None, thread_ts: str | None) -> str | None:
        """Open the Edit modal for someone who may decide the proposal; else what to tell them."""
        who = self.who(slack_user, team_id)
        if isinstance(who, Refusal):
            return who.text
        try:
            with unit_of_work(self.sessions, readonly=True) as session:
                actor = actor_for_user(who, Surface.slack)
                approval = approval_service.get_to_decide(session, actor=actor, id=uuid.UUID(approval_id))
                # Who may decide first: someone else learns nothing about the proposal's state.
                approval_service.check_may_decide(session, actor=actor, approval=approval)
                if approval.status != ApprovalStatus.pending:
                    return f"Nothing to edit: this proposal was already decided ({approval.status.value})."
                view = cards.edit_modal(approval, card_channel=channel, card_ts=ts, thread_ts=thread_ts or ts)
        except (PermissionDenied, NotFound) as exc:
            return f"🚫 {sentence(exc.message)}"
        except ValueError:
            return "That card is not one of mine."
        self.client.views_open(trigger_id=trigger_id, view=view)
        return None

    def submit_edit(self, *, approval_id: str, slack_user: str, team_id: str | None, values: dict[str, Any],
                    channel: str | None = None, thread_ts: str | None = None) -> Approval:
        """The Edit modal's Approve: the changed fields are validated, previewed again and applied."""
        who = self.who(slack_user, team_id)
        if isinstance(who, Refusal):
            raise PermissionDenied(who.text)
        try:
            target = uuid.UUID(approval_id)
        except ValueError as exc:
            raise NotFound("that proposal no longer exists") from exc
        with unit_of_work(self.sessions, readonly=True) as session:
            approval = approval_service.get_to_decide(session, actor=actor_for_user(who, Surface.slack), id=target)
            changes = cards.changed_args(approval, values)
        return self.apply(who, kind="edit" if changes else "approve", approval_id=approval_id, args=changes,
                          channel=channel, thread_ts=thread_ts, later=True)

    def modal_errors(self, approval_id: str, exc: CRMError) -> dict[str, str]:
        """A validation failure shown under the fields it names (Slack shows errors per input)."""
        fields = self._fields(approval_id)
        named = {name: exc.message[:150] for name in fields if f"{name}:" in exc.message or f"{name}." in exc.message}
        return named or {self.first_block(approval_id): exc.message[:150]}

    def first_block(self, approval_id: str) -> str:
        fields = self._fields(approval_id)
        return fields[0] if fields else "summary"

    def _fields(self, approval_id: str) -> list[str]:
        with unit_of_work(self.sessions, readonly=True) as session:
            try:
                approval = approval_by_id(session, uuid.UUID(approval_id))
            except ValueError:
                return []
            return [name for name, *_ in cards.editable_fields(approval.tool)] if approval else []

    def tell(self, *, channel: str, slack_user: str, text: str) -> None:
        self.ephemeral(channel, slack_user, text)

    def command(self, *, slack_user: str, team_id: str | None, channel: str, text: str,
                response_url: str | None) -> None:
        """`/crm ...`: the question is posted in the channel and answered in a thread under it
        (in a DM with the user when the bot is not in that channel)."""
        from slack_sdk.webhook import WebhookClient

        who = self.who(slack_user, team_id)
        if isinstance(who, Refusal):
            if response_url:
                WebhookClient(response_url).send(text=who.text, response_type="ephemeral")
            else:
                self.post(self.dm_channel(slack_user), None, who.text)
            return
        header = f"<@{slack_user}> asked: {escape(text)}"
        try:
            posted = self.post(channel, None, header)
        except SlackApiError as exc:
            if exc.response.get("error") not in ("not_in_channel", "channel_not_found", "is_archived"):
                raise
            channel = self.dm_channel(slack_user)
            posted = self.post(channel, None, header)
            if response_url:
                WebhookClient(response_url).send(
                    text="I'm not in that channel, so I answered in our DM. Invite me with `/invite @Agent CRM` "
                         "to answer there.", response_type="ephemeral")
        self.converse(slack_user=slack_user, team_id=team_id, channel=channel, thread_ts=posted["ts"],
                      ts=posted["ts"], text=text, in_dm=channel.startswith("D"))

    def on_decided_elsewhere(self, approval_id: uuid.UUID, turn: Turn | None = None,
                             decided_on: Surface | None = None) -> None:
        """A proposal decided on the web page, the API or in `crm chat`: its Slack cards show it, and when it
        belongs to a Slack conversation the agent's answer goes back into that thread."""
        if decided_on != Surface.slack:  # decided here: the bot redrew its cards and answers where it was clicked
            self.submit(self._decided_elsewhere, approval_id, turn)

    def _decided_elsewhere(self, approval_id: uuid.UUID, turn: Turn | None) -> None:
        self.refresh_cards(approval_id)
        if turn is None or not (turn.replies or turn.files or turn.proposals):
            return
        surface, _user, channel, thread_ts = (turn.thread_id.split(":", 3) + ["", "", ""])[:4]
        if surface == "slack" and channel and thread_ts:  # thread_key("slack", user, "<channel>:<thread ts>")
            self.post_turn(channel, thread_ts, turn)

    # --- files and jobs (channels/slack/intake.py) --------------------------------------------

    def take_files(self, **kwargs: Any) -> None:
        from channels.slack.intake import take_files

        take_files(self, **kwargs)

    def on_job_finished(self, job_id: uuid.UUID) -> None:
        self.submit(self.report_job, job_id)

    def report_job(self, job_id: uuid.UUID) -> None:
        from channels.slack.intake import report_job

        report_job(self, job_id)


def _cards(approval: Approval) -> list[dict[str, str]]:
    return list((approval.source_ref or {}).get("slack_cards", []))


def _name(user: User | None) -> str | None:
    return user.name if user else None

