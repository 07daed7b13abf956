"""API schemas. Create models are written out (they carry validation and docs); Update
models are derived from them (every field optional), Read models from the ORM columns,
so neither can drift from what the store holds."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model
from sqlalchemy import inspect

from store.models import enums as e
from store.models.base import is_server_only

Money = Annotated[Decimal, Field(max_digits=18, decimal_places=2, ge=0)]
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]
Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["USD"])]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UserCreate(Schema):
    email: str = Field(max_length=320)
    name: str = Field(min_length=1, max_length=200)
    role: e.Role = e.Role.rep
    team_id: uuid.UUID | None = None
    timezone: str = "UTC"
    quota: Money | None = None
    is_active: bool = True
    slack_user_id: str | None = None


class TeamCreate(Schema):
    name: str = Field(min_length=1, max_length=200)


class CompanyCreate(Schema):
    name: str = Field(min_length=1, max_length=300)
    domain: str | None = Field(None, description="Unique in the workspace; derived from website if omitted.")
    industry: str | None = None
    employee_count: int | None = Field(None, ge=0)
    annual_revenue: Money | None = None
    phone: str | None = None
    website: str | None = None
    country: str | None = Field(None, min_length=2, max_length=2, description="ISO 3166 alpha-2")
    region: str | None = None
    city: str | None = None
    description: str | None = None
    source: str | None = None
    owner_id: uuid.UUID | None = Field(None, description="Defaults to you.")
    custom_fields: dict[str, Any] | None = None


class ContactCreate(Schema):
    first_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    email: str | None = Field(None, description="Unique in the workspace.")
    phone: str | None = Field(None, description="Any spelling; stored as E.164.")
    title: str | None = None
    company_id: uuid.UUID | None = None
    lifecycle_stage: e.LifecycleStage = e.LifecycleStage.lead
    lead_status: e.LeadStatus | None = None
    lead_score: int | None = Field(None, ge=0, le=100)
    source: str | None = None
    country: str | None = Field(None, min_length=2, max_length=2)
    timezone: str | None = None
    linkedin_url: str | None = None
    owner_id: uuid.UUID | None = None
    custom_fields: dict[str, Any] | None = None


class PipelineCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    is_default: bool = False


class StageCreate(Schema):
    pipeline_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100)
    position: int = Field(ge=0)
    probability: int = Field(ge=0, le=100)
    kind: e.StageKind = e.StageKind.open


class DealContactRef(Schema):
    contact_id: uuid.UUID
    role: e.DealContactRole = e.DealContactRole.other
    is_primary: bool = False


class DealCreate(Schema):
    name: str = Field(min_length=1, max_length=300)
    pipeline_id: uuid.UUID | None = Field(None, description="Defaults to the workspace's default pipeline.")
    stage_id: uuid.UUID | None = Field(None, description="Defaults to the pipeline's first stage.")
    amount: Money | None = None
    currency: Currency | None = Field(None, description="Defaults to the workspace currency.")
    close_date: date | None = None
    probability: int | None = Field(None, ge=0, le=100, description="Percent; defaults to the stage's.")
    forecast_category: e.ForecastCategory = e.ForecastCategory.pipeline
    next_step: str | None = Field(None, max_length=500)
    company_id: uuid.UUID | None = None
    lost_reason: str | None = Field(None, max_length=500)
    source: str | None = None
    description: str | None = None
    owner_id: uuid.UUID | None = None
    contacts: list[DealContactRef] | None = Field(None, description="Replaces the people on the deal.")
    custom_fields: dict[str, Any] | None = None


class DealContactCreate(Schema):
    deal_id: uuid.UUID
    contact_id: uuid.UUID
    role: e.DealContactRole = e.DealContactRole.other
    is_primary: bool = False


class ActivityCreate(Schema):
    type: e.ActivityType
    subject: str = Field("", max_length=500)
    body: str | None = None
    occurred_at: AwareDatetime | None = Field(None, description="With a UTC offset; defaults to now.")
    duration_minutes: int | None = Field(None, ge=0)
    direction: e.Direction | None = None
    outcome: str | None = None
    contact_ids: list[uuid.UUID] | None = None
    company_ids: list[uuid.UUID] | None = None
    deal_ids: list[uuid.UUID] | None = None
    email_id: uuid.UUID | None = None
    call_recording_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    source: str = "api"
    source_ref: dict[str, Any] = Field(default_factory=dict)


class TaskCreate(Schema):
    title: str = Field(min_length=1, max_length=500)
    description: str | None = None
    due_at: AwareDatetime | None = None
    status: e.TaskStatus = e.TaskStatus.open
    priority: e.Priority = e.Priority.normal
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = Field(None, description="The assignee; defaults to you.")
    source: str = "api"
    source_ref: dict[str, Any] = Field(default_factory=dict)


class NoteCreate(Schema):
    body: str = Field(min_length=1)
    pinned: bool = False
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    source: str = "api"
    source_ref: dict[str, Any] = Field(default_factory=dict)


class EmailCreate(Schema):
    message_id: str = Field(min_length=1, max_length=998)
    in_reply_to: str | None = None
    thread_key: str | None = None
    subject: str = ""
    sent_at: AwareDatetime | None = None
    direction: e.Direction | None = None
    from_address: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    deal_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    source: str = "api"


class CallRecordingCreate(Schema):
    filename: str = Field(min_length=1, max_length=500)
    content_type: str | None = None
    duration_seconds: int | None = Field(None, ge=0)
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None


class TranscriptCreate(Schema):
    call_recording_id: uuid.UUID
    language: str | None = None
    text: str
    segments: list[dict[str, Any]] = Field(default_factory=list)
    engine: str = Field("txt", description="What produced it: vtt, srt, txt, faster-whisper:<model>.")


class ProductCreate(Schema):
    name: str = Field(min_length=1, max_length=300)
    sku: str | None = None
    description: str | None = None
    unit_price: Money
    currency: Currency = "USD"
    billing_period: str | None = Field(None, pattern="^(month|quarter|year)$")
    active: bool = True


class QuoteLineIn(Schema):
    product_id: uuid.UUID | None = None
    description: str | None = None
    quantity: Annotated[Decimal, Field(gt=0, decimal_places=2)] = Decimal(1)
    unit_price: Money | None = Field(None, description="Defaults to the catalogue's price; another price is an "
                                                      "override, which a manager approves.")
    discount_percent: Percent = Decimal(0)


class QuoteCreate(Schema):
    deal_id: uuid.UUID
    title: str = ""
    status: e.QuoteStatus = Field(e.QuoteStatus.draft, description=(
        "A new quote is a draft. Changing it moves the quote as POST /quotes/{id}/transitions does: "
        "draft -> pending_approval -> approved -> sent -> accepted | declined | expired."))
    currency: Currency | None = None
    valid_until: date | None = None
    discount_percent: Percent = Decimal(0)
    tax_percent: Percent = Decimal(0)
    terms: str | None = None
    owner_id: uuid.UUID | None = None
    line_items: list[QuoteLineIn] | None = None


class CustomFieldCreate(Schema):
    entity: e.CustomFieldEntity
    key: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=200)
    type: e.CustomFieldType
    options: list[str] = Field(default_factory=list)
    required: bool = False
    description: str | None = None


class TerritoryCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    priority: int = 100
    rules: dict[str, Any] = Field(default_factory=dict)
    team_id: uuid.UUID | None = None
    active: bool = True


class TerritoryMemberCreate(Schema):
    territory_id: uuid.UUID
    user_id: uuid.UUID
    capacity: int | None = Field(None, ge=0)


# --- derived ----------------------------------------------------------------------------

# Fields that are set once and never changed through an update.
_IMMUTABLE = {"deal_id", "pipeline_id", "call_recording_id", "territory_id", "entity", "message_id"}


def partial(model: type[Schema], *, keep_immutable: frozenset[str] = frozenset()) -> type[Schema]:
    """The update schema: every field of `model` optional (only those sent are changed)."""
    fields = {
        name: (info.annotation | None, Field(None, description=info.description))  # type: ignore[operator]
        for name, info in model.model_fields.items()
        if name not in _IMMUTABLE or name in keep_immutable
    }
    return create_model(model.__name__.replace("Create", "Update"), __base__=Schema, **fields)  # type: ignore[call-overload,no-any-return]


def _column_type(column: Any) -> Any:
    try:
        py = column.type.python_type
    except NotImplementedError:
        return Any
    if py in (dict, list):
        return Any
    return py


def read_schema(orm_model: type[Any], name: str, extra: dict[str, Any] | None = None) -> type[BaseModel]:
    """The read schema: every column of the ORM model but the server-only ones, plus computed extras."""
    fields: dict[str, Any] = {}
    for attr in inspect(orm_model).mapper.column_attrs:
        column = attr.columns[0]
        if is_server_only(column):
            continue
        py = _column_type(column)
        fields[attr.key] = ((py | None) if column.nullable and py is not Any else py, ...)
    fields.update(extra or {})
    return create_model(name, __config__=ConfigDict(from_attributes=True), **fields)  # type: ignore[call-overload,no-any-return]


class DealContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    contact_id: uuid.UUID
    role: e.DealContactRole
    is_primary: bool


class QuoteLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    product_id: uuid.UUID | None
    position: int
    description: str
    quantity: Decimal
    list_price: Decimal | None  # the catalogue's price when it was priced; None: it has none
    unit_price: Decimal
    discount_percent: Decimal
    line_total: Decimal


# Computed attributes some entities carry when read (set by each spec's `extras` hook).
READ_EXTRAS: dict[str, dict[str, Any]] = {
    "deal": {"contacts": (list[DealContactOut], []), "stage_name": (str | None, None)},
    "activity": {"contact_ids": (list[uuid.UUID], []), "company_ids": (list[uuid.UUID], []),
                 "deal_ids": (list[uuid.UUID], [])},
    "quote": {"line_items": (list[QuoteLineOut], [])},
}

CREATE_SCHEMAS: dict[str, type[Schema]] = {
    "user": UserCreate, "team": TeamCreate, "company": CompanyCreate, "contact": ContactCreate,
    "pipeline": PipelineCreate, "stage": StageCreate, "deal": DealCreate, "deal_contact": DealContactCreate,
    "activity": ActivityCreate, "task": TaskCreate, "note": NoteCreate, "email": EmailCreate,
    "call_recording": CallRecordingCreate, "transcript": TranscriptCreate, "product": ProductCreate,
    "quote": QuoteCreate, "custom_field": CustomFieldCreate, "territory": TerritoryCreate,
    "territory_member": TerritoryMemberCreate,
}


class TimelineItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    id: uuid.UUID
    at: datetime
    type: str
    title: str
    body: str | None
    owner_id: uuid.UUID | None
    status: str | None


class SearchHitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    id: uuid.UUID
    label: str
    detail: str
    score: float

