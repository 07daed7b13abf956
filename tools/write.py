"""Write tools. Called by the agent they only propose; `run` executes after approval."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from store.errors import ValidationFailed
from store.models import Stage
from store.models.enums import ActivityType, ForecastCategory, LeadStatus, LifecycleStage, Priority, TaskStatus
from store.services import crud, details, spec_for
from store.services.sales import default_pipeline, stages_of
from tools.base import Preview, ToolContext, as_uuid, label_of, ref, write_tool


def show(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z")
    return str(getattr(value, "value", value))


def diff_rows(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"field": k, "before": show(before.get(k)), "after": show(v)} for k, v in after.items()
            if show(before.get(k)) != show(v)]


def names(ctx: ToolContext, kind: str, ids: list[uuid.UUID]) -> str:
    out = []
    for raw in ids:
        out.append(label_of(crud.get(ctx.session, spec_for(kind), actor=ctx.actor, id=as_uuid(raw))))
    return ", ".join(out)


def due_at(ctx: ToolContext, day: date | None, moment: datetime | None) -> datetime | None:
    """A due date means the end of that working day in the user's time zone."""
    if moment is not None:
        return moment
    if day is None:
        return None
    return datetime.combine(day, time(17, 0), tzinfo=ctx.tz)


# --- activities and notes -------------------------------------------------------------------


class LogActivityArgs(BaseModel):
    type: ActivityType = Field(description="call, meeting, email, note, sms, linkedin or other.")
    subject: str = Field(description="A short title, e.g. 'Call with Ines and Marco'.")
    body: str | None = Field(None, description="What was said or agreed, in the user's words.")
    occurred_at: AwareDatetime | None = Field(None, description="When it happened (ISO 8601 with offset); default now.")
    duration_minutes: int | None = Field(None, ge=0)
    contact_ids: list[uuid.UUID] = Field(default_factory=list)
    company_ids: list[uuid.UUID] = Field(default_factory=list)
    deal_ids: list[uuid.UUID] = Field(default_factory=list)


def _preview_activity(ctx: ToolContext, a: LogActivityArgs) -> Preview:
    if not (a.contact_ids or a.company_ids or a.deal_ids):
        raise ValidationFailed("link the activity to at least one contact, company or deal (find_records first)")
    on = "; ".join(filter(None, [names(ctx, "contact", a.contact_ids), names(ctx, "company", a.company_ids),
                                 names(ctx, "deal", a.deal_ids)]))
    when = (a.occurred_at or ctx.now).astimezone(ctx.tz)
    diff = diff_rows({}, {"type": a.type, "subject": a.subject, "body": a.body, "when": when, "on": on})
    return Preview(summary=f"Log {a.type.value} '{a.subject}' on {on}", diff=diff)


@write_tool(LogActivityArgs, preview=_preview_activity)
def log_activity(ctx: ToolContext, a: LogActivityArgs) -> dict[str, Any]:
    """Log a call, meeting, email or note that happened, on contacts, companies and/or deals.

    Needs record ids (use find_records first). It is proposed to the user for approval.
    """
    data = a.model_dump(exclude_none=True) | {"source": "agent",
                                              "source_ref": {"thread_id": ctx.thread_id} if ctx.thread_id else {}}
    data["occurred_at"] = a.occurred_at or ctx.now
    activity = crud.create(ctx.session, spec_for("activity"), actor=ctx.actor, data=data)
    return ref("activity", activity)


class AddNoteArgs(BaseModel):
    body: str = Field(min_length=1)
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None


def _preview_note(ctx: ToolContext, a: AddNoteArgs) -> Preview:
    on = _target_label(ctx, a.contact_id, a.company_id, a.deal_id)
    return Preview(summary=f"Add a note on {on}", diff=diff_rows({}, {"note": a.body, "on": on}))


def _target_label(ctx: ToolContext, contact_id: uuid.UUID | None, company_id: uuid.UUID | None,
                  deal_id: uuid.UUID | None) -> str:
    parts = [names(ctx, kind, [i]) for kind, i in (("contact", contact_id), ("company", company_id),
                                                    ("deal", deal_id)) if i]
    return ", ".join(parts) or "no record"


@write_tool(AddNoteArgs, preview=_preview_note)
def add_note(ctx: ToolContext, a: AddNoteArgs) -> dict[str, Any]:
    """Add a note to a contact, company or deal (for lasting context, not for logging a call)."""
    note = crud.create(ctx.session, spec_for("note"), actor=ctx.actor,
                       data=a.model_dump(exclude_none=True) | {"source": "agent"})
    return ref("note", note)


# --- tasks ------------------------------------------------------------------------------------


class CreateTaskArgs(BaseModel):
    title: str = Field(min_length=1, description="What to do, e.g. 'Send revised quote to Borealis'.")
    due_date: date | None = Field(None, description="The day it is due (ISO date), in the user's time zone.")
    due_at: AwareDatetime | None = Field(None, description="An exact due time, if the user gave one.")
    description: str | None = None
    priority: Priority = Priority.normal
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None


def _preview_task(ctx: ToolContext, a: CreateTaskArgs) -> Preview:
    due = due_at(ctx, a.due_date, a.due_at)
    on = _target_label(ctx, a.contact_id, a.company_id, a.deal_id)
    return Preview(summary=f"Create task '{a.title}'" + (f" due {due.astimezone(ctx.tz):%a %Y-%m-%d}" if due else ""),
                   diff=diff_rows({}, {"title": a.title, "due": due.astimezone(ctx.tz) if due else None,
                                       "priority": a.priority, "on": on}))


@write_tool(CreateTaskArgs, preview=_preview_task)
def create_task(ctx: ToolContext, a: CreateTaskArgs) -> dict[str, Any]:
    """Create a task (a reminder or follow-up) for the user, optionally on a contact, company or deal."""
    data = a.model_dump(exclude_none=True, exclude={"due_date", "due_at"})
    data |= {"due_at": due_at(ctx, a.due_date, a.due_at), "source": "agent"}
    task = crud.create(ctx.session, spec_for("task"), actor=ctx.actor, data=data)
    return ref("task", task)


class CompleteTaskArgs(BaseModel):
    task_id: uuid.UUID


def _preview_complete(ctx: ToolContext, a: CompleteTaskArgs) -> Preview:
    task = crud.get_for_write(ctx.session, spec_for("task"), actor=ctx.actor, id=as_uuid(a.task_id))
    return Preview(summary=f"Mark task '{task.title}' done", record=ref("task", task),
                   diff=diff_rows({"status": task.status}, {"status": TaskStatus.done}))


@write_tool(CompleteTaskArgs, preview=_preview_complete)
def complete_task(ctx: ToolContext, a: CompleteTaskArgs) -> dict[str, Any]:
    """Mark one of the user's tasks as done."""
    task = crud.update(ctx.session, spec_for("task"), actor=ctx.actor, id=as_uuid(a.task_id),
                       data={"status": TaskStatus.done})
    return ref("task", task)


# --- contacts and companies -------------------------------------------------------------------


class ContactFields(BaseModel):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    company_id: uuid.UUID | None = None
    lifecycle_stage: LifecycleStage | None = None
    lead_status: LeadStatus | None = None


class CreateContactArgs(ContactFields):
    first_name: str = Field(min_length=1)


class UpdateContactArgs(ContactFields):
    contact_id: uuid.UUID


def _preview_create_contact(ctx: ToolContext, a: CreateContactArgs) -> Preview:
    fields = a.model_dump(exclude_none=True)
    if a.company_id:
        fields["company_id"] = names(ctx, "company", [a.company_id])
    name = f"{a.first_name} {a.last_name or ''}".strip()
    return Preview(summary=f"Add contact {name}", diff=diff_rows({}, fields))


@write_tool(CreateContactArgs, preview=_preview_create_contact)
def create_contact(ctx: ToolContext, a: CreateContactArgs) -> dict[str, Any]:
    """Add a new contact (a person). Check with find_records first that they are not already in the CRM."""
    contact = crud.create(ctx.session, spec_for("contact"), actor=ctx.actor, data=a.model_dump(exclude_none=True))
    return ref("contact", contact)


def _preview_update(ctx: ToolContext, kind: str, record_id: uuid.UUID, changes: dict[str, Any]) -> Preview:
    obj = crud.get_for_write(ctx.session, spec_for(kind), actor=ctx.actor, id=as_uuid(record_id))
    if not changes:
        raise ValidationFailed("nothing to change: give at least one field")
    before = {k: getattr(obj, k) for k in changes}
    diff = diff_rows(before, changes)
    if not diff:
        raise ValidationFailed(f"nothing would change: {kind} {label_of(obj)} already has those values")
    return Preview(summary=f"Update {kind} {label_of(obj)}: " + ", ".join(r["field"] for r in diff),
                   record=ref(kind, obj), diff=diff)


def _preview_update_contact(ctx: ToolContext, a: UpdateContactArgs) -> Preview:
    return _preview_update(ctx, "contact", a.contact_id, a.model_dump(exclude_none=True, exclude={"contact_id"}))


@write_tool(UpdateContactArgs, preview=_preview_update_contact)
def update_contact(ctx: ToolContext, a: UpdateContactArgs) -> dict[str, Any]:
    """Change a contact's details (title, email, phone, company, lifecycle stage, lead status)."""
    contact = crud.update(ctx.session, spec_for("contact"), actor=ctx.actor, id=as_uuid(a.contact_id),
                          data=a.model_dump(exclude_none=True, exclude={"contact_id"}))
    return ref("contact", contact)


class CompanyFields(BaseModel):
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    employee_count: int | None = Field(None, ge=0)
    country: str | None = Field(None, min_length=2, max_length=2)


class CreateCompanyArgs(CompanyFields):
    name: str = Field(min_length=1)


class UpdateCompanyArgs(CompanyFields):
    company_id: uuid.UUID


@write_tool(CreateCompanyArgs, preview=lambda ctx, a: Preview(summary=f"Add company {a.name}",
                                                              diff=diff_rows({}, a.model_dump(exclude_none=True))))
def create_company(ctx: ToolContext, a: CreateCompanyArgs) -> dict[str, Any]:
    """Add a new company. Check with find_records first that it is not already in the CRM."""
    company = crud.create(ctx.session, spec_for("company"), actor=ctx.actor, data=a.model_dump(exclude_none=True))
    return ref("company", company)


@write_tool(UpdateCompanyArgs, preview=lambda ctx, a: _preview_update(
    ctx, "company", a.company_id, a.model_dump(exclude_none=True, exclude={"company_id"})))
def update_company(ctx: ToolContext, a: UpdateCompanyArgs) -> dict[str, Any]:
    """Change a company's details (name, domain, industry, size, country)."""
    company = crud.update(ctx.session, spec_for("company"), actor=ctx.actor, id=as_uuid(a.company_id),
                          data=a.model_dump(exclude_none=True, exclude={"company_id"}))
    return ref("company", company)


# --- deals ------------------------------------------------------------------------------------

STAGE_ALIASES = {"won": "closed won", "closed-won": "closed won", "lost": "closed lost", "closed-lost": "closed lost"}


def resolve_stage(ctx: ToolContext, pipeline_id: Any, name: str) -> Stage:
    stages = stages_of(ctx.session, pipeline_id)
    wanted = STAGE_ALIASES.get(name.strip().lower(), name.strip().lower())
    for stage in stages:
        if stage.name.lower() == wanted:
            return stage
    raise ValidationFailed(f"no stage '{name}'; the stages are: {', '.join(s.name for s in stages)}")


class DealFields(BaseModel):
    stage: str | None = Field(None, description="Stage name, e.g. 'Negotiation', 'Closed Won', 'Closed Lost'.")
    amount: Decimal | None = Field(None, ge=0, decimal_places=2)
    currency: str | None = Field(None, min_length=3, max_length=3)
    close_date: date | None = None
    next_step: str | None = None
    forecast_category: ForecastCategory | None = None
    lost_reason: str | None = Field(None, description="Why it was lost, when marking it lost.")
    probability: int | None = Field(None, ge=0, le=100)


class CreateDealArgs(DealFields):
    name: str = Field(min_length=1)
    company_id: uuid.UUID | None = None
    contact_ids: list[uuid.UUID] = Field(default_factory=list)


class UpdateDealArgs(DealFields):
    deal_id: uuid.UUID


def _deal_changes(ctx: ToolContext, pipeline_id: Any, a: DealFields) -> dict[str, Any]:
    changes = a.model_dump(exclude_none=True, include=set(DealFields.model_fields))
    if "stage" in changes:
        changes["stage_id"] = resolve_stage(ctx, pipeline_id, changes.pop("stage")).id
    return changes


def _preview_update_deal(ctx: ToolContext, a: UpdateDealArgs) -> Preview:
    deal = crud.get_for_write(ctx.session, spec_for("deal"), actor=ctx.actor, id=as_uuid(a.deal_id))
    changes = _deal_changes(ctx, deal.pipeline_id, a)
    if not changes:
        raise ValidationFailed("nothing to change: give at least one field")
    before = {k: getattr(deal, k) for k in changes}
    after = dict(changes)
    if "stage_id" in changes:
        before["stage"] = details.stage_by_id(ctx.session, deal.stage_id).name  # type: ignore[union-attr]
        after["stage"] = details.stage_by_id(ctx.session, changes["stage_id"]).name  # type: ignore[union-attr]
        del before["stage_id"], after["stage_id"]
    diff = diff_rows(before, after)
    if not diff:
        raise ValidationFailed(f"nothing would change: deal {deal.name} already has those values")
    return Preview(summary=f"Update deal {deal.name}: " + ", ".join(r["field"] for r in diff),
                   record=ref("deal", deal), diff=diff)


@write_tool(UpdateDealArgs, preview=_preview_update_deal)
def update_deal(ctx: ToolContext, a: UpdateDealArgs) -> dict[str, Any]:
    """Change a deal: move its stage (including Closed Won / Closed Lost with a lost_reason), amount,
    close date, next step, forecast category or probability."""
    deal = crud.get(ctx.session, spec_for("deal"), actor=ctx.actor, id=as_uuid(a.deal_id))
    deal = crud.update(ctx.session, spec_for("deal"), actor=ctx.actor, id=deal.id,
                       data=_deal_changes(ctx, deal.pipeline_id, a))
    return ref("deal", deal)


def _preview_create_deal(ctx: ToolContext, a: CreateDealArgs) -> Preview:
    pipeline = default_pipeline(ctx.session, ctx.actor.workspace_id)
    fields = _deal_changes(ctx, pipeline.id, a)
    fields.pop("stage_id", None)
    shown = {"name": a.name, "stage": a.stage or stages_of(ctx.session, pipeline.id)[0].name, **fields}
    if a.company_id:
        shown["company"] = names(ctx, "company", [a.company_id])
    if a.contact_ids:
        shown["contacts"] = names(ctx, "contact", a.contact_ids)
    return Preview(summary=f"Create deal {a.name}", diff=diff_rows({}, shown))


@write_tool(CreateDealArgs, preview=_preview_create_deal)
def create_deal(ctx: ToolContext, a: CreateDealArgs) -> dict[str, Any]:
    """Create a new deal (an opportunity), optionally for a company and with contacts on it."""
    pipeline = default_pipeline(ctx.session, ctx.actor.workspace_id)
    data = _deal_changes(ctx, pipeline.id, a) | {"name": a.name, "pipeline_id": pipeline.id}
    if a.company_id:
        data["company_id"] = as_uuid(a.company_id)
    if a.contact_ids:
        data["contacts"] = [{"contact_id": as_uuid(c), "role": "other"} for c in a.contact_ids]
    deal = crud.create(ctx.session, spec_for("deal"), actor=ctx.actor, data=data)
    return ref("deal", deal)


