"""Vector memory speed: ingest throughput and recall latency, each next to its reference.

    .venv/bin/python -m bench.memory_bench                       # 300 emails, 100k chunks
    .venv/bin/python -m bench.memory_bench --emails 1000 --chunks 200000
    .venv/bin/python -m bench.memory_bench --keep .bench/memory   # reuse the 100k store next time

(a) Ingest: N generated emails (150-300 words of new text, a signature, quoted history;
    fixed seed) are put in SQL, then `Memory.reindex` chunks, embeds and adds them to Chroma
    (the product's path). Reference: `model.encode` alone on the very same chunk texts, in
    the same run. Target: the product path reaches >= 85% of the model's throughput.
(b) Recall: a workspace of --chunks chunks over emails, notes and calls owned by a sales org
    of --teams teams. The vectors are model-derived, not re-embedded: every chunk text of (a)
    is embedded once by the model and the 100k vectors are those plus small Gaussian noise
    (renormalised), so neighbourhoods look like real text without hours of embedding. Its
    SQL rows exist (the SQL re-check reads them). `Memory.search` as a rep (team + unowned
    visibility, SQL re-check) is timed next to a bare `collection.query` with the same
    `where` filter and the same query embedding. Targets: p50 < 50 ms and within 1.5x.

See bench/README.md for what each figure means and the measured results.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

import store.services  # noqa: F401  (registers every entity spec)
from memory.chunking import Source, base_metadata
from memory.embeddings import LocalMiniLM, load_local_model
from memory.index import Memory, build_chunks, readable_owner_ids
from store import migrate
from store.db import make_engine
from store.models import CallRecording, Email, EmailParticipant, Note, Team, User, Workspace
from store.models.enums import EmailParticipantRole, Role, Surface
from store.services.org import actor_for_user, create_workspace
from store.settings import Settings

# --- text generator ---------------------------------------------------------------------------

FIRST = ["Ines", "Tomas", "Priya", "Jonas", "Camille", "Lucia", "Sanne", "Lars", "Mei", "Omar", "Anja", "Ravi",
         "Keiko", "Diego", "Hannah", "Marek", "Zoe", "Felix", "Amara", "Noah"]
LAST = ["Duarte", "Berg", "Keller", "Martin", "Garcia", "de Vries", "Nilsson", "Chen", "Haddad", "Novak",
        "Iyer", "Sato", "Lopez", "Weber", "Kowalski", "Okafor", "Brandt", "Rossi", "Silva", "Moreau"]
COMPANIES = ["Borealis Logistics", "Zephyr Foods", "Keller Spedition", "Northwind Freight", "Atlas Cold Chain",
             "Meridian Retail", "Solstice Health", "Quarry Mining", "Harbor Ports", "Lumen Energy"]
TITLES = ["Head of Procurement", "Chief Financial Officer", "VP Operations", "IT Director", "Fleet Manager",
          "Security Architect", "Legal Counsel", "Project Lead"]
PRODUCTS = ["the telematics platform", "the route optimizer", "the driver app", "the cold-chain sensors",
            "the analytics add-on", "the dispatch module", "the API package", "premium support"]
TOPICS: dict[str, list[str]] = {
    "pricing": [
        "The per-vehicle fee for {product} is about {pct}% above what we budgeted for next year.",
        "Could you send a revised quote with a multi-year discount before {day}?",
        "Our finance team compared your offer with two other vendors and yours is the most expensive.",
        "If we commit to {n} vehicles, what volume tier would apply to {product}?",
        "We would prefer quarterly invoicing instead of paying the full year upfront.",
        "The implementation fee of {money} is hard to justify for a pilot of this size.",
    ],
    "security": [
        "Our security team needs your SOC 2 Type II report and the latest penetration test summary.",
        "Please confirm that customer data is encrypted at rest and in transit for {product}.",
        "We require single sign-on through Okta and SCIM provisioning before go-live.",
        "Legal asked where the data is hosted and whether any sub-processors are outside the EU.",
        "Could you fill in the attached vendor risk questionnaire by {day}?",
        "The data processing agreement needs a clause on breach notification within 48 hours.",
    ],
    "integration": [
        "The readings from {product} have to flow into SAP so finance can invoice per kilometer.",
        "Our IT team wants to know whether the REST API supports webhooks for delivery events.",
        "We run Microsoft Dynamics for dispatch, so a connector would save us a lot of manual work.",
        "How long does the data export to our warehouse in Snowflake usually take to set up?",
        "The pilot depends on the integration with our existing ELD devices from {n} trucks.",
    ],
    "timeline": [
        "We would like to start the pilot on {day} with {n} vehicles in the northern region.",
        "The board meets on {day}, so we need the final proposal a week before that.",
        "Rollout to all depots is planned for the second quarter if the pilot goes well.",
        "Our budget is frozen until the new fiscal year, so signature may slip by a month.",
        "Procurement needs three weeks to onboard a new supplier in their system.",
    ],
    "support": [
        "Drivers complained that the mobile app logs them out during long shifts.",
        "We need support in German and Polish for the warehouse staff.",
        "What response times does premium support guarantee for a severity one incident?",
        "Two of our depots had sensor gaps last week and nobody from support called back.",
        "Training for {n} dispatchers should happen on site rather than over video calls.",
    ],
    "competition": [
        "A competitor offered us a free first year if we sign before the end of the quarter.",
        "Our current vendor's contract renews automatically on {day} unless we cancel in time.",
        "The operations team prefers your dashboard, but finance likes the other offer's price.",
        "We are also evaluating an in-house solution built by our IT department.",
    ],
}
FILLER = [
    "Thanks again for the session with the team last week.",
    "Happy to jump on a call if that is easier.",
    "I have copied {name} from our side, who will own this going forward.",
    "Let me know if anything is unclear.",
    "We appreciate how responsive you have been so far.",
    "I will share this with our steering committee on {day}.",
]
SIGN_OFFS = ["Best,", "Thanks,", "Kind regards,", "Regards,", "Cheers,", "Best regards,"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Dec. 5", "Jan. 12", "the 20th", "March 3"]


class Writer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def person(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def fill(self, template: str) -> str:
        r = self.rng
        return template.format(product=r.choice(PRODUCTS), pct=r.choice([8, 12, 15, 18, 22]), day=r.choice(DAYS),
                               n=r.choice([40, 120, 350, 800, 1500]), money=f"${r.choice([12, 25, 40])},000",
                               name=self.person())

    def paragraph(self, topics: list[str], words: int) -> list[str]:
        out: list[str] = []
        count = 0
        while count < words:
            pool = TOPICS[self.rng.choice(topics)] if self.rng.random() < 0.8 else FILLER
            sentence = self.fill(self.rng.choice(pool))
            out.append(sentence)
            count += len(sentence.split())
        return out

    def body(self, words: int) -> tuple[str, list[str]]:
        topics = self.rng.sample(list(TOPICS), k=self.rng.choice([1, 2, 2, 3]))
        sentences = self.paragraph(topics, words)
        paragraphs, i = [], 0
        while i < len(sentences):
            step = self.rng.choice([2, 3, 4])
            paragraphs.append(" ".join(sentences[i:i + step]))
            i += step
        return "\n\n".join(paragraphs), topics

    def email(self) -> tuple[str, str, str]:
        """(subject, full body text with signature and quoted history, sender name)."""
        r = self.rng
        sender, rep = self.person(), self.person()
        company = r.choice(COMPANIES)
        text, topics = self.body(r.randint(150, 300))
        subject = f"Re: {topics[0].title()} for {company}"
        signature = (f"{r.choice(SIGN_OFFS)}\n{sender}\n{r.choice(TITLES)} | {company}\n"
                     f"+1 (415) 555-{r.randint(1000, 9999)}")
        if r.random() < 0.2:
            signature += "\nSent from my iPhone"
        quoted, _ = self.body(r.randint(60, 180))
        if r.random() < 0.6:
            history = (f"On Tue, Nov {r.randint(1, 28)}, 2026 at 10:{r.randint(10, 59)} AM {rep} "
                       f"<{rep.split()[0].lower()}@acme-sales.example> wrote:\n"
                       + "\n".join("> " + line for line in quoted.splitlines()))
        else:
            history = (f"________________________________\nFrom: {rep} <{rep.split()[0].lower()}@acme-sales.example>\n"
                       f"Sent: Friday, November {r.randint(1, 28)}, 2026 3:02 PM\nTo: {sender}\n"
                       f"Subject: {subject.removeprefix('Re: ')}\n\n{quoted}")
        return subject, f"Hi {rep.split()[0]},\n\n{text}\n\n{signature}\n\n{history}\n", sender


# --- helpers ----------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5):7.1f} ms  p95 {pct(values, 0.95):7.1f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


@dataclass
class Org:
    ws: Workspace
    users: list[User]
    rep: User


def make_org(session: Session, slug: str, teams: int, reps_per_team: int) -> Org:
    ws = create_workspace(session, name=slug, slug=slug)
    users = [User(workspace_id=ws.id, email=f"admin@{slug}.example", name="Admin", role=Role.admin)]
    for t in range(teams):
        team = Team(workspace_id=ws.id, name=f"Team {t}")
        session.add(team)
        session.flush()
        users.append(User(workspace_id=ws.id, email=f"m{t}@{slug}.example", name=f"Manager {t}", role=Role.manager,
                          team_id=team.id))
        users += [User(workspace_id=ws.id, email=f"r{t}-{i}@{slug}.example", name=f"Rep {t}-{i}", role=Role.rep,
                       team_id=team.id) for i in range(reps_per_team)]
    session.add_all(users)
    session.flush()
    rep = next(u for u in users if u.role == Role.rep)
    return Org(ws, users, rep)


# --- (a) ingest ---------------------------------------------------------------------------------

def bench_ingest(sessions: sessionmaker[Session], memory: Memory, model: Any, n_emails: int,
                 seed: int, rounds: int) -> tuple[list[str], np.ndarray]:
    writer = Writer(random.Random(seed))
    with sessions() as session:
        org = make_org(session, f"ingest-{seed}-{uuid.uuid4().hex[:8]}", teams=2, reps_per_team=4)
        owners = [u.id for u in org.users]
        now = datetime(2026, 11, 20, tzinfo=UTC)
        rows, parts = [], []
        for i in range(n_emails):
            subject, body, sender = writer.email()
            email_id = uuid.uuid4()
            rows.append({"id": email_id, "workspace_id": org.ws.id, "owner_id": writer.rng.choice(owners),
                         "message_id": f"<bench-{seed}-{i}@mail.example>", "subject": subject, "body_text": body,
                         "sent_at": now - timedelta(hours=i), "from_address": f"{sender.split()[0].lower()}@x.example",
                         "source": "bench"})
            parts.append({"id": uuid.uuid4(), "workspace_id": org.ws.id, "email_id": email_id,
                          "role": EmailParticipantRole.sender, "address": "x@x.example", "name": sender})
        session.execute(insert(Email), rows)
        session.execute(insert(EmailParticipant), parts)
        session.commit()
        ws_id = org.ws.id
        email_ids = [r["id"] for r in rows]
        words = [len(r["body_text"].split()) for r in rows]
    # The exact texts the product embeds (outside any timing).
    with sessions() as session:
        built = build_chunks(session, "email", email_ids)
    texts = [c.embedding_input for _, _, chunks in built for c in chunks]
    print(f"(a) ingest: {n_emails} emails ({statistics.mean(words):.0f} words each with quoted history and "
          f"signature), {len(texts)} chunks, mean {statistics.mean(len(t.split()) for t in texts):.0f} words/chunk")

    def raw() -> float:
        t0 = time.perf_counter()
        model.encode(texts, normalize_embeddings=True, batch_size=32, show_progress_bar=False)
        return time.perf_counter() - t0

    def product() -> float:
        t0 = time.perf_counter()
        counts = memory.reindex(sessions, workspace_id=ws_id)
        elapsed = time.perf_counter() - t0
        assert counts["emails"] == n_emails and counts["chunks"] == len(texts), counts
        return elapsed

    model.encode(texts[:64], batch_size=32, show_progress_bar=False)  # warm-up
    raw_s: list[float] = []
    product_s: list[float] = []
    for _ in range(rounds):  # alternated, best of each: other load on the machine hits both alike
        raw_s.append(raw())
        product_s.append(product())
    raw_best, product_best = min(raw_s), min(product_s)
    ratio = raw_best / product_best
    print(f"    model.encode alone : {len(texts) / raw_best:6.1f} chunks/s  = {n_emails / raw_best:6.1f} emails/s "
          f"(runs {', '.join(f'{s:.1f}' for s in raw_s)} s)")
    print(f"    Memory.reindex     : {len(texts) / product_best:6.1f} chunks/s  = {n_emails / product_best:6.1f} "
          f"emails/s (runs {', '.join(f'{s:.1f}' for s in product_s)} s; SQL read + chunk + embed + Chroma add)")
    print(f"    ratio              : {ratio:.1%} of the model alone (target >= 85%: {verdict(ratio >= 0.85)})")
    col = memory.collection(ws_id)
    assert col is not None
    got = col.get(include=["embeddings", "documents"])
    return list(got["documents"] or []), np.asarray(got["embeddings"], dtype=np.float32)


# --- (b) recall -----------------------------------------------------------------------------------

QUERIES = [
    "what compliance documents do they need before signing",
    "is the price too high compared to other vendors",
    "do they want a discount for a longer contract",
    "when does the pilot start and with how many trucks",
    "integration with their ERP for invoicing",
    "who complained about the mobile app",
    "is their budget frozen",
    "did a competitor offer them a better deal",
    "what support languages do they need",
    "where is customer data hosted",
    "single sign-on requirements",
    "how long does supplier onboarding take in procurement",
    "response time for critical incidents",
    "training for dispatchers on site",
    "data export to the warehouse",
    "automatic renewal of their current vendor",
    "quarterly invoicing instead of annual prepayment",
    "the board meeting date and the final proposal",
    "webhooks for delivery events",
    "sensor gaps at depots",
]


def build_recall_store(sessions: sessionmaker[Session], memory: Memory, docs: list[str], vectors: np.ndarray,
                       n_chunks: int, teams: int, seed: int) -> tuple[uuid.UUID, uuid.UUID]:
    """A workspace of `n_chunks` chunks (emails ~50%, notes ~15%, calls ~35%) with SQL rows for
    every source record; vectors are the pool's plus noise. Returns (workspace id, rep id)."""
    rng = random.Random(seed + 1)
    nrng = np.random.default_rng(seed + 1)
    with sessions() as session:
        org = make_org(session, f"recall-{seed}-{n_chunks}-{uuid.uuid4().hex[:8]}", teams=teams, reps_per_team=6)
        ws_id, rep_id = org.ws.id, org.rep.id
        session.commit()
        owners: list[uuid.UUID | None] = [u.id for u in org.users if u.role != Role.admin]
    contacts = [uuid.uuid4() for _ in range(max(50, n_chunks // 20))]
    companies = [uuid.uuid4() for _ in range(max(10, n_chunks // 100))]
    deals = [uuid.uuid4() for _ in range(max(20, n_chunks // 50))]
    col = memory.collection(ws_id)
    assert col is not None
    base = datetime(2025, 1, 1, tzinfo=UTC)
    emails: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    ids: list[str] = []
    metas: list[dict[str, Any]] = []
    documents: list[str] = []
    pool_index: list[int] = []
    made = 0
    t0 = time.perf_counter()
    while made < n_chunks:
        kind = rng.choices(["email", "note", "call"], weights=[0.62, 0.3, 0.08])[0]
        source_id = uuid.uuid4()
        owner = None if rng.random() < 0.04 else rng.choice(owners)
        date = base + timedelta(minutes=rng.randrange(0, 700 * 24 * 60))
        src = Source(workspace_id=ws_id, source_id=source_id, owner_id=owner, date=date,
                     title=f"{kind.title()} {made}", author=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                     contact_ids=rng.sample(contacts, rng.choice([0, 1, 1, 2])),
                     company_ids=rng.sample(companies, rng.choice([0, 1, 1])),
                     deal_ids=rng.sample(deals, rng.choice([0, 1, 1])))
        n = {"email": rng.choice([1, 1, 2, 2, 3]), "note": 1, "call": rng.randint(6, 14)}[kind]
        row = {"id": source_id, "workspace_id": ws_id, "owner_id": owner}
        if kind == "email":
            emails.append(row | {"message_id": f"<r{made}@x.example>", "subject": src.title, "sent_at": date,
                                 "source": "bench"})
        elif kind == "note":
            notes.append(row | {"body": src.title, "source": "bench"})
        else:
            calls.append(row | {"filename": f"call-{made}.mp3", "source": "bench"})
        for i in range(n):
            meta = base_metadata(kind, src, n=i)
            if kind == "call":
                meta |= {"start": 60.0 * i, "end": 60.0 * i + 75, "locator": f"{i}:00-{i + 1}:15"}
            p = rng.randrange(len(docs))
            ids.append(f"{kind}:{source_id}:{i}")
            metas.append(meta)
            documents.append(docs[p])
            pool_index.append(p)
        made += n
    with sessions() as session:
        for model, rows in ((Email, emails), (Note, notes), (CallRecording, calls)):
            for i in range(0, len(rows), 5000):
                session.execute(insert(model), rows[i:i + 5000])
        session.commit()
    sql_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, len(ids), 5000):
        base_vectors = vectors[pool_index[i:i + 5000]]
        noisy = base_vectors + nrng.normal(0, 0.02, base_vectors.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        col.add(ids=ids[i:i + 5000], embeddings=noisy, documents=documents[i:i + 5000], metadatas=metas[i:i + 5000])
    print(f"    built: {len(ids)} chunks of {len(emails)} emails, {len(notes)} notes, {len(calls)} calls; "
          f"SQL rows {sql_s:.0f} s, Chroma add {time.perf_counter() - t0:.0f} s "
          f"({len(ids) / (time.perf_counter() - t0):.0f} vectors/s, precomputed embeddings)")
    return ws_id, rep_id


def bench_recall(sessions: sessionmaker[Session], memory: Memory, ws_id: uuid.UUID, rep_id: uuid.UUID,
                 repeat: int) -> None:
    col = memory.collection(ws_id)
    assert col is not None
    with sessions() as session:
        rep = session.get(User, rep_id)
        assert rep is not None
        actor = actor_for_user(rep, Surface.api)
        owners = readable_owner_ids(session, actor)
    assert owners is not None
    where = {"owner_id": {"$in": owners}}
    share = len(col.get(where=where, include=[])["ids"]) / col.count()
    print(f"    rep sees {len(owners) - 1} owners + unowned = {share:.1%} of the workspace's chunks")
    queries = (QUERIES * (repeat // len(QUERIES) + 1))[:repeat]
    vectors = memory.embed(queries)
    embed_one: list[float] = []
    for q in queries:  # one query at a time, as a search embeds it
        t0 = time.perf_counter()
        memory.embed([q])
        embed_one.append((time.perf_counter() - t0) * 1000)
    with sessions() as session:
        assert memory.search(session, actor, queries[0], k=8), "no hits"  # warm-up

    def timed(fn: Callable[[int], Any]) -> list[float]:
        out = []
        for i in range(len(queries)):
            t = time.perf_counter()
            fn(i)
            out.append((time.perf_counter() - t) * 1000)
        return out

    def search(i: int, **kw: Any) -> list[Any]:
        with sessions() as session:
            return memory.search(session, actor, queries[i], k=8, **kw)

    bare = timed(lambda i: col.query(query_embeddings=[vectors[i]], n_results=8, where=where,
                                     include=["documents", "metadatas", "distances"]))
    product = timed(lambda i: search(i, query_embedding=vectors[i]))
    product_e2e = timed(lambda i: search(i))
    bare_nofilter = timed(lambda i: col.query(query_embeddings=[vectors[i]], n_results=8,
                                              include=["documents", "metadatas", "distances"]))
    deal_id = next(m["deal_ids"][0] for m in col.get(limit=50, include=["metadatas"])["metadatas"] or []
                   if m.get("deal_ids"))
    deal_where = {"$and": [where, {"deal_ids": {"$contains": deal_id}}]}
    bare_deal = timed(lambda i: col.query(query_embeddings=[vectors[i]], n_results=8, where=deal_where,
                                          include=["documents", "metadatas", "distances"]))
    product_deal = timed(lambda i: search(i, query_embedding=vectors[i], deal_id=uuid.UUID(deal_id)))
    ratio = pct(product, 0.5) / pct(bare, 0.5)
    print(f"    query embedding alone (model, 1 query)   : {ms(embed_one)}")
    print(f"    bare collection.query, rep where filter  : {ms(bare)}")
    print(f"    Memory.search, rep (same embedding)      : {ms(product)}   ratio p50 {ratio:.2f}x")
    print(f"    Memory.search, rep, embedding the query  : {ms(product_e2e)}")
    print(f"    bare collection.query, no filter         : {ms(bare_nofilter)}")
    print(f"    bare collection.query, rep + deal filter : {ms(bare_deal)}")
    print(f"    Memory.search, rep + deal_id (filtered)  : {ms(product_deal)}   ratio p50 "
          f"{pct(product_deal, 0.5) / pct(bare_deal, 0.5):.2f}x")
    print(f"    targets: Memory.search p50 < 50 ms: {verdict(pct(product, 0.5) < 50)} (with query embedding: "
          f"{verdict(pct(product_e2e, 0.5) < 50)}); within 1.5x of the bare filtered query: {verdict(ratio <= 1.5)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emails", type=int, default=300, help="emails for the ingest figure (default 300)")
    ap.add_argument("--chunks", type=int, default=100_000, help="chunks in the recall workspace (default 100000)")
    ap.add_argument("--teams", type=int, default=8, help="teams of a manager and 6 reps (default 8)")
    ap.add_argument("--repeat", type=int, default=60, help="timed queries per figure (default 60)")
    ap.add_argument("--rounds", type=int, default=3, help="alternated ingest runs of each path (default 3)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--database-url", default=None, help="default: a SQLite file in the work directory")
    ap.add_argument("--keep", type=Path, default=None,
                    help="work directory to keep (and reuse: the recall store is built once per --chunks/--seed)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="memory-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{work / 'crm.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    settings = Settings(data_dir=work, chroma_path=work / "chroma")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs; work dir {work}; "
          f"database {engine.url.render_as_string(hide_password=True)}; Chroma {settings.resolved_chroma_path}")
    t0 = time.perf_counter()
    model = load_local_model("cpu")
    print(f"model loaded in {time.perf_counter() - t0:.1f} s")
    memory = Memory(settings, embedder=LocalMiniLM())
    try:
        docs, vectors = bench_ingest(sessions, memory, model, args.emails, args.seed, args.rounds)
        print(f"(b) recall at {args.chunks} chunks")
        marker = work / f"recall-{args.seed}-{args.chunks}.json"
        if marker.exists():
            ws_id, rep_id = (uuid.UUID(v) for v in json.loads(marker.read_text()))
            print(f"    reusing the store built earlier ({marker.name})")
        else:
            ws_id, rep_id = build_recall_store(sessions, memory, docs, vectors, args.chunks, args.teams, args.seed)
            marker.write_text(json.dumps([str(ws_id), str(rep_id)]))
        with sessions() as session:
            assert session.scalar(select(Workspace.id).where(Workspace.id == ws_id)) is not None
        bench_recall(sessions, memory, ws_id, rep_id, args.repeat)
        print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        engine.dispose()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
