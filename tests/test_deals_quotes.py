"""Deal stage history, closing and re-opening; quote arithmetic; one default pipeline."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from store import pricing
from store.models import DealHistory, Pipeline, Stage
from tests import factories as f


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


def stages(session, ws) -> dict[str, str]:  # type: ignore[no-untyped-def]
    pipeline = session.scalar(select(Pipeline).where(Pipeline.workspace_id == ws.id, Pipeline.is_default.is_(True)))
    return {s.name: str(s.id) for s in session.scalars(select(Stage).where(Stage.pipeline_id == pipeline.id))}


def test_stage_history_is_recorded_with_timestamps(session, http, w) -> None:
    api, st = f.api(session, http, w.priya), stages(session, w.ws)
    deal = api.post("/deals", json={"name": "Borealis", "amount": "48000", "close_date": "2027-01-31"}).json()
    assert deal["stage_name"] == "Qualification" and deal["stage_entered_at"]
    api.patch(f"/deals/{deal['id']}", json={"stage_id": st["Proposal"]})
    api.patch(f"/deals/{deal['id']}", json={"amount": "62000", "close_date": "2027-02-28"})
    api.patch(f"/deals/{deal['id']}", json={"next_step": "call Ines"})  # not a forecast field: no snapshot
    won = api.patch(f"/deals/{deal['id']}", json={"stage_id": st["Closed Won"]}).json()
    assert won["forecast_category"] == "closed" and won["closed_at"]

    rows = session.scalars(select(DealHistory).where(DealHistory.deal_id == uuid.UUID(deal["id"]))
                           .order_by(DealHistory.changed_at, DealHistory.id)).all()
    assert [(str(r.from_stage_id) if r.from_stage_id else None, str(r.stage_id)) for r in rows] == [
        (None, st["Qualification"]), (st["Qualification"], st["Proposal"]), (None, st["Proposal"]),
        (st["Proposal"], st["Closed Won"])]
    assert rows[2].amount == Decimal("62000.00") and str(rows[2].close_date) == "2027-02-28"
    assert all(a.changed_at <= b.changed_at for a, b in zip(rows, rows[1:], strict=False))
    assert all(r.changed_by_id == w.priya.id for r in rows)
    # The same history, as the API shows it.
    listed = api.get("/deal-history", params={"deal_id": deal["id"]}).json()
    assert listed["total"] == 4


def test_lost_then_reopened(session, http, w) -> None:
    api, st = f.api(session, http, w.priya), stages(session, w.ws)
    deal = api.post("/deals", json={"name": "Nordlys", "forecast_category": "commit"}).json()
    lost = api.patch(f"/deals/{deal['id']}",
                     json={"stage_id": st["Closed Lost"], "lost_reason": "went with a competitor"}).json()
    assert lost["forecast_category"] == "omitted" and lost["closed_at"]
    assert lost["lost_reason"] == "went with a competitor"
    reopened = api.patch(f"/deals/{deal['id']}", json={"stage_id": st["Discovery"]}).json()
    assert reopened["closed_at"] is None and reopened["forecast_category"] == "pipeline"


def test_stage_must_belong_to_the_pipeline(session, http, w) -> None:
    admin = f.api(session, http, w.admin)
    other = admin.post("/pipelines", json={"name": "Renewals"}).json()
    foreign_stage = admin.post("/stages", json={"pipeline_id": other["id"], "name": "Renewal due", "position": 0,
                                                "probability": 50}).json()
    r = f.api(session, http, w.priya).post("/deals", json={"name": "X", "stage_id": foreign_stage["id"]})
    assert r.status_code == 422 and "Qualification" in r.json()["message"]


def test_one_default_pipeline(session, http, w) -> None:
    admin = f.api(session, http, w.admin)
    new = admin.post("/pipelines", json={"name": "Partners", "is_default": True}).json()
    defaults = [p["id"] for p in admin.get("/pipelines", params={"is_default": "true"}).json()["items"]]
    assert defaults == [new["id"]]


def test_deal_contacts_with_roles(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    ines = api.post("/contacts", json={"first_name": "Ines", "email": "ines@borealis.example"}).json()
    marco = api.post("/contacts", json={"first_name": "Marco", "email": "marco@borealis.example"}).json()
    deal = api.post("/deals", json={"name": "Borealis", "contacts": [
        {"contact_id": ines["id"], "role": "champion", "is_primary": True},
        {"contact_id": marco["id"], "role": "technical_buyer"}]}).json()
    assert {(c["contact_id"], c["role"]) for c in deal["contacts"]} == {
        (ines["id"], "champion"), (marco["id"], "technical_buyer")}
    dup = api.post("/deal-contacts", json={"deal_id": deal["id"], "contact_id": ines["id"]})
    assert dup.status_code == 409 and "already on this deal" in dup.json()["message"]


def test_quote_totals_are_computed_in_one_place(session, http, w) -> None:
    admin, api = f.api(session, http, w.admin), f.api(session, http, w.priya)
    product = admin.post("/products", json={"name": "Telematics module", "sku": "TM-1", "unit_price": "14000",
                                            "currency": "EUR"}).json()
    deal = api.post("/deals", json={"name": "Borealis", "currency": "EUR"}).json()
    quote = api.post("/quotes", json={"deal_id": deal["id"], "discount_percent": "10", "tax_percent": "23",
                                      "line_items": [
                                          {"product_id": product["id"], "quantity": "2"},
                                          {"description": "Onboarding", "unit_price": "3333.33",
                                           "discount_percent": "15"},
                                      ]}).json()
    assert quote["currency"] == "EUR" and quote["number"].startswith("Q-")
    lines = quote["line_items"]
    assert lines[0]["description"] == "Telematics module" and Decimal(lines[0]["line_total"]) == Decimal("28000.00")
    assert Decimal(lines[1]["line_total"]) == Decimal("2833.33")  # 3333.33 * 0.85 = 2833.3305
    expected = pricing.quote_totals([Decimal("28000.00"), Decimal("2833.33")],
                                    discount_percent=Decimal(10), tax_percent=Decimal(23))
    assert Decimal(quote["subtotal"]) == expected.subtotal == Decimal("30833.33")
    assert Decimal(quote["discount_total"]) == Decimal("3083.33")
    assert Decimal(quote["tax_total"]) == Decimal("6382.50")  # 27750.00 * 0.23
    assert Decimal(quote["total"]) == Decimal("34132.50")
    # Changing the discount recomputes the totals.
    changed = api.patch(f"/quotes/{quote['id']}", json={"discount_percent": "30"}).json()
    assert Decimal(changed["total"]) == pricing.quote_totals(
        [Decimal("28000.00"), Decimal("2833.33")], discount_percent=Decimal(30), tax_percent=Decimal(23)).total


def test_pricing_rounding_half_up() -> None:
    assert pricing.line_total(Decimal("1"), Decimal("0.125")) == Decimal("0.13")
    assert pricing.line_total(Decimal("3"), Decimal("19.99"), Decimal("12.5")) == Decimal("52.47")
    totals = pricing.quote_totals([], discount_percent=Decimal(10), tax_percent=Decimal(20))
    assert totals.total == Decimal("0.00")
