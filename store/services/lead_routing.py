"""Lead routing: new leads given to reps by the territory rules, round-robin, each outcome logged.

`route_lead` / `route_unassigned` match a lead's company (region, country, industry,
employee count) against the active territories in priority order (rules as
store/services/config.py validates them; an empty rule matches everything), then pick
among that territory's members round-robin: the one assigned longest ago first (never
first; ties by when they were added), skipping inactive users and members at capacity
(open leads they own: contacts in a lead stage with them as owner; no capacity =
unlimited). When every member of a matching territory is full it tries the next
matching territory; when nothing fits the lead stays unassigned. Every outcome, assigned
or not, is a LeadAssignment row with its reason and an audit entry; an assignment sets
the contact's owner through crud.update (permission checks, audit entry, events).
Only managers and admins route; a manager only to members of their team.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit
from store.actor import Actor
from store.errors import ValidationFailed
from store.models import Company, Contact, LeadAssignment, Territory, TerritoryMember, User
from store.models.enums import AuditAction, Role
from store.permissions import can_write_owner, require_role
from store.services import crud, spec_for
from store.services.lead_features import LEAD_STAGES, chunks
from store.types import utcnow


@dataclass
class Assignment:
    """One routing outcome: a lead given to a rep, or left unassigned, and why."""

    contact_id: uuid.UUID
    contact: str
    company: str | None
    user_id: uuid.UUID | None
    user: str | None
    territory_id: uuid.UUID | None
    territory: str | None
    reason: str
    previous_owner_id: uuid.UUID | None = None
    id: uuid.UUID | None = None  # the LeadAssignment row; None in a dry run

    @property
    def assigned(self) -> bool:
        return self.user_id is not None


def _rule_match(territory: Territory, contact: Contact, company: Company | None) -> str | None:
    """Why the lead matches the territory's rules (a phrase), or None when it does not."""
    rules = territory.rules or {}
    said: list[str] = []

    def norm(values: Any) -> set[str]:
        return {str(v).strip().lower() for v in (values or [])}

    if rules.get("regions"):
        region = company.region if company else None
        if not region or region.strip().lower() not in norm(rules["regions"]):
            return None
        said.append(f"region {region}")
    if rules.get("countries"):
        country = (company.country if company and company.country else None) or contact.country
        if not country or country.strip().lower() not in norm(rules["countries"]):
            return None
        said.append(f"country {country.upper()}")
    if rules.get("industries"):
        industry = company.industry if company else None
        if not industry or industry.strip().lower() not in norm(rules["industries"]):
            return None
        said.append(f"industry {industry}")
    low, high = rules.get("min_employees"), rules.get("max_employees")
    if low is not None or high is not None:
        n = company.employee_count if company else None
        if n is None or (low is not None and n < int(low)) or (high is not None and n > int(high)):
            return None
        span = f"{low}-{high}" if low is not None and high is not None else f">= {low}" if low is not None \
            else f"<= {high}"
        said.append(f"{n:,} employees ({span})")
    return (", ".join(said) + " matched") if said else "catch-all: no rules"


def _lead_profile(contact: Contact, company: Company | None) -> str:
    if company is None:
        return "no company" + (f", country {contact.country}" if contact.country else "")
    bits = [f"region {company.region or '?'}", f"industry {company.industry or '?'}",
            f"{company.employee_count:,} employees" if company.employee_count is not None else "size ?"]
    return ", ".join(bits)


def _label(contact: Contact) -> str:
    return contact.full_name or contact.email or str(contact.id)


class _Router:
    """The routing state for one run: territories, members, open-lead counts, the rotation."""

    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session, self.actor, self.now = session, actor, now
        ws = actor.workspace_id
        self.territories = session.scalars(select(Territory).where(Territory.workspace_id == ws,
                                                                   Territory.active.is_(True))
                                           .order_by(Territory.priority, Territory.name)).all()
        members = session.scalars(select(TerritoryMember).where(TerritoryMember.workspace_id == ws)
                                  .order_by(TerritoryMember.id)).all()
        self.members: dict[uuid.UUID, list[TerritoryMember]] = defaultdict(list)
        for m in members:
            self.members[m.territory_id].append(m)
        self.users = {u.id: u for u in session.scalars(select(User).where(User.workspace_id == ws))}
        self.open = defaultdict(int, session.execute(
            select(Contact.owner_id, func.count()).where(Contact.workspace_id == ws,
                                                         Contact.lifecycle_stage.in_(LEAD_STAGES),
                                                         Contact.owner_id.is_not(None))
            .group_by(Contact.owner_id)).all())
        # The rotation as this run sees it (a dry run books assignments here only).
        self.last: dict[uuid.UUID, datetime | None] = {m.id: m.last_assigned_at for m in members}
        self._may_assign: dict[uuid.UUID, bool] = {}
        self._tick = 0

    def may_assign(self, user_id: uuid.UUID) -> bool:
        if user_id not in self._may_assign:
            self._may_assign[user_id] = can_write_owner(self.session, self.actor, user_id)
        return self._may_assign[user_id]

    def load(self, m: TerritoryMember) -> str:
        cap = "unlimited" if m.capacity is None else str(m.capacity)
        return f"{self.open[m.user_id]}/{cap} open leads"

    def _why_not(self, m: TerritoryMember) -> str | None:
        user = self.users.get(m.user_id)
        if user is None or not user.is_active:
            return "inactive"
        if m.capacity is not None and self.open[m.user_id] >= m.capacity:
            return f"full, {self.load(m)}"
        if not self.may_assign(m.user_id):
            return "not in your team"
        return None

    def plan(self, contact: Contact, company: Company | None) -> tuple[TerritoryMember | None, Territory | None,
                                                                       str]:
        """The member to give the lead to (and the territory), or None, with the reason."""
        full: list[str] = []
        for territory in self.territories:
            matched = _rule_match(territory, contact, company)
            if matched is None:
                continue
            rotation = sorted(self.members.get(territory.id, []),
                              key=lambda m: (self.last[m.id] is not None, self.last[m.id] or self.now, m.id))
            skipped: list[str] = []
            for m in rotation:
                why = self._why_not(m)
                if why is None:
                    name = self.users[m.user_id].name
                    reason = f"territory {territory.name} ({matched}); round-robin: {name} was next; {self.load(m)}"
                    if skipped:
                        reason += f"; skipped {', '.join(skipped)}"
                    if full:
                        reason = f"{'; '.join(full)}; then {reason}"
                    return m, territory, reason
                skipped.append(f"{self.users[m.user_id].name if m.user_id in self.users else 'a removed user'}"
                               f" ({why})")
            full.append(f"territory {territory.name} ({matched}) but "
                        + (f"no one could take it: {', '.join(skipped)}" if skipped else "it has no members"))
        if full:
            return None, None, "; ".join(full) + "; left unassigned"
        return None, None, f"no active territory matches ({_lead_profile(contact, company)}); left unassigned"

    def take(self, m: TerritoryMember, previous_owner: uuid.UUID | None, *, write: bool) -> datetime:
        """Book the assignment in the rotation (strictly increasing within a run) and the counts."""
        stamp = self.now + timedelta(microseconds=self._tick)
        self._tick += 1
        self.last[m.id] = stamp
        self.open[m.user_id] += 1
        if previous_owner is not None and self.open[previous_owner] > 0:
            self.open[previous_owner] -= 1
        if write:
            m.last_assigned_at = stamp
        return stamp


def _route(router: _Router, contacts: Sequence[Contact], *, dry_run: bool) -> list[Assignment]:
    session, actor = router.session, router.actor
    company_ids = list({c.company_id for c in contacts if c.company_id})
    companies = {co.id: co for chunk in chunks(company_ids)
                 for co in session.scalars(select(Company).where(Company.id.in_(chunk)))}
    out: list[Assignment] = []
    spec = spec_for("contact")
    for contact in contacts:
        company = companies.get(contact.company_id) if contact.company_id else None
        member, territory, reason = router.plan(contact, company)
        user = router.users[member.user_id] if member else None
        previous = contact.owner_id
        result = Assignment(contact.id, _label(contact), company.name if company else None,
                            user.id if user else None, user.name if user else None,
                            territory.id if territory else None, territory.name if territory else None,
                            reason, previous)
        stamp = router.now
        if member is not None:
            stamp = router.take(member, previous, write=not dry_run)
            if not dry_run:
                crud.update(session, spec, actor=actor, id=contact.id, data={"owner_id": member.user_id})
        if not dry_run:
            row = LeadAssignment(workspace_id=actor.workspace_id, contact_id=contact.id,
                                 user_id=result.user_id, previous_owner_id=previous,
                                 territory_id=result.territory_id, reason=reason[:1000], assigned_at=stamp,
                                 assigned_by_id=actor.user_id, approval_id=actor.approval_id)
            session.add(row)
            session.flush()
            audit.record(session, actor, action=AuditAction.create, entity_type="lead_assignment", entity_id=row.id,
                         after=audit.snapshot(row), approval_id=actor.approval_id, note=reason[:1000])
            result.id = row.id
        out.append(result)
    return out


def _check_may_route(actor: Actor) -> None:
    require_role(actor, Role.manager, Role.admin, what="route leads")


def route_lead(session: Session, *, actor: Actor, contact_id: uuid.UUID, now: datetime | None = None,
               dry_run: bool = False) -> Assignment:
    """Route one lead (whoever owns it now) by the territory rules; logged with its reason."""
    _check_may_route(actor)
    contact = crud.get(session, spec_for("contact"), actor=actor, id=contact_id)
    if contact.lifecycle_stage not in LEAD_STAGES:
        raise ValidationFailed(f"{_label(contact)} is at lifecycle stage {contact.lifecycle_stage.value}, not a "
                               "lead; only subscribers, leads, MQLs and SQLs are routed", field="contact_id")
    return _route(_Router(session, actor, now or utcnow()), [contact], dry_run=dry_run)[0]


def unassigned_leads(session: Session, *, actor: Actor, contact_ids: Sequence[uuid.UUID] | None = None,
                     limit: int | None = None) -> Sequence[Contact]:
    """Leads with no owner that the actor can see, oldest first."""
    query = (crud.readable(spec_for("contact"), actor)
             .where(Contact.owner_id.is_(None), Contact.lifecycle_stage.in_(LEAD_STAGES))
             .order_by(Contact.created_at, Contact.id))
    if contact_ids is not None:
        query = query.where(Contact.id.in_(list(contact_ids)))
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def route_unassigned(session: Session, *, actor: Actor, now: datetime | None = None,
                     contact_ids: Sequence[uuid.UUID] | None = None, limit: int | None = None,
                     dry_run: bool = False) -> list[Assignment]:
    """Route every unassigned lead (or those of `contact_ids` still unassigned), oldest first.

    `dry_run`: the same decisions, nothing written."""
    _check_may_route(actor)
    leads = unassigned_leads(session, actor=actor, contact_ids=contact_ids, limit=limit)
    return _route(_Router(session, actor, now or utcnow()), leads, dry_run=dry_run)
