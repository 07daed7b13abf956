"""The durable checkpointer: conversations and paused proposals survive a restart.

SQLite (a file beside the CRM database) by default; PostgreSQL when the store is
PostgreSQL. LangGraph stores every channel's full value at each step, so the
message history is what grows: see bench/ for bytes per turn.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from store.settings import Settings, get_settings


def make_checkpointer(settings: Settings | None = None, *, url: str | None = None) -> BaseCheckpointSaver[Any]:
    settings = settings or get_settings()
    url = url or settings.resolved_database_url
    if url.startswith("postgresql"):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        pool = ConnectionPool(conninfo, min_size=1, max_size=5, open=True,
                              kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
        saver: BaseCheckpointSaver[Any] = PostgresSaver(pool)  # type: ignore[arg-type]
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / "checkpoints.db" if "///" in url and ":memory:" not in url else ":memory:"
        conn = sqlite3.connect(str(path), check_same_thread=False)
        saver = SqliteSaver(conn)
    saver.setup()  # type: ignore[attr-defined]
    return saver
