"""trigram indexes for typo search on names

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 18:10:00.000000

Typo search (store/services/search.py) reads candidates from a trigram index instead of every
name in scope; substring search uses it too.

PostgreSQL: the pg_trgm extension and GIN trigram indexes on the lowered names (contacts'
"first last", companies', deals'), contacts' lowered email and companies' domain. Creating an
extension needs the CREATE privilege on the database (or a superuser) on a server that ships
pg_trgm (the contrib package). Where the role may not create it, the migration logs a warning
saying what to run, skips the indexes, and search keeps reading every name in scope (correct,
slower); running this revision again (downgrade to 0008, upgrade) after `CREATE EXTENSION
pg_trgm` adds them.

SQLite: one FTS5 table per kind with the trigram tokenizer (store.migrate.NAME_INDEX_TABLES)
holding each record's id, lowered name and other searched column (contacts' lowered email,
companies' domain), kept in sync by triggers, filled from the rows already there. A table
rebuilt by a later batch migration loses its triggers: that migration must create them again
(TRIGGERS).
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# table -> the lowered name expression that search.py queries (the same text, so the index applies)
NAMES = {
    "contacts": "lower(first_name || ' ' || last_name)",
    "companies": "lower(name)",
    "deals": "lower(name)",
}
PG_INDEXES = {f"ix_{table}_name_trgm": (table, expr) for table, expr in NAMES.items()}
# the substring search's other columns, so that its OR over name and address uses indexes too
PG_INDEXES |= {"ix_contacts_email_trgm": ("contacts", "lower(email)"),
               "ix_companies_domain_trgm": ("companies", "domain")}
NO_EXTENSION = ("pg_trgm could not be created ({error}); typo search stays on the slow path (it reads every name "
                "in scope). To fix: as a superuser or the database owner run `CREATE EXTENSION pg_trgm;` in this "
                "database (Debian/Ubuntu: the postgresql-contrib package provides it), then "
                "`crm migrate` down to 0008 and up again, or create the indexes of revision 0009 by hand.")


# SQLite: table -> the FTS table's searched columns besides the name, and their expressions
OTHER = {"contacts": {"email": "lower(email)"}, "companies": {"domain": "domain"}, "deals": {}}


# the same values, from the row a trigger sees
NEW_VALUES = {
    "contacts": "new.id, lower(new.first_name || ' ' || new.last_name), lower(new.email)",
    "companies": "new.id, lower(new.name), new.domain",
    "deals": "new.id, lower(new.name)",
}


WATCHED = {"contacts": "first_name, last_name, email", "companies": "name, domain", "deals": "name"}


def _fts(table: str) -> str:
    return f"{table}_name_fts"


def _columns(table: str) -> tuple[str, str]:
    """The FTS table's columns and the row's values for them, as SQL lists."""
    names = ["id", "name", *OTHER[table]]
    values = ["id", NAMES[table], *OTHER[table].values()]
    return ", ".join(names), ", ".join(values)


def TRIGGERS(table: str) -> list[str]:  # noqa: N802  (a constant-like helper, used by later migrations)
    columns, _ = _columns(table)
    new = NEW_VALUES[table]
    fts = _fts(table)
    return [
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts} ({columns}) VALUES ({new}); END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN "
        f"DELETE FROM {fts} WHERE id = old.id; END",
        # Only when a searched column changes: the DELETE reads the FTS table through (id is not
        # indexed there), fine for one record, not for every deal's last_activity_at.
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {WATCHED[table]} ON {table} BEGIN "
        f"DELETE FROM {fts} WHERE id = old.id; INSERT INTO {fts} ({columns}) VALUES ({new}); END",
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _upgrade_postgres(bind)
    elif bind.dialect.name == "sqlite":
        for table in NAMES:
            fts = _fts(table)
            columns, values = _columns(table)
            op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({columns.replace('id,', 'id UNINDEXED,')}, "
                       "tokenize='trigram')")
            op.execute(f"INSERT INTO {fts} ({columns}) SELECT {values} FROM {table}")
            # each trigram's document count: the typo search leaves out those in most names
            op.execute(f"CREATE VIRTUAL TABLE {fts}_vocab USING fts5vocab({fts}, 'row')")
            for statement in TRIGGERS(table):
                op.execute(statement)


def _upgrade_postgres(bind: sa.Connection) -> None:
    installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if not installed:
        savepoint = bind.begin_nested()
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            savepoint.commit()
        except sa.exc.DBAPIError as e:
            savepoint.rollback()
            log.warning(NO_EXTENSION.format(error=str(e.orig).strip().splitlines()[0]))
            return
    # The extension may live in a schema off this connection's search_path (one database, a schema
    # per tenant or per test): name its operator class with its schema.
    schema = bind.execute(sa.text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                                  "WHERE e.extname = 'pg_trgm'")).scalar_one()
    opclass = f"{bind.dialect.identifier_preparer.quote_schema(schema)}.gin_trgm_ops"
    for name, (table, expr) in PG_INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (({expr}) {opclass})")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in PG_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        # The extension stays: other databases' objects or an administrator may rely on it.
    elif bind.dialect.name == "sqlite":
        for table in NAMES:
            fts = _fts(table)
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {fts}_vocab")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
