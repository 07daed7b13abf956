"""Charts: the pipeline and forecast as PNG images, with the same numbers as text.

The model reads the text (so it can answer with numbers); the image travels beside it as a
`ToolOutput` file for the channel to upload (Slack) or show (web chat). Images are drawn with
matplotlib's object API on the Agg canvas: one `Figure` per call and no pyplot, so concurrent
requests share no drawing state.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from store import files
from store.services import analytics as analytics_service
from store.services import dashboard as dashboard_service
from store.services import org
from store.services import pipeline as pipeline_service
from store.settings import get_settings
from tools.base import ToolContext, ToolOutput, read_tool
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

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

WIDTH, HEIGHT, DPI = 9, 5, 100  # 900 x 500 px: readable in a Slack thread and on a phone
MAX_BARS = 12  # owners beyond this are listed in the text only
BAR = 0.62  # bar width, of the space per bar
INK, MUTED, GRID = "#1F2933", "#616E7C", "#E4E7EB"
AMOUNT, WEIGHTED = "#A9C7E8", "#2F6DB5"
CATEGORY_COLORS = {"Closed won": "#2E9E6B", "Commit": "#2F6DB5", "Best case": "#6FA1DB",
                   "Pipeline": "#A9C7E8", "Weighted open": "#F0A04B"}
WON, MOVED_ON, REFERENCE = "#2E9E6B", "#6FA1DB", "#D9822B"


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


@dataclass
class Bars:
    """What one chart draws: a label per bar and its amount (and weighted part) in one currency."""

    title: str
    labels: list[str]
    amounts: list[Decimal]
    weighted: list[Decimal] | None
    currency: str
    also: list[str] = field(default_factory=list)  # per bar: its amounts in other currencies, not drawn
    note: str = ""  # under the chart
    horizontal: bool = False  # bars to the right: long labels (names) stay readable


@dataclass
class Series:
    """One measure across the groups: a value (None: n/a, not drawn) and the text beside each bar."""

    name: str
    values: list[float | None]
    labels: list[str]
    color: str


@dataclass
class Measures:
    """What an analytics chart draws: per group (a source, rep or stage) one bar per series."""

    title: str
    groups: list[str]
    series: list[Series]
    unit: Literal["percent", "days", "count", "money"]
    axis: str  # the value axis' label
    note: str = ""
    horizontal: bool = False
    stacked: bool = False  # the series on top of each other; the last one's labels at the end of the stack
    reference: tuple[str, float] | None = None  # a dashed line across the bars: ("All: 80% ...", 0.8)


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
    path = files.keep(get_settings().files_dir / "charts", png, suffix=".png").resolve()
    name = args.what + (f"_by_{args.by}" if args.what == "win_rate" and args.by else "")
    filename = f"{name.replace('_', '-')}-{ctx.today.isoformat()}.png"
    lines.append(f"Chart attached: {drawing.title}")
    return ToolOutput(text=with_heading(answered, lines), files=[{"path": str(path), "filename": filename,
                                                     "title": drawing.title, "mimetype": "image/png"}])


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
        labels.append(" · ".join(_value(float(sums.get(currency, 0)), currency, also, None)
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


# --- drawing ----------------------------------------------------------------------------------


def compact(value: Decimal | float) -> str:
    """Three significant digits: 1250000 -> 1.25M, 350000 -> 350k, 9600 -> 9.6k, 950 -> 950."""
    v = float(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size * 0.9995:
            n = v / size
            digits = 0 if abs(n) >= 99.95 else 1 if abs(n) >= 9.995 else 2
            return f"{n:.{digits}f}".rstrip("0").rstrip(".") + suffix if digits else f"{n:.0f}{suffix}"
    return f"{v:.0f}"


def render(bars: Bars) -> bytes:
    """The chart as PNG bytes, WIDTH x HEIGHT inches at DPI."""
    # Imported here: matplotlib takes a moment to load, and only charts need it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    fig.suptitle(bars.title, x=0.012, ha="left", fontsize=13, fontweight="bold", color=INK)
    if bars.note:  # a figure label, so the layout keeps room for it
        fig.supxlabel(bars.note, x=0.012, ha="left", fontsize=9, color=MUTED)
    ax = fig.add_subplot()
    horizontal = bars.horizontal
    positions = list(range(len(bars.labels)))
    draw = ax.barh if horizontal else ax.bar
    amounts = [float(a) for a in bars.amounts]
    also = bars.also or [""] * len(amounts)
    weighted = [float(w) for w in bars.weighted] if bars.weighted is not None else None
    # Side by side on a horizontal bar (rows are close together), stacked above a vertical one.
    sep = " · " if horizontal else "\n"
    labels = [sep.join(_value(a, bars.currency, more, weighted[i] if weighted else None))
              for i, (a, more) in enumerate(zip(amounts, also, strict=True))]
    if weighted is None:
        colors = [CATEGORY_COLORS.get(label.split("\n")[0], WEIGHTED) for label in bars.labels]
        drawn = draw(positions, amounts, BAR, color=colors)
        texts = ax.bar_label(drawn, labels=labels, padding=4, fontsize=10, color=INK, fontweight="bold")
    else:
        drawn = draw(positions, amounts, BAR, color=AMOUNT, label="Open amount")
        draw(positions, weighted, BAR, color=WEIGHTED, label="Weighted by win probability")
        texts = ax.bar_label(drawn, labels=labels, padding=4, fontsize=9, color=INK)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncol=2, frameon=False, fontsize=9, labelcolor=INK,
                  borderaxespad=0.2, handlelength=1.2)
    if horizontal:
        ax.set_yticks(positions, [label.replace("\n", " · ") for label in bars.labels])
        pad = max(0.0, (4 - len(positions)) / 2)  # two reps get two bars of a normal size, centred
        ax.set_ylim(len(positions) - 0.5 + pad, -0.5 - pad)  # top to bottom: the first bar on top
    else:
        ax.set_xticks(positions, bars.labels)
    _style(ax, bars.currency, horizontal)
    if not any(amounts):  # deals without amounts: a flat chart, and one tick rather than 0, 0, 0
        (ax.set_xlim if horizontal else ax.set_ylim)(0, 1)
        (ax.set_xticks if horizontal else ax.set_yticks)([0])
    _fit(fig, ax, texts, horizontal)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def render_measures(m: Measures) -> bytes:
    """An analytics chart as PNG bytes, the size of `render`'s: grouped (or stacked) bars, a percent
    axis for rates; an n/a value gets its label at the axis and no bar (it is not 0%)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, PercentFormatter

    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    fig.suptitle(m.title, x=0.012, ha="left", fontsize=13, fontweight="bold", color=INK)
    if m.note:
        fig.supxlabel(m.note, x=0.012, ha="left", fontsize=9, color=MUTED)
    ax = fig.add_subplot()
    h = m.horizontal
    sep = " · " if h else "\n"
    n = 1 if m.stacked else len(m.series)
    width = BAR / n
    base = [0.0] * len(m.groups)  # stacked: where the next series starts
    texts: list[Text] = []
    for k, s in enumerate(m.series):
        shift = (k - (n - 1) / 2) * width if not m.stacked else 0.0
        shown = [i for i, v in enumerate(s.values) if v is not None]
        values = [float(s.values[i] or 0) for i in shown]
        offsets = [base[i] for i in shown]
        if m.stacked:
            for i, v in zip(shown, values, strict=True):
                base[i] += v
        at = [i + shift for i in shown]
        drawn = (ax.barh(at, values, width, left=offsets, color=s.color, label=s.name) if h else
                 ax.bar(at, values, width, bottom=offsets, color=s.color, label=s.name))
        if s.labels and shown:
            texts += ax.bar_label(drawn, labels=[s.labels[i].replace("\n", sep) for i in shown], padding=4,
                                  fontsize=9 if n > 1 else 10, color=INK)
        for i, v in enumerate(s.values):
            if v is None and s.labels:  # n/a: said at the axis, no bar
                texts.append(ax.annotate(s.labels[i].replace("\n", sep), (0, i + shift) if h else (i + shift, 0),
                                         xytext=(4, 0) if h else (0, 4), textcoords="offset points",
                                         ha="left" if h else "center", va="center" if h else "bottom",
                                         fontsize=9, color=MUTED, style="italic"))
    if m.reference is not None:
        label, value = m.reference
        (ax.axvline if h else ax.axhline)(value, color=REFERENCE, linestyle="--", linewidth=1.4, label=label)
    if len(m.series) > 1 or m.reference is not None:
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncol=len(m.series) + (m.reference is not None),
                  frameon=False, fontsize=9, labelcolor=INK, borderaxespad=0.2, handlelength=1.6)
    positions = list(range(len(m.groups)))
    if h:
        ax.set_yticks(positions, [g.replace("\n", " · ") for g in m.groups])
        pad = max(0.0, (4 - len(positions)) / 2)
        ax.set_ylim(len(positions) - 0.5 + pad, -0.5 - pad)
    else:
        ax.set_xticks(positions, m.groups)
    _axes(ax, h)
    (ax.set_xlabel if h else ax.set_ylabel)(m.axis, color=MUTED, fontsize=10)
    value_axis = ax.xaxis if h else ax.yaxis
    if m.unit == "percent":  # 0 to 100%, whatever room the labels take beyond it
        value_axis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1]))
        value_axis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        (ax.set_xlim if h else ax.set_ylim)(0, 1.0)
    elif m.unit == "money":
        value_axis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
    else:
        value_axis.set_major_locator(MaxNLocator(integer=m.unit == "count", nbins=6))
    if m.unit != "percent" and not any(v for s in m.series for v in s.values):
        (ax.set_xlim if h else ax.set_ylim)(0, 1)
        value_axis.set_major_locator(FixedLocator([0]))
    _fit(fig, ax, texts, h)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _fit(fig: Figure, ax: Axes, texts: list[Text], horizontal: bool) -> None:
    """Stretch the value axis until every bar's label lies inside the plot (measured, not guessed)."""
    for _ in range(4):  # each stretch moves the layout a little; it settles in a step or two
        fig.draw_without_rendering()
        box = ax.get_window_extent()
        over = max((t.get_window_extent().x1 - box.x1 if horizontal else t.get_window_extent().y1 - box.y1)
                   for t in texts)
        if over <= 0:
            return
        lo, hi = ax.get_xlim() if horizontal else ax.get_ylim()
        size = box.width if horizontal else box.height
        hi = lo + (hi - lo) * (1 + (over + 8) / size)
        (ax.set_xlim if horizontal else ax.set_ylim)(lo, hi)


def _value(amount: float, currency: str, also: str, weighted: float | None) -> list[str]:
    """A bar's label: its amount, the weighted part, and what it holds in currencies not drawn."""
    if not amount and also:
        return [also, "(not drawn)"]
    parts = [f"{compact(amount)} {currency}"]
    if weighted is not None:
        parts.append(f"weighted {compact(weighted)}")
    return parts + ([f"+ {also}"] if also else [])


def _style(ax: Axes, currency: str, horizontal: bool) -> None:
    from matplotlib.ticker import FuncFormatter

    (ax.xaxis if horizontal else ax.yaxis).set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
    (ax.set_xlabel if horizontal else ax.set_ylabel)(f"Amount ({currency})", color=MUTED, fontsize=10)
    _axes(ax, horizontal)


def _axes(ax: Axes, horizontal: bool) -> None:
    """The grid, spines, ticks and margins every chart shares."""
    ax.grid(axis="x" if horizontal else "y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right", "bottom" if horizontal else "left"):
        ax.spines[side].set_visible(False)
    ax.spines["left" if horizontal else "bottom"].set_color(MUTED)
    ax.tick_params(colors=INK, labelsize=10, length=0)
    ax.margins(**({"x": 0.35} if horizontal else {"y": 0.2}))
