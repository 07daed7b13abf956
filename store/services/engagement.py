"""Activities (with their targets), tasks, notes, emails, call recordings and transcripts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.actor import Actor
from store.errors import ValidationFailed
from store.models import (
    Activity,
    ActivityTarget,
    CallRecording,
    Contact,
    Deal,
    Email,
    EmailAttachment,
    EmailParticipant,
    Note,
    Task,
    Transcript,
)
from store.models.enums import ActivityType, TaskStatus
from store.services.activity_rollup import count_activity, utc_day
from store.services.crud import Access, EntitySpec, get, register, spec_for
from store.types import utcnow

TARGET_KINDS = (("contact_ids", "contact_id", "contact"), ("company_ids", "company_id", "company"),
                ("deal_ids", "deal_id", "deal"))


def _prepare_activity(session: Session, actor: Actor, values: dict[str, Any],
                      existing: Activity | None) -> dict[str, Any]:
    if existing is None:
        values.setdefault("occurred_at", utcnow())
        if not any(values.get(k) for k, _, _ in TARGET_KINDS):
            raise ValidationFailed("link the activity to at least one contact, company or deal "
                                   "(contact_ids, company_ids or deal_ids)", field="contact_ids")
    for key, _, kind in TARGET_KINDS:
        for target_id in values.get(key) or []:
            try:
                get(session, spec_for(kind), actor=actor, id=target_id)
            except Exception as exc:
                raise ValidationFailed(f"{key}: no {kind} with id {target_id} that you can see",
                                       field=key) from exc
    return values


def _activity_deal_ids(session: Session, activity_id: uuid.UUID) -> set[uuid.UUID]:
    return set(session.scalars(select(ActivityTarget.deal_id).where(
        ActivityTarget.activity_id == activity_id, ActivityTarget.deal_id.is_not(None))))


def _refresh_deal_last_activity(session: Session, deal_ids: set[uuid.UUID],
                                without: uuid.UUID | None = None) -> None:
    """Set each deal's last_activity_at to the latest occurred_at of the activities that target it
    (leaving out `without`, an activity being deleted); None when none do. Exact, not just "if newer",
    because stale deals read it: a deal untargeted, an activity moved earlier or deleted moves it back."""
    if not deal_ids:
        return
    t = ActivityTarget
    latest = (select(func.max(Activity.occurred_at)).join(t, t.activity_id == Activity.id)
              .where(t.deal_id == Deal.id))
    if without is not None:
        latest = latest.where(Activity.id != without)
    session.execute(update(Deal).where(Deal.id.in_(deal_ids))
                    # updated_at stays: a derived column, not an edit of the deal
                    .values(last_activity_at=latest.scalar_subquery(), updated_at=Deal.updated_at)
                    .execution_options(synchronize_session="fetch"))


def _as_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _count_write(session: Session, activity: Activity, before: dict[str, Any] | None) -> None:
    """Keep the daily activity rollup exact: +1 for a new activity's cell; on an update that moves
    it to another cell (owner, type or UTC day of occurred_at), -1 for the old cell and +1 for the new.
    `before` is the audit snapshot (ids and enums as strings, occurred_at in ISO format)."""
    new = (_as_uuid(activity.owner_id), ActivityType(activity.type), activity.occurred_at)
    if before is not None:
        old_at = datetime.fromisoformat(before["occurred_at"])
        old = (_as_uuid(before.get("owner_id")), ActivityType(before["type"]), old_at)
        if old[:2] == new[:2] and utc_day(old_at) == utc_day(new[2]):
            return
        count_activity(session, activity.workspace_id, *old, -1)
    count_activity(session, activity.workspace_id, *new, +1)


def _set_targets(session: Session, actor: Actor, activity: Activity, before: Any,
                 virtual: dict[str, Any]) -> None:
    _count_write(session, activity, before)
    # Deals targeted before and after this write: their last_activity_at may move either way.
    deal_ids = _activity_deal_ids(session, activity.id) if before is not None else set()
    for key, column, _ in TARGET_KINDS:
        if key not in virtual:
            continue
        for row in session.scalars(select(ActivityTarget).where(
                ActivityTarget.activity_id == activity.id, getattr(ActivityTarget, column).is_not(None))):
            session.delete(row)
        session.flush()
        session.add_all(ActivityTarget(workspace_id=activity.workspace_id, activity_id=activity.id,
                                       **{column: target_id})
                        for target_id in dict.fromkeys(virtual[key] or []))
    contact_ids = virtual.get("contact_ids") or []
    if contact_ids:
        session.execute(update(Contact).where(
            Contact.id.in_(contact_ids),
            (Contact.last_activity_at.is_(None)) | (Contact.last_activity_at < activity.occurred_at),
        ).values(last_activity_at=activity.occurred_at))
    session.flush()
    _refresh_deal_last_activity(session, deal_ids | _activity_deal_ids(session, activity.id))


def _before_delete_activity(session: Session, actor: Actor, activity: Activity) -> None:
    count_activity(session, activity.workspace_id, activity.owner_id, activity.type, activity.occurred_at, -1)
    _refresh_deal_last_activity(session, _activity_deal_ids(session, activity.id), without=activity.id)


def _activity_extras(session: Session, activities: Sequence[Activity]) -> None:
    targets: dict[uuid.UUID, dict[str, list[uuid.UUID]]] = {
        a.id: {k: [] for k, _, _ in TARGET_KINDS} for a in activities}
    if activities:
        rows = session.scalars(select(ActivityTarget).where(ActivityTarget.activity_id.in_(targets)))
        for row in rows:
            for key, column, _ in TARGET_KINDS:
                if getattr(row, column) is not None:
                    targets[row.activity_id][key].append(getattr(row, column))
    for activity in activities:
        for key, value in targets[activity.id].items():
            setattr(activity, key, value)


def _prepare_task(session: Session, actor: Actor, values: dict[str, Any], existing: Task | None) -> dict[str, Any]:
    if existing is None:
        values.setdefault("created_by_id", actor.user_id)
    status = values.get("status")
    if status == TaskStatus.done and (existing is None or existing.status != TaskStatus.done):
        values["completed_at"] = utcnow()
    elif status is not None and status != TaskStatus.done:
        values["completed_at"] = None
    return values


TARGET_REFS = {"contact_id": "contact", "company_id": "company", "deal_id": "deal"}

activities = register(EntitySpec(
    name="activity", plural="activities", model=Activity, access=Access.OWNED,
    refs={"owner_id": "user", "email_id": "email", "call_recording_id": "call_recording"},
    search=("subject", "body"), default_sort="-occurred_at",
    virtual_fields=("contact_ids", "company_ids", "deal_ids"),
    prepare=_prepare_activity, after_write=_set_targets, before_delete=_before_delete_activity,
    extras=_activity_extras,
))
tasks = register(EntitySpec(
    name="task", plural="tasks", model=Task, access=Access.OWNED,
    refs={"owner_id": "user", **TARGET_REFS}, search=("title", "description"), default_sort="due_at",
    prepare=_prepare_task,
))
notes = register(EntitySpec(
    name="note", plural="notes", model=Note, access=Access.OWNED,
    refs={"owner_id": "user", **TARGET_REFS}, search=("body",), default_sort="-created_at",
))
emails = register(EntitySpec(
    name="email", plural="emails", model=Email, access=Access.OWNED,
    refs={"owner_id": "user", "deal_id": "deal"}, unique=("message_id",), unique_per_owner=True,
    search=("subject", "body_text"),
    default_sort="-sent_at",
))
email_participants = register(EntitySpec(
    name="email_participant", plural="email-participants", model=EmailParticipant, access=Access.PARENT,
    parent=("email_id", "email"), refs={"email_id": "email", "contact_id": "contact"}, default_sort="id",
    creatable=False, updatable=False, deletable=False,  # written by email ingestion with their email
))
email_attachments = register(EntitySpec(
    name="email_attachment", plural="email-attachments", model=EmailAttachment, access=Access.PARENT,
    parent=("email_id", "email"), refs={"email_id": "email"}, search=("filename", "text"), default_sort="id",
    creatable=False, updatable=False, deletable=False,
))
call_recordings = register(EntitySpec(
    name="call_recording", plural="call-recordings", model=CallRecording, access=Access.OWNED,
    refs={"owner_id": "user", **TARGET_REFS}, search=("filename",), default_sort="-created_at",
))
transcripts = register(EntitySpec(
    name="transcript", plural="transcripts", model=Transcript, access=Access.PARENT,
    parent=("call_recording_id", "call_recording"), refs={"call_recording_id": "call_recording"},
    search=("text",), default_sort="-created_at",
))
