"""Reading records into chunks and rebuilding the memory from SQL (`crm reindex`).

The records come from the store (`store.services.memory_records`); here they become chunks
(memory/chunking.py), to be embedded and written by `Memory.write` / `Memory.add`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from memory.chunking import Chunk, Source, call_chunks, email_chunks, note_chunks, note_title
from store.services import memory_records
from store.services.memory_records import MemoryRecord

LOAD_BATCH = 100  # records read from SQL per round while reindexing
SORT_BUFFER = 512  # chunks handed to the model at once (it sorts by length: less padding)

# Record kinds as events and callers name them -> the memory's source kind.
SOURCE_KINDS = {"email": "email", "note": "note", "call": "call", "call_recording": "call"}

Built = list[tuple[uuid.UUID, uuid.UUID, list[Chunk]]]  # (workspace id, source id, chunks)


class Rebuilt(Protocol):
    """What a rebuild needs of the memory (memory.index.Memory): drop a workspace's collection,
    open it anew, add chunks to it."""

    def drop(self, workspace_id: uuid.UUID) -> None: ...
    def collection(self, workspace_id: uuid.UUID, *, create: bool = True) -> Any: ...
    def add(self, col: Any, chunks: Sequence[Chunk]) -> None: ...


def batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def build(session: Session, kind: str, ids: Sequence[uuid.UUID]) -> Built:
    """Read records from SQL into chunks (no embedding). `kind`: email, note, call /
    call_recording, transcript (ids of transcripts: their calls)."""
    if kind == "transcript":
        ids = memory_records.calls_of_transcripts(session, ids)
        kind = "call"
    source_kind = SOURCE_KINDS.get(kind)
    if source_kind is None:
        raise ValueError(f"memory indexes emails, notes and calls, not {kind!r}")
    return build_chunks(session, source_kind, list(ids))


def build_chunks(session: Session, kind: str, ids: Sequence[uuid.UUID]) -> Built:
    """(workspace id, source id, chunks) for each record of `kind` (email, note, call) that exists."""
    if kind not in ("email", "note", "call"):
        raise ValueError(f"unknown memory kind {kind!r}")
    return [(r.workspace_id, r.source_id, chunks_of(r)) for r in memory_records.load_records(session, kind, ids)]


def chunks_of(record: MemoryRecord) -> list[Chunk]:
    """A record's chunks (a call with no transcript yet has none)."""
    title = note_title(record.body or "") if record.kind == "note" else record.title
    src = Source(workspace_id=record.workspace_id, source_id=record.source_id, owner_id=record.owner_id,
                 date=record.date, title=title, author=record.author, contact_ids=record.contact_ids,
                 company_ids=record.company_ids, deal_ids=record.deal_ids)
    if record.kind == "email":
        return email_chunks(src, subject=record.title, body_text=record.body, attachments=record.attachments)
    if record.kind == "note":
        return note_chunks(src, body=record.body or "")
    if record.segments is None:
        return []
    return call_chunks(src, segments=record.segments, text=record.body or "", transcript_id=record.transcript_id)


def reindex(memory: Rebuilt, sessions: sessionmaker[Session] | Callable[[], Session], *,
            workspace_id: uuid.UUID | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Rebuild from SQL: each workspace's collection is dropped and recreated, then every
    email, note and transcript is chunked and embedded in batches. `progress(done, total)`
    counts records. Returns counts per kind, chunks and workspaces."""
    with sessions() as session:
        workspaces, plan = memory_records.reindex_plan(session, workspace_id=workspace_id)
    total = sum(len(ids) for _, _, ids in plan)
    counts = {"emails": 0, "notes": 0, "calls": 0, "chunks": 0, "workspaces": len(workspaces)}
    done = 0
    if progress:
        progress(0, total)
    for ws in workspaces:
        memory.drop(ws)
        col = memory.collection(ws)
        assert col is not None
        pending: list[Chunk] = []
        for plan_ws, kind, ids in plan:
            if plan_ws != ws:
                continue
            for batch in batches(ids, LOAD_BATCH):
                with sessions() as session:
                    built = build_chunks(session, kind, list(batch))
                for _, _, chunks in built:
                    pending += chunks
                counts[f"{kind}s"] += len(built)
                if len(pending) >= SORT_BUFFER:
                    memory.add(col, pending)
                    counts["chunks"] += len(pending)
                    pending = []
                done += len(batch)
                if progress:
                    progress(done, total)
        if pending:
            memory.add(col, pending)
            counts["chunks"] += len(pending)
    if progress and done != total:
        progress(total, total)
    return counts
