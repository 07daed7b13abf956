"""The timeline of a record (one query) and search by name, email, domain, phone, with typos."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import factories as f


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


def test_company_timeline_includes_its_people_and_deals(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    co = api.post("/companies", json={"name": "Borealis Logistics", "domain": "borealis.example"}).json()
    other = api.post("/companies", json={"name": "Nordlys", "domain": "nordlys.example"}).json()
    ines = api.post("/contacts", json={"first_name": "Ines", "last_name": "Duarte", "company_id": co["id"]}).json()
    deal = api.post("/deals", json={"name": "Borealis fleet", "company_id": co["id"]}).json()
    t0 = datetime(2026, 11, 2, 10, tzinfo=UTC)
    api.post("/activities", json={"type": "call", "subject": "Discovery call", "contact_ids": [ines["id"]],
                                  "occurred_at": t0.isoformat()})
    api.post("/activities", json={"type": "meeting", "subject": "Demo", "deal_ids": [deal["id"]],
                                  "occurred_at": (t0 + timedelta(days=3)).isoformat()})
    api.post("/activities", json={"type": "email", "subject": "Unrelated", "company_ids": [other["id"]],
                                  "occurred_at": (t0 + timedelta(days=4)).isoformat()})
    api.post("/notes", json={"body": "Wants the pilot in January", "company_id": co["id"]})
    api.post("/tasks", json={"title": "Send revised quote", "deal_id": deal["id"],
                             "due_at": (t0 + timedelta(days=5)).isoformat()})

    items = api.get(f"/companies/{co['id']}/timeline").json()
    titles = [(i["kind"], i["title"] or i["body"]) for i in items]
    assert ("activity", "Discovery call") in titles and ("activity", "Demo") in titles
    assert ("note", "Wants the pilot in January") in titles and ("task", "Send revised quote") in titles
    assert all(t[1] != "Unrelated" for t in titles)
    ats = [i["at"] for i in items]
    assert ats == sorted(ats, reverse=True)
    assert all(i["at"].endswith("Z") or i["at"].endswith("+00:00") for i in items)

    contact_items = api.get(f"/contacts/{ines['id']}/timeline").json()
    assert [i["title"] for i in contact_items] == ["Discovery call"]
    deal_items = api.get(f"/deals/{deal['id']}/timeline").json()
    assert {i["title"] for i in deal_items} == {"Demo", "Send revised quote"}
    # The contact was touched by the call.
    assert api.get(f"/contacts/{ines['id']}").json()["last_activity_at"].startswith("2026-11-02T10:00")


def test_search_by_name_email_domain_phone_and_typos(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    co = api.post("/companies", json={"name": "Borealis Logistics", "domain": "borealis-logistics.example"}).json()
    ines = api.post("/contacts", json={"first_name": "Ines", "last_name": "Duarte", "phone": "+351 912 345 678",
                                       "email": "ines.duarte@borealis-logistics.example"}).json()
    api.post("/companies", json={"name": "Northwind Traders", "domain": "northwind.example"})

    def ids(q: str) -> list[str]:
        return [h["id"] for h in api.get("/search", params={"q": q}).json()]

    assert ids("Ines Duarte")[0] == ines["id"]
    assert ids("ines.duarte@borealis-logistics.example") == [ines["id"]]
    assert co["id"] in ids("borealis-logistics.example")
    assert ids("912 345 678") == [ines["id"]]
    assert ids("Borelis")[0] == co["id"]  # a typo, found by the fuzzy fallback
    assert ids("borealis logistcs")[0] == co["id"]
    assert ids("zzzzqqq") == []
    only_contacts = api.get("/search", params={"q": "borealis", "kind": "contact"}).json()
    assert {h["kind"] for h in only_contacts} <= {"contact"}
