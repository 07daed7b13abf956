"""Search across contacts, companies and deals by name, email, domain or phone."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import func, or_, select
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


def search(session: Session, *, actor: Actor, q: str, kinds: tuple[str, ...] = ("contact", "company", "deal"),
           limit: int = 20, fuzzy: bool = True) -> list[Hit]:
    """Exact and substring matches; if there are none, fuzzy name matches ("Borelis" -> Borealis)."""
    normalize.storable({"q": q})
    text = q.strip().lower()
    if not text:
        return []
    hits: dict[uuid.UUID, Hit] = {}
    pattern = f"%{text}%"
    digits = re.sub(r"\D", "", text)
    if "contact" in kinds:
        full = func.lower(Contact.first_name + " " + Contact.last_name)
        clauses: list[Any] = [full.like(pattern), func.lower(Contact.email).like(pattern)]
        if len(digits) >= 4:
            clauses.append(Contact.phone.like(f"%{digits}%"))
        for c in session.scalars(readable(spec_for("contact"), actor).where(or_(*clauses)).limit(limit)):
            exact = text in {c.full_name.lower(), (c.email or "").lower()}
            hits[c.id] = _contact_hit(c, 100.0 if exact else 90.0)
    if "company" in kinds:
        query = readable(spec_for("company"), actor).where(
            or_(func.lower(Company.name).like(pattern), Company.domain.like(pattern)))
        for co in session.scalars(query.limit(limit)):
            exact = text in {co.name.lower(), (co.domain or "")}
            hits[co.id] = _company_hit(co, 100.0 if exact else 90.0)
    if "deal" in kinds:
        for d in session.scalars(readable(spec_for("deal"), actor).where(
                func.lower(Deal.name).like(pattern)).limit(limit)):
            hits[d.id] = _deal_hit(d, 100.0 if d.name.lower() == text else 90.0)
    # Typos only when nothing matched as typed; an address or a number is never "almost" right.
    if fuzzy and not hits and len(text) >= 3 and "@" not in text and len(digits) < 4:
        _fuzzy(session, actor, text, kinds, hits, limit)
    return sorted(hits.values(), key=lambda h: (-h.score, h.label))[:limit]


def _fuzzy(session: Session, actor: Actor, text: str, kinds: tuple[str, ...], hits: dict[uuid.UUID, Hit],
           limit: int) -> None:
    # Names only (two columns), scored in memory: fine into the tens of thousands of
    # records; PostgreSQL's pg_trgm is the step after that.
    sources = {
        "contact": (Contact, Contact.first_name + " " + Contact.last_name, _contact_hit),
        "company": (Company, Company.name, _company_hit),
        "deal": (Deal, Deal.name, _deal_hit),
    }
    for kind in kinds:
        model, name_col, make = sources[kind]
        rows = session.execute(readable(spec_for(kind), actor).with_only_columns(model.id, name_col)).all()
        names = {row[0]: row[1].lower() for row in rows}
        scored = {key: score for _, score, key in process.extract(text, names, scorer=fuzz.WRatio, limit=limit,
                                                                  score_cutoff=75) if key not in hits}
        if scored:
            for obj in session.scalars(select(model).where(model.id.in_(scored))):
                hits[obj.id] = make(obj, float(scored[obj.id]) * 0.85)
