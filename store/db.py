"""Engine and session factories. Nothing connects at import time.

Services never commit: the owner of the unit of work (an HTTP request, a CLI
command, a job, an agent turn) opens it with `unit_of_work()` and commits once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from store.settings import get_settings


def make_engine(url: str, *, echo: bool = False, jit: bool = False, **kwargs: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL. On PostgreSQL, JIT is off for its connections
    unless `jit=True` or the URL's own `options` set jit (`?options=-cjit%3Don`)."""
    if url.startswith("sqlite"):
        from pathlib import Path

        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite defers BEGIN until the first write, so a SAVEPOINT issued first opens
            # the transaction itself and its RELEASE commits it: nested transactions (import
            # rows, approval execution) would commit early. We take over BEGIN (the recipe in
            # SQLAlchemy's SQLite dialect docs): the driver stays in autocommit, we begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # Foreign keys are off by default in SQLite; WAL lets readers run during a write.
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front. A deferred transaction that read first
            # cannot upgrade once another connection has written (SQLITE_BUSY at once, no
            # busy_timeout wait): two overlapping requests made one fail. Transactions here are
            # short (the agent calls its LLM outside any), so serialising them costs little.
            # A read-only unit (a read tool, say, that embeds a query or draws a chart) takes
            # no lock: with WAL it reads a snapshot while others write.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READONLY) else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgresql") and not jit:
        kwargs["connect_args"] = _without_jit(url, dict(kwargs.get("connect_args") or {}))
    return create_engine(url, echo=echo, pool_pre_ping=True, **kwargs)


def _without_jit(url: str, connect_args: dict[str, Any]) -> dict[str, Any]:
    """connect_args that turn PostgreSQL's JIT off for the session (`-c jit=off`), added to any
    `options` the URL or connect_args already carry (a test's `-csearch_path=...`). JIT compiles
    a plan once its estimated cost passes jit_above_cost: the analytics' big estimates paid
    0.1-1.2 s per call to compile what ran in less. Options that set jit themselves win."""
    options = connect_args.get("options")
    if options is None:
        options = make_url(url).query.get("options")
        if isinstance(options, tuple):
            options = " ".join(options)
    options = options or ""
    if "jit" not in options:
        connect_args["options"] = f"{options} -c jit=off".strip()
    return connect_args


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.resolved_database_url, echo=settings.sql_echo)


@lru_cache(maxsize=1)
def get_sessionmaker() -> sessionmaker[Session]:
    """Sessions on the configured database, once its schema is checked to be this code's: a store
    never migrated says "run `crm setup`" here (SchemaNotReady), at the first unit of work of any
    command or server, rather than "no such table" from some query."""
    from store.migrate import require_current

    engine = get_engine()
    require_current(engine)
    return sessionmaker(bind=engine, expire_on_commit=False)


READONLY = "crm_readonly"


@contextmanager
def unit_of_work(factory: sessionmaker[Session] | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error.

    `readonly=True` for units that only read: on SQLite they do not take the write lock
    (on PostgreSQL it changes nothing). A write inside one may fail with "database is locked"."""
    session = (factory or get_sessionmaker())()
    if readonly and isinstance(session.bind, Engine):  # a test's session bound to its connection has begun
        session.connection(execution_options={READONLY: True})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
