"""Quote policy through the HTTP API: catalogue prices, the manager threshold, the state machine.

The agent's door (create_quote, approve_quote and edits of them) is in tests/test_gate.py, Slack's
approval queue ("waiting") in tests/test_slack.py; all three go through store/services/quotes.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests import factories as f


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


@pytest.fixture
def setup(session, http, w):  # type: ignore[no-untyped-def]
    """Priya's deal, a catalogue with a 6,000 add-on and a 1,000 seat, and an API client per person."""
    admin, priya, dana = (f.api(session, http, u) for u in (w.admin, w.priya, w.dana))
    addon = admin.post("/products", json={"name": "API access", "sku": "API-ADD", "unit_price": "6000"}).json()
    seat = admin.post("/products", json={"name": "Platform seat", "sku": "SEAT", "unit_price": "1000"}).json()
    deal = priya.post("/deals", json={"name": "Borealis fleet"}).json()
    return {"admin": admin, "priya": priya, "dana": dana, "raj": f.api(session, http, w.raj),
            "addon": addon, "seat": seat, "deal": deal}


def draft(s: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"deal_id": s["deal"]["id"], "line_items": [{"product_id": s["seat"]["id"], "quantity": "10"}], **fields}
    r = s["priya"].post("/quotes", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def move(api: f.Api, quote: dict[str, Any], to: str) -> Any:
    return api.post(f"/quotes/{quote['id']}/transitions", json={"to": to})


def test_a_new_quote_is_a_draft_whatever_the_caller_says(setup) -> None:
    s = setup
    r = s["priya"].post("/quotes", json={"deal_id": s["deal"]["id"], "status": "accepted", "discount_percent": "60",
                                         "line_items": [{"product_id": s["seat"]["id"], "quantity": "10"}]})
    assert r.status_code == 422 and "starts as a draft" in r.json()["message"]
    assert s["priya"].get("/quotes").json()["total"] == 0  # nothing half-made
    assert draft(s)["status"] == "draft"


def test_terms_change_only_while_a_quote_is_a_draft(setup) -> None:
    s = setup
    quote = draft(s, discount_percent="10")
    for to in ("approved", "sent"):  # within her limits Priya approves and sends it herself
        r = s["priya"].patch(f"/quotes/{quote['id']}", json={"status": to})
        assert r.status_code == 200 and r.json()["status"] == to, r.text
    r = s["priya"].patch(f"/quotes/{quote['id']}", json={"discount_percent": "90"})
    assert r.status_code == 409 and "change only while it is a draft" in r.json()["message"]
    again = s["priya"].get(f"/quotes/{quote['id']}").json()
    assert Decimal(again["discount_percent"]) == Decimal(10) and again["total"] == quote["total"]
    # An approved quote can be reopened to change it (and is approved again after); a sent one cannot.
    assert move(s["priya"], quote, "draft").status_code == 409


def test_a_rep_cannot_approve_her_own_discount_above_the_threshold(setup) -> None:
    s = setup
    quote = draft(s, discount_percent="30")
    r = s["priya"].patch(f"/quotes/{quote['id']}", json={"status": "approved"})
    assert r.status_code == 403 and "needs a manager" in r.json()["message"]
    assert "30% off list is above the 20% a rep may give alone" in r.json()["message"]
    assert move(s["priya"], quote, "approved").status_code == 403
    assert s["priya"].get(f"/quotes/{quote['id']}").json()["status"] == "draft"

    # Submitted, it waits in Dana's approval queue (not Priya's, not her teammate Raj's) ...
    assert move(s["priya"], quote, "pending_approval").json()["status"] == "pending_approval"
    assert s["priya"].get("/approvals/waiting").json() == [] and s["raj"].get("/approvals/waiting").json() == []
    (waiting,) = s["dana"].get("/approvals/waiting").json()
    assert waiting["tool"] == "approve_quote" and quote["number"] in waiting["summary"]
    assert "needs a manager" in waiting["summary"]
    assert s["priya"].patch(f"/quotes/{quote['id']}", json={"status": "approved"}).status_code == 403
    # ... and Dana's approval there approves the quote.
    r = s["dana"].post(f"/approvals/{waiting['id']}/decision", json={"kind": "approve"})
    assert r.status_code == 200 and r.json()["approval"]["status"] == "executed", r.text
    assert s["priya"].get(f"/quotes/{quote['id']}").json()["status"] == "approved"
    assert move(s["priya"], quote, "sent").json()["status"] == "sent"


def test_a_price_below_the_catalogue_counts_as_a_discount(setup) -> None:
    s = setup
    r = s["priya"].post("/quotes", json={"deal_id": s["deal"]["id"], "line_items": [
        {"product_id": s["addon"]["id"], "quantity": "2", "unit_price": "1"}]})
    assert r.status_code == 201 and Decimal(r.json()["total"]) == Decimal("2.00")
    quote = r.json()
    line = quote["line_items"][0]
    assert Decimal(line["list_price"]) == Decimal(6000) and Decimal(line["unit_price"]) == Decimal(1)
    r = move(s["priya"], quote, "approved")
    assert r.status_code == 403 and "priced at 1.00, not the catalogue's 6,000.00" in r.json()["message"]
    # A free-text line has no catalogue price: also a manager's call.
    other = s["priya"].post("/quotes", json={"deal_id": s["deal"]["id"], "line_items": [
        {"description": "Custom integration", "unit_price": "500"}]}).json()
    assert "has no catalogue price in USD" in move(s["priya"], other, "approved").json()["message"]
    # A line that names a catalogue product by its name costs the catalogue's price.
    named = s["priya"].post("/quotes", json={"deal_id": s["deal"]["id"], "line_items": [
        {"description": "platform seat", "quantity": "3"}]}).json()
    assert named["line_items"][0]["product_id"] == s["seat"]["id"] and Decimal(named["total"]) == Decimal(3000)
    assert move(s["priya"], named, "approved").json()["status"] == "approved"
    assert move(s["dana"], quote, "approved").json()["status"] == "approved"  # her manager may


def test_rejected_or_withdrawn_the_quote_goes_back_to_draft(setup) -> None:
    s = setup
    quote = draft(s, discount_percent="30")
    move(s["priya"], quote, "pending_approval")
    (waiting,) = s["dana"].get("/approvals/waiting").json()
    r = s["dana"].post(f"/approvals/{waiting['id']}/decision", json={"kind": "reject", "reason": "25% at most"})
    assert r.status_code == 200 and r.json()["approval"]["status"] == "rejected"
    assert s["priya"].get(f"/quotes/{quote['id']}").json()["status"] == "draft"
    r = s["priya"].patch(f"/quotes/{quote['id']}", json={"discount_percent": "25", "status": "pending_approval"})
    assert r.status_code == 200 and r.json()["status"] == "pending_approval"
    # Withdrawn by Priya, the proposal leaves Dana's approval queue.
    assert len(s["dana"].get("/approvals/waiting").json()) == 1
    assert move(s["priya"], quote, "draft").json()["status"] == "draft"
    assert s["dana"].get("/approvals/waiting").json() == []
    # Approved on the quote itself by Dana, the proposal is closed too; so it is when a quote is deleted.
    move(s["priya"], quote, "pending_approval")
    assert move(s["dana"], quote, "approved").json()["status"] == "approved"
    assert s["dana"].get("/approvals/waiting").json() == []
    other = draft(s, discount_percent="40")
    move(s["priya"], other, "pending_approval")
    assert s["priya"].delete(f"/quotes/{other['id']}").status_code == 204
    assert s["dana"].get("/approvals/waiting").json() == []


def test_the_state_machine_says_what_is_possible(setup) -> None:
    s = setup
    quote = draft(s)
    r = move(s["priya"], quote, "sent")
    assert r.status_code == 409
    assert r.json()["message"] == (f"quote {quote['number']} is draft: it can move to pending_approval, approved, "
                                   "not sent")
    r = move(s["priya"], quote, "won")
    assert r.status_code == 422 and "unknown quote status 'won'" in r.json()["message"]
    for to in ("approved", "sent", "accepted"):
        assert move(s["priya"], quote, to).status_code == 200
    r = move(s["priya"], quote, "draft")
    assert r.status_code == 409 and "it is final" in r.json()["message"]
    assert move(s["raj"], quote, "declined").status_code == 403  # a teammate reads it, only its owner moves it


def test_the_threshold_is_the_workspaces(setup) -> None:
    s = setup
    bad = s["admin"].patch("/workspace", json={"settings": {"approvals": {"manager_discount_percent": "lots"}}})
    assert bad.status_code == 422 and "number from 0 to 100" in bad.json()["message"]
    ok = s["admin"].patch("/workspace", json={"settings": {"approvals": {"manager_discount_percent": 35}}})
    assert ok.status_code == 200
    assert move(s["priya"], draft(s, discount_percent="30"), "approved").json()["status"] == "approved"
    quote = draft(s, discount_percent="36")
    assert "above the 35% a rep may give alone" in move(s["priya"], quote, "approved").json()["message"]


def test_a_line_or_total_past_what_its_column_holds_is_a_422_naming_the_line(setup) -> None:
    s = setup
    body = {"deal_id": s["deal"]["id"], "line_items": [{"product_id": s["seat"]["id"], "quantity": "1"},
                                                        {"product_id": s["seat"]["id"], "quantity": "99999999999"}]}
    r = s["priya"].post("/quotes", json=body)
    assert r.status_code == 422 and r.json()["message"].startswith("line 2: quantity"), r.text
    # Each line fits (about 6e13); two hundred of them pass the 16 digits a total keeps.
    many = [{"product_id": s["addon"]["id"], "quantity": "9999999999"}] * 200
    r = s["priya"].post("/quotes", json={"deal_id": s["deal"]["id"], "line_items": many})
    assert r.status_code == 422 and "subtotal" in r.json().get("message", ""), r.status_code
    assert s["priya"].get("/quotes").json()["total"] == 0
