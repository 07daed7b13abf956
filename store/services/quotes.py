"""Quotes: terms priced from the catalogue, who must approve them, and the one code path that
moves a quote's status (DESIGN.md, "Decisions that cross issues / Quotes"). Every door (API,
agent tools, Slack, web, importers) goes through here.

- A line of a catalogue product (its product_id, or a description that is exactly a product's
  name or SKU) costs the catalogue's price. A unit_price the caller gives that differs is an
  override, and so is a line the catalogue has no price for (free text, another currency).
- A manager of the owner's team (or an admin) approves a quote with an override, or with a line
  discount or an overall discount off list above the workspace's threshold
  (settings.approvals.manager_discount_percent, default 20). The owner approves the rest.
- States: draft -> pending_approval -> approved -> sent -> accepted | declined | expired; back to
  draft from pending_approval (withdrawn or rejected) and from approved (reopened, to change it).
  Terms change only in draft. Submitting opens a proposal in the approval queue; approving or
  rejecting that proposal (in Slack, the web or the API) moves the quote.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

import store.services.approvals as approvals
from store import normalize, pricing
from store.actor import Actor
from store.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from store.models import Approval, AuditLog, Deal, Product, Quote, QuoteLineItem, User, Workspace
from store.models.enums import ApprovalStatus, AuditAction, Role
from store.models.enums import QuoteStatus as S
from store.permissions import can_write_owner
from store.services.crud import Access, EntitySpec, get, out_of_range, register, spec_for, update
from store.services.org import actor_for_user
from store.types import utcnow

DEFAULT_MANAGER_DISCOUNT = Decimal(20)
# The proposal a submitted quote waits on in the approval queue (tools/outreach.py declares the
# tool that runs it when approved).
APPROVE_TOOL = "approve_quote"
# What the customer is offered, and so what an approval approved: changed only in draft.
TERMS = ("line_items", "discount_percent", "tax_percent", "currency", "terms", "deal_id")
MOVES: dict[S, tuple[S, ...]] = {
    S.draft: (S.pending_approval, S.approved),
    S.pending_approval: (S.approved, S.draft),
    S.approved: (S.sent, S.draft),
    S.sent: (S.accepted, S.declined, S.expired),
    S.accepted: (),
    S.declined: (),
    S.expired: (),
}


def pct(value: Decimal) -> str:
    """20 -> "20", 20.29 -> "20.29" (a percentage as people write it)."""
    return format(value.normalize(), "f")


def manager_threshold(session: Session, *, workspace_id: uuid.UUID) -> Decimal:
    """The discount (percent) above which a quote needs a manager, from the workspace settings."""
    ws = session.get(Workspace, workspace_id)
    value = approvals.policy(ws).get("manager_discount_percent")
    return DEFAULT_MANAGER_DISCOUNT if value is None else approvals.percent(value)


# --- terms ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    product_id: uuid.UUID | None
    description: str
    quantity: Decimal
    list_price: Decimal | None  # the catalogue's unit price in the quote's currency, if it has one
    unit_price: Decimal
    discount_percent: Decimal

    @property
    def total(self) -> Decimal:
        return pricing.line_total(self.quantity, self.unit_price, self.discount_percent)


@dataclass(frozen=True)
class Terms:
    currency: str
    lines: tuple[Line, ...]
    totals: pricing.QuoteTotals
    list_total: Decimal  # the lines at the catalogue's prices (a line without one: at its own)
    off_list: Decimal  # the overall discount against list, in percent, before tax
    threshold: Decimal
    reasons: tuple[str, ...]  # why a manager must approve; empty: the owner may

    @property
    def needs_manager(self) -> bool:
        return bool(self.reasons)

    def summary(self) -> str:
        return (f"{self.totals.total:,.2f} {self.currency} "
                f"({pct(self.off_list)}% off the list price {self.list_total:,.2f})")

    def diff(self) -> list[dict[str, Any]]:
        return [{"field": field, "before": "-", "after": after} for field, after in (
            ("lines", str(len(self.lines))), ("list price", f"{self.list_total:,.2f} {self.currency}"),
            ("discount off list", f"{pct(self.off_list)}%"), ("total", f"{self.totals.total:,.2f} {self.currency}"))]


def judge(lines: Sequence[Line], *, currency: str, discount_percent: Decimal, tax_percent: Decimal,
          threshold: Decimal) -> Terms:
    """The totals of priced lines and why a manager must approve them (no database: the demo uses it)."""
    totals = pricing.quote_totals([line.total for line in lines], discount_percent=discount_percent,
                                  tax_percent=tax_percent)
    list_total = pricing.money(sum((line.quantity * (line.unit_price if line.list_price is None else line.list_price)
                                    for line in lines), Decimal(0)))
    off_list = pricing.effective_discount(list_total, totals.subtotal - totals.discount_total)
    limit = f"the {pct(threshold)}% a rep may give alone"
    reasons = []
    for n, line in enumerate(lines, 1):
        name = f"line {n} ({line.description})"
        if line.list_price is None:
            reasons.append(f"{name} has no catalogue price in {currency}")
        elif line.unit_price != line.list_price:
            reasons.append(f"{name} is priced at {line.unit_price:,.2f}, not the catalogue's {line.list_price:,.2f}")
        if line.discount_percent > threshold:
            reasons.append(f"{name} is {pct(line.discount_percent)}% off, above {limit}")
    if off_list > threshold:
        reasons.append(f"{pct(off_list)}% off list is above {limit}")
    return Terms(currency, tuple(lines), totals, list_total, off_list, threshold, tuple(reasons))


def _product(session: Session, actor: Actor, n: int, item: dict[str, Any]) -> Product | None:
    if item.get("product_id"):
        try:
            return get(session, spec_for("product"), actor=actor, id=item["product_id"])
        except NotFound as exc:
            raise ValidationFailed(f"line {n}: no product with id {item['product_id']}", field="line_items") from exc
    # "Telematics Unit" as a model or a person writes it is the catalogue's Telematics Unit.
    name = (item.get("description") or "").strip().lower()
    if not name:
        return None
    found = session.scalars(select(Product).where(
        Product.workspace_id == actor.workspace_id, Product.active.is_(True),
        or_(func.lower(Product.name) == name, func.lower(Product.sku) == name)).limit(5)).all()
    if len(found) > 1:
        names = ", ".join(f"{p.name} ({p.sku or p.id})" for p in found)
        raise ValidationFailed(f"line {n}: '{item['description']}' names several products ({names}); "
                               "give the product_id", field="line_items")
    return found[0] if found else None


def _price_line(session: Session, actor: Actor, currency: str, n: int, item: dict[str, Any]) -> Line:
    product = _product(session, actor, n, item)
    list_price = product.unit_price if product is not None and product.currency == currency else None
    unit_price = item.get("unit_price")
    if unit_price is None:
        if product is None:
            raise ValidationFailed(f"line {n}: give a product_id (or a catalogue product's name as the "
                                   "description) or a unit_price", field="line_items")
        if list_price is None:
            raise ValidationFailed(f"line {n}: {product.name} is priced in {product.currency}, not {currency}; "
                                   f"give its unit_price in {currency} (a manager approves a price that is not "
                                   "the catalogue's)", field="line_items")
        unit_price = list_price
    description = (item.get("description") or "").strip() or (product.name if product else "")
    if not description or len(description) > 500:
        raise ValidationFailed(f"line {n}: give a description (at most 500 characters) or a product_id",
                               field="line_items")
    quantity, unit_price = Decimal(item.get("quantity") or 1), Decimal(unit_price)
    discount = Decimal(item.get("discount_percent") or 0)
    if quantity <= 0 or unit_price < 0 or not Decimal(0) <= discount <= Decimal(100):
        raise ValidationFailed(f"line {n}: quantity must be above 0, unit_price 0 or more and "
                               "discount_percent 0-100", field="line_items")
    line = Line(product.id if product else None, description, quantity, list_price, unit_price, discount)
    _check_fits(n, QuoteLineItem, quantity=quantity, unit_price=unit_price, line_total=line.total)
    return line


def _check_fits(n: int | None, model: Any, **values: Decimal) -> None:
    """Refuse, naming the line, a number its column cannot hold (a 422, not the database's error)."""
    for key, value in values.items():
        problem = out_of_range(model.__table__.c[key], value)
        if problem:
            raise ValidationFailed(f"line {n}: {problem}" if n else problem, field="line_items")


def price(session: Session, *, actor: Actor, currency: str, lines: Sequence[dict[str, Any]],
          discount_percent: Decimal = Decimal(0), tax_percent: Decimal = Decimal(0)) -> Terms:
    """Price lines from the catalogue (a price the caller gives is an override) and judge them."""
    priced = [_price_line(session, actor, currency, n, dict(item)) for n, item in enumerate(lines, 1)]
    terms = judge(priced, currency=currency, discount_percent=Decimal(discount_percent or 0),
                  tax_percent=Decimal(tax_percent or 0),
                  threshold=manager_threshold(session, workspace_id=actor.workspace_id))
    _check_fits(None, Quote, subtotal=terms.totals.subtotal, total=terms.totals.total)
    return terms


def terms_of(session: Session, *, quote: Quote) -> Terms:
    """A stored quote's terms, judged by today's threshold against the list prices it was priced at."""
    rows = session.scalars(select(QuoteLineItem).where(QuoteLineItem.quote_id == quote.id)
                           .order_by(QuoteLineItem.position)).all()
    lines = [Line(r.product_id, r.description, r.quantity, r.list_price, r.unit_price, r.discount_percent)
             for r in rows]
    return judge(lines, currency=quote.currency, discount_percent=Decimal(quote.discount_percent),
                 tax_percent=Decimal(quote.tax_percent),
                 threshold=manager_threshold(session, workspace_id=quote.workspace_id))


# --- who approves ----------------------------------------------------------------------------


def may_approve(session: Session, *, actor: Actor, quote: Quote, terms: Terms) -> bool:
    """Whoever may change the quote approves it within the limits; beyond them, a manager of the
    owner's team (can_write_owner keeps a manager to her team) or an admin."""
    if not can_write_owner(session, actor, quote.owner_id):
        return False
    return not terms.needs_manager or actor.is_admin or actor.role == Role.manager


def _decider(session: Session, actor: Actor, quote: Quote) -> Actor | None:
    """Who approved the proposal now being executed, when it is about this quote (it names it, or
    created it). The gate sets actor.approval_id for the proposal it runs; a model cannot."""
    if actor.approval_id is None:
        return None
    proposal = session.get(Approval, actor.approval_id)
    if (proposal is None or proposal.workspace_id != actor.workspace_id or proposal.decided_by_id is None
            or proposal.status != ApprovalStatus.approved or proposal.requested_by_id != actor.user_id):
        return None
    args = (proposal.decision or {}).get("args") or proposal.args or {}
    names_it = str(args.get("quote_id")) == str(quote.id)
    created_it = session.scalar(select(AuditLog.id).where(
        AuditLog.approval_id == proposal.id, AuditLog.entity_id == quote.id,
        AuditLog.action == AuditAction.create).limit(1)) is not None
    user = session.get(User, proposal.decided_by_id)
    if not (names_it or created_it) or user is None or not user.is_active or user.workspace_id != actor.workspace_id:
        return None
    return actor_for_user(user, actor.surface)


def _may_approve_now(session: Session, actor: Actor, quote: Quote, terms: Terms) -> bool:
    """The actor may approve it, or whoever approved the proposal the actor is running may."""
    decider = _decider(session, actor, quote)
    return any(may_approve(session, actor=a, quote=quote, terms=terms) for a in (actor, decider) if a is not None)


def _check_approver(session: Session, actor: Actor, quote: Quote, terms: Terms) -> None:
    if _may_approve_now(session, actor, quote, terms):
        return
    raise PermissionDenied(f"quote {quote.number} needs a manager's approval ({'; '.join(terms.reasons)}): "
                           "submit it (status pending_approval) and a manager of its owner's team or an "
                           "admin approves it", id=str(quote.id))


# --- moving a quote ----------------------------------------------------------------------------


def transition(session: Session, *, actor: Actor, id: uuid.UUID, to: S | str) -> Quote:
    """Move a quote along draft -> pending_approval -> approved -> sent -> accepted | declined | expired
    (back to draft from pending_approval or approved), as the actor's rights allow."""
    return update(session, quotes, actor=actor, id=id, data={"status": to})


def approve_or_submit(session: Session, *, actor: Actor, id: uuid.UUID) -> Quote:
    """Approve a draft if the actor (or whoever approved the proposal being run) may; else submit it."""
    quote = get(session, quotes, actor=actor, id=id)
    allowed = _may_approve_now(session, actor, quote, terms_of(session, quote=quote))
    return transition(session, actor=actor, id=id, to=S.approved if allowed else S.pending_approval)


def check_move(quote: Quote, to: S | str) -> S:
    """The status `to` names, if the state machine lets the quote move there (or it is there)."""
    try:
        target = S(to)
    except ValueError as exc:
        raise ValidationFailed(f"unknown quote status '{to}'; one of: {', '.join(s.value for s in S)}",
                               field="status") from exc
    current = S(quote.status)
    if target != current and target not in MOVES[current]:
        allowed = ", ".join(s.value for s in MOVES[current]) or "nothing (it is final; make a new quote)"
        raise Conflict(f"quote {quote.number} is {current.value}: it can move to {allowed}, not {target.value}",
                       field="status", status=current.value)
    return target


def _move(session: Session, actor: Actor, quote: Quote, to: S | str) -> None:
    current, target = S(quote.status), check_move(quote, to)
    if target == current:
        return
    terms = terms_of(session, quote=quote)
    if target in (S.pending_approval, S.approved) and not terms.lines:
        raise ValidationFailed(f"quote {quote.number} has no lines: add line_items first", field="line_items")
    if target == S.approved:
        _check_approver(session, actor, quote, terms)
    quote.status = target
    session.flush()
    if current == S.pending_approval:
        _close_submission(session, actor, quote, approved=target == S.approved)
    if target == S.pending_approval:
        _submit(session, actor, quote, terms)


def submission_text(number: str, deal_name: str, terms: Terms) -> tuple[str, list[dict[str, Any]]]:
    """The summary and diff of the proposal a submitted quote waits on."""
    summary = f"Approve quote {number} for {deal_name}: {terms.summary()}"
    if terms.needs_manager:
        summary += f" (needs a manager: {'; '.join(terms.reasons)})"
    return summary, [{"field": "status", "before": S.pending_approval.value, "after": S.approved.value},
                     *terms.diff()]


def _submit(session: Session, actor: Actor, quote: Quote, terms: Terms) -> Approval:
    """The proposal a pending quote waits on, in the approval queue of whoever may approve it."""
    requester = actor
    owner = session.get(User, quote.owner_id) if quote.owner_id else None
    if actor.user_id is None and owner is not None:  # an import or a script: the owner asks
        requester = actor_for_user(owner, actor.surface)
    deal = session.get(Deal, quote.deal_id)
    summary, diff = submission_text(quote.number, deal.name if deal else "its deal", terms)
    return approvals.propose(
        session, actor=requester, tool=APPROVE_TOOL, args={"quote_id": str(quote.id)}, summary=summary,
        diff=diff, evidence=[], thread_id=None, tool_call_id=None,
        needs_manager=terms.needs_manager, approver_id=quote.owner_id or requester.user_id,
        source_ref={"record": {"kind": "quote", "id": str(quote.id), "label": quote.number}, "submitted": True})


def _submissions(session: Session, quote: Quote) -> list[Approval]:
    rows = session.scalars(select(Approval).where(
        Approval.workspace_id == quote.workspace_id, Approval.tool == APPROVE_TOOL,
        Approval.status == ApprovalStatus.pending)).all()
    return [a for a in rows if (a.source_ref or {}).get("submitted") and a.args.get("quote_id") == str(quote.id)]


def _close_submission(session: Session, actor: Actor, quote: Quote, *, approved: bool) -> None:
    """The quote left pending_approval on the quote itself: its proposal in the approval queue says so."""
    for proposal in _submissions(session, quote):
        note = "approved on the quote itself" if approved else f"the quote is no longer {S.pending_approval.value}"
        approvals.settle(session, actor=actor, approval=proposal, executed=approved, note=note)


def _rejected(session: Session, actor: Actor, proposal: Approval) -> None:
    """A submitted quote's proposal was rejected (or answered): the quote goes back to draft."""
    if not (proposal.source_ref or {}).get("submitted"):
        return  # a proposal the agent made in a conversation: nothing waits on it
    quote = session.scalar(select(Quote).where(Quote.workspace_id == proposal.workspace_id,
                                               Quote.id == uuid.UUID(str(proposal.args.get("quote_id")))))
    if quote is not None and quote.status == S.pending_approval:
        transition(session, actor=actor, id=quote.id, to=S.draft)


approvals.AFTER_REJECT[APPROVE_TOOL] = _rejected


# --- the entity: create / update hooks ----------------------------------------------------------


def _next_number(session: Session, workspace_id: uuid.UUID) -> str:
    prefix = f"Q-{utcnow().year}-"
    count = session.scalar(select(func.count()).select_from(Quote).where(
        Quote.workspace_id == workspace_id, Quote.number.like(f"{prefix}%"))) or 0
    return f"{prefix}{count + 1:04d}"


def _prepare(session: Session, actor: Actor, values: dict[str, Any], existing: Quote | None) -> dict[str, Any]:
    if values.get("currency"):
        values["currency"] = normalize.currency(values["currency"])
    for key in ("discount_percent", "tax_percent"):
        if values.get(key) is not None and not Decimal(0) <= Decimal(values[key]) <= Decimal(100):
            raise ValidationFailed(f"{key} must be between 0 and 100", field=key)
    if existing is None:
        status = values.pop("status", None)
        if status is not None and status != S.draft:
            raise ValidationFailed(f"a new quote starts as a draft, not {getattr(status, 'value', status)}: create "
                                   "it, then submit it for approval (status pending_approval)", field="status")
        values.setdefault("number", _next_number(session, actor.workspace_id))
        if not values.get("currency") and values.get("deal_id"):
            deal = session.get(Deal, values["deal_id"])
            values["currency"] = deal.currency if deal else "USD"
        return values
    changed = [k for k in TERMS if k in values and (k == "line_items" or values[k] != getattr(existing, k))]
    if changed and existing.status != S.draft and values.get("status") != S.draft:
        after = ("move it back to draft first (it is approved again after)"
                 if S.draft in MOVES[S(existing.status)] else "make a new quote")
        raise Conflict(f"quote {existing.number} is {S(existing.status).value}: its terms ({', '.join(changed)}) "
                       f"change only while it is a draft; {after}", field=changed[0], status=S(existing.status).value)
    if "currency" in changed and "line_items" not in values:
        raise ValidationFailed("a new currency needs new prices: give line_items with it", field="currency")
    return values


def _after_write(session: Session, actor: Actor, quote: Quote, before: Any, virtual: dict[str, Any]) -> None:
    if "line_items" in virtual:
        terms = price(session, actor=actor, currency=quote.currency, lines=virtual["line_items"] or [])
        for row in session.scalars(select(QuoteLineItem).where(QuoteLineItem.quote_id == quote.id)):
            session.delete(row)
        session.flush()
        for position, line in enumerate(terms.lines):
            session.add(QuoteLineItem(
                workspace_id=quote.workspace_id, quote_id=quote.id, product_id=line.product_id, position=position,
                description=line.description, quantity=line.quantity, list_price=line.list_price,
                unit_price=line.unit_price, discount_percent=line.discount_percent, line_total=line.total))
        session.flush()
    lines = session.scalars(select(QuoteLineItem.line_total).where(QuoteLineItem.quote_id == quote.id)).all()
    totals = pricing.quote_totals(lines, discount_percent=Decimal(quote.discount_percent),
                                  tax_percent=Decimal(quote.tax_percent))
    quote.subtotal, quote.discount_total = totals.subtotal, totals.discount_total
    quote.tax_total, quote.total = totals.tax_total, totals.total
    session.flush()
    if "status" in virtual:
        _move(session, actor, quote, virtual["status"])


def _before_delete(session: Session, actor: Actor, quote: Quote) -> None:
    _close_submission(session, actor, quote, approved=False)


def _extras(session: Session, items: Sequence[Quote]) -> None:
    by_quote: dict[uuid.UUID, list[QuoteLineItem]] = {q.id: [] for q in items}
    if items:
        rows = session.scalars(select(QuoteLineItem).where(QuoteLineItem.quote_id.in_(by_quote))
                               .order_by(QuoteLineItem.position))
        for row in rows:
            by_quote[row.quote_id].append(row)
    for quote in items:
        quote.line_items = by_quote[quote.id]  # type: ignore[attr-defined]


quotes = register(EntitySpec(
    name="quote", plural="quotes", model=Quote, access=Access.OWNED,
    refs={"owner_id": "user", "deal_id": "deal"}, unique=("number",), search=("number", "title"),
    # status is moved by _move (after the terms are written), never set as a plain column.
    virtual_fields=("line_items", "status"), prepare=_prepare, after_write=_after_write, extras=_extras,
    before_delete=_before_delete, transition=transition,
))
