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
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from store import files
from store.models import Team, User, Workspace
from store.services import pipeline as pipeline_service
from store.settings import get_settings
from tools.base import ToolContext, ToolOutput, read_tool
from tools.read import money

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

Period = Literal["this_month", "next_month", "this_quarter", "next_quarter"]
WIDTH, HEIGHT, DPI = 9, 5, 100  # 900 x 500 px: readable in a Slack thread and on a phone
MAX_BARS = 12  # owners beyond this are listed in the text only
BAR = 0.62  # bar width, of the space per bar
INK, MUTED, GRID = "#1F2933", "#616E7C", "#E4E7EB"
AMOUNT, WEIGHTED = "#A9C7E8", "#2F6DB5"
CATEGORY_COLORS = {"Closed won": "#2E9E6B", "Commit": "#2F6DB5", "Best case": "#6FA1DB",
                   "Pipeline": "#A9C7E8", "Weighted open": "#F0A04B"}


class ChartArgs(BaseModel):
    what: Literal["pipeline_by_stage", "forecast_by_category", "pipeline_by_owner"] = Field(
        description="pipeline_by_stage: open deals per stage; pipeline_by_owner: open deals per rep; "
                    "forecast_by_category: closed won, commit, best case, pipeline and weighted for a period.")
    scope: Literal["mine", "team", "all"] | None = Field(
        None, description="Whose deals: mine, my team's, or all I can see. Default: a rep's own, a manager's team.")
    period: Period = Field("this_quarter", description="Only for forecast_by_category: the period forecast.")


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


@read_tool(ChartArgs)
def chart(ctx: ToolContext, args: ChartArgs) -> ToolOutput | str:
    """Draw a chart the user sees as an image next to your answer: the open pipeline by stage or by
    rep, or the forecast for a period by category (closed won, commit, best case, pipeline, weighted).
    Use it when the user asks for a chart, graph or plot. Returns the charted numbers: answer with
    them and say the chart is attached; never describe an image you did not get."""
    scope = args.scope or pipeline_service.default_scope(ctx.actor)
    who = _scope_label(ctx, scope)
    if args.what == "forecast_by_category":
        lines, bars = _forecast(ctx, scope, who, args.period)
    else:
        lines, bars = _pipeline(ctx, scope, who, by_owner=args.what == "pipeline_by_owner")
    if bars is None:
        return "\n".join(lines)
    path = files.keep(get_settings().files_dir / "charts", render(bars), suffix=".png").resolve()
    filename = f"{args.what.replace('_', '-')}-{ctx.today.isoformat()}.png"
    lines.append(f"Chart attached: {bars.title}")
    return ToolOutput(text="\n".join(lines), files=[{"path": str(path), "filename": filename, "title": bars.title,
                                                     "mimetype": "image/png"}])


def _pipeline(ctx: ToolContext, scope: pipeline_service.Scope, who: str,
              *, by_owner: bool) -> tuple[list[str], Bars | None]:
    session, actor = ctx.session, ctx.actor
    rows: list[pipeline_service.StageLine] | list[pipeline_service.OwnerLine]
    if by_owner:
        rows = pipeline_service.pipeline_by_owner(session, actor=actor, scope=scope)
        names = [r.owner for r in rows]
        head = f"Open pipeline by rep ({scope}):"
    else:
        rows = pipeline_service.pipeline_by_stage(session, actor=actor, scope=scope)
        names = [r.stage for r in rows]
        head = f"Open pipeline ({scope}):"
    if not rows:
        return [f"No open deals in scope '{scope}': nothing to chart."], None
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


def _forecast(ctx: ToolContext, scope: pipeline_service.Scope, who: str,
              period: Period) -> tuple[list[str], Bars | None]:
    which, unit = period.split("_")
    bounds = pipeline_service.quarter_bounds if unit == "quarter" else pipeline_service.month_bounds
    start, end = bounds(ctx.today, 1 if which == "next" else 0)
    fc = pipeline_service.forecast(ctx.session, actor=ctx.actor, scope=scope, start=start, end=end)
    head = f"Forecast {period.replace('_', ' ')} ({start} to {end}, scope {scope})"
    if not fc.open_deals and not fc.won_deals:
        return [f"{head}: no deals close in this period, nothing to chart."], None
    lines = [f"{head}:", f"- closed won: {money(fc.closed_won)} ({fc.won_deals} deals)",
             f"- commit: {money(fc.commit)}", f"- best case: {money(fc.best_case)}",
             f"- pipeline: {money(fc.pipeline)}", f"- weighted open: {money(fc.weighted)} ({fc.open_deals} open deals)"]
    buckets = {f"Closed won\n{_deals(fc.won_deals)}": fc.closed_won, "Commit": fc.commit, "Best case": fc.best_case,
               "Pipeline": fc.pipeline, f"Weighted open\n{_deals(fc.open_deals, 'open deal')}": fc.weighted}
    currency, others = _chart_currency(ctx, buckets.values())
    note = _others_note(currency, others) if others else ""
    lines += [note.replace("in the text", "above")] if note else []
    title = f"Forecast {_period_name(start, unit)} · {who} · {_day(start, year=False)} – {_day(end)}"
    return lines, Bars(title, list(buckets), [b.get(currency, Decimal(0)) for b in buckets.values()], None, currency,
                       also=[_also(b, currency) for b in buckets.values()], note=note)


def _chart_currency(ctx: ToolContext, amounts: Iterable[dict[str, Decimal]]) -> tuple[str, list[str]]:
    """The workspace currency when the data has it, else the largest one; and the others."""
    totals: dict[str, Decimal] = {}
    for bucket in amounts:
        for currency, amount in bucket.items():
            totals[currency] = totals.get(currency, Decimal(0)) + amount
    ws = ctx.session.get(Workspace, ctx.actor.workspace_id)
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


def _period_name(start: date, unit: str) -> str:
    return f"Q{(start.month - 1) // 3 + 1} {start.year}" if unit == "quarter" else f"{start:%B %Y}"


def _scope_label(ctx: ToolContext, scope: str) -> str:
    me = ctx.session.get(User, ctx.actor.user_id) if ctx.actor.user_id else None
    if scope == "mine" and me is not None:
        return me.name
    if scope == "team" and ctx.actor.team_id is not None:
        team = ctx.session.get(Team, ctx.actor.team_id)
        return f"{team.name} team" if team else "Team"
    if scope == "team" and me is not None and not ctx.actor.is_admin:
        return me.name  # no team: the team is just them
    return "All teams" if ctx.actor.is_admin else "All deals you can see"


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
    ax.grid(axis="x" if horizontal else "y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right", "bottom" if horizontal else "left"):
        ax.spines[side].set_visible(False)
    ax.spines["left" if horizontal else "bottom"].set_color(MUTED)
    ax.tick_params(colors=INK, labelsize=10, length=0)
    ax.margins(**({"x": 0.35} if horizontal else {"y": 0.2}))
