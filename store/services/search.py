"""Search across contacts, companies and deals by name, email, domain or phone."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import ColumnElement, Select, bindparam, column, func, literal, literal_column, or_, select, table, text
from sqlalchemy.orm import Session

from store import normalize
from store.actor import Actor
from store.models import Company, Contact, Deal
from store.services.crud import readable, spec_for


@dataclass
class Hit:
    """One search result, the same shape for a record found by name here and a passage found by
    meaning in the vector memory (memory/plans.py)."""

    kind: str  # contact, company, deal; or email, attachment, note, call (memory)
    id: uuid.UUID  # the record; for memory the email / note / call recording the passage is from
    label: str  # name; subject, filename, note's first line, call title
    detail: str  # title and email, domain, amount; the passage itself
    score: float  # match quality; cosine similarity for memory (1 is identical)
    date: datetime | None = None
    locator: str | None = None  # attachment filename; "12:03-12:41" in a call
    author: str = ""  # sender / note owner / call speakers
    chunk_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """Where it is: "email <id>", "note <id>", "call_recording <id> 12:03-12:41"."""
        if self.kind == "attachment":
            return f"email {self.id} attachment {self.locator or self.label}"
        if self.kind == "call":
            return f"call_recording {self.id}" + (f" {self.locator}" if self.locator else "")
        return f"{self.kind} {self.id}"


def _contact_hit(c: Contact, score: float) -> Hit:
    return Hit("contact", c.id, c.full_name or (c.email or ""), " · ".join(filter(None, [c.title, c.email])), score)


def _company_hit(c: Company, score: float) -> Hit:
    return Hit("company", c.id, c.name, c.domain or "", score)


def _deal_hit(d: Deal, score: float) -> Hit:
    return Hit("deal", d.id, d.name, f"{d.amount or ''} {d.currency}".strip(), score)


# The lowered names the trigram indexes of migration 0009 hold (the same expressions, so that
# PostgreSQL's GIN indexes apply to them).
NAMES: dict[str, ColumnElement[str]] = {
    "contact": func.lower(Contact.first_name.op("||")(literal_column("' '")).op("||")(Contact.last_name)),
    "company": func.lower(Company.name),
    "deal": func.lower(Deal.name),
}
CANDIDATES = 200  # names per kind the trigram index hands to rapidfuzz (at least 10 x the limit)
WORD_SIMILARITY = "0.5"  # pg_trgm: how much of the query's trigrams a name must share to be a candidate
COMMON_SHARE = 0.02  # SQLite: a trigram in more than this share of a kind's names is left out of the OR
COMMON_MIN = 1000  # ... and in more than this many names
RARE_KEPT = 3  # ... unless fewer trigrams than this would be left


def search(session: Session, *, actor: Actor, q: str, kinds: tuple[str, ...] = ("contact", "company", "deal"),
           limit: int = 20, fuzzy: bool = True) -> list[Hit]:
    """Exact and substring matches; if there are none, fuzzy name matches ("Borelis" -> Borealis)."""
    normalize.storable({"q": q})
    text_ = q.strip().lower()
    if not text_:
        return []
    hits: dict[uuid.UUID, Hit] = {}
    pattern = f"%{text_}%"
    digits = re.sub(r"\D", "", text_)
    # SQLite: a substring of 3 characters or more is looked up in the FTS5 trigram table
    # (migration 0009) instead of a LIKE over every row; PostgreSQL's LIKE uses its GIN indexes.
    fts = len(text_) >= 3 and trigram_index(session) == "fts5"
    if "contact" in kinds:
        clauses: list[Any] = ([_fts_contains(Contact, "{name email}", text_)] if fts else
                              [NAMES["contact"].like(pattern), func.lower(Contact.email).like(pattern)])
        if len(digits) >= 4:
            clauses.append(Contact.phone.like(f"%{digits}%"))
        for c in session.scalars(readable(spec_for("contact"), actor).where(or_(*clauses)).limit(limit)):
            exact = text_ in {c.full_name.lower(), (c.email or "").lower()}
            hits[c.id] = _contact_hit(c, 100.0 if exact else 90.0)
    if "company" in kinds:
        query = readable(spec_for("company"), actor).where(
            _fts_contains(Company, "{name domain}", text_) if fts else
            or_(NAMES["company"].like(pattern), Company.domain.like(pattern)))
        for co in session.scalars(query.limit(limit)):
            exact = text_ in {co.name.lower(), (co.domain or "")}
            hits[co.id] = _company_hit(co, 100.0 if exact else 90.0)
    if "deal" in kinds:
        for d in session.scalars(readable(spec_for("deal"), actor).where(
                _fts_contains(Deal, "name", text_) if fts else NAMES["deal"].like(pattern)).limit(limit)):
            hits[d.id] = _deal_hit(d, 100.0 if d.name.lower() == text_ else 90.0)
    # Typos only when nothing matched as typed; an address or a number is never "almost" right.
    if fuzzy and not hits and len(text_) >= 3 and "@" not in text_ and len(digits) < 4:
        _fuzzy(session, actor, text_, kinds, hits, limit)
    return sorted(hits.values(), key=lambda h: (-h.score, h.label))[:limit]


def _fuzzy(session: Session, actor: Actor, text_: str, kinds: tuple[str, ...], hits: dict[uuid.UUID, Hit],
           limit: int) -> None:
    """Names (two columns) scored by rapidfuzz. With the trigram index of migration 0009, only the
    names sharing most trigrams with the query are read (pg_trgm's word similarity on PostgreSQL,
    an FTS5 OR over the query's trigrams ranked by bm25 on SQLite); without it, every name in scope."""
    sources = {
        "contact": (Contact, _contact_hit),
        "company": (Company, _company_hit),
        "deal": (Deal, _deal_hit),
    }
    index = trigram_index(session)
    pg_trgm = _pg_trgm_schema(session) if index == "pg_trgm" else ""
    for kind in kinds:
        model, make = sources[kind]
        visible = readable(spec_for(kind), actor)
        if index == "pg_trgm":
            rows = session.execute(_pg_candidates(session, visible, kind, text_, limit, pg_trgm)).all()
        elif index == "fts5":
            rows = session.execute(_fts_candidates(session, visible, kind, text_, limit)).all()
        else:
            rows = session.execute(visible.with_only_columns(model.id, NAMES[kind])).all()
        names = {row[0]: row[1].lower() for row in rows}
        scored = {key: score for _, score, key in process.extract(text_, names, scorer=fuzz.WRatio, limit=limit,
                                                                  score_cutoff=75) if key not in hits}
        if scored:
            for obj in session.scalars(select(model).where(model.id.in_(scored))):
                hits[obj.id] = make(obj, float(scored[obj.id]) * 0.85)


def trigram_index(session: Session) -> str | None:
    """Which trigram index of names this database has: "pg_trgm", "fts5", or None (never
    migrated to 0009, or PostgreSQL without the extension: see that migration's warning)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        found = session.execute(text("SELECT to_regclass('ix_companies_name_trgm') IS NOT NULL")).scalar()
        return "pg_trgm" if found else None
    if dialect == "sqlite":
        found = session.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'companies_name_fts'")).scalar()
        return "fts5" if found else None
    return None


def _pg_trgm_schema(session: Session) -> str:
    """pg_trgm's schema, quoted: it may be off the search_path (a schema per tenant or per test)."""
    schema = session.execute(text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                                  "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'")).scalar_one()
    return str(session.get_bind().dialect.identifier_preparer.quote_schema(schema))


def _pg_candidates(session: Session, visible: Select[Any], kind: str, text_: str, limit: int,
                   schema: str) -> Select[Any]:
    model = visible.column_descriptions[0]["entity"]
    session.execute(text("SELECT set_config('pg_trgm.word_similarity_threshold', :t, true)"), {"t": WORD_SIMILARITY})
    name = NAMES[kind]
    word_similarity = getattr(func, schema.strip('"')).word_similarity
    return (visible.with_only_columns(model.id, name).where(literal(text_).op(f"OPERATOR({schema}.<%)")(name))
            .order_by(word_similarity(text_, name).desc()).limit(max(CANDIDATES, 10 * limit)))


def _fts_contains(model: Any, columns: str, text_: str) -> ColumnElement[bool]:
    """model.id among the rows of its FTS5 table whose columns contain text_ (case-insensitive, as
    LIKE '%text_%' on the lowered columns; 3 characters or more)."""
    name = f"{model.__tablename__}_name_fts"
    phrase = '"' + text_.replace('"', '""') + '"'
    ids = select(column("id")).select_from(table(name)).where(
        text(f"{name} MATCH :contains").bindparams(contains=f"{columns} : {phrase}"))
    return model.id.in_(ids)


def fts_or(grams: list[str]) -> str:
    """The FTS5 query: any of these trigrams ("bor" OR "ore" OR ... OR "lis")."""
    return " OR ".join('"' + g.replace('"', '""') + '"' for g in grams)


def _fts_candidates(session: Session, visible: Select[Any], kind: str, text_: str, limit: int) -> Select[Any]:
    model = visible.column_descriptions[0]["entity"]
    name = f"{model.__tablename__}_name_fts"
    # Trigrams in many names ("ren", "new" of every "... renewal") say little and cost the most
    # to read: keep the rarer ones (at least RARE_KEPT, the rarest first).
    grams = list(dict.fromkeys(text_[i:i + 3] for i in range(len(text_) - 2)))
    docs = dict(session.execute(text(f"SELECT term, doc FROM {name}_vocab WHERE term IN :t")
                                .bindparams(bindparam("t", expanding=True)), {"t": grams}).all())
    total = session.execute(text(f"SELECT max(rowid) FROM {name}")).scalar() or 1  # about the row count, at once
    by_rarity = sorted((g for g in grams if g in docs), key=lambda g: docs[g])
    common = max(COMMON_SHARE * total, COMMON_MIN)
    kept = [g for g in by_rarity if docs[g] <= common]
    if len(kept) < RARE_KEPT:
        kept = by_rarity[:RARE_KEPT] or grams  # (no name has any of them: nothing matches)
    fts = table(name, column("id"), column("name"), column("rank"))
    return (visible.with_only_columns(model.id, fts.c.name).join_from(model, fts, fts.c.id == model.id)
            .where(text(f"{name} MATCH :match").bindparams(match=f"name : ({fts_or(kept)})"))
            .order_by(fts.c.rank).limit(max(CANDIDATES, 10 * limit)))
