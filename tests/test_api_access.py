"""Who can see and change what, through the HTTP API, for every entity."""

from __future__ import annotations

import pytest

from store.services import REGISTRY
from tests import factories as f
from tests.samples import CHILDREN, CONFIG, OWNED, SAMPLES, _ids


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


def plural(entity: str) -> str:
    return REGISTRY[entity].plural


def test_every_entity_has_a_sample_and_a_class() -> None:
    creatable = {n for n, s in REGISTRY.items() if s.creatable}
    assert creatable <= set(SAMPLES), f"add samples for {creatable - set(SAMPLES)}"
    assert creatable - {"territory_member"} <= set(OWNED + CHILDREN + CONFIG)


def test_no_token_no_access(session, http, w) -> None:
    r = http.get("/api/v1/deals")
    assert r.status_code == 401
    assert "Authorization: Bearer" in r.json()["message"]
    r = http.get("/api/v1/deals", headers={"Authorization": "Bearer crm_not-a-real-token"})
    assert r.status_code == 401
    assert "crm token create" in r.json()["message"]
    r = http.get("/api/v1/deals", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


@pytest.mark.parametrize("entity", OWNED + CHILDREN)
def test_rep_cannot_reach_another_teams_records(session, http, w, entity) -> None:
    """Eve (East) owns a record; Priya (West) gets 404 on every door and never sees it listed."""
    eve, priya = f.api(session, http, w.eve), f.api(session, http, w.priya)
    ids = _ids(session, w.eve)
    payload, change = SAMPLES[entity]
    created = eve.post(f"/{plural(entity)}", json=payload(ids))
    assert created.status_code == 201, created.text
    rid = created.json()["id"]

    assert priya.get(f"/{plural(entity)}/{rid}").status_code == 404
    assert priya.patch(f"/{plural(entity)}/{rid}", json=change).status_code == 404
    assert priya.delete(f"/{plural(entity)}/{rid}").status_code == 404
    assert priya.get(f"/{plural(entity)}/{rid}/history").status_code == 404
    listed = priya.get(f"/{plural(entity)}", params={"limit": 200})
    assert listed.status_code == 200
    assert rid not in [i["id"] for i in listed.json()["items"]]
    # The record is still there, unchanged, for its owner.
    assert eve.get(f"/{plural(entity)}/{rid}").json() == created.json()


@pytest.mark.parametrize("entity", ["company", "contact", "deal"])
def test_rep_cannot_reach_another_teams_timeline_or_search(session, http, w, entity) -> None:
    ids = _ids(session, w.eve)
    priya = f.api(session, http, w.priya)
    assert priya.get(f"/{plural(entity)}/{ids[entity]}/timeline").status_code == 404
    hits = priya.get("/search", params={"q": "fixture"}).json()
    assert str(ids[entity]) not in [h["id"] for h in hits]


@pytest.mark.parametrize("entity", OWNED)
def test_teammate_reads_but_cannot_change(session, http, w, entity) -> None:
    """Raj (West) reads Priya's records but changing or deleting them is 403 with a reason."""
    priya, raj = f.api(session, http, w.priya), f.api(session, http, w.raj)
    rid = priya.post(f"/{plural(entity)}", json=SAMPLES[entity][0](_ids(session, w.priya))).json()["id"]
    assert raj.get(f"/{plural(entity)}/{rid}").status_code == 200
    r = raj.patch(f"/{plural(entity)}/{rid}", json=SAMPLES[entity][1])
    assert r.status_code == 403
    assert "only its owner" in r.json()["message"]
    assert raj.delete(f"/{plural(entity)}/{rid}").status_code == 403
    assert priya.get(f"/{plural(entity)}/{rid}").status_code == 200


@pytest.mark.parametrize("entity", OWNED)
def test_manager_changes_team_records_not_other_teams(session, http, w, entity) -> None:
    dana = f.api(session, http, w.dana)
    mine = f.api(session, http, w.priya).post(f"/{plural(entity)}", json=SAMPLES[entity][0](_ids(session, w.priya)))
    theirs = f.api(session, http, w.eve).post(f"/{plural(entity)}", json=SAMPLES[entity][0](_ids(session, w.eve)))
    assert dana.patch(f"/{plural(entity)}/{mine.json()['id']}", json=SAMPLES[entity][1]).status_code == 200
    assert dana.get(f"/{plural(entity)}/{theirs.json()['id']}").status_code == 404
    admin = f.api(session, http, w.admin)
    assert admin.patch(f"/{plural(entity)}/{theirs.json()['id']}", json=SAMPLES[entity][1]).status_code == 200


@pytest.mark.parametrize("entity", OWNED + CHILDREN + CONFIG)
def test_workspaces_never_see_each_other(session, http, w, entity) -> None:
    """Even an admin of another workspace sees nothing, by id or in lists, and cannot link to it."""
    admin, outsider = f.api(session, http, w.admin), f.api(session, http, w.other_admin)
    ids = _ids(session, w.priya)
    created = admin.post(f"/{plural(entity)}", json=SAMPLES[entity][0](ids))
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert outsider.get(f"/{plural(entity)}/{rid}").status_code == 404
    assert outsider.patch(f"/{plural(entity)}/{rid}", json=SAMPLES[entity][1]).status_code == 404
    assert outsider.delete(f"/{plural(entity)}/{rid}").status_code == 404
    assert rid not in [i["id"] for i in outsider.get(f"/{plural(entity)}", params={"limit": 200}).json()["items"]]


def test_cannot_link_to_records_you_cannot_see(session, http, w) -> None:
    theirs = _ids(session, w.eve)
    other_ws = _ids(session, w.other_admin)
    priya = f.api(session, http, w.priya)
    for company in (theirs["company"], other_ws["company"]):
        r = priya.post("/deals", json={"name": "Sneaky", "company_id": str(company)})
        assert r.status_code == 422
        assert "company_id" in r.json()["message"]
    r = priya.post("/activities", json={"type": "note", "contact_ids": [str(theirs["contact"])]})
    assert r.status_code == 422


@pytest.mark.parametrize("entity", CONFIG)
def test_workspace_configuration_is_admin_only(session, http, w, entity) -> None:
    priya, admin = f.api(session, http, w.priya), f.api(session, http, w.admin)
    payload = SAMPLES[entity][0](_ids(session, w.priya))
    r = priya.post(f"/{plural(entity)}", json=payload)
    assert r.status_code == 403
    assert "only" in r.json()["message"]
    created = admin.post(f"/{plural(entity)}", json=payload)
    assert created.status_code == 201, created.text
    assert priya.get(f"/{plural(entity)}/{created.json()['id']}").status_code == 200  # everyone reads config
    assert priya.patch(f"/{plural(entity)}/{created.json()['id']}", json=SAMPLES[entity][1]).status_code == 403


def test_rep_cannot_assign_records_to_others(session, http, w) -> None:
    priya = f.api(session, http, w.priya)
    r = priya.post("/companies", json={"name": "Gift", "owner_id": str(w.raj.id)})
    assert r.status_code == 403
    assert "assign" in r.json()["message"]
    dana = f.api(session, http, w.dana)
    assert dana.post("/companies", json={"name": "Given", "owner_id": str(w.raj.id)}).status_code == 201
    assert dana.post("/companies", json={"name": "Outside", "owner_id": str(w.eve.id)}).status_code == 403


def test_audit_log_is_admin_only_but_history_follows_the_record(session, http, w) -> None:
    priya = f.api(session, http, w.priya)
    rid = priya.post("/deals", json={"name": "Borealis"}).json()["id"]
    assert priya.get("/audit-log").status_code == 403
    assert f.api(session, http, w.admin).get("/audit-log").status_code == 200
    assert f.api(session, http, w.raj).get(f"/deals/{rid}/history").status_code == 200
    assert f.api(session, http, w.eve).get(f"/deals/{rid}/history").status_code == 404
