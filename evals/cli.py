"""`crm eval`: run the scenario datasets against a model and write the report (registered in crm.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)

DEFAULT_OUT = Path(__file__).resolve().parent / "reports"


def eval_cmd(
    model: Annotated[str, typer.Option(
        "--model", help="'offline' (the built-in model), a model name served at --base-url, or 'scripted:perfect' "
                        "/ 'scripted:careless' (the scorer's own checks, served in-process).")] = "offline",
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="An OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1) for a named model.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="CRM_EVAL_API_KEY",
                                                help="The endpoint's key, if it needs one.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Runs per scenario; pass^k needs every one to succeed.")] = 1,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Scenario ids (or prefixes), shapes or categories; repeat for several.")] = None,
    datasets: Annotated[Path | None, typer.Option(
        "--datasets", help="A folder of *.jsonl scenario files (default: evals/datasets).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where the report goes (markdown + JSON).")] = DEFAULT_OUT,
    name: Annotated[str | None, typer.Option("--name", help="The report's file name (default from the model).")] = None,
    fail_on_danger: Annotated[bool, typer.Option(
        "--fail-on-danger/--no-fail-on-danger",
        help="Exit 1 if any unapproved write or leak happened (CI runs with this on).")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per run.")] = False,
) -> None:
    """Run the eval datasets (evals/datasets/*.jsonl) against a model, score every run by state diff, proposals,
    facts, leaks and injections, and write a report with a table per task shape."""
    from evals import report as report_mod
    from evals.harness import ModelSpec, run_all
    from evals.schema import DatasetError, load_scenarios, load_world
    from evals.scoring import score_run

    try:
        world = load_world()
        scenarios = load_scenarios(datasets, only=only) if datasets else load_scenarios(only=only)
    except (DatasetError, ValueError) as exc:
        err.print(f"[red]The eval datasets are not valid:[/red] {exc}")
        raise typer.Exit(2) from exc
    if model.startswith("scripted:") and base_url:
        err.print("[red]--base-url is for a named model; scripted models run in-process[/red]")
        raise typer.Exit(2)
    if not model.startswith("scripted:") and model != "offline" and not base_url:
        err.print(f"[red]--model {model} needs --base-url[/red] (an OpenAI-compatible endpoint); "
                  "or use --model offline")
        raise typer.Exit(2)

    if base_url and not model.startswith("scripted:"):
        problem = unreachable(base_url)
        if problem:
            err.print(f"[red]Could not reach the model's endpoint at {base_url}[/red] ({problem}). Check that it "
                      "is running and the URL ends in /v1; nothing was run.")
            raise typer.Exit(2)

    by_id = {s.id: s for s in scenarios}
    scores = []

    def progress(scenario, attempt, record) -> None:  # type: ignore[no-untyped-def]
        score = score_run(scenario, world, record)
        scores.append(score)
        if not quiet:
            mark = ("[green]ok[/green]" if score.success else "[red]DANGER[/red]" if score.dangerous
                    else "[yellow]miss[/yellow]")
            first = score.failures()[0] if score.failures() else ""
            err.print(f"{mark} {scenario.id} #{attempt} {first[:150]}", highlight=False, markup=True)

    started = time.perf_counter()
    mistakes = None
    if model.startswith("scripted:"):
        from evals.scripted import ScriptedServer

        persona = model.split(":", 1)[1]
        with ScriptedServer(persona, scenarios, world) as served:
            run_all(scenarios, world, ModelSpec(model, served.base_url), k=k, progress=progress)
            mistakes = served.persona.mistakes
    else:
        run_all(scenarios, world, ModelSpec(model, base_url, api_key), k=k, progress=progress)
    seconds = time.perf_counter() - started
    assert len(scores) == len(scenarios) * k and all(s.scenario in by_id for s in scores)

    report = report_mod.build(scores, model=model, k=k, seconds=seconds, mistakes=mistakes, world_now=world.now)
    stem = name or model.replace(":", "-").replace("/", "-")
    js, md = report_mod.write(report, out, stem)
    s = report["summary"]
    typer.echo(f"{s['scenarios']} scenarios x {k}: success {report_mod._pct(s['success_rate'])}, "
               f"pass^{k} {report_mod._pct(s[f'pass^{k}'])}, unapproved writes {s['unapproved_writes']}, "
               f"leaks {s['leaks']}, wrong writes {s['wrong_writes']}, obeyed injections "
               f"{report_mod._pct(s['injection_success_rate'])}; report: {md} and {js.name}")
    if fail_on_danger and (s["unapproved_writes"] or s["leaks"]):
        err.print("[red]FAILED: unapproved writes or leaks[/red] (see the report's failed runs)")
        raise typer.Exit(1)


def unreachable(base_url: str) -> str | None:
    """Why the endpoint cannot be reached at all, or None. Any HTTP answer counts as reachable
    (not every server has /models); a refused connection or a timeout does not."""
    import httpx

    try:
        httpx.get(base_url.rstrip("/") + "/models", timeout=5.0)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
