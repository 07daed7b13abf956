"""Drawing the charts: bars and grouped measures as PNG bytes (matplotlib, object API, Agg canvas).

One `Figure` per call and no pyplot, so concurrent requests share no drawing state. What is drawn
(`Bars`, `Measures`) is decided by the chart tool (tools/charts.py); this module only draws it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

WIDTH, HEIGHT, DPI = 9, 5, 100  # 900 x 500 px: readable in a Slack thread and on a phone
BAR = 0.62  # bar width, of the space per bar
INK, MUTED, GRID = "#1F2933", "#616E7C", "#E4E7EB"
AMOUNT, WEIGHTED = "#A9C7E8", "#2F6DB5"
CATEGORY_COLORS = {"Closed won": "#2E9E6B", "Commit": "#2F6DB5", "Best case": "#6FA1DB",
                   "Pipeline": "#A9C7E8", "Weighted open": "#F0A04B"}
WON, MOVED_ON, REFERENCE = "#2E9E6B", "#6FA1DB", "#D9822B"



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
    labels = [sep.join(bar_label(a, bars.currency, more, weighted[i] if weighted else None))
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


def bar_label(amount: float, currency: str, also: str, weighted: float | None) -> list[str]:
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
