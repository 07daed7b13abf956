"""Closed vocabularies. Values are what the API, CSV files and the database hold."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    rep = "rep"
    manager = "manager"
    admin = "admin"


class LifecycleStage(StrEnum):
    subscriber = "subscriber"
    lead = "lead"
    mql = "marketing_qualified_lead"
    sql = "sales_qualified_lead"
    opportunity = "opportunity"
    customer = "customer"
    evangelist = "evangelist"
    other = "other"


class LeadStatus(StrEnum):
    new = "new"
    open = "open"
    in_progress = "in_progress"
    open_deal = "open_deal"
    attempted_to_contact = "attempted_to_contact"
    connected = "connected"
    bad_timing = "bad_timing"
    unqualified = "unqualified"


class StageKind(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


class ForecastCategory(StrEnum):
    pipeline = "pipeline"
    best_case = "best_case"
    commit = "commit"
    closed = "closed"
    omitted = "omitted"


class DealContactRole(StrEnum):
    decision_maker = "decision_maker"
    economic_buyer = "economic_buyer"
    champion = "champion"
    technical_buyer = "technical_buyer"
    influencer = "influencer"
    user = "user"
    blocker = "blocker"
    other = "other"


class ActivityType(StrEnum):
    call = "call"
    meeting = "meeting"
    email = "email"
    note = "note"
    sms = "sms"
    linkedin = "linkedin"
    other = "other"


class Direction(StrEnum):
    inbound = "inbound"
    outbound = "outbound"


class TaskStatus(StrEnum):
    open = "open"
    done = "done"
    cancelled = "cancelled"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"


class QuoteStatus(StrEnum):
    draft = "draft"
    pending_approval = "pending_approval"
    approved = "approved"
    sent = "sent"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"


class CustomFieldEntity(StrEnum):
    contact = "contact"
    company = "company"
    deal = "deal"


class CustomFieldType(StrEnum):
    text = "text"
    number = "number"
    boolean = "boolean"
    date = "date"
    select = "select"
    multiselect = "multiselect"
    url = "url"
    email = "email"


class EmailParticipantRole(StrEnum):
    sender = "from"
    to = "to"
    cc = "cc"
    bcc = "bcc"
    reply_to = "reply_to"


class RecordingStatus(StrEnum):
    uploaded = "uploaded"
    transcribing = "transcribing"
    transcribed = "transcribed"
    failed = "failed"


class ApprovalStatus(StrEnum):
    pending = "pending"
    approved = "approved"  # decided, execution in progress
    executed = "executed"
    rejected = "rejected"
    failed = "failed"
    expired = "expired"


class Surface(StrEnum):
    """Which door a write came through; recorded on every audit entry."""

    api = "api"
    cli = "cli"
    web = "web"
    slack = "slack"
    email = "email"
    call = "call"
    agent = "agent"
    import_ = "import"
    seed = "seed"
    system = "system"


class AuditAction(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    # The process running it stopped (a shutdown, a crash) before it finished; retry it.
    interrupted = "interrupted"
