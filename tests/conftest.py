"""Test database: SQLite by default, PostgreSQL with CRM_TEST_DATABASE=postgres.

The schema is built once per run by the real Alembic migrations; each test then runs
inside a transaction that is rolled back, so tests never see each other's rows.
Services and the API commit as they do in production: with
join_transaction_mode="create_savepoint" those commits end a savepoint, not the test's
transaction.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.orm import Session, sessionmaker

from store import migrate
from store.db import make_engine

pytest_plugins = ["tests.fake_openai", "tests.fake_slack", "tests.fake_dns"]

# Code under test that reaches the vector memory without a test's own Chroma directory
# (a brief, say) must not write into the repo's data/ folder.
os.environ.setdefault("CRM_CHROMA_PATH", tempfile.mkdtemp(prefix="crm-test-chroma-"))

BACKEND = os.environ.get("CRM_TEST_DATABASE", "sqlite")
# `dev.py test` runs the SQLite suite a second time with the clock moved here (a Sunday at
# year end, late evening in UTC: already Monday in Asia, still Sunday afternoon in America),
# so a test that only passes in the week it was written fails at once, not next month.
TRAVEL = os.environ.get("CRM_TEST_TRAVEL")
PG_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_configure(config: pytest.Config) -> None:
    if not TRAVEL:
        return
    from datetime import datetime

    import time_machine

    moment = datetime.fromisoformat(TRAVEL)
    if moment.tzinfo is None:
        raise pytest.UsageError(f"CRM_TEST_TRAVEL needs a time zone, e.g. 2028-12-31T22:30:00Z, not {TRAVEL!r}")
    # The clock ticks on from there; a test's own time_machine.travel nests inside this one.
    traveller = time_machine.travel(moment, tick=True)
    traveller.start()
    config.stash[_TRAVELLER] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    return f"clock moved to {TRAVEL} (CRM_TEST_TRAVEL)" if TRAVEL else None


_TRAVELLER = pytest.StashKey[object]()


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
    from flows import runtime
    from store.db import get_engine, get_sessionmaker
    from store.settings import get_settings

    monkeypatch.setenv("CRM_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path / "data"))
    caches = (get_settings, get_engine, get_sessionmaker)
    for cached in caches:
        cached.cache_clear()
    # A command run in-process builds the shared agent runner on this database; a later test
    # must not inherit it (its checkpointer points at a schema that is dropped below).
    previous_runner = runtime.install_runner(None)
    yield tmp_path / "data"
    runtime.install_runner(previous_runner)
    get_engine().dispose()
    for cached in caches:
        cached.cache_clear()


@pytest.fixture
def ingestion(session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The ingestion pipeline on the test's database: a data dir and Chroma directory of its
    own, the offline agent (or a test's runner), and a real in-process job queue whose
    threads run the jobs; `.wait()` blocks until they are done."""
    from agents.checkpoint import make_checkpointer
    from agents.models import load_brain
    from agents.runner import AgentRunner
    from flows import runtime
    from flows.jobs import InProcessQueue, load_handlers, set_queue
    from memory import reset_memory
    from store.settings import get_settings

    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRM_CHROMA_PATH", str(tmp_path / "chroma"))
    monkeypatch.setenv("CRM_INBOX_ADDRESS", "inbox@crm.example")
    for name in [k for k in os.environ if k.startswith("CRM_LLM_")]:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    reset_memory()
    settings = get_settings()
    url = PG_URL if BACKEND == "postgres" else f"sqlite:///{tmp_path / 'crm.db'}"
    runner = AgentRunner(sessions=session_factory, checkpointer=make_checkpointer(settings, url=url),
                         brain=load_brain(settings))
    load_handlers()
    queue = InProcessQueue(session_factory, settings, threads=1)
    previous_queue, previous_runner = set_queue(queue), runtime.install_runner(runner)

    class Ingestion:
        def __init__(self) -> None:
            self.runner, self.queue, self.settings, self.sessions = runner, queue, settings, session_factory

        def use_runner(self, other: AgentRunner) -> None:
            self.runner = other
            runtime.install_runner(other)

        def wait(self) -> None:
            queue.wait(timeout=120)

    yield Ingestion()
    queue.close()
    set_queue(previous_queue)
    runtime.install_runner(previous_runner)
    reset_memory()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A multilingual tiny Whisper (CTranslate2 format, random weights), built once per test session."""
    from tests.whisper_tiny import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
