"""Malformed input gets a 4xx that says what to fix, never a 500, at every door (issue 15).

Numbers past what a column holds, NaN and infinities, NUL characters (PostgreSQL refuses them,
SQLite would keep and export them) and lone surrogates ("\\ud800", which JSON can spell but no
UTF-8 text can hold).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from agents import gate
from store.models import Company, Contact, Deal, Note
from store.models.enums import Surface
from tests import factories as f
from tools import ToolContext

BIG = str(2**63)  # one past the largest BIGINT


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


def raw_post(api: f.Api, path: str, body: str) -> object:
    """POST a JSON body exactly as written (json= would escape or refuse what the test needs to send)."""
    return api.client.post(f"/api/v1{path}", content=body.encode("utf-8", "surrogatepass"),
                           headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})


@pytest.mark.parametrize(("path", "params", "needle"), [
    ("/deals", {"offset": BIG}, "offset"),
    ("/deals", {"probability__gte": BIG}, "probability"),
    ("/deals", {"probability": "99999999999"}, "-2147483648 to 2147483647"),
    ("/companies", {"employee_count__lt": BIG}, "employee_count"),
    ("/deals", {"amount__gte": "1e400"}, "at most 16 digits"),
    ("/deals", {"amount__gte": "nan"}, "finite"),
    ("/deals", {"amount__lte": "inf"}, "finite"),
    ("/deals", {"amount": "-Infinity"}, "finite"),
    ("/deals/00000000-0000-0000-0000-000000000000/timeline", {"offset": BIG}, "offset"),
    ("/exports/deals.csv", {"amount__gte": "1e400"}, "at most 16 digits"),
])
def test_numbers_past_what_the_database_holds_get_422(session, http, w, path, params, needle) -> None:
    r = f.api(session, http, w.priya).get(path, params=params)
    assert r.status_code == 422, r.text
    assert needle in r.json()["message"]


def test_the_largest_offset_is_still_a_page(session, http, w) -> None:
    r = f.api(session, http, w.priya).get("/deals", params={"offset": str(2**63 - 1)})
    assert r.status_code == 200 and r.json()["items"] == []


@pytest.mark.parametrize(("path", "body", "needle"), [
    ("/companies", f'{{"name": "X", "employee_count": {BIG}}}', "largest whole number"),
    ("/companies", '{"name": "X", "employee_count": 3000000000}', "-2147483648 to 2147483647"),
    ("/deals", '{"name": "X", "amount": NaN}', "finite"),
    ("/deals", '{"name": "X", "amount": "Infinity"}', "finite"),
    ("/deals", '{"name": "X", "amount": 1e400}', "finite"),
    ("/notes", '{"body": "x", "source_ref": {"score": NaN}}', "source_ref.score must be a finite number"),
    ("/notes", '{"body": "x", "source_ref": {"n": -Infinity}}', "finite"),
])
def test_bodies_with_numbers_no_database_keeps_get_422(session, http, w, path, body, needle) -> None:
    api = f.api(session, http, w.priya)
    r = raw_post(api, path, body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["message"]
    assert session.scalar(select(func.count()).select_from(Note)) == 0


def test_a_deal_in_a_pipeline_that_is_not_there_gets_422(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    r = api.post("/deals", json={"name": "X", "pipeline_id": "00000000-0000-0000-0000-000000000000"})
    assert r.status_code == 422 and "no pipeline with id 00000000" in r.json()["message"]
    # Another workspace's pipeline is as unknown, and its stage names are not listed.
    other_admin = f.api(session, http, w.other_admin)
    theirs = other_admin.post("/pipelines", json={"name": "Secret pipeline"}).json()
    other_admin.post("/stages", json={"pipeline_id": theirs["id"], "name": "Secret stage", "position": 0,
                                      "probability": 10})
    r = api.post("/deals", json={"name": "X", "pipeline_id": theirs["id"],
                                 "stage_id": "00000000-0000-0000-0000-000000000000"})
    assert r.status_code == 422 and "no pipeline with id" in r.json()["message"]
    assert "Secret" not in r.text
    # A pipeline of one's own with no stage yet says what to do.
    empty = f.api(session, http, w.admin).post("/pipelines", json={"name": "Empty"}).json()
    r = api.post("/deals", json={"name": "X", "pipeline_id": empty["id"]})
    assert r.status_code == 422 and "has no stages yet" in r.json()["message"]
    assert session.scalar(select(func.count()).select_from(Deal)) == 0


@pytest.mark.parametrize(("path", "body", "needle"), [
    ("/contacts", '{"first_name": "\\ud800"}', "first_name: not valid Unicode text: it holds a lone surrogate"),
    ("/contacts", '{"first_name": "Ines", "nickname": "\\udfff"}', "nickname: Extra inputs are not permitted"),
    ("/contacts", '{"first_name": "Ines", "lifecycle_stage": "\\ud800"}', "lifecycle_stage"),
    ("/notes", '{"body": "x", "source_ref": {"where": "\\ud800"}}', "source_ref.where is not valid Unicode"),
    ("/notes", '{"body": "x", "source_ref": {"\\ud800": 1}}', "it holds a lone surrogate"),
])
def test_lone_surrogates_are_refused_with_a_readable_422(session, http, w, path, body, needle) -> None:
    r = raw_post(f.api(session, http, w.priya), path, body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["message"]
    r.content.decode("utf-8")  # the answer itself is valid UTF-8
    assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_a_whole_character_spelled_as_a_surrogate_pair_is_kept(session, http, w) -> None:
    r = raw_post(f.api(session, http, w.priya), "/contacts", '{"first_name": "Ines \\ud83d\\ude00"}')
    assert r.status_code == 201 and r.json()["first_name"] == "Ines \U0001f600"


@pytest.mark.parametrize(("path", "payload", "field"), [
    ("/contacts", {"first_name": "Ines\x00", "last_name": "Duarte"}, "first_name"),
    ("/companies", {"name": "Borealis\x00Logistics"}, "name"),
    ("/deals", {"name": "Fleet\x00"}, "name"),
    ("/notes", {"body": "pilot in Jan\x00"}, "body"),
    ("/tasks", {"title": "Send quote", "description": "\x00"}, "description"),
    ("/notes", {"body": "ok", "source_ref": {"quote": "a\x00b"}}, "source_ref"),
])
def test_nul_characters_are_refused_on_both_backends(session, http, w, path, payload, field) -> None:
    r = f.api(session, http, w.priya).post(path, json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and "NUL character" in r.json()["message"]
    for model in (Contact, Company, Deal, Note):
        assert session.scalar(select(func.count()).select_from(model)) == 0


def test_nul_characters_are_refused_in_changes_filters_search_and_chat(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    contact = api.post("/contacts", json={"first_name": "Ines", "last_name": "Duarte"}).json()
    r = api.patch(f"/contacts/{contact['id']}", json={"last_name": "Du\x00arte"})
    assert r.status_code == 422 and "NUL character" in r.json()["message"]
    assert api.get(f"/contacts/{contact['id']}").json()["last_name"] == "Duarte"
    for path, params in (("/contacts", {"first_name": "In\x00"}), ("/contacts", {"q": "\x00"}),
                         ("/search", {"q": "Ines\x00"}), ("/exports/contacts.csv", {"last_name": "\x00"})):
        r = api.get(path, params=params)
        assert r.status_code == 422 and "NUL character" in r.json()["message"], (path, r.text)
    r = api.post("/chat/threads/t%00/messages", json={"text": "hello"})
    assert r.status_code == 422 and r.json()["field"] == "thread"
    r = api.post("/chat/threads/t1/messages", json={"text": "hello\x00"})
    assert r.status_code == 422 and r.json()["field"] == "text"


def test_a_value_the_database_refuses_that_no_service_checked_is_a_422_not_a_500(session, http, w) -> None:
    # The audit log's filter goes straight to SQL: PostgreSQL refuses the NUL, SQLite finds nothing.
    r = f.api(session, http, w.admin).get("/audit-log", params={"entity_type": "deal\x00"})
    if r.status_code != 200:
        assert r.status_code == 422 and "the database refused a value" in r.json()["message"], r.text


def test_nul_characters_are_refused_through_the_importer_and_the_agent(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    csv = b"first_name,last_name,email\nIn\x00es,Duarte,ines@borealis.example\nMarco,Bellini,marco@borealis.example\n"
    report = api.post("/imports/contacts", files={"file": ("contacts.csv", csv, "text/csv")}).json()
    assert report["created"] == 1
    assert [(e["line"], "NUL character" in e["reason"]) for e in report["errors"]] == [(2, True)]

    ctx = ToolContext(actor=f.actor(w.priya, Surface.agent), session=session, thread_id="t")
    p = gate.propose(ctx, tool_name="add_note", raw_args={"body": "pilot\x00", "contact_id": report_id(session)},
                     tool_call_id="c1", evidence=[])
    assert p.approval is None and "NUL character" in p.message
    assert session.scalar(select(func.count()).select_from(Note)) == 0


def report_id(session) -> str:  # type: ignore[no-untyped-def]
    return str(session.scalar(select(Contact.id).where(Contact.first_name == "Marco")))
