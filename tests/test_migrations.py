"""Migrations upgrade from empty, match the models, and downgrade to empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import store.models  # noqa: F401
from store import migrate
from store.db import make_engine
from store.models.base import Base


@pytest.fixture
def empty_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url)
    yield engine
    engine.dispose()


def test_upgrade_from_empty_matches_models_then_downgrade(empty_engine: Engine) -> None:
    assert migrate.current(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert migrate.current(empty_engine) is not None
    tables = set(inspect(empty_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables

    with empty_engine.connect() as conn:
        # The search indexes (FTS tables, pg_trgm indexes) no model declares are left out of the comparison.
        opts = {"compare_type": True, "include_name": migrate.include_name}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diff == [], f"models and migrations differ; generate a migration: {diff}"

    migrate.downgrade(empty_engine, "base")
    assert migrate.current(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(empty_engine)  # and back up again
    assert set(Base.metadata.tables) <= set(inspect(empty_engine).get_table_names())
