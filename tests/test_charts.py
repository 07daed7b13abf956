"""Charts: a real PNG for the channel, the same numbers as the summaries for the model.

A West team (manager Dana, reps Priya and Raj) and an East rep (Eve), with deals in USD and
one in EUR, on a fixed clock: Monday 2026-11-23, so "this quarter" is Q4 2026.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from langchain_core.messages import HumanMessage
from matplotlib.image import imread

from agents.offline.chat import HELP, OfflineModel
from store.services.sales import default_pipeline, stages_of
from store.settings import get_settings
from tests import factories as f
from tools import TOOLS, ToolContext, ToolOutput
from tools.charts import Bars, render

NOW = datetime(2026, 11, 23, 8, 50, tzinfo=ZoneInfo("Europe/Lisbon"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Sales:
    w: f.World
    session: Any

    def ctx(self, who: Any) -> ToolContext:
        return ToolContext(actor=f.actor(who), session=self.session, now=NOW)

    def run(self, who: Any, tool: str, **args: Any) -> Any:
        return TOOLS[tool].run(self.ctx(who), TOOLS[tool].parse(args))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.fixture
def sales(session, data_dir) -> Sales:  # type: ignore[no-untyped-def]
    w = f.world(session)
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}

    def deal(who: Any, name: str, amount: str, stage_name: str, close: date, category: str,
             currency: str = "USD") -> None:
        f.create(session, who, "deal", name=name, amount=amount, currency=currency, stage_id=stage[stage_name],
                 close_date=close, forecast_category=category)

    deal(w.priya, "Borealis – Fleet Telematics", "48000", "Discovery", date(2026, 12, 15), "commit")
    deal(w.priya, "Nordlys – Grid Analytics", "120000", "Proposal", date(2026, 11, 30), "best_case")
    deal(w.priya, "Halden – Depot Pilot", "30000", "Negotiation", date(2027, 1, 20), "pipeline", "EUR")
    deal(w.priya, "Kestrel – Renewal", "25000", "Closed Won", date(2026, 10, 10), "closed")
    deal(w.raj, "Lumen – Route Planner", "350000", "Demo", date(2026, 12, 20), "pipeline")
    deal(w.raj, "Orca – Cold Chain", "1250000", "Negotiation", date(2027, 2, 10), "commit")
    deal(w.eve, "Eastwind – Yard Ops", "90000", "Proposal", date(2026, 12, 1), "commit")
    session.commit()
    return Sales(w, session)


def png_of(out: ToolOutput) -> tuple[Path, bytes]:
    assert isinstance(out, ToolOutput) and len(out.files) == 1
    file = out.files[0]
    path = Path(file["path"])
    assert path.is_absolute() and file["mimetype"] == "image/png" and file["filename"].endswith(".png")
    assert out.text.splitlines()[-1] == f"Chart attached: {file['title']}"
    return path, path.read_bytes()


def test_pipeline_chart_is_a_png_with_the_pipeline_summary_numbers(sales: Sales, data_dir: Path) -> None:
    out = sales.run(sales.w.dana, "chart", what="pipeline_by_stage")
    path, data = png_of(out)
    assert data[:8] == PNG_MAGIC
    assert imread(path).shape[:2] == (500, 900)
    assert path.parent == (data_dir / "files" / "charts").resolve()
    assert out.files[0]["filename"] == "pipeline-by-stage-2026-11-23.png"
    assert out.files[0]["title"] == f"Open pipeline by stage · {sales.w.west.name} team · as of 23 Nov 2026"

    summary = sales.run(sales.w.dana, "pipeline_summary")  # the manager's default: the team
    assert out.text.startswith(summary + "\n")
    assert "- Negotiation: 2 deals, 30,000 EUR, 1,250,000 USD" in out.text  # Priya's EUR and Raj's USD deal
    assert "Total: 5 open deals." in out.text  # Eve's East deal is not the West team's
    assert "Bars show USD amounts only; EUR amounts are listed above." in out.text
    assert str(out) == out.text  # what the model reads


@pytest.mark.parametrize(("who", "scope", "period"), [("dana", None, "this_quarter"), ("priya", None, "this_quarter"),
                                                      ("dana", "team", "next_quarter"), ("admin", "all", "this_month")])
def test_forecast_chart_has_the_forecast_summary_numbers(sales: Sales, who: str, scope: str | None,
                                                         period: str) -> None:
    user = getattr(sales.w, who)
    args = {"period": period} | ({"scope": scope} if scope else {})
    out = sales.run(user, "chart", what="forecast_by_category", **args)
    _, data = png_of(out)
    assert data[:8] == PNG_MAGIC
    summary = sales.run(user, "forecast_summary", **args).split("\nLargest deals counted:")[0]
    assert out.text.startswith(summary + "\n")


def test_forecast_chart_counts_the_quarter_as_the_summary_says(sales: Sales) -> None:
    out = sales.run(sales.w.dana, "chart", what="forecast_by_category")
    assert out.text.splitlines()[:6] == [
        f"Forecast this quarter (2026-10-01 to 2026-12-31), scope {sales.w.west.name} team:",
        "- closed won: 25,000 USD (1 deals)", "- commit: 48,000 USD", "- best case: 120,000 USD",
        "- pipeline: 350,000 USD", "- weighted open: 221,600 USD (3 open deals)"]  # 20%, 60%, 40% stages
    assert out.files[0]["title"] == f"Forecast Q4 2026 · {sales.w.west.name} team · 1 Oct – 31 Dec 2026"


def test_a_reps_chart_counts_only_their_deals_and_their_managers_counts_both_reps(sales: Sales) -> None:
    mine = sales.run(sales.w.priya, "chart", what="pipeline_by_owner")
    png_of(mine)
    assert "- Priya Raman: 3 deals, 30,000 EUR, 168,000 USD" in mine.text
    assert "Raj" not in mine.text and "Total: 3 open deals." in mine.text

    team = sales.run(sales.w.dana, "chart", what="pipeline_by_owner")
    png_of(team)
    assert "- Priya Raman: 3 deals, 30,000 EUR, 168,000 USD" in team.text
    assert "- Raj Patel: 2 deals, 1,600,000 USD" in team.text
    assert "Eve" not in team.text and "Total: 5 open deals." in team.text

    everyone = sales.run(sales.w.admin, "chart", what="pipeline_by_owner")
    assert "- Eve East: 1 deals, 90,000 USD" in everyone.text and "Total: 6 open deals." in everyone.text


def test_a_big_team_lists_every_rep_in_the_text(sales: Sales) -> None:
    for i in range(12):
        rep = f.user(sales.session, sales.w.ws, team=sales.w.east, name=f"Rep {i:02d}")
        f.create(sales.session, rep, "deal", name=f"Deal {i}", amount=str(10000 * (i + 1)))
    out = sales.run(sales.w.admin, "chart", what="pipeline_by_owner")
    png_of(out)
    assert len([line for line in out.text.splitlines() if line.startswith("- ")]) == 15
    assert "- Rep 00: 1 deals, 10,000 USD" in out.text and "Total: 18 open deals." in out.text


def test_a_rep_asking_for_the_team_sees_the_team(sales: Sales) -> None:
    out = sales.run(sales.w.raj, "chart", what="pipeline_by_stage", scope="team")
    assert out.text.startswith(sales.run(sales.w.raj, "pipeline_summary", scope="team") + "\n")
    assert "Total: 5 open deals." in out.text


def test_no_data_is_said_and_draws_nothing(sales: Sales, data_dir: Path) -> None:
    newcomer = f.user(sales.session, sales.w.ws, team=sales.w.west, name="Nia New")
    for what in ("pipeline_by_stage", "pipeline_by_owner", "forecast_by_category", "forecast_by_rep"):
        out = sales.run(newcomer, "chart", what=what)
        assert isinstance(out, str) and "nothing to chart" in out
    assert not (data_dir / "files" / "charts").exists()


def test_the_same_chart_twice_is_one_file(sales: Sales, data_dir: Path) -> None:
    first = sales.run(sales.w.dana, "chart", what="pipeline_by_owner")
    again = sales.run(sales.w.dana, "chart", what="pipeline_by_owner")
    assert first.files == again.files
    assert len(list((data_dir / "files" / "charts").iterdir())) == 1


def test_charts_drawn_at_the_same_time_are_intact() -> None:
    bars = [Bars(f"Chart {i}", ["Discovery\n2 deals", "Proposal\n1 deal"], [Decimal(48000 * i), Decimal(120000)],
                 [Decimal(9600 * i), Decimal(60000)], "USD") for i in range(1, 7)]
    alone = [render(b) for b in bars]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(render, bars))
    assert together == alone
    assert len(set(alone)) == len(alone)


# --- the offline model routes chart requests to the chart tool ---------------------------------

ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("chart my pipeline", {"what": "pipeline_by_stage", "scope": "mine"}),
    ("chart pipeline by stage", {"what": "pipeline_by_stage"}),
    ("show me a chart of the team pipeline by rep", {"what": "pipeline_by_owner", "scope": "team"}),
    ("graph the forecast this quarter", {"what": "forecast_by_category", "period": "this_quarter"}),
    ("plot forecast next quarter for the team", {"what": "forecast_by_category", "period": "next_quarter",
                                                 "scope": "team"}),
    ("chart our pipeline by stage", {"what": "pipeline_by_stage", "scope": "team"}),
    ("can you graph pipeline per owner for everyone?", {"what": "pipeline_by_owner", "scope": "all"}),
    ("chart my forecast for next month", {"what": "forecast_by_category", "period": "next_month", "scope": "mine"}),
    ("chart the forecast this quarter by rep", {"what": "forecast_by_rep", "period": "this_quarter"}),
    ("chart win rate by source this year", {"what": "win_rate", "period": "this_year", "by": "source"}),
]


def ask(sales: Sales, text: str) -> Any:
    return OfflineModel().respond([HumanMessage(text)], sales.ctx(sales.w.dana))


@pytest.mark.parametrize(("text", "args"), ROUTES, ids=[t for t, _ in ROUTES])
def test_the_offline_model_asks_for_the_chart(sales: Sales, text: str, args: dict[str, Any]) -> None:
    reply = ask(sales, text)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("chart", args)]
    out = TOOLS["chart"].run(sales.ctx(sales.w.dana), TOOLS["chart"].parse(args))
    assert isinstance(out, ToolOutput) or "nothing to chart" in out


@pytest.mark.parametrize(("text", "answer"), [
    ("chart the forecast for Q2", "I can chart the forecast for this month, next month, this quarter or next quarter"),
    ("chart the deal size this quarter", "I can chart win rate, stage conversion, days in stage and activity counts"),
])
def test_charts_it_cannot_draw_it_says(sales: Sales, text: str, answer: str) -> None:
    reply = ask(sales, text)
    assert not reply.tool_calls and answer in reply.content


def test_other_charts_get_the_plain_cant_which_mentions_charts(sales: Sales) -> None:
    reply = ask(sales, "chart the weather in Lisbon")
    assert not reply.tool_calls and reply.content == HELP
    assert "chart the pipeline (by stage or by rep), the forecast, win rate, stage conversion" in HELP


def test_plain_pipeline_and_forecast_questions_still_answer_as_text(sales: Sales) -> None:
    assert [c["name"] for c in ask(sales, "show my pipeline").tool_calls] == ["pipeline_summary"]
    assert [c["name"] for c in ask(sales, "forecast this quarter").tool_calls] == ["forecast_summary"]
