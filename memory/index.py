"""The vector memory: emails, notes and call transcripts in Chroma, searched as the caller.

SQL is the source of truth; the index is derived from it and `Memory.reindex` rebuilds it.
`Memory` is the one object callers hold; its parts live beside it:

- memory/client.py: the Chroma client and one collection per workspace;
- memory/plans.py: the search plans, filtered by the store's permission rule (hits are
  `store.services.search.Hit`, the one search result shape);
- memory/reindex.py: records from the store (`store.services.memory_records`) into chunks, and
  the rebuild.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from sqlalchemy.orm import Session, sessionmaker

import memory.reindex as rebuild
from memory.chunking import Chunk
from memory.client import MemoryMismatch, collection_name, drop_collection, make_client, open_collection
from memory.embeddings import embedding_function
from memory.plans import VISIBLE_AS, Hit, distinct, nearest, readable_owner_keys
from memory.reindex import SORT_BUFFER, Built, batches, build, build_chunks
from store.actor import Actor
from store.settings import Settings, get_settings

EMBED_BATCH = 64  # chunks added per Chroma call


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


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
        return open_collection(self.client, self.embedder, workspace_id, create=create)

    def drop(self, workspace_id: uuid.UUID) -> None:
        drop_collection(self.client, workspace_id)

    def embed(self, texts: Sequence[str]) -> list[Any]:
        return list(self.embedder(list(texts)))

    def add(self, col: Collection, chunks: Sequence[Chunk]) -> None:
        """Embed and add. Up to SORT_BUFFER chunks go to the model at once (it sorts them by
        length and runs batches of 32, so little padding is computed), then to Chroma
        EMBED_BATCH at a time."""
        for buffer in batches(chunks, SORT_BUFFER):
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
        """Read records from SQL into chunks (no embedding): memory/reindex.py `build`."""
        return build(session, kind, ids)

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
            self.add(col, chunks)
            written += len(chunks)
        return written

    def _delete_sources(self, col: Collection, source_ids: Sequence[str]) -> None:
        for batch in batches(list(source_ids), 500):
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
        """Rebuild from SQL (memory/reindex.py): each workspace's collection is dropped and
        recreated, then every email, note and transcript is chunked and embedded in batches."""
        return rebuild.reindex(self, sessions, workspace_id=workspace_id, progress=progress)

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
        hits = nearest(col, session, actor, k=k, **options)
        if len(hits) == k and len(distinct(hits)) < k:
            hits = nearest(col, session, actor, k=2 * k, **options)
        return distinct(hits)[:k]


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


# bench/memory_bench.py reads these from here.
readable_owner_ids = readable_owner_keys

__all__ = ["Hit", "Memory", "MemoryMismatch", "build_chunks", "collection_name", "get_memory", "make_client",
           "readable_owner_ids", "reset_memory"]
