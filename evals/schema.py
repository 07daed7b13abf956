"""What a scenario says: its starting store, its inputs, and the outcome it expects.

One scenario per line in `evals/datasets/*.jsonl`; the base world they all start from is
`evals/datasets/world.json`. Records are named by keys (`"@borealis"`), never by ids, so a
dataset reads like the story it tells and survives a change of id scheme.

    {"id": "rep-move-stage-01", "shape": "deal_update", "category": "rep_command",
     "actor": "priya",
     "turns": [{"chat": "move borealis to negotiation"}],
     "expect": {
       "proposals": [{"tool": "update_deal", "args": {"deal_id": "@borealis", "stage": "Negotiation"}}],
       "changes": [{"op": "update", "record": "@borealis", "fields": {"stage": "Negotiation"}}]},
     "reads": []}

Values in `args` and `fields` are compared after normalising (dates as ISO days, amounts
as plain decimals, references as record keys). A value may also be a matcher:
`{"contains": "quote"}` (case-insensitive), `{"any": true}` (present, any value),
`{"one_of": [...]}`, `{"not": value}`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DATASETS = Path(__file__).parent / "datasets"
WORLD_FILE = DATASETS / "world.json"

Category = Literal["rep_command", "multi_turn", "email", "call", "manager_question", "crm_task",
                   "confidentiality", "injection"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the starting store --------------------------------------------------------------------------


class UserSpec(Strict):
    key: str
    name: str
    email: str
    role: Literal["admin", "manager", "rep"] = "rep"
    team: str | None = None
    quota: float | None = None
    timezone: str = "Europe/London"


class RecordSpec(Strict):
    """One record made through the product's own services, as `as_` (a user key)."""

    key: str | None = None
    kind: str  # company, contact, deal, deal_contact, activity, task, note, product, quote, territory...
    as_: str = Field(alias="as")
    at: str | None = None  # ISO time it happened (the clock is moved there while it is made)
    fields: dict[str, Any] = Field(default_factory=dict)
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Secret(Strict):
    """Text that must never reach anyone outside `visible_to` (user keys)."""

    text: str
    visible_to: list[str] = Field(default_factory=list)
    what: str = ""


class World(Strict):
    workspace: str
    slug: str
    own_domains: list[str] = Field(default_factory=list)
    now: str  # the eval's clock: every scenario runs at this moment
    teams: list[str]
    users: list[UserSpec]
    records: list[RecordSpec]
    secrets: list[Secret] = Field(default_factory=list)
    other_workspace: dict[str, Any] = Field(default_factory=dict)  # another tenant, for isolation probes
    settings: dict[str, Any] = Field(default_factory=dict)  # workspace settings (approval policy...)


# --- inputs ----------------------------------------------------------------------------------------


class Attachment(Strict):
    filename: str
    content_type: str = "text/plain"
    text: str


class EmailInput(Strict):
    """An email a rep forwards to the inbox (or sends with the inbox in BCC when `forward` is false)."""

    from_name: str
    from_email: str
    subject: str
    body: str
    cc: list[str] = Field(default_factory=list)
    date: str | None = None
    forward: bool = True
    by: str | None = None  # the rep who forwards it; default the scenario's actor
    attachments: list[Attachment] = Field(default_factory=list)


class CallInput(Strict):
    """A call transcript uploaded as WebVTT captions (no whisper weights needed)."""

    filename: str = "call.vtt"
    lines: list[list[str]]  # [speaker, words] in order; timed 8 s apart
    deal: str | None = None  # "@key" the upload names
    contact: str | None = None
    company: str | None = None


class TurnInput(Strict):
    chat: str | None = None
    email: EmailInput | None = None
    call: CallInput | None = None
    reply_contains: list[str] = Field(default_factory=list)  # facts this turn's reply must hold

    @model_validator(mode="after")
    def _one(self) -> TurnInput:
        if sum(x is not None for x in (self.chat, self.email, self.call)) != 1:
            raise ValueError("a turn is exactly one of chat, email or call")
        return self

    @property
    def kind(self) -> str:
        return "chat" if self.chat is not None else "email" if self.email is not None else "call"


class Decision(Strict):
    """How the human decides a proposal of `tool` (the first pending one that matches)."""

    tool: str
    decision: Literal["approve", "edit", "reject"] = "approve"
    args: dict[str, Any] = Field(default_factory=dict)  # for edit
    reason: str | None = None
    by: str | None = None  # default: the requester, or their manager when a manager must approve


# --- expectations ---------------------------------------------------------------------------------


class ProposalSpec(Strict):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)  # a subset: the arguments that matter (matchers allowed)
    call: dict[str, Any] | None = None  # the full arguments a perfect model sends; default `args`
    turn: int = -1  # the turn it belongs to (index; -1 the last)


class Change(Strict):
    """One change of the store after the decisions, as the state diff must show it."""

    op: Literal["create", "update", "delete"]
    kind: str | None = None  # for create: contact, deal, task, note, activity, quote...
    record: str | None = None  # for update/delete: "@key"
    fields: dict[str, Any] = Field(default_factory=dict)
    optional: bool = False  # allowed (then it must match), not required: a sensible extra like a next step

    @model_validator(mode="after")
    def _target(self) -> Change:
        if self.op == "create" and not self.kind:
            raise ValueError("a create names its kind")
        if self.op != "create" and not (self.record or "").startswith("@"):
            raise ValueError("an update or delete names its record as @key")
        return self


class Expect(Strict):
    proposals: list[ProposalSpec] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list)
    answer_contains: list[str] = Field(default_factory=list)  # facts (case-insensitive) the replies must hold
    answer_excludes: list[str] = Field(default_factory=list)  # what the replies must not say


class Attack(Strict):
    """What an adversarial scenario tries. The scorer checks it; the careless script obeys it."""

    kind: Literal["injection", "leak"]
    where: str = ""  # email body, attachment, transcript, note, record field, chat
    obey: ProposalSpec | None = None  # the write the injection wants
    canary: str | None = None  # text whose appearance in a reply means the attack worked


class ReadCall(Strict):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    turn: int = -1


class Scenario(Strict):
    id: str
    shape: str  # the task shape, one row in the report
    category: Category
    description: str = ""
    actor: str
    setup: list[RecordSpec] = Field(default_factory=list)
    turns: list[TurnInput]
    decisions: list[Decision] = Field(default_factory=list)
    expect: Expect = Field(default_factory=Expect)
    must_not_tools: list[str] = Field(default_factory=list)  # no proposal of these tools may appear
    secrets: list[str] = Field(default_factory=list)  # this scenario's own canaries (never to be said)
    attack: Attack | None = None
    reads: list[ReadCall] = Field(default_factory=list)  # what a perfect model reads before answering
    source: str = ""  # which file it came from (set by the loader)

    @model_validator(mode="after")
    def _turns(self) -> Scenario:
        if not self.turns:
            raise ValueError("a scenario has at least one turn")
        return self


# --- loading ---------------------------------------------------------------------------------------


class DatasetError(ValueError):
    pass


def load_world(path: Path = WORLD_FILE) -> World:
    return World.model_validate_json(path.read_text(encoding="utf-8"))


def load_scenarios(directory: Path = DATASETS, *, only: list[str] | None = None) -> list[Scenario]:
    """Every scenario of every `*.jsonl` file, validated; a bad line names its file and line."""
    out: list[Scenario] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            where = f"{path.name}:{number}"
            try:
                scenario = Scenario.model_validate(json.loads(line) | {"source": where})
            except (ValueError, TypeError) as exc:
                raise DatasetError(f"{where}: {exc}") from exc
            if scenario.id in seen:
                raise DatasetError(f"{where}: scenario id '{scenario.id}' is also used at {seen[scenario.id]}")
            seen[scenario.id] = where
            out.append(scenario)
    if only:
        wanted = [s for s in out if any(s.id == o or s.id.startswith(o) or s.shape == o or s.category == o
                                        for o in only)]
        if not wanted:
            raise DatasetError(f"no scenario matches {', '.join(only)}")
        return wanted
    return out


REF = re.compile(r"^@[A-Za-z_][A-Za-z0-9_]*$")


def is_ref(value: Any) -> bool:
    """`"@borealis"` is a reference; `"@ 400"` (a price in a quote line) is not."""
    return isinstance(value, str) and REF.match(value) is not None


def refs_in(value: Any) -> set[str]:
    """The `@key` references anywhere in a value."""
    if isinstance(value, str):
        return {value[1:]} if is_ref(value) else set()
    if isinstance(value, dict):
        return set().union(*(refs_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(refs_in(v) for v in value)) if value else set()
    return set()
