"""What happens with customers: activities and their targets, emails, tasks, notes, calls."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import SERVER_ONLY, Base, IdMixin, TimestampMixin, WorkspaceMixin, str_enum
from store.models.crm import OwnedMixin
from store.models.enums import (
    ActivityType,
    Direction,
    EmailParticipantRole,
    Priority,
    RecordingStatus,
    TaskStatus,
)


class TargetsMixin:
    """Typed nullable links to the three record kinds a thing can be about."""

    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    deal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deals.id", ondelete="SET NULL"), index=True
    )


class Activity(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, Base):
    """A call, meeting, email, note... that happened. Linked through ActivityTarget."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_workspace_occurred", "workspace_id", "occurred_at"),)

    type: Mapped[ActivityType] = mapped_column(str_enum(ActivityType))
    subject: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column()
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    direction: Mapped[Direction | None] = mapped_column(str_enum(Direction))
    outcome: Mapped[str | None] = mapped_column(String(100))
    email_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("emails.id", ondelete="SET NULL"))
    call_recording_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("call_recordings.id", ondelete="SET NULL")
    )
    # Provenance: where this came from (api, slack, email, call, agent, import...)
    # and the pointer into it (Slack ts, Message-ID, transcript span).
    source: Mapped[str] = mapped_column(String(32), default="api")
    source_ref: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ActivityDayCount(IdMixin, WorkspaceMixin, Base):
    """How many activities of a type an owner had on a UTC day: a rollup of `activities` that
    activity counts over long periods read instead of the activities themselves.

    Additive: a cell's count is the sum of `n` over its rows. The activity service adds +1/-1
    on every activity write (store/services/activity_rollup.py); a row may hold 0. The unique
    constraint is the arbiter of that upsert; it does not catch NULL owners, whose cells may
    then have more than one row, which still sum right."""

    __tablename__ = "activity_day_counts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "day", "owner_id", "type", name="uq_activity_day_counts_cell"),
    )

    day: Mapped[date] = mapped_column(Date)  # the UTC date of Activity.occurred_at
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    type: Mapped[ActivityType] = mapped_column(str_enum(ActivityType))
    n: Mapped[int] = mapped_column(Integer)


class ActivityTarget(IdMixin, WorkspaceMixin, TargetsMixin, Base):
    """One record an activity is about. Exactly one of the three links is set."""

    __tablename__ = "activity_targets"
    __table_args__ = (
        CheckConstraint(
            "(CASE WHEN contact_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN company_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN deal_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="exactly_one_target",
        ),
        # The same record linked twice to one activity would count it twice.
        UniqueConstraint("activity_id", "contact_id"),
        UniqueConstraint("activity_id", "company_id"),
        UniqueConstraint("activity_id", "deal_id"),
    )

    activity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), index=True
    )


class Task(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, TargetsMixin, Base):
    """A to-do for its owner (the assignee)."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_owner_status_due", "owner_id", "status", "due_at"),)

    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus), default=TaskStatus.open)
    priority: Mapped[Priority] = mapped_column(str_enum(Priority), default=Priority.normal)
    completed_at: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(32), default="api")
    source_ref: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Note(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, TargetsMixin, Base):
    __tablename__ = "notes"

    body: Mapped[str] = mapped_column(Text)
    pinned: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(32), default="api")
    source_ref: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Email(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, Base):
    """One email message, stored once per owner: each rep who forwards, BCCs or syncs it has her
    own copy, filed and visible by her rules; her second arrival of it is a no-op."""

    __tablename__ = "emails"
    __table_args__ = (UniqueConstraint("workspace_id", "message_id", "owner_id"),)

    message_id: Mapped[str] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    thread_key: Mapped[str | None] = mapped_column(String(998), index=True)
    subject: Mapped[str] = mapped_column(String(998), default="")
    sent_at: Mapped[datetime | None] = mapped_column()
    direction: Mapped[Direction | None] = mapped_column(str_enum(Direction))
    from_address: Mapped[str | None] = mapped_column(String(320))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    deal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(32), default="api")
    # Inbox mail: the message as received (raw .eml under files_dir), kept so nothing is lost
    # and ingestion can be re-run; the forwarder's own words above a forward.
    raw_path: Mapped[str | None] = mapped_column(String(1000), info=SERVER_ONLY)
    forward_note: Mapped[str | None] = mapped_column(Text)
    # Inbox mail: whether its From was authenticated (DKIM or SPF aligned with the From domain,
    # or a trusted receiver's Authentication-Results) and how, or why not. None: not inbox mail.
    sender_authenticated: Mapped[bool | None] = mapped_column()
    sender_auth: Mapped[str | None] = mapped_column(String(500))


class EmailParticipant(IdMixin, WorkspaceMixin, Base):
    __tablename__ = "email_participants"

    email_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    role: Mapped[EmailParticipantRole] = mapped_column(str_enum(EmailParticipantRole))
    address: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(300))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )


class EmailAttachment(IdMixin, WorkspaceMixin, Base):
    """An attachment and its extracted text; `error` says why it could not be read."""

    __tablename__ = "email_attachments"

    email_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_path: Mapped[str | None] = mapped_column(String(1000), info=SERVER_ONLY)
    text: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(1000))


class CallRecording(IdMixin, TimestampMixin, WorkspaceMixin, OwnedMixin, TargetsMixin, Base):
    __tablename__ = "call_recordings"

    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(200))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_path: Mapped[str | None] = mapped_column(String(1000), info=SERVER_ONLY)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[RecordingStatus] = mapped_column(
        str_enum(RecordingStatus), default=RecordingStatus.uploaded
    )
    error: Mapped[str | None] = mapped_column(String(2000))
    source: Mapped[str] = mapped_column(String(32), default="api")


class Transcript(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    """A call's text with timestamped segments [{start, end, speaker, text}]."""

    __tablename__ = "transcripts"

    call_recording_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("call_recordings.id", ondelete="CASCADE"), unique=True
    )
    language: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    segments: Mapped[list[Any]] = mapped_column(default=list)
    # Which engine produced it: "faster-whisper:small", "vtt", "srt", "txt".
    engine: Mapped[str] = mapped_column(String(100))
