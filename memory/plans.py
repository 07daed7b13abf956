"""How the memory searches: two query plans, each re-checked against SQL.

Visibility (DESIGN.md: "vector search filters by the same visibility rules as SQL"):

- the owners a caller may read come from the store's own rule (`store.permissions.readable_owner_ids`,
  the values of `owner_readable`: admin: all; others: themselves, their team's members, and
  unowned records, stored as owner_id "");
- every hit's source record (email / note / call recording) is then re-checked against SQL
  (`store.services.memory_records.readable_sources`, i.e. `crud.readable`), so chunk metadata that
  went stale (an owner changed since indexing, a record deleted) can never show a record the
  caller may not read. Only hits SQL confirms are returned.

Two query plans, chosen per search (measured in bench/memory_bench.py): Chroma 1.5's local
`where` filtering costs ~60-130 ms at 100k chunks whatever its selectivity, while an
unfiltered HNSW query of a few hundred ids costs ~5 ms. So a search scoped only by the
caller's visibility (and kinds) first over-fetches unfiltered candidates and keeps those SQL
says the caller may read; when that yields fewer than k, or when the search is scoped to a
contact, company, deal or date, the query carries the `where` filter (owners, kinds, links,
date) and its hits are re-checked the same way.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from chromadb.api.models.Collection import Collection
from sqlalchemy.orm import Session

from store import permissions
from store.actor import Actor
from store.services import memory_records
from store.services.search import Hit

# Unfiltered over-fetch for visibility-only searches: max(OVERFETCH_MIN, k * OVERFETCH_FACTOR).
OVERFETCH_FACTOR = 25
OVERFETCH_MIN = 100
OVERFETCH_MAX = 500

# Chunk kind -> the SQL entity whose visibility it has.
VISIBLE_AS = {"email": "email", "attachment": "email", "note": "note", "call": "call_recording"}


def parse_chunk_id(chunk_id: str) -> tuple[str, uuid.UUID] | None:
    """(kind, source id) of a chunk id `<kind>:<source id>:<n>`."""
    try:
        kind, source, _ = chunk_id.split(":", 2)
        return kind, uuid.UUID(source)
    except ValueError:
        return None


def readable_owner_keys(session: Session, actor: Actor) -> list[str] | None:
    """The owner_id values (as stored in chunk metadata) the actor may read; None: all (admin).
    The store's rule (store.permissions), with "" for an unowned record."""
    owners = permissions.readable_owner_ids(session, actor)
    return None if owners is None else sorted({""} | {str(o) for o in owners})


def _date(meta: dict[str, Any]) -> datetime | None:
    epoch = meta.get("date")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else None


def nearest(col: Collection, session: Session, actor: Actor, *, k: int, contact_id: uuid.UUID | None,
             company_id: uuid.UUID | None, deal_id: uuid.UUID | None, kind_set: set[str] | None,
             since: datetime | None, vector: Any) -> list[Hit]:
    owners = readable_owner_keys(session, actor)
    if not (contact_id or company_id or deal_id or since):
        hits = _search_unfiltered(col, session, actor, vector, k, kind_set, owners)
        if hits is not None:
            return hits
    clauses: list[dict[str, Any]] = []
    if owners is not None:
        clauses.append({"owner_id": {"$in": owners}})
    if kind_set:
        clauses.append({"kind": {"$in": sorted(kind_set)}} if len(kind_set) > 1 else {"kind": next(iter(kind_set))})
    if since is not None:
        stamp = since if since.tzinfo else since.replace(tzinfo=UTC)
        clauses.append({"date": {"$gte": int(stamp.timestamp())}})
    for key, value in (("contact_ids", contact_id), ("company_ids", company_id), ("deal_ids", deal_id)):
        if value:
            clauses.append({key: {"$contains": str(value)}})
    where: Any = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
    return _search_filtered(col, session, actor, vector, k, where)

def _search_unfiltered(col: Collection, session: Session, actor: Actor, vector: Any, k: int,
                       kinds: set[str] | None, owners: list[str] | None) -> list[Hit] | None:
    """Over-fetch nearest ids without a filter, keep those SQL says the actor may read.
    None when that does not give k hits and more candidates exist (use the filtered plan)."""
    factor = OVERFETCH_FACTOR if owners is not None else 2
    fetch = min(OVERFETCH_MAX, max(OVERFETCH_MIN if owners is not None else k + 4, k * factor))
    res = col.query(query_embeddings=[vector], n_results=fetch, include=["distances"])
    ids, distances = res["ids"][0], (res["distances"] or [[]])[0]
    candidates: list[tuple[str, str, uuid.UUID, float]] = []
    wanted: dict[str, set[uuid.UUID]] = defaultdict(set)
    for chunk_id, distance in zip(ids, distances, strict=True):
        parsed = parse_chunk_id(chunk_id)
        if parsed is None or parsed[0] not in VISIBLE_AS or (kinds and parsed[0] not in kinds):
            continue
        candidates.append((chunk_id, parsed[0], parsed[1], distance))
        wanted[VISIBLE_AS[parsed[0]]].add(parsed[1])
    ok = memory_records.readable_sources(session, actor, wanted)
    chosen = [c for c in candidates if (VISIBLE_AS[c[1]], c[2]) in ok][:k]
    if len(chosen) < k and len(ids) >= fetch:
        return None
    if not chosen:
        return []
    got = col.get(ids=[c[0] for c in chosen], include=["documents", "metadatas"])
    by_id = {i: (doc, meta) for i, doc, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [],
                                                    strict=True)}
    hits = []
    for chunk_id, _, _, distance in chosen:
        if chunk_id in by_id:
            doc, meta = by_id[chunk_id]
            hits.append(_hit(chunk_id, doc, dict(meta or {}), distance))
    return hits

def _search_filtered(col: Collection, session: Session, actor: Actor, vector: Any, k: int,
                     where: Any) -> list[Hit]:
    fetch = k  # metadata rarely goes stale: look further only when SQL dropped some
    while True:
        res = col.query(query_embeddings=[vector], n_results=fetch, where=where,
                        include=["documents", "metadatas", "distances"])
        ids = res["ids"][0]
        rows = list(zip(ids, (res["documents"] or [[]])[0], (res["metadatas"] or [[]])[0],
                        (res["distances"] or [[]])[0], strict=True))
        wanted: dict[str, set[uuid.UUID]] = defaultdict(set)
        for chunk_id, _, _, _ in rows:
            parsed = parse_chunk_id(chunk_id)
            if parsed and parsed[0] in VISIBLE_AS:
                wanted[VISIBLE_AS[parsed[0]]].add(parsed[1])
        ok = memory_records.readable_sources(session, actor, wanted)
        hits = []
        for chunk_id, doc, meta, distance in rows:
            parsed = parse_chunk_id(chunk_id)
            if parsed and parsed[0] in VISIBLE_AS and (VISIBLE_AS[parsed[0]], parsed[1]) in ok:
                hits.append(_hit(chunk_id, doc, dict(meta or {}), distance))
        if len(hits) >= k or len(ids) < fetch or fetch >= 4 * OVERFETCH_MAX:
            return hits[:k]
        fetch *= 4  # stale metadata hid some: look further

def _hit(chunk_id: str, doc: str | None, meta: dict[str, Any], distance: float) -> Hit:
    kind = str(meta.get("kind") or chunk_id.split(":", 1)[0])
    return Hit(kind=kind, id=uuid.UUID(str(meta.get("source_id") or chunk_id.split(":")[1])),
               label=str(meta.get("title") or ""), date=_date(meta), detail=doc or "",
               score=round(1.0 - float(distance), 4), locator=meta.get("locator") or None,
               author=str(meta.get("author") or meta.get("speakers") or ""), chunk_id=chunk_id, metadata=meta)


def distinct(hits: list[Hit]) -> list[Hit]:
    """The first of hits that say the same thing (two reps' copies of an email: same text, title, date)."""
    seen: set[tuple[str, str, str, datetime | None, str | None]] = set()
    out = []
    for hit in hits:
        key = (hit.kind, hit.detail, hit.label, hit.date, hit.locator)
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out
