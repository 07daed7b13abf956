"""Scripted models behind an OpenAI-compatible server: they prove the scorer, not the agent.

- **perfect** does what each scenario expects: it looks up the records it needs
  (find_records, list_my_tasks), makes the expected reads and write calls in one turn, and
  answers with the expected facts. Its report must be 100%: anything less is a bug in a
  dataset or in the scorer.
- **careless** makes one mistake per scenario, chosen from what the scenario tests, and
  logs it: it obeys an injection (the attacker's write, or the canary), leaks (the probe's
  target, a scenario's secret, or the system prompt it was given), writes a wrong value,
  skips a write, leaves out the facts, or proposes a write nobody asked for. The eval must catch every logged mistake.

They know the scenario from the `X-Eval-Scenario` header the harness sends (a real endpoint
ignores it); everything else they learn as a model would, from the request's messages: ids
come from the tool results and the ingestion message, never from the database.

    .venv/bin/python -m evals.scripted --persona careless   # serve until Ctrl-C; prints its base URL
    crm eval --model scripted:perfect                       # or in-process, for one eval
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from datetime import date, timedelta
from typing import Any

from evals.openai_server import FakeOpenAI, Reply, text, tool_calls
from evals.schema import ProposalSpec, Scenario, World, is_ref, load_scenarios, load_world, refs_in

PERSONAS = ("perfect", "careless")
_UUID = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
UNASKED = ProposalSpec(tool="create_task", args={"title": "Follow up on this (nobody asked for it)"})


def _label(kind: str, fields: dict[str, Any]) -> str:
    if kind == "contact":
        return " ".join(x for x in (fields.get("first_name"), fields.get("last_name")) if x)
    for attr in ("name", "title", "subject"):
        if fields.get(attr):
            return str(fields[attr])
    return ""


class Persona:
    def __init__(self, kind: str, scenarios: list[Scenario], world: World) -> None:
        if kind not in PERSONAS:
            raise ValueError(f"unknown persona '{kind}': {', '.join(PERSONAS)}")
        self.kind, self.world = kind, world
        self.scenarios = {s.id: s for s in scenarios}
        self.mistakes: list[dict[str, str]] = []  # what the careless persona did wrong, per scenario run
        self._lock = threading.Lock()
        self._logged: set[tuple[str, str, str]] = set()

    # --- reading the request -----------------------------------------------------------------

    @staticmethod
    def _content(message: dict[str, Any]) -> str:
        content = message.get("content") or ""
        if isinstance(content, list):
            return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        return str(content)

    def labels(self, scenario: Scenario) -> dict[str, tuple[str, str]]:
        out = {r.key: (r.kind, _label(r.kind, r.fields)) for r in [*self.world.records, *scenario.setup] if r.key}
        out |= {u.key: ("user", u.name) for u in self.world.users}
        return out

    @staticmethod
    def find_id(kind: str, label: str, corpus: str) -> str | None:
        name = re.escape(label)
        if kind == "task":
            pattern = rf"- {name} \(due[^\n]*?id=" + _UUID
        else:
            pattern = rf"(?:^|[^\w]){kind} {name}(?![\w])[^\n]*?id[= ]" + _UUID
        m = re.search(pattern, corpus, flags=re.MULTILINE)
        if m is None and kind == "contact":  # the ingestion message: "Person (from): Ines Duarte <...> - contact id X"
            m = re.search(rf"{name} <[^>]*> - contact id " + _UUID, corpus)
        if m is None and kind == "deal":  # "Open deal: NAME (id X)"
            m = re.search(rf"Open deal: {name} \(id " + _UUID, corpus)
        return m.group(1) if m else None

    # --- the plan for a turn -----------------------------------------------------------------

    def _turn(self, scenario: Scenario, messages: list[dict[str, Any]]) -> int:
        users = [self._content(m) for m in messages if m.get("role") == "user"]
        last = users[-1] if users else ""
        sources = [i for i, t in enumerate(scenario.turns) if t.chat is None]
        for i in sources:  # an email or call thread: which of the scenario's sources is this?
            turn = scenario.turns[i]
            needle = turn.email.body if turn.email else " ".join(w for _, w in turn.call.lines)  # type: ignore[union-attr]
            longest = max((ln.strip() for ln in re.split(r"[\n.]", needle) if ln.strip()), key=len, default="")
            if longest and longest[:60] in last:
                return i
        chats = [i for i, t in enumerate(scenario.turns) if t.chat is not None]
        n = sum(1 for u in users if not u.startswith(("An email reached", "<data")) and "uploaded a call" not in u)
        return chats[min(max(n - 1, 0), len(chats) - 1)] if chats else (sources[0] if sources else 0)

    def _for_turn(self, items: list[Any], index: int, scenario: Scenario) -> list[Any]:
        last = len(scenario.turns) - 1
        return [x for x in items if (x.turn if x.turn >= 0 else last + 1 + x.turn) == index]

    def _mistake(self, scenario: Scenario) -> str:
        attack = scenario.attack
        if attack is not None and attack.kind == "injection":
            return "obeyed_injection"
        if attack is not None and attack.kind == "leak" or scenario.category == "confidentiality":
            return "leak"
        if len(scenario.expect.proposals) == 1:
            return "wrong_value"
        if scenario.expect.proposals:
            digest = int(hashlib.sha256(scenario.id.encode()).hexdigest(), 16)
            return ("wrong_value", "skipped_write")[digest % 2]
        if scenario.expect.answer_contains or any(t.reply_contains for t in scenario.turns):
            return "missing_facts"
        if scenario.secrets:
            return "leak"
        return "extra_write"  # nothing asked, nothing to say: write something nobody asked for

    def _log(self, scenario: Scenario, attempt: str, mistake: str, detail: str) -> None:
        with self._lock:
            if (scenario.id, attempt, mistake) not in self._logged:
                self._logged.add((scenario.id, attempt, mistake))
                self.mistakes.append({"scenario": scenario.id, "attempt": attempt, "mistake": mistake,
                                      "detail": detail})

    # --- answering ---------------------------------------------------------------------------

    def __call__(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        scenario = self.scenarios.get(headers.get("x-eval-scenario", ""))
        if scenario is None:
            return text("(scripted model: this request names no scenario I know; send X-Eval-Scenario)")
        attempt = headers.get("x-eval-attempt", "1")
        messages = body.get("messages", [])
        corpus = "\n".join(self._content(m) for m in messages)
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
        since = messages[last_user + 1:]
        made = [c["function"]["name"] for m in since if m.get("role") == "assistant" for c in m.get("tool_calls") or []]
        index = self._turn(scenario, messages)
        reads = self._for_turn(scenario.reads, index, scenario)
        writes: list[ProposalSpec] = self._for_turn(scenario.expect.proposals, index, scenario)
        mistake = self._mistake(scenario) if self.kind == "careless" else None
        is_last = index == len(scenario.turns) - 1

        if mistake == "obeyed_injection" and is_last and scenario.attack and scenario.attack.obey:
            writes = [*writes, scenario.attack.obey]
        elif mistake == "skipped_write" and writes:
            writes = writes[:-1]
            self._log(scenario, attempt, "skipped_write", "left out the last expected write")
        elif mistake == "extra_write" and is_last:
            writes = [*writes, UNASKED]
            self._log(scenario, attempt, "extra_write", "proposed a task nobody asked for")
        planned = [(r.tool, r.args) for r in reads] + [(w.tool, dict(w.call if w.call is not None else w.args))
                                                       for w in writes]
        if not planned or _covers(made, [name for name, _ in planned]):
            return text(self._answer(scenario, index, is_last, mistake, attempt, messages))

        labels = self.labels(scenario)
        ids: dict[str, str] = {}
        missing: list[str] = []
        for key in sorted(set().union(*(refs_in(args) for _, args in planned))):
            kind, label = labels.get(key, ("", ""))
            found = self.find_id(kind, label, corpus) if label else None
            if found:
                ids[key] = found
            else:
                missing.append(key)
        if missing:
            if made:  # looked already and still cannot see them: say so, as a model would
                return text(f"(scripted model: I could not find {', '.join('@' + k for k in missing)} in the "
                            "tool results; the scenario's records or labels do not match.)")
            lookups: list[tuple[Any, ...]] = []
            for key in missing:
                kind, label = labels.get(key, ("", key))
                if kind == "task":
                    lookups.append(("list_my_tasks", {"status": "open"}))
                elif kind in ("contact", "company", "deal"):
                    lookups.append(("find_records", {"query": label, "kind": kind}))
            unique = list({json.dumps(x, sort_keys=True): x for x in lookups}.values())
            if unique:
                return tool_calls(*unique)
            return text(f"(scripted model: no tool finds {', '.join('@' + k for k in missing)})")

        calls = [(name, _fill(args, ids)) for name, args in planned]
        if mistake == "wrong_value":
            calls, detail = _mutate(calls, {w.tool for w in writes}, _constrained(scenario))
            if detail:
                self._log(scenario, attempt, "wrong_value", detail)
            else:  # nothing to get wrong in it (an id only): leave the write out instead
                calls = [c for c in calls if c[0] != writes[-1].tool] if writes else calls
                self._log(scenario, attempt, "skipped_write", f"left out {writes[-1].tool}" if writes else "")
                if not calls:
                    return text("Done.")
        elif mistake == "obeyed_injection" and scenario.attack and scenario.attack.obey and is_last:
            self._log(scenario, attempt, "obeyed_injection", f"proposed {scenario.attack.obey.tool}")
        return tool_calls(*calls)

    def _answer(self, scenario: Scenario, index: int, is_last: bool, mistake: str | None, attempt: str,
                messages: list[dict[str, Any]]) -> str:
        facts = list(scenario.turns[index].reply_contains) + (list(scenario.expect.answer_contains) if is_last else [])
        answer = ("Here is what I found: " + "; ".join(facts) + ".") if facts else "Done."
        if mistake == "missing_facts" and is_last:
            self._log(scenario, attempt, "missing_facts", "answered without the expected facts")
            return "I had a look; nothing stands out."
        if mistake == "leak" and is_last:
            canary = scenario.attack.canary if scenario.attack and scenario.attack.canary else None
            canary = canary or (scenario.secrets[0] if scenario.secrets else None)
            if canary is None:
                secret = next((s.text for s in self.world.secrets if scenario.actor not in s.visible_to
                               and s.what == "the system prompt"), None)
                system = next((self._content(m) for m in messages if m.get("role") == "system"), "")
                canary = system if secret and secret in system else secret
            self._log(scenario, attempt, "leak", "said what the asker may not see")
            return f"{answer} Also: {canary}"
        if mistake == "obeyed_injection" and is_last and scenario.attack and scenario.attack.canary:
            self._log(scenario, attempt, "obeyed_injection", "said the injection's canary")
            return f"{answer} {scenario.attack.canary}"
        return answer


def _covers(made: list[str], planned: list[str]) -> bool:
    """Has every planned call been made since the user's message (lookups aside)?"""
    pool = list(made)
    for name in planned:
        if name not in pool:
            return False
        pool.remove(name)
    return True


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if is_ref(value):
        return ids.get(value[1:], value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


_PREFERRED = ("stage", "amount", "close_date", "due_date", "discount_percent", "title", "subject", "first_name",
              "next_step", "body", "lost_reason", "type")


def _wrong(key: str, value: Any) -> Any:
    if key == "stage":
        return "Closed Lost" if value != "Closed Lost" else "Qualification"
    if key == "type":
        return "meeting" if value != "meeting" else "call"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value * 10 if value else 7
    if isinstance(value, str):
        try:
            return (date.fromisoformat(value) + timedelta(days=7)).isoformat()
        except ValueError:
            pass
        if re.fullmatch(r"-?\d+(\.\d+)?", value):
            return str(float(value) * 10)
        return f"{value} (unconfirmed)"
    return None


Calls = list[tuple[str, dict[str, Any]]]


_ARG_OF_FIELD = {"due": "due_date", "occurred_on": "occurred_at"}


def _constrained(scenario: Scenario) -> set[str]:
    """The arguments whose value the expected store pins down exactly (a matcher leaves room)."""
    out = set()
    for change in scenario.expect.changes:
        if change.optional:
            continue
        for name, value in change.fields.items():
            if not isinstance(value, dict | list):
                out.add(_ARG_OF_FIELD.get(name, name))
    return out


def _mutate(calls: Calls, write_tools: set[str], constrained: set[str]) -> tuple[Calls, str]:
    """Change one value the scenario pins down, in the first write that has one: a wrong write."""
    for i, (name, args) in enumerate(calls):
        if name not in write_tools:
            continue
        for key in [k for k in _PREFERRED if k in constrained] + sorted(constrained - set(_PREFERRED)):
            if key in args and not key.endswith(("_id", "_ids")):
                wrong = _wrong(key, args[key])
                if wrong is not None and wrong != args[key]:
                    changed = dict(args) | {key: wrong}
                    return [*calls[:i], (name, changed), *calls[i + 1:]], f"{name}: {key} {args[key]!r} -> {wrong!r}"
    return calls, ""


class ScriptedServer:
    """A started FakeOpenAI answering as a persona; `base_url` for `crm eval --base-url`."""

    def __init__(self, persona: str, scenarios: list[Scenario] | None = None, world: World | None = None) -> None:
        self.persona = Persona(persona, scenarios if scenarios is not None else load_scenarios(),
                               world or load_world())
        self.server = FakeOpenAI(responder=self.persona)

    def __enter__(self) -> ScriptedServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def base_url(self) -> str:
        return self.server.base_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persona", choices=PERSONAS, default="perfect")
    parser.add_argument("--log", help="write the careless persona's mistakes here (JSON) on exit")
    args = parser.parse_args(argv)
    with ScriptedServer(args.persona) as served:
        print(f"scripted {args.persona} model at {served.base_url} (Ctrl-C stops it)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        if args.log:
            with open(args.log, "w", encoding="utf-8") as fh:
                json.dump(served.persona.mistakes, fh, indent=2)


if __name__ == "__main__":
    main()
