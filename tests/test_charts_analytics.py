"""Analytics charts: a real PNG, and exactly pipeline_analytics' numbers as text and as bars.

The history is tests/test_analytics.py's (its table gives the right numbers): on 2026-10-01,
"last quarter" is Q3 2026 and "this year" 2026. In Q3 the West team (Dana's) won 4 and lost 1:
inbound 1-1, referral 2-0, no source 1-0; Priya 2-1, Raj 2-0. Eve (East) lost Foxtrot.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from agents.offline.chat import OfflineModel
from tests import factories as f
from tests.test_analytics import NOW
from tests.test_analytics import Sales as History
from tests.test_analytics import sales as sales  # noqa: F401  (the fixture: the generated history)
from tests.test_charts import PNG_MAGIC, png_of
from tests.test_charts import data_dir as data_dir  # noqa: F401  (the fixture: charts in a temporary folder)
from tools import TOOLS, ToolContext, ToolOutput
from tools.charts import Measures, Series, render_measures


@pytest.fixture
def hist(sales: History, data_dir: Path) -> History:  # noqa: F811
    return sales


def ctx(h: History, who: Any) -> ToolContext:
    return ToolContext(actor=f.actor(who), session=h.session, now=NOW)


def run(h: History, who: Any, tool: str, **args: Any) -> Any:
    return TOOLS[tool].run(ctx(h, who), TOOLS[tool].parse(args))


def drawn(h: History, who: Any, **args: Any) -> Measures:
    """What the chart tool draws for these arguments (its bars, before rendering)."""
    from tools.charts import ChartArgs, _analytics
    from tools.scope import resolve_scope

    c = ctx(h, who)
    parsed = ChartArgs.model_validate(args)
    answered = resolve_scope(c, parsed.scope, parsed.rep, parsed.team)
    _lines, measures = _analytics(c, parsed, answered.scope, answered.label)
    assert measures is not None
    return measures


def same_text(h: History, who: Any, what: str, **args: Any) -> tuple[ToolOutput, str]:
    """The chart's answer and pipeline_analytics' for the same arguments: the chart's starts with it."""
    out = run(h, who, "chart", what=what, **args)
    path, data = png_of(out)
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    assert _png_size(data) == (900, 500)
    text = run(h, who, "pipeline_analytics", metric=what, **args)
    assert out.text.startswith(text + "\n")
    return out, text


def _png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_win_rate_by_source_has_the_analytics_numbers(hist: History) -> None:
    out, text = same_text(hist, hist.w.dana, "win_rate", period="last_quarter", by="source")
    assert out.files[0]["title"] == f"Win rate by source · {hist.w.west.name} team · Q3 2026"
    assert out.files[0]["filename"] == "win-rate-by-source-2026-10-01.png"
    bars = drawn(hist, hist.w.dana, what="win_rate", period="last_quarter", by="source")
    assert bars.unit == "percent" and bars.groups == ["inbound", "referral", "(no source)"]
    assert bars.series[0].values == [0.5, 1.0, 1.0]
    assert bars.series[0].labels == ["50% · 1 won, 1 lost", "100% · 2 won, 0 lost", "100% · 1 won, 0 lost"]
    assert bars.reference == ("All: 80% (4 won, 1 lost)", 0.8)
    # every bar is a line of the text: "- inbound: 50% (1 won, 1 lost)"
    for group, label in zip(bars.groups, bars.series[0].labels, strict=True):
        rate, counts = label.split(" · ")
        assert f"- {group}: {rate} ({counts})" in text.splitlines()
    assert "80% (4 won, 1 lost of 5 closed)" in text


def test_win_rate_by_rep_and_overall(hist: History) -> None:
    out, text = same_text(hist, hist.w.dana, "win_rate", period="last_quarter", by="owner")
    assert out.files[0]["title"].startswith("Win rate by rep · ")
    bars = drawn(hist, hist.w.dana, what="win_rate", period="last_quarter", by="owner")
    assert [(g, v) for g, v in zip(bars.groups, bars.series[0].values, strict=True)] == [
        ("Priya Raman", pytest.approx(2 / 3)), ("Raj Patel", 1.0)]
    assert "- Priya Raman: 67% (2 won, 1 lost)" in text and bars.series[0].labels[0] == "67% · 2 won, 1 lost"

    overall, _ = same_text(hist, hist.w.dana, "win_rate", period="last_quarter")
    bars = drawn(hist, hist.w.dana, what="win_rate", period="last_quarter")
    assert bars.groups == ["All closed deals"] and bars.series[0].values == [0.8] and bars.reference is None
    assert overall.files[0]["filename"] == "win-rate-2026-10-01.png"


def test_stage_conversion_and_days_in_stage_have_the_analytics_numbers(hist: History) -> None:
    _, text = same_text(hist, hist.w.dana, "stage_conversion", period="last_quarter")
    bars = drawn(hist, hist.w.dana, what="stage_conversion", period="last_quarter")
    assert bars.unit == "percent"
    assert [g.split("\n") for g in bars.groups] == [["Qualification", "5 entered"], ["Discovery", "3 entered"],
                                                    ["Demo", "2 entered"], ["Proposal", "1 entered"]]
    moved, won = bars.series
    assert moved.values == [0.8, pytest.approx(1 / 3), 0.5, 1.0] and won.values == [0.6, pytest.approx(1 / 3), 0.5, 1.0]
    for group, m, w in zip(bars.groups, moved.labels, won.labels, strict=True):
        stage, entered = group.split("\n")
        moved_pct, moved_n = m.split("\n")
        won_pct, won_n = w.split("\n")
        line = next(x for x in text.splitlines() if x.startswith(f"- {stage} ("))
        advanced, won_n = moved_n.split(" of ")[0], won_n.split(" of ")[0]
        assert f"{entered}, {advanced} moved on ({moved_pct}), {won_n} won ({won_pct})" in line

    _, text = same_text(hist, hist.w.dana, "days_in_stage", period="last_quarter")
    bars = drawn(hist, hist.w.dana, what="days_in_stage", period="last_quarter")
    median, average = bars.series
    assert bars.unit == "days" and (median.name, average.name) == ("Median", "Average")
    assert median.values == [20.0, 25.0, 31.0, 10.0] and average.values == [21.4, 25.0, 31.0, 10.0]
    for group, med, avg in zip(bars.groups, median.values, average.values, strict=True):
        stage, stays = group.split("\n")
        assert f"- {stage} (Sales): average {avg} days, median {med} days ({stays.split()[0]} stays)" in text
    assert bars.groups[-1] == "Proposal\n1 stay"


def test_activity_counts_per_rep(hist: History) -> None:
    _, text = same_text(hist, hist.w.dana, "activity_counts", period="last_quarter")
    bars = drawn(hist, hist.w.dana, what="activity_counts", period="last_quarter")
    assert bars.unit == "count" and bars.groups == ["Priya Raman", "Raj Patel"]
    assert bars.series[0].values == [4, 1]
    assert bars.series[0].labels == ["4 · 2 call, 1 email, 1 meeting", "1 · 1 call"]
    assert "- Priya Raman: 4 (2 call, 1 email, 1 meeting)" in text


def test_a_rep_sees_only_their_own_and_a_named_rep_only_theirs(hist: History) -> None:
    out, _ = same_text(hist, hist.w.priya, "win_rate", period="last_quarter", by="owner")
    bars = drawn(hist, hist.w.priya, what="win_rate", period="last_quarter", by="owner")
    assert bars.groups == ["Priya Raman"] and "Raj" not in out.text
    assert out.files[0]["title"] == "Win rate by rep · Priya Raman · Q3 2026"
    eve = drawn(hist, hist.w.eve, what="win_rate", period="last_quarter", by="source")
    assert (eve.groups, eve.series[0].values) == (["inbound"], [0.0])  # lost Foxtrot: a real 0%

    raj, _ = same_text(hist, hist.w.dana, "activity_counts", period="last_quarter", rep="Raj")
    assert raj.files[0]["title"] == "Activities by rep · Raj Patel · Q3 2026"
    assert drawn(hist, hist.w.dana, what="activity_counts", period="last_quarter", rep="Raj").groups == ["Raj Patel"]
    # a rep cannot chart a colleague's numbers
    with pytest.raises(Exception, match="your own numbers only"):
        run(hist, hist.w.priya, "chart", what="win_rate", period="last_quarter", rep="Raj")


def test_a_custom_period_and_this_year(hist: History) -> None:
    out, text = same_text(hist, hist.w.dana, "win_rate", start="2026-08-01", end="2026-08-31", by="source")
    assert text.startswith(f"Win rate, 2026-08-01 to 2026-08-31, scope {hist.w.west.name} team: 50% (1 won, 1 lost "
                           "of 2 closed)")
    assert out.files[0]["title"] == f"Win rate by source · {hist.w.west.name} team · 1 Aug – 31 Aug 2026"
    bars = drawn(hist, hist.w.dana, what="win_rate", start=date(2026, 8, 1), end=date(2026, 8, 31), by="source")
    assert bars.groups == ["inbound"] and bars.series[0].values == [0.5]

    year, text = same_text(hist, hist.w.dana, "win_rate", period="this_year", by="source")
    assert year.files[0]["title"].endswith(" · 2026")
    assert "80% (4 won, 1 lost of 5 closed)" in text  # June had no closes: the year is Q3's


def test_nothing_closed_is_said_and_draws_nothing(hist: History, data_dir: Path) -> None:
    out = run(hist, hist.w.dana, "chart", what="win_rate", period="this_month", by="source")
    assert isinstance(out, str)
    assert out.startswith(run(hist, hist.w.dana, "pipeline_analytics", metric="win_rate", period="this_month",
                              by="source"))
    assert "n/a (0 won, 0 lost of 0 closed)" in out and "nothing to chart" in out
    for what in ("stage_conversion", "days_in_stage", "activity_counts"):
        assert "Nothing to chart." in run(hist, hist.w.dana, "chart", what=what, period="next_quarter")
    assert not (data_dir / "files" / "charts").exists()


def test_an_na_group_is_labelled_and_not_drawn_as_zero() -> None:
    def chart(values: list[float | None]) -> bytes:
        return render_measures(Measures(
            "Win rate by source · Test · 2026", ["inbound", "outbound", "referral"],
            [Series("Win rate", values, ["50% · 1 won, 1 lost", "n/a · no closed deals", "0% · 0 won, 2 lost"],
                    "#2F6DB5")], "percent", "Win rate", horizontal=True, reference=("All: 25%", 0.25)))

    with_na, as_zero = chart([0.5, None, 0.0]), chart([0.5, 0.0, 0.0])
    assert with_na[:8] == PNG_MAGIC and _png_size(with_na) == (900, 500)
    assert with_na != as_zero  # the n/a row is written differently from a 0% one


def test_the_forecast_by_rep_has_each_reps_forecast_summary_numbers(hist: History) -> None:
    from store.models import Deal

    for name, close in (("Delta", date(2026, 9, 1)), ("Echo", date(2026, 12, 15)), ("India", date(2026, 11, 30))):
        hist.session.get(Deal, hist.ids[name]).close_date = close
    hist.session.get(type(hist.w.priya), hist.w.priya.id).quota = Decimal("40000")
    hist.session.flush()
    period = {"start": "2026-01-01", "end": "2026-12-31"}
    out = run(hist, hist.w.dana, "chart", what="forecast_by_rep", **period)
    _, data = png_of(out)
    assert data[:8] == PNG_MAGIC and _png_size(data) == (900, 500)
    lines = out.text.splitlines()
    assert lines[0] == f"Forecast by rep 2026-01-01 to 2026-12-31, scope {hist.w.west.name} team:"
    assert out.files[0]["title"] == f"Forecast by rep · {hist.w.west.name} team · 1 Jan – 31 Dec 2026"
    for rep, line in (("Priya", lines[1]), ("Raj", lines[2])):
        summary = run(hist, hist.w.dana, "forecast_summary", rep=rep, **period).splitlines()
        won, commit, best, pipe, weighted = (x.split(": ", 1)[1] for x in summary[1:6])
        assert f"closed won {won}, commit {commit}, best case {best}, pipeline {pipe}, weighted open {weighted}" in line
    assert lines[1].startswith("- Priya Raman: closed won 10,000 USD (1 deals)") and "quota 160,000 USD" in lines[1]
    assert lines[2].startswith("- Raj Patel: closed won 50,000 USD (1 deals)") and "8,000 EUR" in lines[2]
    assert "Bars show USD amounts only; EUR amounts are listed above." in out.text


# --- the offline model routes analytics chart requests to the chart tool ------------------------

ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("chart win rate by source this year", {"what": "win_rate", "period": "this_year", "by": "source"}),
    ("graph win rate by rep last quarter", {"what": "win_rate", "period": "last_quarter", "by": "owner"}),
    ("plot stage conversion this year", {"what": "stage_conversion", "period": "this_year"}),
    ("chart days in stage", {"what": "days_in_stage", "period": "this_quarter"}),
    ("show me a chart of the team's win rate last quarter", {"what": "win_rate", "period": "last_quarter",
                                                             "scope": "team"}),
    ("chart my activity counts per rep this month", {"what": "activity_counts", "period": "this_month",
                                                     "scope": "mine"}),
]


@pytest.mark.parametrize(("text", "args"), ROUTES, ids=[t for t, _ in ROUTES])
def test_the_offline_model_asks_for_the_analytics_chart(hist: History, text: str, args: dict[str, Any]) -> None:
    c = ctx(hist, hist.w.dana)
    reply = OfflineModel().respond([HumanMessage(text)], c)
    assert [(call["name"], call["args"]) for call in reply.tool_calls] == [("chart", args)]
    out = TOOLS["chart"].run(c, TOOLS["chart"].parse(args))
    assert isinstance(out, ToolOutput) or "othing to chart" in out
    if args["period"] in ("this_year", "last_quarter"):
        assert isinstance(out, ToolOutput) and re.search(r"Chart attached: .+ · 2026$|Q3 2026$", out.text)


@pytest.mark.parametrize("text", ["chart average deal size this year", "graph the sales cycle"])
def test_analytics_it_cannot_chart_it_gives_as_text(hist: History, text: str) -> None:
    reply = OfflineModel().respond([HumanMessage(text)], ctx(hist, hist.w.dana))
    assert not reply.tool_calls and "I can chart win rate" in reply.content
