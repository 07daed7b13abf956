"""Schema migrations (Alembic), callable from the CLI, the tests and the run command; and the
check that a database's schema is the one this code expects."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from store.errors import SchemaNotReady

MIGRATIONS = Path(__file__).parent / "migrations"
# Tables a migration makes that no model maps: on SQLite, the FTS5 trigram index of names
# (revision 0009, read by store/services/search.py) and FTS5's own shadow tables of it.
# On PostgreSQL, its GIN trigram indexes (expressions with an operator class: no model declares them).
NAME_INDEX_TABLES = ("contacts_name_fts", "companies_name_fts", "deals_name_fts")
TRIGRAM_INDEXES = frozenset({"ix_contacts_name_trgm", "ix_companies_name_trgm", "ix_deals_name_trgm",
                             "ix_contacts_email_trgm", "ix_companies_domain_trgm"})


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's name filter: models and migrations are compared without the name index of 0009."""
    if type_ == "table" and name is not None and name.startswith(NAME_INDEX_TABLES):
        return False
    return not (type_ == "index" and name in TRIGRAM_INDEXES)


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        # ConfigParser interpolates '%': a URL-encoded password or option must be escaped.
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())  # the migration files, read once per process


def require_current(engine: Engine) -> None:
    """SchemaNotReady saying what to run, unless the database's schema is the one this code
    expects: never migrated (`crm setup`), behind (`crm migrate`), or ahead of this code."""
    revision = current(engine)
    scripts = _scripts()
    heads = scripts.get_heads()
    if revision in heads:
        return
    where = engine.url.render_as_string(hide_password=True)
    if revision is None:
        raise SchemaNotReady(f"the database {where} has no CRM tables yet: run `crm setup` (it creates them and "
                             "the workspace)", revision=None)
    try:
        known = scripts.get_revision(revision) is not None
    except CommandError:
        known = False
    if known:
        raise SchemaNotReady(f"the database {where} is at schema revision {revision}, this version needs "
                             f"{', '.join(heads)}: run `crm migrate`", revision=revision)
    raise SchemaNotReady(f"the database {where} is at schema revision {revision}, which this version does not "
                         "know (a newer version migrated it?): run that version of `crm`, or restore a backup",
                         revision=revision)
