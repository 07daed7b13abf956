"""Names -> CRM records, as the acting user: `search` is scoped to `ctx.actor`, so another team's
private records are simply not found. `Reading` is one message being read, with the look-ups it needs."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from agents.offline.phrases import NAME_SEPARATORS, split_names, tidy
from store.models import Deal, Task
from store.services import lookups
from store.services.sales import default_pipeline, stages_of
from store.services.search import Hit, search
from tools import ToolContext

KIND_ORDER = ("contact", "company", "deal")
FUZZY_MARGIN = 5.0  # a typo match is used only when it beats every other by this much
# Words that are never the start of a record's name when spotting names in free text.
STOPWORDS = {
    "a", "an", "the", "to", "with", "for", "at", "on", "in", "of", "and", "or", "by", "from", "about", "re", "me",
    "my", "i", "we", "our", "us", "you", "your", "they", "them", "he", "she", "it", "its", "is", "are", "was",
    "be", "been", "will", "would", "can", "could", "should", "please", "task", "todo", "reminder", "remind",
    "send", "call", "ping", "email", "mail", "follow", "up", "meet", "meeting", "next", "this", "that", "week",
    "day", "month", "today", "tomorrow", "quote", "revised", "new", "deal", "deals", "get", "check", "review",
    "draft", "confirm", "share", "book", "schedule", "set", "update", "create", "prepare", "prep", "pilot", "team",
    "all"
}


class Unresolved(Exception):
    """The message names something that cannot be pinned down; `message` tells the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Ref:
    kind: str
    id: str
    label: str
    company_id: str | None
    detail: str = ""
    is_open: bool = True


class Ambiguous(Unresolved):
    def __init__(self, query: str, candidates: list[Ref]) -> None:
        listed = [f"{c.label} ({c.detail})" if c.detail else c.label for c in candidates]
        choices = ", ".join(listed[:-1]) + f" or {listed[-1]}" if len(listed) > 1 else listed[0]
        super().__init__(f'Which "{query}" do you mean: {choices}? Tell me again with the full name.')
        self.query, self.candidates = query, candidates


def not_found(query: str) -> Unresolved:
    return Unresolved(f'I couldn\'t find "{query}" in the CRM. Check the spelling, or add it first.')


# --- resolving names as the acting user -------------------------------------------------------


@dataclass
class Reading:
    """One user message being interpreted: the context and the CRM look-ups it needs."""

    ctx: ToolContext
    text: str
    _stages: list[tuple[str, str]] | None = field(default=None, repr=False)

    @property
    def today(self) -> date:  # in the user's time zone
        return self.ctx.today

    def tier(self, hit: Hit, query: str) -> int:
        """0 exact, 1 a name containing the words typed, 2 email/domain or mid-word, 3 a typo."""
        if hit.score >= 100:
            return 0
        if hit.score >= 90:
            return 1 if re.search(rf"(?<!\w){re.escape(query.lower())}", hit.label.lower()) else 2
        return 3

    def _ref(self, hit: Hit) -> Ref:
        if hit.kind == "company":
            return Ref("company", str(hit.id), hit.label, str(hit.id), hit.detail)
        facts = lookups.record_facts(self.ctx.session, kind=hit.kind, id=hit.id)
        if facts is None:
            raise not_found(hit.label)
        company_id = str(facts.company_id) if facts.company_id else None
        if hit.kind == "contact":
            detail = ", ".join(filter(None, [facts.title, facts.company_name if company_id else facts.email]))
            return Ref("contact", str(hit.id), hit.label, company_id, detail)
        detail = ", ".join(filter(None, [facts.company_name, facts.stage_name]))
        return Ref("deal", str(hit.id), hit.label, company_id, detail, is_open=facts.is_open)

    def choose(self, query: str, hits: list[Hit], kinds: tuple[str, ...]) -> Ref:
        """The one record meant, or Ambiguous. Best tier first; across kinds the earlier kind
        wins ("Borealis" is the company before its deal); within a kind it must be unique."""
        tiers = {h.id: self.tier(h, query) for h in hits}
        best = min(tiers.values())
        cands = [h for h in hits if tiers[h.id] == best]
        if best == 3:
            top = max(h.score for h in cands)
            cands = [h for h in cands if h.score >= top - FUZZY_MARGIN]
        kind = next(k for k in kinds if any(h.kind == k for h in cands))
        refs = [self._ref(h) for h in cands if h.kind == kind]
        if len(refs) > 1 and kind == "deal" and sum(r.is_open for r in refs) == 1:
            refs = [r for r in refs if r.is_open]  # an old closed deal is not what "move X" means
        if len(refs) == 1:
            return refs[0]
        raise Ambiguous(query, refs)

    def find(self, query: str, kinds: tuple[str, ...] = KIND_ORDER) -> Ref:
        query = tidy(re.sub(r"'s\b", "", query))
        if not query:
            raise Unresolved("Which record do you mean? Tell me the name.")
        hits = search(self.ctx.session, actor=self.ctx.actor, q=query, kinds=kinds, limit=8)
        if not hits:
            raise not_found(query)
        return self.choose(query, hits, kinds)

    def find_all(self, parts: list[str], kinds: tuple[str, ...] = KIND_ORDER) -> list[Ref]:
        """Several names said together. An ambiguous one is settled by the others' companies:
        "Ines + Marco at Borealis" means the Ines at Borealis."""
        if not parts:
            raise Unresolved("Which record do you mean? Tell me the name.")
        found: list[Ref | Ambiguous] = []
        for part in parts:
            try:
                found.append(self.find_part(part, kinds))
            except Ambiguous as amb:
                found.append(amb)
        return self._settle(found)

    def find_phrase(self, phrase: str, kinds: tuple[str, ...] = KIND_ORDER) -> list[Ref]:
        """The records a name slot names: the whole phrase when a name contains it as typed
        ("Bank of America"), else each name between "and", "+", "at", ","... ("Ines + Marco at Borealis")."""
        whole = tidy(phrase)
        if len(whole) >= 3 and NAME_SEPARATORS.search(whole):
            hits = [h for h in search(self.ctx.session, actor=self.ctx.actor, q=whole, kinds=kinds, limit=8,
                                      fuzzy=False) if self.tier(h, whole) <= 1]
            if hits:
                return [self.choose(whole, hits, kinds)]
        return self.find_all(split_names(phrase), kinds)

    def find_part(self, part: str, kinds: tuple[str, ...] = KIND_ORDER) -> Ref:
        """One name as said: "the Borealis deal" is a deal, "Ines" whatever kind matches first."""
        name = re.sub(r"^(?:the|my|our)\s+", "", part.strip(), flags=re.I)
        if re.search(r"\b(?:deal|opportunity|opp)$", name, re.I):
            return self.deal(re.sub(r"\s*\b(?:deal|opportunity|opp)$", "", name, flags=re.I))
        return self.find(name, kinds)

    def _settle(self, found: list[Ref | Ambiguous]) -> list[Ref]:
        companies = {r.company_id for r in found if isinstance(r, Ref) and r.company_id}
        out: list[Ref] = []
        for item in found:
            if isinstance(item, Ambiguous):
                fits = [c for c in item.candidates if c.company_id in companies]
                if len(fits) != 1:
                    raise item
                item = fits[0]
            if all(r.id != item.id for r in out):
                out.append(item)
        return out

    def spot(self, text: str, kinds: tuple[str, ...] = KIND_ORDER) -> list[Ref]:
        """Records named inside free text ("send revised quote to Borealis"): the longest run of
        up to three non-filler words that a record's name starts with; a capitalized word
        that matches nothing as typed may still be a typo of a name."""
        words = [w for w in (re.sub(r"'s$", "", m.group(0)).strip(".'-") for m in
                             re.finditer(r"\w[\w'.@-]*", text)) if w]
        found: list[Ref | Ambiguous] = []
        i = 0
        while i < len(words):
            step = self._spot_at(words, i, kinds, found)
            i += step
        return self._settle(found)

    def _spot_at(self, words: list[str], i: int, kinds: tuple[str, ...], found: list[Ref | Ambiguous]) -> int:
        for size in (3, 2, 1):
            span = words[i:i + size]
            if len(span) < size or any(w.lower() in STOPWORDS for w in span) or len(" ".join(span)) < 3:
                continue
            query = " ".join(span)
            hits = [h for h in search(self.ctx.session, actor=self.ctx.actor, q=query, kinds=kinds, limit=8,
                                      fuzzy=False) if self.tier(h, query) <= 1]
            if hits:
                try:
                    found.append(self.choose(query, hits, kinds))
                except Ambiguous as amb:
                    found.append(amb)
                return size
        word = words[i]
        if i > 0 and word[:1].isupper() and len(word) >= 4 and word.lower() not in STOPWORDS:
            try:
                found.append(self.find(word, kinds))
            except Ambiguous as amb:
                found.append(amb)
            except Unresolved:
                pass
        return 1

    def open_deals(self, company_id: str) -> list[Deal]:
        return lookups.open_deals_of(self.ctx.session, actor=self.ctx.actor, company_id=uuid.UUID(company_id))

    def context_deal(self, refs: list[Ref]) -> str | None:
        """The deal a message is about: one named, else the one open deal of the one company
        named or shared by the people named."""
        deals = [r.id for r in refs if r.kind == "deal"]
        if deals:
            return deals[0] if len(deals) == 1 else None
        named = {r.id for r in refs if r.kind == "company"}
        companies = named or {r.company_id for r in refs if r.kind == "contact" and r.company_id}
        people_without_company = not named and any(r.kind == "contact" and not r.company_id for r in refs)
        if len(companies) != 1 or people_without_company:
            return None
        open_deals = self.open_deals(companies.pop())
        return str(open_deals[0].id) if len(open_deals) == 1 else None

    def deal(self, name: str) -> Ref:
        """A deal by its name or its company's name (the company's one open deal)."""
        ref = self.find(name, ("deal", "company"))
        if ref.kind == "deal":
            return ref
        deals = self.open_deals(ref.id)
        if not deals:
            raise Unresolved(f"{ref.label} has no open deal.")
        refs = [Ref("deal", str(d.id), d.name, ref.id, ref.label) for d in deals]
        if len(refs) > 1:
            raise Ambiguous(name, refs)
        return refs[0]

    def stages(self, pipeline_id: Any = None) -> list[tuple[str, str]]:
        if pipeline_id is None:
            if self._stages is None:
                pipeline = default_pipeline(self.ctx.session, self.ctx.actor.workspace_id)
                self._stages = [(s.name, s.kind.value) for s in stages_of(self.ctx.session, pipeline.id)]
            return self._stages
        return [(s.name, s.kind.value) for s in stages_of(self.ctx.session, pipeline_id)]

    def deal_stages(self, deal_id: str) -> list[tuple[str, str]]:
        """The stages of the deal's own pipeline [(name, kind)]."""
        return self.stages(lookups.deal_pipeline(self.ctx.session, deal_id=uuid.UUID(deal_id)))

    def my_open_tasks(self) -> list[Task]:
        return lookups.my_open_tasks(self.ctx.session, actor=self.ctx.actor)
