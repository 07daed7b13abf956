"""Create, read, update, delete and list every entity through the HTTP API."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

import pytest
from sqlalchemy import select

from store.models import AuditLog
from store.services import REGISTRY
from tests import factories as f
from tests.samples import CHILDREN, CONFIG, OWNED, SAMPLES, _ids


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


def plural(entity: str) -> str:
    return REGISTRY[entity].plural


def same(got: object, sent: object) -> bool:
    """Equal as the API means it: "62000" and "62000.00" are one amount."""
    try:
        return Decimal(str(got)) == Decimal(str(sent))
    except InvalidOperation:
        return got == sent


def test_openapi_lists_every_entity(http) -> None:
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    for name, entity in REGISTRY.items():
        assert f"/api/v1/{entity.plural}" in paths, name
        assert "get" in paths[f"/api/v1/{entity.plural}/{{id}}"], name
        if entity.creatable:
            assert "post" in paths[f"/api/v1/{entity.plural}"], name
    for extra in ("/api/v1/search", "/api/v1/me", "/api/v1/audit-log", "/api/v1/deals/{id}/timeline"):
        assert extra in paths
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("entity", OWNED + CHILDREN + CONFIG)
def test_crud_round_trip(session, http, w, entity) -> None:
    who = w.admin if entity in CONFIG else w.priya
    api = f.api(session, http, who)
    payload, change = SAMPLES[entity]
    created = api.post(f"/{plural(entity)}", json=payload(_ids(session, who)))
    assert created.status_code == 201, created.text
    body = created.json()
    rid = body["id"]
    if "owner_id" in body:
        assert body["owner_id"] == str(who.id)  # defaults to the caller

    got = api.get(f"/{plural(entity)}/{rid}")
    assert got.status_code == 200 and got.json() == body

    changed = api.patch(f"/{plural(entity)}/{rid}", json=change)
    assert changed.status_code == 200, changed.text
    for key, value in change.items():
        assert same(changed.json()[key], value), (key, changed.json()[key], value)

    listed = api.get(f"/{plural(entity)}", params={"limit": 200})
    assert rid in [i["id"] for i in listed.json()["items"]]

    deleted = api.delete(f"/{plural(entity)}/{rid}")
    if entity == "user":
        assert deleted.status_code == 409 and "is_active" in deleted.json()["message"]
        return
    assert deleted.status_code == 204
    assert api.get(f"/{plural(entity)}/{rid}").status_code == 404

    # Every write left an audit entry: who, which door, before -> after.
    entries = session.scalars(select(AuditLog).where(AuditLog.entity_id == uuid.UUID(rid))
                              .order_by(AuditLog.created_at, AuditLog.id)).all()
    assert [e.action.value for e in entries] == ["create", "update", "delete"]
    assert all(e.actor_id == who.id and e.surface.value == "api" for e in entries)
    assert entries[0].before is None and entries[0].after["id"] == rid
    key = next(iter(change))
    assert key in entries[1].after and key in entries[1].before
    assert entries[2].before["id"] == rid and entries[2].after is None


def test_history_endpoint_shows_before_and_after(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    rid = api.post("/deals", json={"name": "Borealis", "amount": "48000"}).json()["id"]
    api.patch(f"/deals/{rid}", json={"amount": "62000", "next_step": "revised quote by Thursday"})
    api.patch(f"/deals/{rid}", json={"amount": "62000.00"})  # the same amount: not a change
    history = api.get(f"/deals/{rid}/history").json()
    assert [h["action"] for h in history] == ["create", "update"]
    assert history[1]["before"] == {"amount": "48000", "next_step": None}
    assert history[1]["after"] == {"amount": "62000", "next_step": "revised quote by Thursday"}
    assert history[1]["actor_id"] == str(w.priya.id)


def test_duplicates_get_409_naming_the_existing_record(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    first = api.post("/contacts", json={"first_name": "Ines", "email": "ines@borealis.example"}).json()
    r = api.post("/contacts", json={"first_name": "Ines D.", "email": "  INES@Borealis.example "})
    assert r.status_code == 409
    assert r.json()["existing_id"] == first["id"]
    assert "ines@borealis.example" in r.json()["message"]

    co = api.post("/companies", json={"name": "Borealis", "website": "https://www.borealis.example/about"}).json()
    assert co["domain"] == "borealis.example"
    r = api.post("/companies", json={"name": "Borealis Logistics", "domain": "BOREALIS.example"})
    assert r.status_code == 409 and r.json()["existing_id"] == co["id"]

    # A duplicate of something the caller cannot see is still refused, without naming it.
    eve = f.api(session, http, w.eve)
    hidden = eve.post("/companies", json={"name": "Hidden", "domain": "hidden.example"}).json()
    r = api.post("/companies", json={"name": "Hidden too", "domain": "hidden.example"})
    assert r.status_code == 409 and r.json()["existing_id"] is None and hidden["id"] not in r.text

    # Changing a record onto an existing value is a duplicate too.
    other = api.post("/contacts", json={"first_name": "Marco", "email": "marco@borealis.example"}).json()
    r = api.patch(f"/contacts/{other['id']}", json={"email": "ines@borealis.example"})
    assert r.status_code == 409


@pytest.mark.parametrize(("path", "payload", "needle"), [
    ("/contacts", {"email": "not-an-email"}, "not a valid email"),
    ("/contacts", {"phone": "12"}, "phone"),
    ("/contacts", {"lifecycle_stage": "hot"}, "lifecycle_stage"),
    ("/contacts", {"nickname": "x"}, "nickname"),
    ("/companies", {"name": ""}, "name"),
    ("/companies", {"name": "X", "domain": "not a domain"}, "not a valid domain"),
    ("/deals", {"name": "X", "amount": "-5"}, "amount"),
    ("/deals", {"name": "X", "amount": "12.345"}, "amount"),
    ("/deals", {"name": "X", "currency": "dollars"}, "currency"),
    ("/deals", {"name": "X", "close_date": "next week"}, "close_date"),
    ("/activities", {"type": "call", "subject": "no target"}, "at least one contact"),
    ("/contacts", {"first_name": "X", "title": "t" * 201}, "at most 200"),
    ("/companies", {"name": "X", "phone": "not a phone"}, "phone"),
])
def test_validation_errors_say_what_to_fix(session, http, w, path, payload, needle) -> None:
    r = f.api(session, http, w.priya).post(path, json=payload)
    assert r.status_code == 422, r.text
    assert needle in r.json()["message"]


def test_naive_datetime_is_refused(session, http, w) -> None:
    r = f.api(session, http, w.priya).post("/tasks", json={"title": "T", "due_at": "2026-12-01T10:00:00"})
    assert r.status_code == 422
    assert "time zone" in r.json()["message"] or "timezone" in r.json()["message"]


def test_phone_numbers_are_normalized_and_searchable(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    c = api.post("/contacts", json={"first_name": "Ines", "phone": "(415) 555-0123"}).json()
    assert c["phone"] == "+14155550123"
    hits = api.get("/search", params={"q": "415-555-0123"}).json()
    assert [h["id"] for h in hits] == [c["id"]]


def test_list_filters_sorting_and_pagination(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    for i, amount in enumerate(["5000", "48000", "12000", "48000", "90000"]):
        api.post("/deals", json={"name": f"Deal {i}", "amount": amount, "close_date": f"2027-0{i + 1}-15"})
    page = api.get("/deals", params={"sort": "-amount,name", "limit": 2}).json()
    assert page["total"] == 5 and [d["name"] for d in page["items"]] == ["Deal 4", "Deal 1"]
    page2 = api.get("/deals", params={"sort": "-amount,name", "limit": 2, "offset": 2}).json()
    assert [d["name"] for d in page2["items"]] == ["Deal 3", "Deal 2"]
    assert api.get("/deals", params={"amount": "48000"}).json()["total"] == 2
    assert api.get("/deals", params={"amount__gte": "12000", "close_date__lt": "2027-04-01"}).json()["total"] == 2
    assert api.get("/deals", params={"q": "deal 3"}).json()["total"] == 1
    assert api.get("/deals", params={"owner_id": str(w.priya.id)}).json()["total"] == 5
    bad = api.get("/deals", params={"colour": "red"})
    assert bad.status_code == 422 and "filterable fields" in bad.json()["message"]
    bad = api.get("/deals", params={"sort": "colour"})
    assert bad.status_code == 422 and "sortable fields" in bad.json()["message"]
    bad = api.get("/deals", params={"amount__gte": "lots"})
    assert bad.status_code == 422


def test_custom_fields_are_validated(session, http, w) -> None:
    admin, priya = f.api(session, http, w.admin), f.api(session, http, w.priya)
    admin.post("/custom-fields", json={"entity": "company", "key": "tier", "label": "Tier", "type": "select",
                                       "options": ["gold", "silver"]})
    admin.post("/custom-fields", json={"entity": "company", "key": "fleet_size", "label": "Fleet", "type": "number"})
    ok = priya.post("/companies", json={"name": "Borealis", "custom_fields": {"tier": "gold", "fleet_size": "120"}})
    assert ok.status_code == 201 and ok.json()["custom_fields"] == {"tier": "gold", "fleet_size": 120}
    r = priya.post("/companies", json={"name": "B2", "custom_fields": {"tier": "platinum"}})
    assert r.status_code == 422 and "gold" in r.json()["message"]
    r = priya.post("/companies", json={"name": "B3", "custom_fields": {"colour": "red"}})
    assert r.status_code == 422 and "fleet_size" in r.json()["message"]
    r = priya.patch(f"/companies/{ok.json()['id']}", json={"custom_fields": {"fleet_size": None}})
    assert r.json()["custom_fields"] == {"tier": "gold"}


def test_contact_owner_defaults_and_me(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    me = api.get("/me").json()
    assert me["email"] == w.priya.email and me["role"] == "rep"
    c = api.post("/contacts", json={"first_name": "X"}).json()
    assert c["owner_id"] == str(w.priya.id)


def test_counts_stop_at_a_cap_and_say_so(session, http, w, monkeypatch) -> None:
    from store.services import crud

    monkeypatch.setattr(crud, "COUNT_CAP", 3)
    api = f.api(session, http, w.priya)
    for i in range(5):
        api.post("/deals", json={"name": f"Deal {i}"})
    page = api.get("/deals", params={"limit": 2}).json()
    assert page["total"] == 3 and page["total_exact"] is False and len(page["items"]) == 2
    assert api.get("/deals", params={"q": "deal 4"}).json() | {"items": None} == {
        "items": None, "total": 1, "limit": 50, "offset": 0, "total_exact": True}


def test_workspace_settings_are_admin_only_and_audited(session, http, w) -> None:
    admin, priya = f.api(session, http, w.admin), f.api(session, http, w.priya)
    assert priya.get("/workspace").json()["slug"] == w.ws.slug
    r = priya.patch("/workspace", json={"settings": {"approvals": {"auto_approve": ["send_email"]}}})
    assert r.status_code == 403
    r = admin.patch("/workspace", json={"own_domains": ["https://www.Acme-Sales.example"], "timezone": "Europe/Lisbon",
                                        "settings": {"approvals": {"auto_approve": ["create_task"]}}})
    assert r.status_code == 200 and r.json()["own_domains"] == ["acme-sales.example"]
    assert admin.patch("/workspace", json={"timezone": "Mars/Olympus"}).status_code == 422
    entry = admin.get("/audit-log", params={"entity_type": "workspace"}).json()[0]
    assert entry["after"]["settings"] == {"approvals": {"auto_approve": ["create_task"]}}
    assert entry["actor_id"] == str(w.admin.id)
