"""Test database: SQLite by default, PostgreSQL with CRM_TEST_DATABASE=postgres.

The schema is built once per run by the real Alembic migrations; each test then runs
inside a transaction that is rolled back, so tests never see each other's rows.
Services and the API commit as they do in production: with
join_transaction_mode="create_savepoint" those commits end a savepoint, not the test's
transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.orm import Session, sessionmaker

from store import migrate
from store.db import make_engine

pytest_plugins = ["tests.fake_openai"]

BACKEND = os.environ.get("CRM_TEST_DATABASE", "sqlite")
PG_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _reset_postgres(engine: Engine) -> None:
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for table in reversed(meta.sorted_tables):
            conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))


def test_database_url(tmp_path: Path) -> str:
    if BACKEND == "postgres":
        return PG_URL
    if BACKEND != "sqlite":
        raise pytest.UsageError(f"CRM_TEST_DATABASE must be sqlite or postgres, not {BACKEND!r}")
    return f"sqlite:///{tmp_path / 'test.db'}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = make_engine(test_database_url(tmp_path_factory.mktemp("db")))
    if eng.dialect.name == "postgresql":
        _reset_postgres(eng)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    yield s
    s.close()


@pytest.fixture
def app(session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    from channels.api.app import create_app

    return create_app(session_factory)


@pytest.fixture
def http(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        yield client


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the backend under test (PostgreSQL: a new schema),
    for tests of code that commits for real (the CLI, migrations)."""
    if BACKEND != "postgres":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    import uuid

    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def cli_env(fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the settings (and the cached engine) at a fresh database and data dir."""
    from store.db import get_engine, get_sessionmaker
    from store.settings import get_settings

    monkeypatch.setenv("CRM_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path / "data"))
    caches = (get_settings, get_engine, get_sessionmaker)
    for cached in caches:
        cached.cache_clear()
    yield tmp_path / "data"
    get_engine().dispose()
    for cached in caches:
        cached.cache_clear()
