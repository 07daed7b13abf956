"""The vector memory: emails, notes and call transcripts in Chroma, searched as the caller.

SQL is the source of truth; the index is derived from it and `Memory.reindex` rebuilds it.
One collection per workspace (`crm_ws_<workspace id hex>`, cosine space), created with the
registered embedding function of memory/embeddings.py so any later process reopens it by name.

Visibility (DESIGN.md: "vector search filters by the same visibility rules as SQL"):

- the owners a caller may read come from the store's own rule (`store.permissions.readable_owner_ids`,
  the values of `owner_readable`: admin: all; others: themselves, their team's members, and
  unowned records, stored as owner_id "");
- every hit's source record (email / note / call recording) is then re-checked against SQL
  with `store.services.crud.readable`, so chunk metadata that went stale (an owner changed
  since indexing, a record deleted) can never show a record the caller may not read. Only
  hits SQL confirms are returned.

Two query plans, chosen per search (measured in bench/memory_bench.py): Chroma 1.5's local
`where` filtering costs ~60-130 ms at 100k chunks whatever its selectivity, while an
unfiltered HNSW query of a few hundred ids costs ~5 ms. So a search scoped only by the
caller's visibility (and kinds) first over-fetches unfiltered candidates and keeps those SQL
says the caller may read; when that yields fewer than k, or when the search is scoped to a
contact, company, deal or date, the query carries the `where` filter (owners, kinds, links,
date) and its hits are re-checked the same way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from memory.chunking import Chunk, Source, call_chunks, email_chunks, note_chunks, note_title
from memory.embeddings import EmbeddingUnavailable, embedding_function
from store import permissions
from store.actor import Actor
from store.models import (
    Activity,
    ActivityTarget,
    CallRecording,
    Contact,
    Deal,
    Email,
    EmailAttachment,
    EmailParticipant,
    Note,
    Transcript,
    User,
    Workspace,
)
from store.models.enums import EmailParticipantRole
from store.services.crud import readable, spec_for
from store.settings import Settings, get_settings

log = logging.getLogger("crm.memory")

EMBED_BATCH = 64  # chunks added per Chroma call
SORT_BUFFER = 512  # chunks handed to the model at once (it sorts by length: less padding)
LOAD_BATCH = 100  # records read from SQL per round while reindexing
# Unfiltered over-fetch for visibility-only searches: max(OVERFETCH_MIN, k * OVERFETCH_FACTOR).
OVERFETCH_FACTOR = 25
OVERFETCH_MIN = 100
OVERFETCH_MAX = 500

# Record kinds as events and callers name them -> the memory's source kind.
SOURCE_KINDS = {"email": "email", "note": "note", "call": "call", "call_recording": "call"}
# Chunk kind -> the SQL entity whose visibility it has.
VISIBLE_AS = {"email": "email", "attachment": "email", "note": "note", "call": "call_recording"}


Built = list[tuple[uuid.UUID, uuid.UUID, list[Chunk]]]  # (workspace id, source id, chunks)


class MemoryMismatch(EmbeddingUnavailable):
    """A collection was built with another embedding function than the settings ask for."""

    code = "memory_mismatch"


@dataclass(frozen=True)
class Hit:
    kind: str  # email, attachment, note, call
    source_id: uuid.UUID  # the email / note / call recording
    title: str  # subject, filename, note's first line, call title
    date: datetime | None
    text: str  # the chunk
    score: float  # cosine similarity, 1 is identical
    locator: str | None = None  # attachment filename; "12:03-12:41" in a call
    author: str = ""  # sender / note owner / call speakers
    chunk_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """Where it is: "email <id>", "note <id>", "call_recording <id> 12:03-12:41"."""
        if self.kind == "attachment":
            return f"email {self.source_id} attachment {self.locator or self.title}"
        if self.kind == "call":
            return f"call_recording {self.source_id}" + (f" {self.locator}" if self.locator else "")
        return f"{self.kind} {self.source_id}"


def collection_name(workspace_id: uuid.UUID | str) -> str:
    return f"crm_ws_{uuid.UUID(str(workspace_id)).hex}"


def make_client(settings: Settings) -> ClientAPI:
    """Chroma server when CRM_CHROMA_URL is set, else a persistent directory. No telemetry."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        ssl = url.scheme == "https"
        return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or (443 if ssl else 8000),
                                   ssl=ssl, settings=chroma_settings)
    path = settings.resolved_chroma_path
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def parse_chunk_id(chunk_id: str) -> tuple[str, uuid.UUID] | None:
    """(kind, source id) of a chunk id `<kind>:<source id>:<n>`."""
    try:
        kind, source, _ = chunk_id.split(":", 2)
        return kind, uuid.UUID(source)
    except ValueError:
        return None


def readable_owner_ids(session: Session, actor: Actor) -> list[str] | None:
    """The owner_id values (as stored in chunk metadata) the actor may read; None: all (admin).
    The store's rule (store.permissions), with "" for an unowned record."""
    owners = permissions.readable_owner_ids(session, actor)
    return None if owners is None else sorted({""} | {str(o) for o in owners})


def readable_sources(session: Session, actor: Actor, wanted: dict[str, set[uuid.UUID]]) -> set[tuple[str, uuid.UUID]]:
    """Which of the (entity, id) pairs exist and the actor may read now, per SQL (`crud.readable`).
    `wanted`: entity name ("email", "note", "call_recording") -> ids. One query (UNION ALL)."""
    selects = []
    for entity, ids in sorted(wanted.items()):
        if not ids:
            continue
        spec = spec_for(entity)
        model: Any = spec.model
        selects.append(readable(spec, actor).with_only_columns(literal(entity).label("entity"), model.id.label("id"))
                       .where(model.id.in_(sorted(ids))))
    if not selects:
        return set()
    query = selects[0] if len(selects) == 1 else union_all(*selects)
    return {(entity, _as_uuid(rid)) for entity, rid in session.execute(query)}


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _date(meta: dict[str, Any]) -> datetime | None:
    epoch = meta.get("date")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else None


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Memory:
    """Vector memory over Chroma. Thread-safe; one instance per process (`get_memory()`)."""

    def __init__(self, settings: Settings | None = None, *, client: ClientAPI | None = None,
                 embedder: Any = None) -> None:
        self.settings = settings or get_settings()
        self._client = client
        self.embedder = embedder if embedder is not None else embedding_function(self.settings)
        self._lock = threading.Lock()

    # --- Chroma -------------------------------------------------------------------------------

    @property
    def client(self) -> ClientAPI:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(self.settings)
        return self._client

    def collection(self, workspace_id: uuid.UUID, *, create: bool = True) -> Collection | None:
        """The workspace's collection (created if asked); None when absent and not created."""
        name = collection_name(workspace_id)
        try:
            col = self.client.get_collection(name, embedding_function=self.embedder)
        except NotFoundError:
            if not create:
                return None
            col = self.client.get_or_create_collection(
                name, embedding_function=self.embedder, configuration={"hnsw": {"space": "cosine"}},
                metadata={"workspace_id": str(workspace_id)})
        except ValueError as exc:  # another embedding function built it
            raise MemoryMismatch(f"the memory of workspace {workspace_id} was built with another embedding "
                                 f"function ({exc}); rebuild it with `crm reindex`") from exc
        self._check_embedder(col, workspace_id)
        return col

    def _check_embedder(self, col: Collection, workspace_id: uuid.UUID) -> None:
        persisted = (col.configuration_json or {}).get("embedding_function") or {}
        config = persisted.get("config") or {}
        ours = self.embedder.get_config() if hasattr(self.embedder, "get_config") else {}
        if "model" in config and "model" in ours and config["model"] != ours["model"]:
            raise MemoryMismatch(f"the memory of workspace {workspace_id} was built with embedding model "
                                 f"{config['model']!r}, the settings ask for {ours['model']!r}; rebuild it "
                                 "with `crm reindex`")

    def drop(self, workspace_id: uuid.UUID) -> None:
        with contextlib.suppress(NotFoundError, ValueError):
            self.client.delete_collection(collection_name(workspace_id))

    def embed(self, texts: Sequence[str]) -> list[Any]:
        return list(self.embedder(list(texts)))

    def _add(self, col: Collection, chunks: Sequence[Chunk]) -> None:
        """Embed and add. Up to SORT_BUFFER chunks go to the model at once (it sorts them by
        length and runs batches of 32, so little padding is computed), then to Chroma
        EMBED_BATCH at a time."""
        for buffer in _batches(chunks, SORT_BUFFER):
            vectors = self.embed([c.embedding_input for c in buffer])
            for start in range(0, len(buffer), EMBED_BATCH):
                batch = buffer[start:start + EMBED_BATCH]
                col.add(ids=[c.id for c in batch], embeddings=vectors[start:start + EMBED_BATCH],
                        documents=[c.text for c in batch], metadatas=[c.metadata for c in batch])

    # --- indexing -----------------------------------------------------------------------------

    def index_email(self, session: Session, email_id: uuid.UUID) -> int:
        return self.index(session, "email", email_id)

    def index_note(self, session: Session, note_id: uuid.UUID) -> int:
        return self.index(session, "note", note_id)

    def index_call(self, session: Session, call_recording_id: uuid.UUID) -> int:
        """Index the call's transcript (none yet: nothing indexed)."""
        return self.index(session, "call", call_recording_id)

    def index(self, session: Session, kind: str, record_id: uuid.UUID) -> int:
        """(Re-)index one record: its old chunks are replaced. `kind`: email, note, call /
        call_recording, or transcript (its call). Returns the number of chunks written.

        The embedding runs while `session`'s transaction is open; on SQLite every transaction
        holds the write lock (store/db.py), so a job should prefer `index_from(sessions, ...)`,
        which reads in a short session of its own and embeds after it closed."""
        return self.index_records(session, kind, [_as_uuid(record_id)])

    def index_from(self, sessions: Callable[[], Session], kind: str, record_id: uuid.UUID) -> int:
        """(Re-)index one record, reading SQL in a short session of its own and embedding
        after that session closed (no database lock is held while the model runs)."""
        self.warm()
        with sessions() as session:
            built = self.build(session, kind, [_as_uuid(record_id)])
        return self.write(built)

    def index_records(self, session: Session, kind: str, ids: Sequence[uuid.UUID], *, replace: bool = True) -> int:
        """(Re-)index records of one kind; records gone from SQL lose nothing here (their
        workspace is unknown: `delete` them). Returns the number of chunks written."""
        self.warm()  # a first model load (seconds) before any SQL, not inside the caller's transaction
        return self.write(self.build(session, kind, [_as_uuid(i) for i in ids]), replace=replace)

    def warm(self) -> None:
        """Load the embedding model now (the local one takes ~6 s the first time in a process)."""
        load = getattr(self.embedder, "warm", None)
        if callable(load):
            load()

    @staticmethod
    def build(session: Session, kind: str, ids: Sequence[uuid.UUID]) -> Built:
        """Read records from SQL into chunks (no embedding). `kind`: email, note, call /
        call_recording, transcript (ids of transcripts: their calls)."""
        if kind == "transcript":
            ids = list(session.scalars(select(Transcript.call_recording_id).where(Transcript.id.in_(list(ids)))))
            kind = "call"
        source_kind = SOURCE_KINDS.get(kind)
        if source_kind is None:
            raise ValueError(f"memory indexes emails, notes and calls, not {kind!r}")
        return build_chunks(session, source_kind, list(ids))

    def write(self, built: Built, *, replace: bool = True) -> int:
        """Embed and store chunks from `build`, replacing each record's old chunks."""
        written = 0
        by_ws: dict[uuid.UUID, list[tuple[uuid.UUID, list[Chunk]]]] = defaultdict(list)
        for ws, source_id, chunks in built:
            by_ws[ws].append((source_id, chunks))
        for ws, records in by_ws.items():
            col = self.collection(ws)
            assert col is not None
            if replace:
                self._delete_sources(col, [str(s) for s, _ in records])
            chunks = [c for _, cs in records for c in cs]
            self._add(col, chunks)
            written += len(chunks)
        return written

    def _delete_sources(self, col: Collection, source_ids: Sequence[str]) -> None:
        for batch in _batches(list(source_ids), 500):
            where: Any = {"source_id": batch[0]} if len(batch) == 1 else {"source_id": {"$in": list(batch)}}
            col.delete(where=where)

    def delete(self, workspace_id: uuid.UUID, kind: str, source_id: uuid.UUID) -> None:
        """Remove every chunk of a record (an email's attachments with it; for kind
        "transcript", the chunks made from that transcript)."""
        col = self.collection(_as_uuid(workspace_id), create=False)
        if col is None:
            return
        if kind == "transcript":
            col.delete(where={"transcript_id": str(source_id)})
        else:
            self._delete_sources(col, [str(source_id)])

    def has(self, workspace_id: uuid.UUID, kind: str, source_id: uuid.UUID) -> bool:
        """Does the memory hold chunks of this record?"""
        col = self.collection(_as_uuid(workspace_id), create=False)
        if col is None:
            return False
        key = "transcript_id" if kind == "transcript" else "source_id"
        return bool(col.get(where={key: str(source_id)}, limit=1, include=[])["ids"])

    def reindex(self, sessions: sessionmaker[Session] | Callable[[], Session], *,
                workspace_id: uuid.UUID | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Rebuild from SQL: each workspace's collection is dropped and recreated, then every
        email, note and transcript is chunked and embedded in batches. `progress(done, total)`
        counts records. Returns counts per kind, chunks and workspaces."""
        plan: list[tuple[uuid.UUID, str, list[uuid.UUID]]] = []
        with sessions() as session:
            workspaces = [workspace_id] if workspace_id else list(
                session.scalars(select(Workspace.id).order_by(Workspace.id)))
            for ws in workspaces:
                plan.append((ws, "email", list(session.scalars(
                    select(Email.id).where(Email.workspace_id == ws).order_by(Email.id)))))
                plan.append((ws, "note", list(session.scalars(
                    select(Note.id).where(Note.workspace_id == ws).order_by(Note.id)))))
                plan.append((ws, "call", list(session.scalars(
                    select(CallRecording.id).join(Transcript, Transcript.call_recording_id == CallRecording.id)
                    .where(CallRecording.workspace_id == ws).order_by(CallRecording.id)))))
        total = sum(len(ids) for _, _, ids in plan)
        counts = {"emails": 0, "notes": 0, "calls": 0, "chunks": 0, "workspaces": len(workspaces)}
        done = 0
        if progress:
            progress(0, total)
        for ws in workspaces:
            self.drop(ws)
            col = self.collection(ws)
            assert col is not None
            pending: list[Chunk] = []
            for plan_ws, kind, ids in plan:
                if plan_ws != ws:
                    continue
                for batch in _batches(ids, LOAD_BATCH):
                    with sessions() as session:
                        built = build_chunks(session, kind, list(batch))
                    for _, _, chunks in built:
                        pending += chunks
                    counts[f"{kind}s"] += len(built)
                    if len(pending) >= SORT_BUFFER:
                        self._add(col, pending)
                        counts["chunks"] += len(pending)
                        pending = []
                    done += len(batch)
                    if progress:
                        progress(done, total)
            if pending:
                self._add(col, pending)
                counts["chunks"] += len(pending)
        if progress and done != total:
            progress(total, total)
        return counts

    # --- search -------------------------------------------------------------------------------

    def search(self, session: Session, actor: Actor, query: str, *, k: int = 8,
               contact_id: uuid.UUID | None = None, company_id: uuid.UUID | None = None,
               deal_id: uuid.UUID | None = None, kinds: Iterable[str] | None = None,
               since: datetime | None = None, query_embedding: Any = None) -> list[Hit]:
        """The k chunks most similar to `query` that the actor may read, best first.

        `kinds`: any of email, attachment, note, call. `since`: only records dated on or after.
        `query_embedding`: a precomputed embedding of `query` (benchmarks, repeated queries).
        Several reps' copies of one email (a manager reads them all) are one hit.
        """
        query = (query or "").strip()
        if not query or k <= 0:
            return []
        col = self.collection(actor.workspace_id, create=False)
        if col is None:
            return []
        kind_set = {k_.lower() for k_ in kinds} if kinds else None
        if kind_set is not None:
            unknown = kind_set - set(VISIBLE_AS)
            if unknown:
                raise ValueError(f"unknown memory kind(s) {sorted(unknown)}: use {', '.join(VISIBLE_AS)}")
        vector = query_embedding if query_embedding is not None else self.embed([query])[0]
        options = {"contact_id": contact_id, "company_id": company_id, "deal_id": deal_id, "kind_set": kind_set,
                   "since": since, "vector": vector}
        hits = self._nearest(col, session, actor, k=k, **options)
        if len(hits) == k and len(_distinct(hits)) < k:
            hits = self._nearest(col, session, actor, k=2 * k, **options)
        return _distinct(hits)[:k]

    def _nearest(self, col: Collection, session: Session, actor: Actor, *, k: int, contact_id: uuid.UUID | None,
                 company_id: uuid.UUID | None, deal_id: uuid.UUID | None, kind_set: set[str] | None,
                 since: datetime | None, vector: Any) -> list[Hit]:
        owners = readable_owner_ids(session, actor)
        if not (contact_id or company_id or deal_id or since):
            hits = self._search_unfiltered(col, session, actor, vector, k, kind_set, owners)
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
        return self._search_filtered(col, session, actor, vector, k, where)

    def _search_unfiltered(self, col: Collection, session: Session, actor: Actor, vector: Any, k: int,
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
        ok = readable_sources(session, actor, wanted)
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
                hits.append(self._hit(chunk_id, doc, dict(meta or {}), distance))
        return hits

    def _search_filtered(self, col: Collection, session: Session, actor: Actor, vector: Any, k: int,
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
            ok = readable_sources(session, actor, wanted)
            hits = []
            for chunk_id, doc, meta, distance in rows:
                parsed = parse_chunk_id(chunk_id)
                if parsed and parsed[0] in VISIBLE_AS and (VISIBLE_AS[parsed[0]], parsed[1]) in ok:
                    hits.append(self._hit(chunk_id, doc, dict(meta or {}), distance))
            if len(hits) >= k or len(ids) < fetch or fetch >= 4 * OVERFETCH_MAX:
                return hits[:k]
            fetch *= 4  # stale metadata hid some: look further

    @staticmethod
    def _hit(chunk_id: str, doc: str | None, meta: dict[str, Any], distance: float) -> Hit:
        kind = str(meta.get("kind") or chunk_id.split(":", 1)[0])
        return Hit(kind=kind, source_id=uuid.UUID(str(meta.get("source_id") or chunk_id.split(":")[1])),
                   title=str(meta.get("title") or ""), date=_date(meta), text=doc or "",
                   score=round(1.0 - float(distance), 4), locator=meta.get("locator") or None,
                   author=str(meta.get("author") or meta.get("speakers") or ""), chunk_id=chunk_id, metadata=meta)


# --- reading records from SQL into chunks -------------------------------------------------------

def _distinct(hits: list[Hit]) -> list[Hit]:
    """The first of hits that say the same thing (two reps' copies of an email: same text, title, date)."""
    seen: set[tuple[str, str, str, datetime | None, str | None]] = set()
    out = []
    for hit in hits:
        key = (hit.kind, hit.text, hit.title, hit.date, hit.locator)
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out


def _companies_of(session: Session, contact_ids: set[uuid.UUID],
                  deal_ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """record id -> its company id, for the contacts and deals given."""
    out: dict[uuid.UUID, uuid.UUID] = {}
    if contact_ids:
        out.update({cid: comp for cid, comp in session.execute(
            select(Contact.id, Contact.company_id)
            .where(Contact.id.in_(contact_ids), Contact.company_id.is_not(None)))})
    if deal_ids:
        out.update({did: comp for did, comp in session.execute(
            select(Deal.id, Deal.company_id).where(Deal.id.in_(deal_ids), Deal.company_id.is_not(None)))})
    return out


@dataclass
class _Links:
    contacts: set[uuid.UUID] = field(default_factory=set)
    companies: set[uuid.UUID] = field(default_factory=set)
    deals: set[uuid.UUID] = field(default_factory=set)


def _activity_links(session: Session, column: Any, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, _Links]:
    """Links of the activities pointing at these emails / call recordings (by `column`)."""
    out: dict[uuid.UUID, _Links] = defaultdict(_Links)
    rows = session.execute(select(column, ActivityTarget.contact_id, ActivityTarget.company_id, ActivityTarget.deal_id)
                           .join(ActivityTarget, ActivityTarget.activity_id == Activity.id)
                           .where(column.in_(ids)))
    for source, contact, company, deal in rows:
        links = out[source]
        if contact:
            links.contacts.add(contact)
        if company:
            links.companies.add(company)
        if deal:
            links.deals.add(deal)
    return out


def _expand(session: Session, links: dict[uuid.UUID, _Links]) -> None:
    """Add the companies of linked contacts and deals (a note on a contact is about their company)."""
    companies = _companies_of(session, {c for v in links.values() for c in v.contacts},
                              {d for v in links.values() for d in v.deals})
    for v in links.values():
        v.companies.update(companies[x] for x in v.contacts | v.deals if x in companies)


def _owner_names(session: Session, owner_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    ids = {o for o in owner_ids if o}
    if not ids:
        return {}
    return {uid: name for uid, name in session.execute(select(User.id, User.name).where(User.id.in_(ids)))}


def build_chunks(session: Session, kind: str, ids: Sequence[uuid.UUID]) -> Built:
    """(workspace id, source id, chunks) for each record of `kind` (email, note, call) that exists."""
    if not ids:
        return []
    if kind == "email":
        return _email_chunks(session, ids)
    if kind == "note":
        return _note_chunks(session, ids)
    if kind == "call":
        return _call_chunks(session, ids)
    raise ValueError(f"unknown memory kind {kind!r}")


def _email_chunks(session: Session, ids: Sequence[uuid.UUID]) -> Built:
    emails = list(session.scalars(select(Email).where(Email.id.in_(ids))))
    if not emails:
        return []
    email_ids = [e.id for e in emails]
    links: dict[uuid.UUID, _Links] = defaultdict(_Links)
    senders: dict[uuid.UUID, str] = {}
    for p in session.scalars(select(EmailParticipant).where(EmailParticipant.email_id.in_(email_ids))):
        if p.contact_id:
            links[p.email_id].contacts.add(p.contact_id)
        if p.role == EmailParticipantRole.sender:
            senders[p.email_id] = p.name or p.address
    for email_id, extra in _activity_links(session, Activity.email_id, email_ids).items():
        links[email_id].contacts |= extra.contacts
        links[email_id].companies |= extra.companies
        links[email_id].deals |= extra.deals
    for e in emails:
        if e.deal_id:
            links[e.id].deals.add(e.deal_id)
    _expand(session, links)
    attachments: dict[uuid.UUID, list[tuple[uuid.UUID, str, str | None]]] = defaultdict(list)
    for att_id, email_id, filename, text in session.execute(
            select(EmailAttachment.id, EmailAttachment.email_id, EmailAttachment.filename, EmailAttachment.text)
            .where(EmailAttachment.email_id.in_(email_ids), EmailAttachment.text.is_not(None))
            .order_by(EmailAttachment.email_id, EmailAttachment.filename, EmailAttachment.id)):
        attachments[email_id].append((att_id, filename, text))
    out = []
    for e in emails:
        lk = links.get(e.id) or _Links()
        src = Source(workspace_id=e.workspace_id, source_id=e.id, owner_id=e.owner_id, date=e.sent_at or e.created_at,
                     title=e.subject or "", author=senders.get(e.id) or e.from_address or "",
                     contact_ids=sorted(lk.contacts), company_ids=sorted(lk.companies), deal_ids=sorted(lk.deals))
        out.append((e.workspace_id, e.id, email_chunks(src, subject=e.subject or "", body_text=e.body_text,
                                                       attachments=attachments.get(e.id, []))))
    return out


def _note_chunks(session: Session, ids: Sequence[uuid.UUID]) -> Built:
    notes = list(session.scalars(select(Note).where(Note.id.in_(ids))))
    links: dict[uuid.UUID, _Links] = defaultdict(_Links)
    for n in notes:
        lk = links[n.id]
        lk.contacts.update(x for x in [n.contact_id] if x)
        lk.companies.update(x for x in [n.company_id] if x)
        lk.deals.update(x for x in [n.deal_id] if x)
    _expand(session, links)
    names = _owner_names(session, (n.owner_id for n in notes))
    out = []
    for n in notes:
        lk = links[n.id]
        src = Source(workspace_id=n.workspace_id, source_id=n.id, owner_id=n.owner_id, date=n.created_at,
                     title=note_title(n.body), author=names.get(n.owner_id, "") if n.owner_id else "",
                     contact_ids=sorted(lk.contacts), company_ids=sorted(lk.companies), deal_ids=sorted(lk.deals))
        out.append((n.workspace_id, n.id, note_chunks(src, body=n.body)))
    return out


def _call_chunks(session: Session, ids: Sequence[uuid.UUID]) -> Built:
    query = (select(CallRecording, Transcript)
             .outerjoin(Transcript, Transcript.call_recording_id == CallRecording.id)
             .where(CallRecording.id.in_(ids)))
    rows: list[tuple[CallRecording, Transcript | None]] = [(rec, tr) for rec, tr in session.execute(query)]
    if not rows:
        return []
    rec_ids = [r.id for r, _ in rows]
    links = _activity_links(session, Activity.call_recording_id, rec_ids)
    titles: dict[uuid.UUID, tuple[str, datetime]] = {}
    for rec_id, subject, occurred in session.execute(
            select(Activity.call_recording_id, Activity.subject, Activity.occurred_at)
            .where(Activity.call_recording_id.in_(rec_ids)).order_by(Activity.occurred_at)):
        titles.setdefault(rec_id, (subject, occurred))
    for r, _ in rows:
        lk = links[r.id]
        lk.contacts.update(x for x in [r.contact_id] if x)
        lk.companies.update(x for x in [r.company_id] if x)
        lk.deals.update(x for x in [r.deal_id] if x)
    _expand(session, links)
    out = []
    for rec, transcript in rows:
        if transcript is None:
            out.append((rec.workspace_id, rec.id, []))
            continue
        subject, occurred = titles.get(rec.id, ("", None))
        lk = links[rec.id]
        src = Source(workspace_id=rec.workspace_id, source_id=rec.id, owner_id=rec.owner_id,
                     date=occurred or rec.created_at, title=subject or rec.filename,
                     contact_ids=sorted(lk.contacts), company_ids=sorted(lk.companies), deal_ids=sorted(lk.deals))
        out.append((rec.workspace_id, rec.id, call_chunks(src, segments=transcript.segments or [],
                                                          text=transcript.text, transcript_id=transcript.id)))
    return out


# --- the process's memory ----------------------------------------------------------------------

_memory: Memory | None = None
_memory_lock = threading.Lock()


def get_memory() -> Memory:
    """The process's Memory, built from `store.settings.get_settings()` on first use."""
    global _memory
    with _memory_lock:
        if _memory is None:
            _memory = Memory(get_settings())
        return _memory


def reset_memory() -> None:
    """Forget the process's Memory (tests, the CLI after changing settings)."""
    global _memory
    with _memory_lock:
        _memory = None


__all__ = ["Hit", "Memory", "MemoryMismatch", "build_chunks", "collection_name", "get_memory", "make_client",
           "readable_owner_ids", "readable_sources", "reset_memory"]
