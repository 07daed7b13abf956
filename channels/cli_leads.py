"""`crm leads`: train and apply the lead score, route unassigned leads, explain a score.

Human admin commands: like `crm import`, they write directly (no proposal to approve), as
the workspace's admin or, with --as, as a named manager or admin. The agent's `route_leads`
tool proposes the same routing for approval instead.

Registered in channels/cli.py:

    from channels.cli_leads import leads_app  # noqa: E402
    app.add_typer(leads_app, name="leads")
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from channels.cli_common import WorkspaceOpt, console

leads_app = typer.Typer(
    help="Lead score and lead routing. Admin commands: they write directly (like `crm import`), "
         "no approval step; the agent only proposes routing.",
    no_args_is_help=True)

AsOpt = Annotated[str | None, typer.Option("--as", help="Act as this user (email), a manager or admin; "
                                                        "default: the workspace's admin.")]


def _actor(session: Any, ws: Any, as_email: str | None) -> Any:
    from channels.cli_data import _actor as data_actor

    return data_actor(session, ws, as_email)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(report: dict[str, Any]) -> None:
    """The training report: Brier and AUC against the baseline, then the reliability tables side by side."""
    ex = report["examples"]
    console.print(f"lead score trained on {ex['train']} contacts, tested on the {ex['test']} created since "
                  f"{report['split']['test_from'][:10]} ({ex['test_converted']} of them converted)")
    console.print(f"history: {ex['converted']} converted, {ex['unconverted']} not"
                  + (f"; left out: {ex['excluded_unknown_conversion_time']} converted at an unknown time"
                     if ex["excluded_unknown_conversion_time"] else "")
                  + (f", {ex['excluded_other_stage']} at lifecycle 'other'" if ex["excluded_other_stage"] else ""))
    model, base = report["model"], report["baseline"]
    table = Table("on the held-out contacts", "model", f"baseline ({base['p']:.0%} for everyone)",
                  title="Calibration and ranking (lower Brier is better; AUC 0.5 = no ranking)")
    table.add_row("Brier score", _num(model["brier"]), _num(base["brier"]))
    table.add_row("ROC AUC", _num(model["auc"]), _num(base["auc"]))
    table.add_row("log loss", _num(model["log_loss"]), _num(base["log_loss"]))
    table.add_row("calibration error (ECE)", _num(model["ece"]), _num(base["ece"]))
    console.print(table)
    rel = Table("predicted", "model: leads", "said", "converted", "baseline: leads", "said", "converted",
                title="Reliability: what each said against what happened")
    for m, b in zip(model["reliability"], base["reliability"], strict=True):
        if not m["examples"] and not b["examples"]:
            continue
        rel.add_row(f"{m['lo']:.0%}-{m['hi']:.0%}", str(m["examples"]), _pct(m["predicted"]), _pct(m["observed"]),
                    str(b["examples"]), _pct(b["predicted"]), _pct(b["observed"]))
    console.print(rel)
    weights = Table("feature", "group", "weight", title="Strongest features (per standard deviation)")
    for w in report["weights"][:10]:
        weights.add_row(w["feature"].split(":", 1)[1], w["group"], f"{w['coef']:+.2f}")
    console.print(weights)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


@leads_app.command("train")
def train_cmd(workspace: WorkspaceOpt = None) -> None:
    """Learn the lead score from which contacts converted; print its report against the baseline.

    The newest model is the one in use; `crm leads score` writes the scores. Writes directly (admin command).
    """
    from channels.cli_common import _fail, _workspace
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services.lead_scoring import train_lead_score

    try:
        with unit_of_work() as session:
            ws = _workspace(session, workspace)
            actor = _actor(session, ws, None)
            row, report = train_lead_score(session, workspace_id=ws.id, trained_by_id=actor.user_id)
            model_id = row.id
    except CRMError as exc:
        _fail(exc.message)
    print_report(report)
    console.print(f"[green]saved[/green] model {model_id}; run `crm leads score` to score the leads with it")


@leads_app.command("score")
def score_cmd(workspace: WorkspaceOpt = None,
              top: Annotated[int, typer.Option(help="Show this many best-scored leads.")] = 10) -> None:
    """Write every lead's score (lifecycle subscriber to SQL) from the model in use.

    Scores are derived data (like the search index): written directly, no approval, no audit entry.
    """
    from channels.cli_common import _fail, _workspace
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services.crm import best_leads
    from store.services.lead_features import LEAD_STAGES
    from store.services.lead_scoring import score_leads

    try:
        with unit_of_work() as session:
            ws = _workspace(session, workspace)
            counts = score_leads(session, workspace_id=ws.id)
            best = best_leads(session, workspace_id=ws.id, stages=LEAD_STAGES, limit=top)
            rows = [(c.lead_score, c.full_name, c.email or "-", name or "-", c.title or "-") for c, name in best]
    except CRMError as exc:
        _fail(exc.message)
    console.print(f"scored {counts['leads']} leads ({counts['changed']} changed) with the model trained "
                  f"{counts['trained_at']:%Y-%m-%d %H:%M}")
    if rows:
        table = Table("score", "lead", "email", "company", "title", title=f"Top {len(rows)} leads")
        for score, *rest in rows:
            table.add_row(str(score), *rest)
        console.print(table)


@leads_app.command("route")
def route_cmd(dry_run: Annotated[bool, typer.Option("--dry-run", help="Show who would get each lead; write "
                                                                      "nothing.")] = False,
              workspace: WorkspaceOpt = None, as_email: AsOpt = None) -> None:
    """Route every unassigned lead by the territory rules, round-robin within capacity; print each and why.

    Writes directly (admin command): owners are set and every outcome is logged with its reason.
    """
    from channels.cli_common import _fail, _workspace
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services.lead_routing import route_unassigned

    try:
        with unit_of_work() as session:
            ws = _workspace(session, workspace)
            actor = _actor(session, ws, as_email)
            done = route_unassigned(session, actor=actor, dry_run=dry_run)
            if dry_run:
                session.rollback()
    except CRMError as exc:
        _fail(exc.message)
    if not done:
        console.print("no unassigned leads")
        return
    for a in done:  # one plain line per lead, never wrapped: easy to read back or grep
        lead = a.contact + (f" ({a.company})" if a.company else "")
        typer.echo(f"{lead} -> {a.user if a.assigned else 'unassigned'}: {a.reason}")
    assigned = sum(a.assigned for a in done)
    verb = "would be assigned (dry run: nothing was written)" if dry_run else "assigned"
    console.print(f"{len(done)} leads: {assigned} {verb}, {len(done) - assigned} left unassigned")


@leads_app.command("explain")
def explain_cmd(email: Annotated[str, typer.Argument(help="The contact's email address.")],
                workspace: WorkspaceOpt = None, as_email: AsOpt = None) -> None:
    """Explain one contact's lead score: fit, engagement and the top reasons."""
    from channels.cli_common import _fail, _workspace
    from store.db import unit_of_work
    from store.errors import CRMError
    from store.services.lead_scoring import contact_by_email, explain_lead

    try:
        with unit_of_work(readonly=True) as session:
            ws = _workspace(session, workspace)
            actor = _actor(session, ws, as_email)
            contact = contact_by_email(session, actor, email)
            explanation = explain_lead(session, actor, contact.id)
    except CRMError as exc:
        _fail(exc.message)
    console.print(explanation.text(top=6), highlight=False)
