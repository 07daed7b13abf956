"""The store as the scorer compares it: a snapshot of the CRM's records, and the diff of two.

A snapshot holds what a user would call the record's content, one flat dict per record:
references as `@key` for records of the world (or the referenced record's name for records
made during the run), dates as ISO days in the owner's time zone, amounts as plain
decimals. Bookkeeping is left out (timestamps, audit, approvals, jobs, the inbound email
itself, lead-assignment logs): a diff shows only what the agent's writes changed. An email the
agent sends (`send_email`) shows as the activity it logs; the emails table holds what the inbox received.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import (
    Activity,
    ActivityTarget,
    Company,
    Contact,
    Deal,
    DealContact,
    Note,
    Product,
    Quote,
    QuoteLineItem,
    Stage,
    Task,
    User,
)
from tools.base import label_of

# Fields a service sets by itself when another changes (a stage move sets the probability
# and forecast category): not counted as writes of their own.
DERIVED = {"deal": {"probability", "forecast_category"}}

Snapshot = dict[str, dict[uuid.UUID, dict[str, Any]]]


def norm(value: Any) -> Any:
    """One spelling per value, for snapshots and expectations alike."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal | int | float):
        d = Decimal(str(value)).normalize()
        return format(d, "f") if d == d.to_integral() else format(d, "f").rstrip("0")
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return str(value.value)
    if isinstance(value, list):
        return sorted(norm(v) for v in value)
    return str(value)


class Namer:
    """References as the datasets write them: `@key` for world records, else the record's name."""

    def __init__(self, session: Session, by_id: dict[uuid.UUID, str]) -> None:
        self.session, self.by_id = session, by_id
        self._labels: dict[uuid.UUID, str] = {}

    def __call__(self, model: Any, id_: uuid.UUID | None) -> str | None:
        if id_ is None:
            return None
        if id_ in self.by_id:
            return "@" + self.by_id[id_]
        if id_ not in self._labels:
            obj = self.session.get(model, id_)
            self._labels[id_] = label_of(obj) if obj is not None else str(id_)
        return self._labels[id_]


def _tz(session: Session, owner_id: uuid.UUID | None) -> ZoneInfo:
    user = session.get(User, owner_id) if owner_id else None
    try:
        return ZoneInfo(user.timezone if user else "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _day(session: Session, moment: datetime | None, owner_id: uuid.UUID | None) -> str | None:
    return moment.astimezone(_tz(session, owner_id)).date().isoformat() if moment else None


def snapshot(session: Session, workspace_id: uuid.UUID, by_id: dict[uuid.UUID, str]) -> Snapshot:
    session.expire_all()
    name = Namer(session, by_id)
    ws = workspace_id
    out: Snapshot = {k: {} for k in ("company", "contact", "deal", "activity", "task", "note", "quote", "product")}
    for c in session.scalars(select(Company).where(Company.workspace_id == ws)):
        out["company"][c.id] = {"name": c.name, "domain": c.domain, "industry": c.industry,
                                "employee_count": norm(c.employee_count), "country": c.country,
                                "owner": name(User, c.owner_id)}
    for p in session.scalars(select(Contact).where(Contact.workspace_id == ws)):
        out["contact"][p.id] = {"first_name": p.first_name, "last_name": p.last_name, "email": p.email,
                                "phone": p.phone, "title": p.title, "company": name(Company, p.company_id),
                                "lifecycle_stage": norm(p.lifecycle_stage), "lead_status": norm(p.lead_status),
                                "owner": name(User, p.owner_id)}
    stages = {s.id: s.name for s in session.scalars(select(Stage).where(Stage.workspace_id == ws))}
    people: dict[uuid.UUID, list[str]] = {}
    for dc in session.scalars(select(DealContact).join(Deal, Deal.id == DealContact.deal_id)
                              .where(Deal.workspace_id == ws)):
        people.setdefault(dc.deal_id, []).append(name(Contact, dc.contact_id) or "")
    for d in session.scalars(select(Deal).where(Deal.workspace_id == ws)):
        out["deal"][d.id] = {"name": d.name, "stage": stages.get(d.stage_id), "amount": norm(d.amount),
                             "currency": d.currency, "close_date": norm(d.close_date), "next_step": d.next_step,
                             "forecast_category": norm(d.forecast_category), "probability": norm(d.probability),
                             "lost_reason": d.lost_reason, "company": name(Company, d.company_id),
                             "owner": name(User, d.owner_id), "contacts": sorted(people.get(d.id, []))}
    targets: dict[uuid.UUID, list[str]] = {}
    for t in session.scalars(select(ActivityTarget).join(Activity, Activity.id == ActivityTarget.activity_id)
                             .where(Activity.workspace_id == ws)):
        for model, ref in ((Contact, t.contact_id), (Company, t.company_id), (Deal, t.deal_id)):
            if ref is not None:
                targets.setdefault(t.activity_id, []).append(name(model, ref) or "")
    for a in session.scalars(select(Activity).where(Activity.workspace_id == ws)):
        out["activity"][a.id] = {"type": norm(a.type), "subject": a.subject, "body": a.body,
                                 "occurred_on": _day(session, a.occurred_at, a.owner_id),
                                 "on": sorted(set(targets.get(a.id, []))), "owner": name(User, a.owner_id)}
    for t in session.scalars(select(Task).where(Task.workspace_id == ws)):
        out["task"][t.id] = {"title": t.title, "description": t.description,
                             "due": _day(session, t.due_at, t.owner_id), "status": norm(t.status),
                             "priority": norm(t.priority), "on": _on(name, t), "owner": name(User, t.owner_id)}
    for n in session.scalars(select(Note).where(Note.workspace_id == ws)):
        out["note"][n.id] = {"body": n.body, "on": _on(name, n), "owner": name(User, n.owner_id)}
    for q in session.scalars(select(Quote).where(Quote.workspace_id == ws)):
        lines = session.scalars(select(QuoteLineItem).where(QuoteLineItem.quote_id == q.id)
                                .order_by(QuoteLineItem.position))
        out["quote"][q.id] = {"deal": name(Deal, q.deal_id), "title": q.title, "status": norm(q.status),
                              "discount_percent": norm(q.discount_percent), "total": norm(q.total),
                              "currency": q.currency, "valid_until": norm(q.valid_until),
                              "lines": [f"{norm(li.quantity)} x {name(Product, li.product_id) or li.description} "
                                        f"@ {norm(li.unit_price)} -{norm(li.discount_percent)}%" for li in lines]}
    for p in session.scalars(select(Product).where(Product.workspace_id == ws)):
        out["product"][p.id] = {"name": p.name, "unit_price": norm(p.unit_price), "active": p.active}
    return out


def _on(name: Namer, obj: Any) -> list[str]:
    """The records a task or note is on (any of its contact, company and deal), sorted."""
    return sorted(name(model, ref) or "" for model, ref in ((Contact, obj.contact_id), (Company, obj.company_id),
                                                            (Deal, obj.deal_id)) if ref is not None)


@dataclass
class RecordChange:
    op: str  # create, update, delete
    kind: str
    id: uuid.UUID
    key: str | None  # the world key of an updated or deleted record
    fields: dict[str, Any] = field(default_factory=dict)  # create/delete: the record; update: the new values
    before: dict[str, Any] = field(default_factory=dict)  # update: the old values of the changed fields

    def describe(self) -> str:
        if self.op == "update":
            parts = ", ".join(f"{k}: {self.before.get(k)!r} -> {v!r}" for k, v in self.fields.items())
            return f"update {self.kind} @{self.key or self.id}: {parts}"
        shown = {k: v for k, v in self.fields.items() if v not in (None, [], "")}
        return f"{self.op} {self.kind} {shown}"


def diff(before: Snapshot, after: Snapshot, by_id: dict[uuid.UUID, str]) -> list[RecordChange]:
    changes: list[RecordChange] = []
    for kind in after:
        old, new = before.get(kind, {}), after[kind]
        for id_, rec in new.items():
            if id_ not in old:
                changes.append(RecordChange("create", kind, id_, None, rec))
                continue
            changed = {k: v for k, v in rec.items() if old[id_].get(k) != v}
            if changed:
                changes.append(RecordChange("update", kind, id_, by_id.get(id_), changed,
                                            {k: old[id_].get(k) for k in changed}))
        for id_, rec in old.items():
            if id_ not in new:
                changes.append(RecordChange("delete", kind, id_, by_id.get(id_), rec))
    return changes
