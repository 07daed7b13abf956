"""The manager's dashboard: the API gives the chat's numbers, each person sees their scope, and
the page shows them in a real browser.

A West team (manager Dana, reps Priya and Raj) and an East rep (Eve), with quotas; deals dated
relative to today (the dashboard counts from the real clock, in the user's time zone):

    deal                     owner  stage          amount      closes          category   last touch
    Kestrel – Renewal        Priya  Closed Won      90,000 USD  this quarter    -          -
    Borealis – Fleet         Priya  Discovery       60,000 USD  this quarter    commit     call 5 days ago
    Halden – Depot Pilot     Priya  Negotiation     30,000 EUR  this quarter    best case  call 35 days ago
    Nordlys – Grid           Priya  Proposal        20,000 USD  next quarter    pipeline   created today
    Orca – Cold Chain        Raj    Closed Won      45,000 USD  this quarter    -          -
    Lumen – Route Planner    Raj    Demo           100,000 USD  this quarter    best case  created 60 days ago
    Tern – Lost              Raj    Closed Lost     70,000 USD  this quarter    -          -
    Skua – Maybe             Raj    Qualification    5,000 USD  this quarter    omitted    created today
    Eastwind – Yard Ops      Eve    Proposal        90,000 USD  this quarter    commit     created 45 days ago

Quotas (quarterly): Priya 300,000, Raj 150,000, Eve 999,000 USD.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from store.models import Deal
from store.models.enums import Surface
from store.services import dashboard as dashboard_service
from store.services import pipeline as pipeline_service
from store.services.sales import default_pipeline, stages_of
from store.types import utcnow
from tests import factories as f
from tests import test_web_chat as web_chat
from tests.test_web_chat import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, Server
from tools import TOOLS, ToolContext
from tools.read import money
from tools.scope import resolve_period

WEST_NAMES = {"Kestrel – Renewal", "Borealis – Fleet", "Halden – Depot Pilot", "Nordlys – Grid", "Orca – Cold Chain",
              "Lumen – Route Planner", "Tern – Lost", "Skua – Maybe"}


@dataclass
class Sales:
    w: f.World
    session: Any
    ids: dict[str, Any]

    def ctx(self, who: Any) -> ToolContext:
        return ToolContext(actor=f.actor(who, Surface.agent), session=self.session)

    def tool(self, who: Any, name: str, **args: Any) -> str:
        return str(TOOLS[name].run(self.ctx(who), TOOLS[name].parse(args)))


@pytest.fixture
def sales(session) -> Sales:  # type: ignore[no-untyped-def]
    w = f.world(session)
    w.priya.quota, w.raj.quota, w.eve.quota = Decimal("300000"), Decimal("150000"), Decimal("999000")
    stage = {s.name: s.id for s in stages_of(session, default_pipeline(session, w.ws.id).id)}
    today = ToolContext(actor=f.actor(w.dana), session=session).today
    this_q = pipeline_service.quarter_bounds(today)
    next_q = pipeline_service.quarter_bounds(today, 1)
    now = utcnow()
    ids: dict[str, Any] = {}

    def deal(who: Any, name: str, amount: str, stage_name: str, close: Any, category: str = "pipeline",
             currency: str = "USD", created_days_ago: int = 0, touched_days_ago: int | None = None) -> None:
        d = f.create(session, who, "deal", name=name, amount=amount, currency=currency, stage_id=stage[stage_name],
                     close_date=close, forecast_category=category)
        ids[name] = d.id
        session.get(Deal, d.id).created_at = now - timedelta(days=created_days_ago)
        if touched_days_ago is not None:
            f.create(session, who, "activity", type="call", subject=f"call on {name}",
                     occurred_at=now - timedelta(days=touched_days_ago), deal_ids=[d.id])

    deal(w.priya, "Kestrel – Renewal", "90000", "Closed Won", this_q[0], "closed")
    deal(w.priya, "Borealis – Fleet", "60000", "Discovery", this_q[1], "commit", created_days_ago=90,
         touched_days_ago=5)
    deal(w.priya, "Halden – Depot Pilot", "30000", "Negotiation", this_q[1], "best_case", "EUR", created_days_ago=40,
         touched_days_ago=35)
    deal(w.priya, "Nordlys – Grid", "20000", "Proposal", next_q[0])
    deal(w.raj, "Orca – Cold Chain", "45000", "Closed Won", this_q[0], "closed")
    deal(w.raj, "Lumen – Route Planner", "100000", "Demo", this_q[1], "best_case", created_days_ago=60)
    deal(w.raj, "Tern – Lost", "70000", "Closed Lost", this_q[0], "omitted")
    deal(w.raj, "Skua – Maybe", "5000", "Qualification", this_q[1], "omitted")
    deal(w.eve, "Eastwind – Yard Ops", "90000", "Proposal", this_q[1], "commit", created_days_ago=45)
    session.commit()
    return Sales(w, session, ids)


def dashboard(session: Any, http: Any, who: Any, **params: Any) -> dict[str, Any]:
    response = f.api(session, http, who).get("/dashboard", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def amounts(raw: dict[str, str]) -> dict[str, Decimal]:
    return {currency: Decimal(value) for currency, value in raw.items()}


# --- the chat's answers, written from the API's JSON -----------------------------------------------

def pipeline_text(data: dict[str, Any]) -> str:
    """pipeline_summary's answer, from the dashboard's numbers."""
    lines = [data["not_shown"]] if data["not_shown"] else []
    lines += [f"Open pipeline ({data['scope_label']}):"]
    lines += [f"- {s['stage']}: {s['deals']} deals, {money(amounts(s['amount']))} "
              f"(weighted {money(amounts(s['weighted']))})" for s in data["pipeline"]["stages"]]
    return "\n".join([*lines, f"Total: {data['pipeline']['total_deals']} open deals."])


def forecast_text(fc: dict[str, Any]) -> str:
    """forecast_summary's answer after its first line, from the dashboard's numbers (the totals or one rep's)."""
    out = [f"- closed won: {money(amounts(fc['closed_won']))} ({fc['won_deals']} deals)",
           f"- commit: {money(amounts(fc['commit']))}", f"- best case: {money(amounts(fc['best_case']))}",
           f"- pipeline: {money(amounts(fc['pipeline']))}",
           f"- weighted open: {money(amounts(fc['weighted']))} ({fc['open_deals']} open deals)"]
    if fc["attainment"]:
        att = fc["attainment"]
        out.append(f"- quota: {Decimal(fc['quota']):,.0f} {fc['quota_currency']}; attainment "
                   f"{att['closed_won']:.0%} (closed won), {att['with_commit']:.0%} with commit")
    if fc["deals"]:
        out.append("Largest deals counted:")
        out += [f"  - {d['name']}: {Decimal(d['amount'] or 0):,.0f} {d['currency']}, {d['stage']}, "
                f"{d['forecast_category']}, closes {d['close_date']} (id={d['id']})" for d in fc["deals"]]
    return "\n".join(out)


def stale_text(data: dict[str, Any]) -> str:
    """pipeline_analytics(stale_deals)'s answer, from the dashboard's numbers."""
    s = data["stale"]
    head = f"Stale deals, scope {data['scope_label']}: {s['total']} open deals with no activity for {s['days']}+ days"
    lines = [data["not_shown"]] if data["not_shown"] else []
    if not s["deals"]:
        return "\n".join([*lines, head + "."])
    lines += [head + (f" (oldest {len(s['deals'])} shown):" if s["total"] > len(s["deals"]) else ":")]
    lines += [f"- {d['name']} ({d['owner']}, {d['stage']}, {Decimal(d['amount'] or 0):,.0f} {d['currency']}): "
              f"{d['days']} days since {'last activity' if d['last_activity'] else 'created, no activity'} "
              f"(id={d['id']})" for d in s["deals"]]
    return "\n".join(lines)


def rep(data: dict[str, Any], name: str) -> dict[str, Any]:
    [line] = [r for r in data["forecast_by_rep"] if r["owner"] == name]
    return line


def deal_names(data: dict[str, Any]) -> set[str]:
    """Every deal the document names, in any panel."""
    names = {d["name"] for d in data["forecast"]["deals"]} | {d["name"] for d in data["stale"]["deals"]}
    for line in data["forecast_by_rep"]:
        names |= {d["name"] for d in line["deals"]}
    return names


# --- (1) the numbers the bot gives ----------------------------------------------------------------

def test_the_team_dashboard_has_the_known_numbers(session, http, sales: Sales) -> None:
    w = sales.w
    data = dashboard(session, http, w.dana)  # a manager's default: the team, this quarter, stale after 30 days
    assert (data["scope"], data["period"]["name"], data["stale"]["days"]) == ("team", "this_quarter", 30)
    assert data["scope_label"] == f"{w.west.name} team"
    assert data["default_currency"] == "USD"

    stages = {s["stage"]: (s["deals"], s["amount"], s["weighted"]) for s in data["pipeline"]["stages"]}
    assert stages == {"Qualification": (1, {"USD": "5000.00"}, {"USD": "500.00"}),
                      "Discovery": (1, {"USD": "60000.00"}, {"USD": "12000.00"}),
                      "Demo": (1, {"USD": "100000.00"}, {"USD": "40000.00"}),
                      "Proposal": (1, {"USD": "20000.00"}, {"USD": "12000.00"}),
                      "Negotiation": (1, {"EUR": "30000.00"}, {"EUR": "24000.00"})}  # EUR stays EUR
    assert [s["stage"] for s in data["pipeline"]["stages"]] == ["Qualification", "Discovery", "Demo", "Proposal",
                                                                "Negotiation"]  # pipeline order
    assert data["pipeline"]["total_deals"] == 5

    fc = data["forecast"]
    assert (fc["closed_won"], fc["won_deals"]) == ({"USD": "135000.00"}, 2)
    assert fc["commit"] == {"USD": "60000.00"}
    assert fc["best_case"] == {"EUR": "30000.00", "USD": "100000.00"}
    assert fc["pipeline"] == {}  # Nordlys closes next quarter; Skua is omitted
    assert (fc["weighted"], fc["open_deals"]) == ({"EUR": "24000.00", "USD": "52000.00"}, 3)
    assert (fc["quota"], fc["quota_currency"]) == ("450000.00", "USD")  # Priya + Raj
    assert fc["attainment"] == {"closed_won": pytest.approx(0.3), "with_commit": pytest.approx(195 / 450)}
    assert [d["name"] for d in fc["deals"]] == ["Lumen – Route Planner", "Kestrel – Renewal", "Borealis – Fleet",
                                                "Orca – Cold Chain", "Halden – Depot Pilot", "Skua – Maybe"]
    assert fc["deals"][0]["id"] == str(sales.ids["Lumen – Route Planner"])

    assert [r["owner"] for r in data["forecast_by_rep"]] == ["Priya Raman", "Raj Patel"]  # not East's Eve
    priya, raj = rep(data, "Priya Raman"), rep(data, "Raj Patel")
    assert (priya["closed_won"], priya["commit"], priya["best_case"]) == (
        {"USD": "90000.00"}, {"USD": "60000.00"}, {"EUR": "30000.00"})
    assert (priya["quota"], priya["attainment"]) == ("300000.00", {"closed_won": 0.3, "with_commit": 0.5})
    assert (raj["closed_won"], raj["best_case"], raj["won_deals"], raj["open_deals"]) == (
        {"USD": "45000.00"}, {"USD": "100000.00"}, 1, 1)
    assert (raj["quota"], raj["attainment"]) == ("150000.00", {"closed_won": 0.3, "with_commit": 0.3})
    assert {d["name"] for d in raj["deals"]} == {"Orca – Cold Chain", "Lumen – Route Planner", "Skua – Maybe"}

    assert data["stale"]["total"] == 2
    assert [(d["name"], d["days"], d["last_activity"] is None) for d in data["stale"]["deals"]] == [
        ("Lumen – Route Planner", 60, True), ("Halden – Depot Pilot", 35, False)]
    assert data["stale"]["deals"][0]["id"] == str(sales.ids["Lumen – Route Planner"])


@pytest.mark.parametrize(("who", "params"), [
    ("dana", {}), ("priya", {}), ("raj", {"scope": "team"}), ("admin", {}), ("priya", {"scope": "all"}),
    ("dana", {"period": "next_quarter"}), ("dana", {"period": "this_month", "scope": "mine"}),
    ("admin", {"period": "next_month", "scope": "team"}),
])
def test_the_dashboard_says_what_the_chat_says(session, http, sales: Sales, who: str, params: dict[str, str]) -> None:
    user = getattr(sales.w, who)
    data = dashboard(session, http, user, **params)
    label, not_shown = data["scope_label"], [data["not_shown"]] if data["not_shown"] else []
    args = {"scope": params["scope"]} if "scope" in params else {}
    told = sales.tool(user, "pipeline_summary", **args)
    assert pipeline_text(data) == told if data["pipeline"]["stages"] else told == "\n".join(
        [*not_shown, f"No open deals in scope {label}."])
    period = params.get("period", "this_quarter")
    said = sales.tool(user, "forecast_summary", period=period, **args).split("\n")
    head, told = said[len(not_shown)], "\n".join(said[len(not_shown) + 1:])
    assert said[:len(not_shown)] == not_shown and forecast_text(data["forecast"]) == told
    p = data["period"]
    assert f"{p['start']} to {p['end']}" in head and f"scope {label}" in head
    assert (date.fromisoformat(p["start"]), date.fromisoformat(p["end"])) == resolve_period(
        sales.ctx(user), period, None, None)[:2]
    assert stale_text(data) == sales.tool(user, "pipeline_analytics", metric="stale_deals", days=30, **args)


def test_each_reps_line_is_what_that_rep_is_told(session, http, sales: Sales) -> None:
    """Dana's "forecast by rep": each line is the forecast Priya and Raj get for "mine" from the bot,
    and the lines add up to the team's totals, currency by currency."""
    w = sales.w
    data = dashboard(session, http, w.dana)
    for user in (w.priya, w.raj):
        told = sales.tool(user, "forecast_summary", period="this_quarter", scope="mine").partition("\n")[2]
        assert forecast_text(rep(data, user.name)) == told
    for bucket in ("closed_won", "commit", "best_case", "pipeline", "weighted"):
        total: dict[str, Decimal] = {}
        for line in data["forecast_by_rep"]:
            for currency, value in amounts(line[bucket]).items():
                total[currency] = total.get(currency, Decimal(0)) + value
        assert total == amounts(data["forecast"][bucket]), bucket
    assert sum(r["open_deals"] for r in data["forecast_by_rep"]) == data["forecast"]["open_deals"]
    assert sum(Decimal(r["quota"]) for r in data["forecast_by_rep"]) == Decimal(data["forecast"]["quota"])


def test_a_rep_with_a_quota_and_nothing_closing_still_has_a_line(session, http, sales: Sales) -> None:
    w = sales.w
    sam = f.user(session, w.ws, team=w.west, name="Sam Newhire")
    sam.quota = Decimal("90000")
    session.commit()
    line = rep(dashboard(session, http, w.dana), "Sam Newhire")
    assert (line["closed_won"], line["open_deals"], line["deals"], line["quota"]) == ({}, 0, [], "90000.00")
    assert line["attainment"] == {"closed_won": 0.0, "with_commit": 0.0}


# --- (2) scopes ------------------------------------------------------------------------------------

def test_a_rep_sees_only_their_own_deals(session, http, sales: Sales) -> None:
    data = dashboard(session, http, sales.w.priya)
    assert data["scope"] == "mine" and data["scope_label"] == "Priya Raman"
    assert [r["owner"] for r in data["forecast_by_rep"]] == ["Priya Raman"]
    assert deal_names(data) == {"Kestrel – Renewal", "Borealis – Fleet", "Halden – Depot Pilot"}
    assert data["pipeline"]["total_deals"] == 3  # Borealis, Halden, Nordlys
    assert data["forecast"]["quota"] == "300000.00"
    assert [d["name"] for d in data["stale"]["deals"]] == ["Halden – Depot Pilot"]


def test_a_manager_sees_the_team_not_the_other_team(session, http, sales: Sales) -> None:
    data = dashboard(session, http, sales.w.dana)
    assert deal_names(data) <= WEST_NAMES
    assert "Eastwind" not in json.dumps(data) and "Eve East" not in json.dumps(data)
    # Asking for everything changes nothing: a manager reads her team's deals only.
    everything = dashboard(session, http, sales.w.dana, scope="all")
    assert deal_names(everything) <= WEST_NAMES and "Eastwind" not in json.dumps(everything)
    assert everything["forecast"]["quota"] is None  # "all" is not one set of people for her
    assert dashboard(session, http, sales.w.dana, scope="mine")["pipeline"]["total_deals"] == 0


def test_a_rep_asking_for_all_sees_only_what_they_can_read(session, http, sales: Sales) -> None:
    data = dashboard(session, http, sales.w.priya, scope="all")
    assert data["scope"] == "all" and data["scope_label"] == "All deals you can see"
    assert data["not_shown"] == (f"Not shown: other teams' deals (only admins see every team's numbers). Shown: the "
                                 f"deals you can read: the {sales.w.west.name} team's and unassigned ones.")
    assert "Eastwind" not in json.dumps(data) and "Eve East" not in json.dumps(data)
    assert data["pipeline"]["total_deals"] == 5  # the West team's open deals, which reps may read
    assert {r["owner"] for r in data["forecast_by_rep"]} == {"Priya Raman", "Raj Patel"}
    assert data["forecast"]["quota"] is None
    assert all(r["quota"] is None for r in data["forecast_by_rep"])  # nobody's quota, not even a teammate's
    # On a team scope a rep sees her own quota on her line, not her teammates'.
    team = dashboard(session, http, sales.w.priya, scope="team")
    assert (rep(team, "Priya Raman")["quota"], rep(team, "Raj Patel")["quota"]) == ("300000.00", None)


def test_an_admin_sees_every_team(session, http, sales: Sales) -> None:
    data = dashboard(session, http, sales.w.admin)
    assert data["scope"] == "all" and data["scope_label"] == "All teams" and data["not_shown"] is None
    assert [r["owner"] for r in data["forecast_by_rep"]] == ["Eve East", "Priya Raman", "Raj Patel"]
    assert data["forecast"]["commit"] == {"USD": "150000.00"}  # Borealis + Eastwind
    assert data["forecast"]["quota"] == "1449000.00"
    assert [d["name"] for d in data["stale"]["deals"]] == ["Lumen – Route Planner", "Eastwind – Yard Ops",
                                                           "Halden – Depot Pilot"]
    assert "Eastwind" not in json.dumps(dashboard(session, http, sales.w.other_admin))  # another workspace


def test_stale_days_and_bad_requests(session, http, sales: Sales) -> None:
    assert dashboard(session, http, sales.w.dana, stale_days=50)["stale"]["total"] == 1  # Lumen, 60 days
    client = f.api(session, http, sales.w.dana)
    assert client.get("/dashboard", params={"period": "this_decade"}).status_code == 422
    assert client.get("/dashboard", params={"scope": "everyone"}).status_code == 422
    assert client.get("/dashboard", params={"stale_days": 0}).status_code == 422
    assert http.get("/api/v1/dashboard").status_code == 401
    page = http.get("/dashboard")
    assert page.status_code == 200 and "Forecast by rep" in page.text and 'href="/"' in page.text
    assert 'href="/dashboard"' in http.get("/").text  # the chat links to the dashboard


# --- (3) the page in a real browser ----------------------------------------------------------------

server = web_chat.server  # the fixture: the real app under uvicorn, with the demo data (`crm setup`)
DANA = "dana@demo.agentcrm.dev"
SCREENSHOT = Path("/tmp/dashboard.png")


@pytest.fixture
def board(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/dashboard")
        yield page
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def fetch(server: Server, token: str, path: str) -> dict[str, Any]:
    request = urllib.request.Request(server.url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.mark.browser
def test_the_dashboard_page_shows_the_numbers(server: Server, board: Any) -> None:
    from playwright.sync_api import expect

    from store.db import unit_of_work
    from store.models import User
    from store.services.analytics import stale_deals
    from store.services.org import actor_for_user

    page = board
    page.get_by_label("API token").fill(server.tokens[DANA])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("signed in as Dana Whitfield (manager)")).to_be_visible()
    page.wait_for_selector('body[data-requests="0"]', state="attached")
    expect(page.locator("#pipeline-table")).to_be_visible()

    # What the services (and so the bot) say for Dana: her team, this quarter.
    with unit_of_work() as session:
        dana = session.query(User).filter_by(email=DANA).one()
        actor = actor_for_user(dana, Surface.api)
        ctx = ToolContext(actor=actor, session=session)
        start, end, _ = resolve_period(ctx, "this_quarter", None, None)
        stages = pipeline_service.pipeline_by_stage(session, actor=actor, scope="team")
        fc = pipeline_service.forecast(session, actor=actor, scope="team", start=start, end=end)
        reps = dashboard_service.forecast_by_owner(session, actor=actor, scope="team", start=start, end=end)
        stale = stale_deals(session, actor=actor, scope="team", today=ctx.today, days=30, tz=ctx.tz)
    assert stages and reps and fc.open_deals, "the demo data should give Dana's team a pipeline"

    expect(page.locator("#scope")).to_have_value("team")
    expect(page.locator("#forecast-title")).to_have_text("Forecast · This quarter")
    for label, bucket in (("Closed won", fc.closed_won), ("Commit", fc.commit), ("Best case", fc.best_case),
                          ("Pipeline", fc.pipeline), ("Weighted open", fc.weighted)):
        expect(page.locator(f'.tile[data-bucket="{label}"] .value')).to_have_text(money(bucket))
    if fc.quota:
        expect(page.locator("#quota")).to_contain_text(f"{fc.quota:,.0f} {fc.quota_currency}")
    rows = page.locator("#pipeline-table tbody tr")
    expect(rows).to_have_count(len(stages))
    for i, line in enumerate(stages):
        expect(rows.nth(i).locator("td")).to_have_text([line.stage, str(line.deals), money(line.amount),
                                                        money(line.weighted), ""])
    rep_rows = page.locator("#reps-table > tbody > tr")
    expect(rep_rows).to_have_count(len(reps))
    for i, line in enumerate(reps):
        cells = rep_rows.nth(i).locator(":scope > td")
        expect(cells.nth(0)).to_contain_text(line.owner)
        expect(cells.nth(1)).to_have_text(money(line.closed_won))
        expect(cells.nth(2)).to_have_text(money(line.commit))
    expect(page.locator("#stale-meta")).to_contain_text(f"{stale.total} open deal")
    stale_rows = page.locator("#stale-table tbody tr")
    expect(stale_rows).to_have_count(len(stale.deals))
    if stale.deals:
        first = stale.deals[0]
        expect(stale_rows.first).to_contain_text(first.name)
        expect(stale_rows.first).to_contain_text(f"{first.days} days")
        expect(stale_rows.first).to_have_attribute("data-deal-id", str(first.id))
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The selectors ask again: next quarter, then only Dana's own deals; the URL keeps the choice.
    page.locator("#period").select_option("next_quarter")
    expect(page.locator("#forecast-title")).to_have_text("Forecast · Next quarter")
    page.wait_for_selector('body[data-requests="0"]', state="attached")
    following = fetch(server, server.tokens[DANA], "/dashboard?period=next_quarter")
    expect(page.locator('.tile[data-bucket="Commit"] .value')).to_have_text(
        money(amounts(following["forecast"]["commit"])))
    page.locator("#scope").select_option("mine")
    page.wait_for_selector('body[data-requests="0"]', state="attached")
    assert "scope=mine" in page.url and "period=next_quarter" in page.url
    mine = fetch(server, server.tokens[DANA], "/dashboard?period=next_quarter&scope=mine")
    expect(page.locator("#pipeline-meta")).to_have_text(
        f"{mine['pipeline']['total_deals']} open deal" + ("" if mine["pipeline"]["total_deals"] == 1 else "s"))

    # The link back to the chat.
    page.get_by_role("link", name="Chat").click()
    expect(page.get_by_role("heading", name="Chat")).to_be_visible()
