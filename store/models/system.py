"""Approvals (the agent's proposed writes) and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.models.base import Base, IdMixin, TimestampMixin, WorkspaceMixin, str_enum
from store.models.enums import ApprovalStatus, AuditAction, JobStatus, Surface
from store.types import utcnow

if TYPE_CHECKING:
    from store.models.org import User


class Approval(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    """A write the agent wants to make, waiting for a human decision.

    Exactly-once execution rests on `status`: a decision moves it from `pending`
    with a conditional UPDATE, so a second click or a retried webhook finds
    nothing left to decide.
    """

    __tablename__ = "approvals"
    __table_args__ = (
        Index("ix_approvals_workspace_status", "workspace_id", "status"),
        UniqueConstraint("thread_id", "tool_call_id"),
    )

    # The conversation (LangGraph thread) that is paused on this proposal, and the
    # model's tool call it answers: together they make proposing idempotent when a
    # graph node re-runs on resume.
    thread_id: Mapped[str | None] = mapped_column(String(200), index=True)
    tool_call_id: Mapped[str | None] = mapped_column(String(200))
    tool: Mapped[str] = mapped_column(String(100))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[str] = mapped_column(Text, default="")
    # [{"field", "before", "after"}]: what the record looks like before and after.
    diff: Mapped[list[Any]] = mapped_column(default=list)
    # [{"source", "ref", "quote"}]: why the agent proposes it.
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    surface: Mapped[Surface] = mapped_column(str_enum(Surface), default=Surface.agent)
    source_ref: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Who may decide: a named user, or anyone with at least this role in scope.
    approver_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approver_role: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[ApprovalStatus] = mapped_column(
        str_enum(ApprovalStatus), default=ApprovalStatus.pending
    )
    decision: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column()
    executed_at: Mapped[datetime | None] = mapped_column()
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    # Who asked and who decided: loaded by the approvals service's queries (`PEOPLE`), never lazily
    # (an access the query did not load raises instead of running a query per proposal).
    requester: Mapped[User | None] = relationship(foreign_keys=[requested_by_id], lazy="raise", viewonly=True)
    decider: Mapped[User | None] = relationship(foreign_keys=[decided_by_id], lazy="raise", viewonly=True)


class AuditLog(IdMixin, WorkspaceMixin, Base):
    """Every write through any surface: who, when, which door, before -> after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
        Index("ix_audit_log_workspace_created", "workspace_id", "created_at"),
    )

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    surface: Mapped[Surface] = mapped_column(str_enum(Surface))
    action: Mapped[AuditAction] = mapped_column(str_enum(AuditAction))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID] = mapped_column()
    before: Mapped[dict[str, Any] | None] = mapped_column()
    after: Mapped[dict[str, Any] | None] = mapped_column()
    # Set when the write executed an approved proposal: the decision and its evidence.
    approval_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("approvals.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(1000))


class Job(IdMixin, TimestampMixin, WorkspaceMixin, Base):
    """Background work (transcribe a call, ingest an email, reindex memory): visible, retryable.

    The row is the truth about a job wherever it runs (the app's thread pool or a Celery
    worker): status, progress and the error a user sees; `retry` queues it again.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_workspace_status", "workspace_id", "status"),
        Index("ix_jobs_subject", "subject_type", "subject_id"),
    )

    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus), default=JobStatus.queued)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(500), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # What the job is about (an email, a call recording) and who asked for it.
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class InboundToken(IdMixin, Base):
    """A webhook token already accepted (Mailgun's `token`): a replay finds it and is refused."""

    __tablename__ = "inbound_tokens"
    __table_args__ = (UniqueConstraint("provider", "token"),)

    provider: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
