"""Keep the vector memory in step with SQL after each commit (store/events.py).

The app subscribes `on_record_events` (channels wire it, in a worker thread): a deleted
email, note, call recording or transcript loses its vectors; a created or updated note is
(re-)indexed. Emails and calls are indexed by their ingestion job; when one of them that is
already in memory is updated (an owner or a deal link changed), it is re-indexed so the
metadata the search filters on stays right. Memory is derived data: a failure here is
logged by the caller and `crm reindex` rebuilds everything from SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session

from memory.index import Memory, get_memory
from store.events import RecordEvent

log = logging.getLogger("crm.memory.sync")

MEMORY_KINDS = frozenset({"email", "note", "call_recording", "transcript"})


def _default_sessions() -> Callable[[], Session]:
    from store.db import get_sessionmaker

    return get_sessionmaker()


def on_record_events(events: Iterable[RecordEvent], *, memory_factory: Callable[[], Memory] = get_memory,
                     sessions: Callable[[], Session] | None = None) -> dict[str, int]:
    """Apply a committed transaction's events to the memory. Returns what was done
    ({"deleted": n, "indexed": n}); events of other kinds are ignored."""
    latest: dict[tuple[str, Any], RecordEvent] = {}
    for event in events:
        if event.kind in MEMORY_KINDS:
            latest.pop((event.kind, event.id), None)
            latest[(event.kind, event.id)] = event  # the last action on a record wins
    done = {"deleted": 0, "indexed": 0}
    if not latest:
        return done
    memory = memory_factory()
    factory = sessions or _default_sessions()
    for event in latest.values():
        if event.action == "deleted":
            memory.delete(event.workspace_id, event.kind, event.id)
            done["deleted"] += 1
            continue
        if event.kind == "note" or event.kind == "transcript" or (
                event.action == "updated" and memory.has(event.workspace_id, event.kind, event.id)):
            memory.index_from(factory, event.kind, event.id)  # no SQL transaction open while embedding
            done["indexed"] += 1
    return done
