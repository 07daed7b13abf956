"""A valid create payload and a valid change for every entity the API creates.

Used by the tests that walk every entity (CRUD, permissions, audit), so adding an
entity without a sample fails a test instead of going untested.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Pipeline, Stage
from tests import factories as f

_n = itertools.count(1)


def _ids(session: Session, owner: Any) -> dict[str, Any]:
    """A company, contact, deal, email and recording owned by `owner`, made through the services."""
    i = next(_n)
    co = f.create(session, owner, "company", name=f"Fixture Co {i}", domain=f"fixture{i}.example")
    ct = f.create(session, owner, "contact", first_name="Fix", last_name=f"Ture{i}", email=f"fx{i}@fixture{i}.example",
                  company_id=co.id)
    deal = f.create(session, owner, "deal", name=f"Fixture deal {i}", amount="1000", company_id=co.id)
    email = f.create(session, owner, "email", message_id=f"<fx{i}@mail.example>", subject="hi")
    rec = f.create(session, owner, "call_recording", filename=f"call{i}.m4a", deal_id=deal.id)
    pipeline = session.scalar(select(Pipeline).where(Pipeline.workspace_id == co.workspace_id))
    stage = session.scalar(select(Stage).where(Stage.pipeline_id == pipeline.id).order_by(Stage.position.desc()))
    session.commit()
    return {"company": co.id, "contact": ct.id, "deal": deal.id, "email": email.id, "recording": rec.id,
            "pipeline": pipeline.id, "stage": stage.id, "n": i}


Sample = tuple[Callable[[dict[str, Any]], dict[str, Any]], dict[str, Any]]

# entity -> (payload from fixture ids, a change for PATCH)
SAMPLES: dict[str, Sample] = {
    "company": (lambda x: {"name": f"Borealis {x['n']}", "domain": f"borealis{x['n']}.example",
                           "employee_count": 120}, {"industry": "Logistics"}),
    "contact": (lambda x: {"first_name": "Ines", "last_name": "Duarte", "email": f"ines{x['n']}@b.example",
                           "company_id": str(x["company"])}, {"title": "Head of Operations"}),
    "deal": (lambda x: {"name": "Fleet telematics", "amount": "48000", "company_id": str(x["company"])},
             {"amount": "62000.00", "next_step": "send revised quote"}),
    "deal_contact": (lambda x: {"deal_id": str(x["deal"]), "contact_id": str(x["contact"]), "role": "champion"},
                     {"role": "economic_buyer"}),
    "activity": (lambda x: {"type": "call", "subject": "Discovery", "contact_ids": [str(x["contact"])],
                            "deal_ids": [str(x["deal"])]}, {"outcome": "connected"}),
    "task": (lambda x: {"title": "Send revised quote", "deal_id": str(x["deal"]),
                        "due_at": "2026-12-03T17:00:00Z"}, {"status": "done"}),
    "note": (lambda x: {"body": "Wants pilot in January", "deal_id": str(x["deal"])}, {"pinned": True}),
    "email": (lambda x: {"message_id": f"<m{x['n']}-{next(_n)}@mail.example>", "subject": "Security questionnaire"},
              {"subject": "Re: Security questionnaire"}),
    "call_recording": (lambda x: {"filename": "discovery.m4a", "deal_id": str(x["deal"])}, {"duration_seconds": 1800}),
    "transcript": (lambda x: {"call_recording_id": str(x["recording"]), "text": "Hello", "engine": "txt"},
                   {"text": "Hello there"}),
    "quote": (lambda x: {"deal_id": str(x["deal"]), "line_items": [
        {"description": "Platform", "quantity": "2", "unit_price": "1000"}]}, {"discount_percent": "10"}),
    "product": (lambda x: {"name": "Telematics module", "sku": f"TM-{next(_n)}", "unit_price": "14000"},
                {"unit_price": "15000"}),
    "user": (lambda x: {"email": f"new{next(_n)}@acme-sales.example", "name": "New Rep"},
             {"timezone": "Europe/Lisbon"}),
    "team": (lambda x: {"name": f"North {next(_n)}"}, {"name": f"North-renamed {next(_n)}"}),
    "pipeline": (lambda x: {"name": f"Renewals {next(_n)}"}, {"is_default": True}),
    "stage": (lambda x: {"pipeline_id": str(x["pipeline"]), "name": f"Legal {next(_n)}", "position": 9,
                         "probability": 90}, {"probability": 85}),
    "custom_field": (lambda x: {"entity": "deal", "key": f"term_{next(_n)}", "label": "Contract term",
                                "type": "number"}, {"label": "Contract term (months)"}),
    "territory": (lambda x: {"name": f"EMEA {next(_n)}", "rules": {"regions": ["EMEA"]}}, {"priority": 5}),
    "territory_member": None,  # type: ignore[dict-item]  (needs a territory: built in the test)
}

# Entities owned by a rep (visibility by owner) vs. workspace configuration (admins write).
OWNED = ["company", "contact", "deal", "activity", "task", "note", "email", "call_recording", "quote"]
CHILDREN = ["deal_contact", "transcript"]
CONFIG = ["user", "team", "pipeline", "stage", "custom_field", "territory", "product"]
