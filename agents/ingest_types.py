"""What the ingestion agent reads (an email or a call, with what the CRM knows) and what it proposes.

Pure data: agents/ingest.py builds an `IngestInput` from SQL, once, and the conversation's first
message carries it (`as_json` / `from_json`); the offline extractor (agents/offline/ingest.py)
turns it into `ProposedCall`s, each citing the exact words that justify it, which the approval
gate shows the rep.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from pydantic import TypeAdapter


@dataclass
class Person:
    name: str | None
    address: str | None  # email address
    contact_id: uuid.UUID | None  # matched CRM contact, if any
    company_id: uuid.UUID | None  # matched company (by the address's domain), if any
    role: str | None = None  # "from" | "to" | "cc" | "speaker"


@dataclass
class DealInfo:
    id: uuid.UUID
    name: str
    stage: str
    stage_names: list[str]  # the pipeline's stages, in order
    amount: Decimal | None
    currency: str
    close_date: date | None
    next_step: str | None


@dataclass
class Passage:
    text: str
    # email: {"part": "body"} or {"part": "attachment", "filename": ...}
    # call: {"start": 12.0, "end": 18.5, "speaker": "Ines"}
    locator: dict[str, Any]


@dataclass
class IngestInput:
    kind: Literal["email", "call"]
    source_id: uuid.UUID
    title: str  # email subject / recording title
    occurred_at: datetime  # tz-aware; when the email was sent / the call took place
    timezone: str  # the rep's IANA zone: relative dates ("Thursday") resolve against occurred_at in it
    rep_id: uuid.UUID
    rep_name: str
    rep_email: str
    direction: Literal["inbound", "outbound"] | None  # inbound: the customer wrote; outbound: the rep wrote
    people: list[Person]  # participants / speakers (excluding the rep)
    company_ids: list[uuid.UUID]  # matched companies
    deals: list[DealInfo]  # candidate deals (open deals of the matched companies; a routed deal first)
    # New content only (quoted history already stripped); email: body then attachments; call: transcript segments.
    passages: list[Passage]
    signature: str | None = None  # the sender's signature block (email)
    forward_note: str = ""  # what the rep wrote above a forward ("log this on Borealis")
    existing_open_tasks: list[str] = field(default_factory=list)  # titles, to avoid proposing duplicates
    # The deal the rep named by routing (inbox+<deal id>@..., or the deal a recording was uploaded on).
    # Optional: when set, it is the deal everything is logged on, however many candidates there are.
    routed_deal_id: uuid.UUID | None = None
    # Email: why its From could not be authenticated (DKIM/SPF); None when it was, or for a call.
    unauthenticated: str | None = None


@cache
def _adapter() -> TypeAdapter[IngestInput]:
    return TypeAdapter(IngestInput)


def as_json(inp: IngestInput) -> dict[str, Any]:
    """The input as JSON values (ids, amounts and dates as strings), as a checkpoint keeps a message."""
    return _adapter().dump_python(inp, mode="json")


def from_json(data: dict[str, Any]) -> IngestInput:
    """`as_json` read back: the same input, field for field."""
    return _adapter().validate_python(data)


@dataclass
class ProposedCall:
    tool: str  # a write tool name from tools/write.py
    args: dict[str, Any]  # JSON-able args valid for that tool's pydantic model (ids as str, dates ISO)
    quote: str  # the exact words from a passage (verbatim substring of passage.text) or the signature
    locator: dict[str, Any]  # the passage's locator (+ "offset" of the quote within the passage for email text)
