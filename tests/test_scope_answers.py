"""Whose numbers an answer gives: what was asked, what was answered, and what was refused and why.

The demo world (store/demo/): a West team (manager Dana Whitfield, reps Priya Raman, Jordan
Ellis, Mateo Alvarez, Aisha Bello), an EMEA team (rep Lena Fischer) and admin Sam Okafor. A West
rep asking for "the EMEA team pipeline" or "Lena's pipeline" is told plainly that she cannot see
it and why (not handed West's numbers labelled "team"); an answer narrower than asked ("all"
for a rep) says what it leaves out. Through the tools directly, and through the chat API with
the offline model.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from store.demo import seed_demo
from store.errors import PermissionDenied
from store.models import Deal, User
from tests import factories as f
from tools import TOOLS, ToolContext

TODAY = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 17, 30, tzinfo=UTC)


class Demo:
    def __init__(self, session: Any) -> None:
        self.session = session
        self.ws = f.workspace(session, "Demo")
        seed_demo(session, workspace=self.ws, today=TODAY, companies=20)
        session.commit()
        self.users = {u.name.split()[0].lower(): u for u in session.scalars(
            select(User).where(User.workspace_id == self.ws.id))}

    def ctx(self, who: str) -> ToolContext:
        return ToolContext(actor=f.actor(self.users[who]), session=self.session, now=NOW)

    def tool(self, who: str, name: str, **args: Any) -> Any:
        return TOOLS[name].run(self.ctx(who), TOOLS[name].parse(args))

    def deal_names(self, who: str) -> set[str]:
        owner = self.users[who].id
        return set(self.session.scalars(select(Deal.name).where(Deal.owner_id == owner, Deal.closed_at.is_(None))))


@pytest.fixture
def demo(session: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from store.settings import get_settings

    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path / "data"))  # where the charts' images go
    get_settings.cache_clear()
    yield Demo(session)
    get_settings.cache_clear()


def lines_after_heading(text: str) -> str:
    return text.split("\n", 1)[1] if text.startswith("Not shown:") else text


# --- the tools ----------------------------------------------------------------------------------


def test_a_rep_asking_for_another_team_or_its_rep_is_refused_with_the_reason(demo: Demo) -> None:
    assert demo.users["priya"].team_id != demo.users["lena"].team_id  # West and EMEA
    with pytest.raises(PermissionDenied, match=r"your own team's \(West\) numbers only, not the EMEA team's"):
        demo.tool("priya", "pipeline_summary", team="EMEA")
    with pytest.raises(PermissionDenied, match="your own numbers only, not Lena Fischer's"):
        demo.tool("priya", "chart", what="pipeline_by_stage", rep="Lena")
    with pytest.raises(PermissionDenied, match=r"your own team's \(West\) numbers only, not the EMEA team's"):
        demo.tool("dana", "forecast_summary", team="the EMEA team")  # a manager: her team only
    with pytest.raises(PermissionDenied, match="Lena Fischer is not in your team"):
        demo.tool("dana", "pipeline_analytics", metric="win_rate", rep="Lena's")


def test_the_answer_names_the_scope_it_answers(demo: Demo) -> None:
    team = demo.tool("priya", "pipeline_summary", scope="team")
    assert team.startswith("Open pipeline (West team):")  # not "(team)"
    assert demo.tool("priya", "pipeline_summary", team="West") == team  # her own team, by name
    assert demo.tool("dana", "pipeline_summary", team="west's") == team
    mine = demo.tool("priya", "pipeline_summary")
    assert mine.startswith("Open pipeline (Priya Raman):")
    lena = demo.tool("lena", "forecast_summary", team="EMEA")
    assert lena.startswith("Forecast this quarter (2026-10-01 to 2026-12-31), scope EMEA team:")

    emea = demo.tool("sam", "pipeline_summary", team="EMEA")  # an admin: any team
    assert emea.startswith("Open pipeline (EMEA team):")
    assert emea.split("\n", 1)[1] == demo.tool("sam", "pipeline_summary", rep="Lena").split("\n", 1)[1]
    chart = demo.tool("sam", "chart", what="pipeline_by_stage", team="EMEA")
    assert chart.text.startswith("Open pipeline (EMEA team):") and "· EMEA team ·" in chart.files[0]["title"]


def test_an_answer_narrower_than_asked_says_what_it_leaves_out(demo: Demo) -> None:
    everything = demo.tool("priya", "pipeline_summary", scope="all")
    assert everything.splitlines()[:2] == [
        "Not shown: other teams' deals (only admins see every team's numbers). Shown: the deals you can read: "
        "the West team's and unassigned ones.",
        "Open pipeline (All deals you can see):"]
    for tool, args in (("forecast_summary", {}), ("forecast_changes", {}),
                       ("pipeline_analytics", {"metric": "stale_deals"})):
        said = demo.tool("dana", tool, scope="all", **args)
        assert said.startswith("Not shown: other teams' deals"), (tool, said)
        assert not any(name in said for name in demo.deal_names("lena")), tool
    chart = demo.tool("dana", "chart", what="forecast_by_rep", scope="all")
    assert chart.text.startswith("Not shown: other teams' deals") and chart.text.count("Not shown:") == 1
    assert demo.tool("sam", "pipeline_summary", scope="all").startswith("Open pipeline (All teams):")  # all of it

    # A user in no team asking for "team" gets their own deals, and is told so.
    loner = f.user(demo.session, demo.ws, name="Noor Teamless")
    f.create(demo.session, loner, "deal", name="Noor's deal", amount="1000")
    said = TOOLS["pipeline_summary"].run(ToolContext(actor=f.actor(loner), session=demo.session, now=NOW),
                                         TOOLS["pipeline_summary"].parse({"scope": "team"}))
    assert said.splitlines()[:2] == ["Not shown: a team's deals (you are in no team). Shown: your own deals "
                                     "(Noor Teamless).", "Open pipeline (Noor Teamless):"]


# --- through the agent: the chat API with the offline model ------------------------------------------


@pytest.fixture
def chat(request: pytest.FixtureRequest, session: Any, session_factory: Any, tmp_path: Any,
         monkeypatch: pytest.MonkeyPatch) -> Any:
    from fastapi.testclient import TestClient

    from agents.checkpoint import make_checkpointer
    from agents.offline.chat import OfflineModel
    from agents.runner import AgentRunner
    from channels.api.app import create_app
    from store.settings import get_settings
    from tests.conftest import BACKEND, PG_URL

    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path / "data"))  # the SQLite checkpoints, then the charts
    get_settings.cache_clear()
    url = PG_URL if BACKEND == "postgres" else f"sqlite:///{tmp_path / 'crm.db'}"
    # The checkpointer first: on PostgreSQL its setup builds an index CONCURRENTLY, which waits for
    # the test's transaction once the demo has been written in it.
    runner = AgentRunner(sessions=session_factory, checkpointer=make_checkpointer(get_settings(), url=url),
                         brain=OfflineModel())
    demo: Demo = request.getfixturevalue("demo")
    with time_machine.travel(NOW, tick=True), TestClient(create_app(session_factory, agent=runner)) as client:
        apis = {who: f.api(session, client, demo.users[who]) for who in ("priya", "dana", "lena", "sam")}

        def say(who: str, text: str) -> dict[str, Any]:
            got = apis[who].post(f"/chat/threads/{uuid.uuid4().hex}/messages", json={"text": text})
            assert got.status_code == 200, got.text
            return got.json()  # type: ignore[no-any-return]

        yield say


def test_a_west_rep_is_told_she_cannot_see_the_emea_team_or_lena(chat: Any, demo: Demo) -> None:
    emea = chat("priya", "show me the EMEA team pipeline")
    reply = " ".join(emea["replies"])
    assert reply.startswith("You can see your own team's (West) numbers only, not the EMEA team's")
    assert "Open pipeline" not in reply  # no numbers labelled as if they were what she asked for

    lena = chat("priya", "chart Lena's pipeline")
    reply = " ".join(lena["replies"])
    assert reply.startswith("You can see your own numbers only, not Lena Fischer's")
    assert lena["files"] == [] and "Priya Raman" not in reply  # not her own chart instead, unlabelled
    assert not any(name in reply for name in demo.deal_names("lena"))


def test_the_agent_says_when_it_answers_less_than_asked(chat: Any) -> None:
    reply = " ".join(chat("priya", "pipeline for all teams")["replies"])
    assert reply.startswith("Not shown: other teams' deals (only admins see every team's numbers). Shown: the "
                            "deals you can read: the West team's and unassigned ones.")
    assert "Open pipeline (All deals you can see):" in reply


def test_the_agent_answers_a_named_team_or_rep_the_user_may_see(chat: Any, demo: Demo) -> None:
    sam = chat("sam", "chart Lena's pipeline")
    assert sam["replies"][0].startswith("Open pipeline (Lena Fischer):")
    assert len(sam["files"]) == 1 and "Lena Fischer" in sam["files"][0]["title"]
    assert chat("sam", "show me the EMEA team pipeline")["replies"][0].startswith("Open pipeline (EMEA team):")
    assert chat("lena", "EMEA team pipeline")["replies"][0].startswith("Open pipeline (EMEA team):")
    assert chat("dana", "show me west's pipeline")["replies"][0].startswith("Open pipeline (West team):")
    refused = " ".join(chat("dana", "what's the EMEA team forecast this quarter?")["replies"])
    assert "not the EMEA team's" in refused and "scope" not in refused
    jordan = chat("dana", "how's jordan tracking on his forecast for q4?")["replies"][0]
    assert jordan.startswith("Forecast this quarter (2026-10-01 to 2026-12-31), scope Jordan Ellis:")
