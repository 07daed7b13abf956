"""Charts: the pipeline and forecast as PNG images, with the same numbers as text.

The model reads the text (so it can answer with numbers); the image travels beside it as a
`ToolOutput` file for the channel to upload (Slack) or show (web chat). This module is the tool:
what to chart and the text; tools/chart_drawing.py draws it and tools/chart_files.py keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from store.services import analytics as analytics_service
from store.services import dashboard as dashboard_service
from store.services import org
from store.services import pipeline as pipeline_service
from tools.base import ToolContext, ToolOutput, read_tool
from tools.chart_drawing import (
    AMOUNT,
    CATEGORY_COLORS,
    MOVED_ON,
    WEIGHTED,
    WON,
    Bars,
    Measures,
    Series,
    bar_label,
    compact,
    render,
    render_measures,
)
from tools.chart_files import keep_chart
from tools.read import AnalyticsArgs, ForecastArgs, forecast_summary, money, pipeline_analytics
from tools.scope import (
    END_HELP,
    REP_HELP,
    SCOPE_HELP,
    START_HELP,
    TEAM_HELP,
    Period,
    ScopeName,
    resolve_period,
    resolve_scope,
    with_heading,
)

MAX_BARS = 12  # owners beyond this are listed in the text only

What = Literal["pipeline_by_stage", "pipeline_by_owner", "forecast_by_category", "forecast_by_rep", "win_rate",
               "stage_conversion", "days_in_stage", "activity_counts"]
ANALYTICS = ("win_rate", "stage_conversion", "days_in_stage", "activity_counts")  # pipeline_analytics' metrics


class ChartArgs(BaseModel):
    what: What = Field(
        description="pipeline_by_stage: open deals per stage; pipeline_by_owner: open deals per rep; "
                    "forecast_by_category: closed won, commit, best case, pipeline and weighted for a period; "
                    "forecast_by_rep: the same per rep; win_rate: won / (won + lost) of deals closed in the period "
                    "(with `by`: per source or per rep); stage_conversion: per stage, the share of deals that "
                    "entered it in the period and later moved on or were won; days_in_stage: median and average "
                    "days per stage; activity_counts: activities per rep.")
    scope: ScopeName | None = Field(None, description=SCOPE_HELP)
    rep: str | None = Field(None, description=REP_HELP)
    team: str | None = Field(None, description=TEAM_HELP)
    period: Period = Field("this_quarter", description="The forecast's or the analytics' period (the open pipeline "
                                                       "is as of today).")
    start: date | None = Field(None, description=START_HELP)
    end: date | None = Field(None, description=END_HELP)
    by: Literal["source", "owner"] | None = Field(None, description="win_rate only: one bar per deal source or per "
                                                                     "owner (rep).")


@read_tool(ChartArgs)
def chart(ctx: ToolContext, args: ChartArgs) -> ToolOutput | str:
    """Draw a chart the user sees as an image next to your answer: the open pipeline by stage or by
    rep; the forecast for a period by category or by rep; or pipeline analytics for a period: win rate
    (overall, by source or by rep), stage conversion, days in stage, activity counts per rep. Use it
    when the user asks for a chart, graph or plot. Returns the charted numbers (for analytics, exactly
    pipeline_analytics' answer): answer with them and say the chart is attached; never describe an
    image you did not get."""
    answered = resolve_scope(ctx, args.scope, args.rep, args.team)
    scope, who = answered.scope, answered.label
    drawing: Bars | Measures | None
    if args.what in ANALYTICS:
        lines, drawing = _analytics(ctx, args, scope, who)
    elif args.what == "forecast_by_category":
        lines, drawing = _forecast(ctx, args, scope, who)
    elif args.what == "forecast_by_rep":
        lines, drawing = _forecast_by_rep(ctx, args, scope, who)
    else:
        lines, drawing = _pipeline(ctx, scope, who, by_owner=args.what == "pipeline_by_owner")
    if drawing is None:
        return with_heading(answered, lines)
    if answered.refused:  # said on the image too: it travels without the text
        note = f"Not shown: {answered.refused}."
        drawing.note = f"{note} {drawing.note}".strip()
    png = render(drawing) if isinstance(drawing, Bars) else render_measures(drawing)
    name = args.what + (f"_by_{args.by}" if args.what == "win_rate" and args.by else "")
    kept = keep_chart(png, name=name, title=drawing.title, today=ctx.today)
    lines.append(f"Chart attached: {drawing.title}")
    return ToolOutput(text=with_heading(answered, lines), files=[kept])


def _pipeline(ctx: ToolContext, scope: pipeline_service.Scope, who: str,
              *, by_owner: bool) -> tuple[list[str], Bars | None]:
    session, actor = ctx.session, ctx.actor
    rows: list[pipeline_service.StageLine] | list[pipeline_service.OwnerLine]
    if by_owner:
        rows = pipeline_service.pipeline_by_owner(session, actor=actor, scope=scope)
        names = [r.owner for r in rows]
        head = f"Open pipeline by rep ({who}):"
    else:
        rows = pipeline_service.pipeline_by_stage(session, actor=actor, scope=scope)
        names = [r.stage for r in rows]
        head = f"Open pipeline ({who}):"
    if not rows:
        return [f"No open deals in scope {who}: nothing to chart."], None
    lines = [head] + [f"- {name}: {r.deals} deals, {money(r.amount)} (weighted {money(r.weighted)})"
                      for name, r in zip(names, rows, strict=True)]
    lines.append(f"Total: {sum(r.deals for r in rows)} open deals.")
    currency, others = _chart_currency(ctx, [r.amount for r in rows])
    bars = [(f"{name}\n{_deals(r.deals)}", r.amount.get(currency, Decimal(0)), r.weighted.get(currency, Decimal(0)),
             _also(r.amount, currency)) for name, r in zip(names, rows, strict=True)]
    notes = [_others_note(currency, others)] if others else []
    lines += [note.replace("in the text", "above") for note in notes]
    if by_owner:
        bars.sort(key=lambda bar: -bar[1])  # the biggest book on top
        if len(bars) > MAX_BARS:
            notes.insert(0, f"The {MAX_BARS} largest of {len(bars)} owners are drawn; the text lists all.")
            bars = bars[:MAX_BARS]
    title = f"Open pipeline by {'rep' if by_owner else 'stage'} · {who} · as of {_day(ctx.today)}"
    return lines, Bars(title, [b[0] for b in bars], [b[1] for b in bars], [b[2] for b in bars], currency,
                       also=[b[3] for b in bars], note=" ".join(notes), horizontal=by_owner or len(bars) > 6)


def _forecast(ctx: ToolContext, args: ChartArgs, scope: pipeline_service.Scope,
              who: str) -> tuple[list[str], Bars | None]:
    """forecast_summary's answer (the model's numbers), and its categories as bars."""
    start, end, _label = resolve_period(ctx, args.period, args.start, args.end)
    fc = pipeline_service.forecast(ctx.session, actor=ctx.actor, scope=scope, start=start, end=end)
    summary = str(forecast_summary.run(ctx, ForecastArgs(period=args.period, start=args.start, end=args.end,
                                                         scope=args.scope, rep=args.rep, team=args.team)))
    if not fc.open_deals and not fc.won_deals:
        return [summary, "No deals close in this period: nothing to chart."], None
    buckets = {f"Closed won\n{_deals(fc.won_deals)}": fc.closed_won, "Commit": fc.commit, "Best case": fc.best_case,
               "Pipeline": fc.pipeline, f"Weighted open\n{_deals(fc.open_deals, 'open deal')}": fc.weighted}
    currency, others = _chart_currency(ctx, buckets.values())
    note = _others_note(currency, others) if others else ""
    lines = [summary] + ([note.replace("in the text", "above")] if note else [])
    name = _period_title(args, start, end)
    title = " · ".join([f"Forecast {name}" if name else "Forecast", who, _span(start, end)])
    return lines, Bars(title, list(buckets), [b.get(currency, Decimal(0)) for b in buckets.values()], None, currency,
                       also=[_also(b, currency) for b in buckets.values()], note=note)


FORECAST_PARTS = (("Closed won", "closed_won"), ("Commit", "commit"), ("Best case", "best_case"),
                  ("Pipeline", "pipeline"))


def _forecast_by_rep(ctx: ToolContext, args: ChartArgs, scope: pipeline_service.Scope,
                     who: str) -> tuple[list[str], Measures | None]:
    """The forecast per owner (the dashboard's numbers): closed won, commit, best case and pipeline stacked."""
    start, end, label = resolve_period(ctx, args.period, args.start, args.end)
    reps = dashboard_service.forecast_by_owner(ctx.session, actor=ctx.actor, scope=scope, start=start, end=end)
    head = f"Forecast by rep {label}, scope {who}"
    if not any(r.open_deals or r.won_deals for r in reps):
        return [f"{head}: no deals close in this period, nothing to chart."], None
    lines = [f"{head}:"]
    for r in reps:
        att = r.attainment
        quota = (f"; quota {r.quota:,.0f} {r.quota_currency}, attainment {att.closed_won:.0%} (closed won), "
                 f"{att.with_commit:.0%} with commit") if att is not None and r.quota is not None else ""
        lines.append(f"- {r.owner}: closed won {money(r.closed_won)} ({r.won_deals} deals), commit {money(r.commit)}, "
                     f"best case {money(r.best_case)}, pipeline {money(r.pipeline)}, weighted open "
                     f"{money(r.weighted)} ({r.open_deals} open deals){quota}")
    currency, others = _chart_currency(ctx, [getattr(r, attr) for r in reps for _, attr in FORECAST_PARTS])
    notes = [_others_note(currency, others)] if others else []
    lines += [note.replace("in the text", "above") for note in notes]
    drawn = reps[:MAX_BARS]
    if len(reps) > MAX_BARS:
        notes.insert(0, f"The first {MAX_BARS} of {len(reps)} reps are drawn; the text lists all.")
    series = [Series(name, [float(getattr(r, attr).get(currency, 0)) for r in drawn], [], CATEGORY_COLORS[name])
              for name, attr in FORECAST_PARTS]
    labels = []
    for r in drawn:
        sums: dict[str, Decimal] = {}
        for _, attr in FORECAST_PARTS:
            for c, amount in getattr(r, attr).items():
                sums[c] = sums.get(c, Decimal(0)) + amount
        also = _also(sums, currency)
        labels.append(" · ".join(bar_label(float(sums.get(currency, 0)), currency, also, None)
                                 + ([f"{r.attainment.closed_won:.0%} of quota won"] if r.attainment else [])))
    series[-1].labels = labels
    name = _period_title(args, start, end)
    title = " · ".join([f"Forecast by rep {name}" if name else "Forecast by rep", who, _span(start, end)])
    return lines, Measures(title, [r.owner for r in drawn], series, "money", f"Amount ({currency})",
                           note=" ".join(notes), horizontal=True, stacked=True)


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"  # as pipeline_analytics writes it


def _analytics(ctx: ToolContext, args: ChartArgs, scope: pipeline_service.Scope,
               who: str) -> tuple[list[str], Measures | None]:
    """pipeline_analytics' answer for the same arguments (the model's numbers), and the same service
    results as bars."""
    by = args.by if args.what == "win_rate" else None
    text = str(pipeline_analytics.run(ctx, AnalyticsArgs(metric=args.what, period=args.period, start=args.start,
                                                         end=args.end, scope=args.scope, rep=args.rep,
                                                         team=args.team, by=by)))
    start, end, _label = resolve_period(ctx, args.period, args.start, args.end)
    kw: dict[str, Any] = {"actor": ctx.actor, "scope": scope, "tz": ctx.tz, "start": start, "end": end}
    session = ctx.session
    when = _period_title(args, start, end) or _span(start, end)
    if args.what == "win_rate":
        wr = analytics_service.win_rate(session, by=by, **kw)
        if not wr.total.closed:
            return [text, "No deal was won or lost in this period: nothing to chart."], None
        lines = wr.lines if by else [wr.total]
        groups = [line.group for line in lines] if by else ["All closed deals"]
        series = [Series("Win rate", [line.rate for line in lines],
                         [f"{_pct(line.rate)} · {line.won} won, {line.lost} lost" if line.closed else
                          "n/a · no closed deals" for line in lines], WEIGHTED)]
        total = f"{_pct(wr.total.rate)} ({wr.total.won} won, {wr.total.lost} lost)"
        reference = (f"All: {total}", wr.total.rate) if by and wr.total.rate is not None else None
        title = f"Win rate by {'rep' if by == 'owner' else 'source'}" if by else "Win rate"
        measures = Measures(f"{title} · {who} · {when}", groups, series, "percent", "Win rate",
                            note="Win rate = won / (won + lost), of the deals closed in the period.",
                            horizontal=True, reference=reference)
    elif args.what == "stage_conversion":
        conv = analytics_service.stage_conversion(session, **kw)
        if not conv:
            return [text, "Nothing to chart."], None
        several = len({c.pipeline for c in conv}) > 1
        groups = [f"{c.stage}{f' ({c.pipeline})' if several else ''}\n{c.entered} entered" for c in conv]
        series = [Series("Moved on to a later stage", [c.conversion for c in conv],
                         [f"{_pct(c.conversion)}\n{c.advanced} of {c.entered}" for c in conv], MOVED_ON),
                  Series("Won", [c.win_rate for c in conv], [f"{_pct(c.win_rate)}\n{c.won} of {c.entered}"
                                                             for c in conv], WON)]
        measures = Measures(f"Stage conversion · {who} · {when}", groups, series, "percent",
                            "Share of the deals that entered",
                            note="Of the deals that entered each stage in the period: how many later moved on, "
                                 "and how many were won.", horizontal=len(groups) > 6)
    elif args.what == "days_in_stage":
        times = analytics_service.days_in_stage(session, **kw)
        if not times:
            return [text, "Nothing to chart."], None
        several = len({t.pipeline for t in times}) > 1
        groups = [f"{t.stage}{f' ({t.pipeline})' if several else ''}\n{_deals(t.stays, 'stay')}" for t in times]
        series = [Series("Median", [t.median_days for t in times], [f"{t.median_days} d" for t in times], WEIGHTED),
                  Series("Average", [t.average_days for t in times], [f"{t.average_days} d" for t in times],
                         AMOUNT)]
        measures = Measures(f"Days in stage · {who} · {when}", groups, series, "days", "Days in stage",
                            note="Over the stays in a stage that ended in the period (the deal moved on).",
                            horizontal=len(groups) > 6)
    else:
        reps = analytics_service.activity_counts(session, **kw)
        if not reps:
            return [text, "Nothing to chart."], None
        series = [Series("Activities", [float(r.total) for r in reps],
                         [f"{r.total} · {', '.join(f'{n} {t}' for t, n in sorted(r.by_type.items()))}" for r in reps],
                         WEIGHTED)]
        measures = Measures(f"Activities by rep · {who} · {when}", [r.owner for r in reps], series, "count",
                            "Activities logged", horizontal=True)
    lines = [text]
    if len(measures.groups) > MAX_BARS:
        measures.note = f"The first {MAX_BARS} of {len(measures.groups)} are drawn; the text lists all. {measures.note}"
        measures.groups = measures.groups[:MAX_BARS]
        for s in measures.series:
            s.values, s.labels = s.values[:MAX_BARS], s.labels[:MAX_BARS]
    return lines, measures


def _chart_currency(ctx: ToolContext, amounts: Iterable[dict[str, Decimal]]) -> tuple[str, list[str]]:
    """The workspace currency when the data has it, else the largest one; and the others."""
    totals: dict[str, Decimal] = {}
    for bucket in amounts:
        for currency, amount in bucket.items():
            totals[currency] = totals.get(currency, Decimal(0)) + amount
    ws = org.workspace_by_id(ctx.session, ctx.actor.workspace_id)
    default = ws.default_currency if ws else "USD"
    chosen = default if default in totals or not totals else max(sorted(totals), key=lambda c: totals[c])
    return chosen, sorted(c for c in totals if c != chosen)


def _others_note(currency: str, others: list[str]) -> str:
    return f"Bars show {currency} amounts only; {', '.join(others)} amounts are listed in the text."


def _also(amounts: dict[str, Decimal], charted: str) -> str:
    return " + ".join(f"{compact(a)} {c}" for c, a in sorted(amounts.items()) if c != charted and a)


def _deals(n: int, word: str = "deal") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _day(day: date, *, year: bool = True) -> str:
    return f"{day.day} {day:%b}" + (f" {day.year}" if year else "")


def _period_title(args: ChartArgs, start: date, end: date) -> str | None:
    """"Q4 2026", "November 2026", "2026"; None for custom dates (the span says it)."""
    if args.start is not None:
        return None
    unit = args.period.partition("_")[2]
    if unit == "year":
        return str(start.year)
    return f"Q{(start.month - 1) // 3 + 1} {start.year}" if unit == "quarter" else f"{start:%B %Y}"


def _span(start: date, end: date) -> str:
    return f"{_day(start, year=start.year != end.year)} – {_day(end)}"
