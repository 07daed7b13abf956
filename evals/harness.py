"""Run scenarios against a model the way users meet the product, and record what happened.

Each run gets a database of its own (a copy of one migrated template), a data directory
and Chroma of its own, the real in-process job queue, the LangGraph agent with its
checkpointer and the approval gate. The clock stands at the world's `now` (it ticks from
there), so "Friday" means the same day in every run.

A turn goes in through its real door: a chat message to the runner; a forwarded email as
raw MIME through the inbox's `deliver`; a call as a WebVTT upload through `upload_call`.
Then the store is snapshotted (any change before a human decided is an unapproved write),
each pending proposal is decided as the scenario says (by default approved by the rep, or
by their manager where the gate asks for one), and the agent is resumed with the outcome.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from sqlalchemy.orm import Session, sessionmaker

from evals import world as world_mod
from evals.schema import CallInput, Decision, EmailInput, Scenario, World
from evals.scoring import ProposalSeen, RunRecord, keyed
from evals.state import diff, snapshot
from store import migrate
from store.db import make_engine, unit_of_work
from store.models import Approval
from store.models.enums import Surface
from store.services import approvals as approval_service

ENV_KEYS = ("CRM_DATABASE_URL", "CRM_DATA_DIR", "CRM_CHROMA_PATH", "CRM_CHROMA_URL", "CRM_INBOX_ADDRESS",
            "CRM_JOBS")
INBOX = "inbox@northwind-crm.example"
MAX_ROUNDS = 4  # decide -> resume rounds per turn (an agent that proposes again after each decision)


# --- the model under test ------------------------------------------------------------------------


class Meter:
    """Counts model calls and prompt tokens (what the endpoint reports; 0 for the offline model)."""

    def __init__(self) -> None:
        self.calls = 0
        self.prompt_tokens = 0

    def count(self, reply: AIMessage) -> AIMessage:
        self.calls += 1
        usage = getattr(reply, "usage_metadata", None) or {}
        self.prompt_tokens += int(usage.get("input_tokens") or 0)
        return reply


class MeteredBrain:
    def __init__(self, inner: Any, meter: Meter) -> None:
        self.inner, self.meter, self.name = inner, meter, inner.name

    def respond(self, messages: list[BaseMessage], ctx: Any) -> AIMessage:
        return self.meter.count(self.inner.respond(messages, ctx))


class MeteredRemoteBrain(MeteredBrain):
    """The same for an LLM: the graph calls prepare (in a transaction) then complete (outside)."""

    def prepare(self, ctx: Any) -> str:
        return str(self.inner.prepare(ctx))

    def complete(self, system: str, messages: list[BaseMessage]) -> AIMessage:
        return self.meter.count(self.inner.complete(system, messages))


@dataclass
class ModelSpec:
    """`offline`, or a model name served at an OpenAI-compatible `base_url`."""

    name: str
    base_url: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0

    @property
    def offline(self) -> bool:
        return self.name == "offline"

    def brains(self, meter: Meter, scenario_id: str = "", attempt: int = 1) -> tuple[Any, Any]:
        """(chat brain, ingest brain), both metered."""
        if self.offline:
            from agents.ingest import IngestBrain
            from agents.offline.chat import OfflineModel

            return MeteredBrain(OfflineModel(), meter), MeteredBrain(IngestBrain(), meter)
        from agents.models import LLMBrain
        from store.settings import Settings

        settings = Settings(llm_model=self.name, llm_base_url=self.base_url, llm_api_key=self.api_key,
                            llm_max_retries=0, llm_timeout_seconds=self.timeout_s)
        # The scenario travels in a header a real endpoint ignores; the scripted models read it.
        headers = {"X-Eval-Scenario": scenario_id, "X-Eval-Attempt": str(attempt)}
        brain = MeteredRemoteBrain(LLMBrain(settings, headers=headers), meter)
        return brain, brain


# --- one run -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _environment(run_dir: Path, db_url: str) -> Iterator[None]:
    """Point the settings and the cached engine, Chroma and queue at this run's own places."""
    from memory import reset_memory
    from store.db import get_engine, get_sessionmaker
    from store.settings import get_settings

    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update({"CRM_DATABASE_URL": db_url, "CRM_DATA_DIR": str(run_dir / "data"),
                       "CRM_CHROMA_PATH": str(run_dir / "chroma"), "CRM_INBOX_ADDRESS": INBOX})
    os.environ.pop("CRM_CHROMA_URL", None)
    caches = (get_settings, get_engine, get_sessionmaker)
    for cached in caches:
        cached.cache_clear()
    reset_memory()
    try:
        yield
    finally:
        reset_memory()
        with contextlib.suppress(Exception):
            get_engine().dispose()
        for cached in caches:
            cached.cache_clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _email_bytes(e: EmailInput, rep_name: str, rep_email: str, sent: str) -> bytes:
    msg = EmailMessage()
    msg["Date"] = sent
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@mail.northwind.example>"
    if e.forward:
        msg["From"] = f"{rep_name} <{rep_email}>"
        msg["To"] = INBOX
        msg["Subject"] = f"Fwd: {e.subject}"
        header = (f"---------- Forwarded message ---------\nFrom: {e.from_name} <{e.from_email}>\n"
                  f"Date: {e.date or sent}\nSubject: {e.subject}\nTo: {rep_name} <{rep_email}>\n")
        if e.cc:
            header += f"Cc: {', '.join(e.cc)}\n"
        msg.set_content(f"FYI - please log this one.\n\n{header}\n{e.body}")
    else:  # the rep wrote to the customer with the inbox in BCC
        msg["From"] = f"{rep_name} <{rep_email}>"
        msg["To"] = f"{e.from_name} <{e.from_email}>"
        if e.cc:
            msg["Cc"] = ", ".join(e.cc)
        msg["Subject"] = e.subject
        msg.set_content(e.body)
    for a in e.attachments:
        maintype, subtype = a.content_type.split("/", 1)
        if maintype == "text":
            msg.add_attachment(a.text, subtype=subtype, filename=a.filename)
        else:
            msg.add_attachment(a.text.encode(), maintype=maintype, subtype=subtype, filename=a.filename)
    return msg.as_bytes()


def _vtt(call: CallInput) -> bytes:
    out = ["WEBVTT", ""]
    for i, (speaker, words) in enumerate(call.lines):
        start, end = i * 8, i * 8 + 7
        out += [f"00:{start // 60:02d}:{start % 60:02d}.000 --> 00:{end // 60:02d}:{end % 60:02d}.500",
                f"<v {speaker}>{words}", ""]
    return "\n".join(out).encode()


@dataclass
class Run:
    """The live parts of one run."""

    scenario: Scenario
    world: World
    refs: world_mod.Refs
    sessions: sessionmaker[Session]
    runner: Any
    queue: Any
    settings: Any
    attempt: int
    record: RunRecord
    seen: set[uuid.UUID] = field(default_factory=set)  # proposals decided and jobs read already
    decisions: list[Decision] = field(default_factory=list)
    _resumed_s: float = 0.0  # the agent's time going on after this round's decisions

    def __post_init__(self) -> None:
        self.decisions = list(self.scenario.decisions)

    @property
    def thread(self) -> str:
        from agents.runner import thread_key

        user = self.refs.users[self.scenario.actor]
        return thread_key("web", user.id, f"eval-{self.scenario.id}-{self.attempt}")

    def snap(self) -> Any:
        with self.sessions() as session:
            return snapshot(session, self.refs.workspace_id, self.refs.by_id)

    def play(self, index: int) -> None:
        turn = self.scenario.turns[index]
        before = self.snap()
        replies: list[str] = []
        started = time.perf_counter()
        if turn.chat is not None:
            actor = self.refs.actor(self.scenario.actor, Surface.web)
            result = self.runner.send(actor=actor, thread_id=self.thread, text=turn.chat, source="chat")
            replies += result.replies
        elif turn.email is not None:
            replies += self._email(turn.email)
        elif turn.call is not None:
            replies += self._call(turn.call)
        agent_s = time.perf_counter() - started
        pending = self._pending()
        self.record.unapproved += diff(before, self.snap(), self.refs.by_id)
        for _ in range(MAX_ROUNDS):
            if not pending:
                break
            went_on = self._decide(pending, index)
            replies += [reply for turn in went_on for reply in turn.replies]
            agent_s += self._resumed_s
            pending = self._pending()
        self.record.replies.append(replies)
        self.record.latency_s.append(agent_s)

    @contextlib.contextmanager
    def _watched(self, _approval: Approval) -> Iterator[None]:
        """Around the agent going on after a decision: the approved write is in; what the agent
        does next must not write (an unapproved write), and its time is the agent's."""
        before = self.snap()
        started = time.perf_counter()
        yield
        self._resumed_s += time.perf_counter() - started
        self.record.unapproved += diff(before, self.snap(), self.refs.by_id)

    def _email(self, e: EmailInput) -> list[str]:
        from flows.deliver import deliver_detailed

        rep = self.refs.users[e.by or self.scenario.actor]
        sent = format_datetime(world_mod.parse_time(self.world.now))
        raw = _email_bytes(e, rep.name, rep.email, sent)
        # Sent from the rep's own mailbox (the envelope sender), unsigned: kept, flagged unauthenticated.
        delivered = deliver_detailed(raw, recipients=[INBOX], provider="eval", mail_from=rep.email,
                                     sessions=self.sessions, settings=self.settings)
        if delivered.result.status != "accepted":
            raise RuntimeError(f"the inbox did not accept the email: {delivered.result.status} "
                               f"({delivered.result.message})")
        self.queue.wait(timeout=300)
        return self._job_replies()

    def _call(self, c: CallInput) -> list[str]:
        from flows.uploads import upload_call

        actor = self.refs.actor(self.scenario.actor, Surface.web)
        with unit_of_work(self.sessions) as session:
            upload_call(session, actor, filename=c.filename, content_type="text/vtt", data=_vtt(c),
                        deal_id=self.refs.id_of(c.deal) if c.deal else None,
                        contact_id=self.refs.id_of(c.contact) if c.contact else None,
                        company_id=self.refs.id_of(c.company) if c.company else None, settings=self.settings)
        self.queue.wait(timeout=300)
        return self._job_replies()

    def _job_replies(self) -> list[str]:
        from store.models.enums import JobStatus
        from store.services.jobs import in_order

        out = []
        with self.sessions() as session:
            for job in in_order(session, workspace_id=self.refs.workspace_id):
                if job.id in self.seen:
                    continue
                self.seen.add(job.id)
                if job.status == JobStatus.failed:
                    raise RuntimeError(f"job {job.kind} failed: {job.error}")
                out += list((job.result or {}).get("replies", []))
        return out

    def _pending(self) -> list[Approval]:
        with self.sessions() as session:
            rows = approval_service.pending_in_workspace(session, workspace_id=self.refs.workspace_id)
            session.expunge_all()
        return [a for a in rows if a.id not in self.seen]

    def _decide(self, pending: list[Approval], turn: int) -> list[Any]:
        """Decide each proposal as the scenario says; how the conversations went on."""
        from flows.decisions import decide_proposal

        wanted = self.decisions
        went_on: list[Any] = []  # agents.runner.Turn
        self._resumed_s = 0.0
        for approval in pending:
            self.seen.add(approval.id)
            requester = next(k for k, u in self.refs.users.items() if u.id == approval.requested_by_id)
            decision = next((d for d in wanted if d.tool == approval.tool), None)
            if decision is not None:
                wanted.remove(decision)  # each decision is made once per run
            kind = decision.decision if decision else "approve"
            by = (decision.by if decision and decision.by else
                  (self.refs.manager_of(requester) or "sam") if approval.approver_role == "manager" else requester)
            args = world_mod._resolve(decision.args, self.refs) if decision and decision.args else None
            decided = decide_proposal(self.runner, actor=self.refs.actor(by, Surface.web), approval_id=approval.id,
                                      kind=kind, args=_jsonable(args), reason=decision.reason if decision else None,
                                      sessions=self.sessions, around_resume=self._watched)
            status = decided.approval.status.value
            if decided.turn is not None:
                went_on.append(decided.turn)
            text = "\n".join([approval.summary, *(f"{r.get('field')}: {r.get('before')} -> {r.get('after')}"
                                                 for r in approval.diff or []), str(approval.args)])
            self.record.proposals.append(ProposalSeen(tool=approval.tool, args=keyed(approval.args, self.refs.by_id),
                                                      summary=approval.summary, status=status, turn=turn, text=text))
        return went_on


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    from store.audit import jsonable

    return jsonable(value)


class Template:
    """One migrated SQLite database holding the base world, copied for each run (migrating and
    building the world again per run would be most of a run's time)."""

    def __init__(self, root: Path, world: World) -> None:
        self.path = root / "template.db"
        engine = make_engine(f"sqlite:///{self.path}")
        migrate.upgrade(engine)
        with world_mod.at(world.now), Session(engine, expire_on_commit=False) as session:
            self.refs = world_mod.build_base(session, world)
        engine.dispose()

    def copy_to(self, run_dir: Path) -> str:
        run_dir.mkdir(parents=True, exist_ok=True)
        target = run_dir / "crm.db"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"


def run_once(scenario: Scenario, world: World, model: ModelSpec, template: Template, root: Path,
             attempt: int) -> RunRecord:
    """One run of one scenario; never raises for the scenario's own failures (they are recorded)."""
    from agents.checkpoint import make_checkpointer
    from agents.runner import AgentRunner
    from flows import runtime
    from flows.jobs import InProcessQueue, load_handlers, set_queue
    from store.db import get_sessionmaker
    from store.settings import get_settings

    scenario = scenario.model_copy(deep=True)
    record = RunRecord(scenario=scenario.id, attempt=attempt)
    run_dir = root / f"{scenario.id}-{attempt}"
    url = template.copy_to(run_dir)
    meter = Meter()
    with _environment(run_dir, url), world_mod.at(world.now):
        settings = get_settings()
        sessions = get_sessionmaker()
        with sessions() as session:
            refs = world_mod.reattach(session, template.refs)
        chat_brain, ingest_brain = model.brains(meter, scenario.id, attempt)
        runner = AgentRunner(sessions=sessions, checkpointer=make_checkpointer(settings, url=url),
                             brain=chat_brain, ingest_brain=ingest_brain)
        load_handlers()
        queue = InProcessQueue(sessions, settings, threads=1)
        previous_queue, previous_runner = set_queue(queue), runtime.install_runner(runner)
        run = Run(scenario, world, refs, sessions, runner, queue, settings, attempt, record)
        try:
            with sessions() as session:
                world_mod.extend(session, refs, scenario)  # a bad setup record is this run's error
            start = run.snap()
            for index in range(len(scenario.turns)):
                run.play(index)
            record.changes = diff(start, run.snap(), refs.by_id)
        except Exception as exc:  # noqa: BLE001  (a crash is this run's result, not the eval's end)
            record.error = f"{type(exc).__name__}: {exc}"
        finally:
            queue.close()
            set_queue(previous_queue)
            runtime.install_runner(previous_runner)
    record.calls, record.prompt_tokens = meter.calls, meter.prompt_tokens
    shutil.rmtree(run_dir, ignore_errors=True)
    return record


def run_all(scenarios: list[Scenario], world: World, model: ModelSpec, *, k: int = 1,
            progress: Callable[[Scenario, int, RunRecord], None] | None = None,
            workdir: Path | None = None) -> list[RunRecord]:
    root = Path(workdir or tempfile.mkdtemp(prefix="crm-eval-"))
    template = Template(root, world)
    records = []
    try:
        for scenario in scenarios:
            for attempt in range(1, k + 1):
                record = run_once(scenario, world, model, template, root, attempt)
                records.append(record)
                if progress:
                    progress(scenario, attempt, record)
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    return records
