"""Typo search reads candidates from the trigram index of migration 0009 (pg_trgm GIN indexes on
PostgreSQL, an FTS5 trigram table on SQLite): the plan uses it, and it finds what reading every
name in scope finds, for every caller."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

from store.migrate import TRIGRAM_INDEXES
from store.models import Company, Contact, Deal
from store.models.enums import Surface
from store.services import search as search_module
from store.services.org import actor_for_user
from store.services.search import search, trigram_index
from tests import factories as f

QUERIES = ["Borelis", "borealis logistcs", "Northwnd Tradrs", "Ines Duartte", "Borelis fleet", "zzzzqqq",
           "Quantm Freight"]


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


def _records(session: Session, http: Any, w: f.World) -> None:
    west, east = f.api(session, http, w.priya), f.api(session, http, w.eve)
    co = west.post("/companies", json={"name": "Borealis Logistics", "domain": "borealis-logistics.example"}).json()
    west.post("/contacts", json={"first_name": "Ines", "last_name": "Duarte", "company_id": co["id"]})
    west.post("/deals", json={"name": "Borealis fleet renewal", "company_id": co["id"]})
    east.post("/companies", json={"name": "Northwind Traders", "domain": "northwind.example"})
    east.post("/companies", json={"name": "Borealis Quantum Freight"})
    east.post("/contacts", json={"first_name": "Inez", "last_name": "Duarte"})


@contextmanager
def _statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []
    conn = session.connection()

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", capture)


def test_the_migration_made_the_index(session: Session) -> None:
    expected = {"postgresql": "pg_trgm", "sqlite": "fts5"}[session.get_bind().dialect.name]
    assert trigram_index(session) == expected


def test_typo_search_finds_what_reading_every_name_finds(session, http, w, monkeypatch) -> None:
    _records(session, http, w)
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for user in (w.priya, w.eve, w.dana, w.admin, w.other_admin):
        actor = actor_for_user(user, Surface.api)
        for q in QUERIES:
            found[(user.name, q)] = [(h.kind, h.label) for h in search(session, actor=actor, q=q)]
    assert found[("Priya Raman", "Borelis")][0] == ("company", "Borealis Logistics")
    assert found[(w.other_admin.name, "Borelis")] == []  # another workspace sees none of these
    monkeypatch.setattr(search_module, "trigram_index", lambda _s: None)  # today's path: every name in scope
    for user in (w.priya, w.eve, w.dana, w.admin, w.other_admin):
        actor = actor_for_user(user, Surface.api)
        for q in QUERIES:
            today = [(h.kind, h.label) for h in search(session, actor=actor, q=q)]
            assert today == found[(user.name, q)], (user.name, q)


def test_renamed_and_deleted_names_follow(session, http, w) -> None:
    api = f.api(session, http, w.priya)
    co = api.post("/companies", json={"name": "Borealis Logistics"}).json()
    actor = actor_for_user(w.priya, Surface.api)
    assert [h.label for h in search(session, actor=actor, q="Borelis")] == ["Borealis Logistics"]
    api.patch(f"/companies/{co['id']}", json={"name": "Kestrel Analytics"})
    assert search(session, actor=actor, q="Borelis") == []
    assert [h.label for h in search(session, actor=actor, q="Kestrl Analytcs")] == ["Kestrel Analytics"]
    api.delete(f"/companies/{co['id']}")
    assert search(session, actor=actor, q="Kestrl Analytcs") == []


def test_the_plan_uses_the_trigram_index(session, http, w) -> None:
    _records(session, http, w)
    actor = actor_for_user(w.priya, Surface.api)
    dialect = session.get_bind().dialect.name
    # Enough names that reading them all costs more than the index (the planners choose by cost).
    deal = session.scalars(select(Deal)).first()
    assert deal is not None
    rng = random.Random(3)
    n = 10_000 if dialect == "postgresql" else 3000
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8)) for _ in range(n)]
    common = {"workspace_id": w.ws.id, "owner_id": w.priya.id}
    session.execute(insert(Company), [{**common, "name": f"{x} Logistics"} for x in words])
    session.execute(insert(Contact), [{**common, "first_name": x, "last_name": "Smith"} for x in words])
    session.execute(insert(Deal), [{**common, "name": f"{x} renewal", "pipeline_id": deal.pipeline_id,
                                    "stage_id": deal.stage_id} for x in words])
    if dialect == "postgresql":
        # What autovacuum does on a live database: move the new rows out of the GIN pending lists
        # (read in full by every search until then, and costed so).
        for index in sorted(TRIGRAM_INDEXES):
            session.execute(text("SELECT gin_clean_pending_list(CAST(:i AS regclass))"), {"i": index})
        # At this size PostgreSQL still reads a short query's few candidates faster in one pass (at
        # 175k names it picks the trigram index by itself: bench/typo_search.py); forbid the pass so
        # the plan shows the index applies to the query's expressions.
        session.execute(text("SET LOCAL enable_seqscan = off"))
    for table in ("companies", "contacts", "deals"):
        session.execute(text(f"ANALYZE {table}"))
    with _statements(session) as seen:
        search(session, actor=actor, q="Borelis")
    plans = []
    for statement, params in seen:
        if not any(op in statement for op in (" MATCH ", "<%", " LIKE ")):
            continue  # not a lookup by name
        prefix = "EXPLAIN " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
        rows = session.connection().exec_driver_sql(prefix + statement, params).all()
        plans.append("\n".join(" ".join(str(c) for c in row) for row in rows))
    assert len(plans) == 6, seen  # contacts, companies, deals: the substring lookup, then the typo one
    for plan in plans:
        if dialect == "postgresql":
            assert "_name_trgm" in plan and "Bitmap Index Scan" in plan, plan
        else:
            assert "VIRTUAL TABLE INDEX" in plan and "name_fts" in plan, plan
