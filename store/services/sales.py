"""Pipelines, stages, deals (with their history) and the contacts on a deal."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import normalize
from store.actor import Actor
from store.errors import Duplicate, ValidationFailed
from store.models import Deal, DealContact, DealHistory, Pipeline, Stage, Workspace
from store.models.enums import CustomFieldEntity, ForecastCategory, Role, StageKind
from store.services.crm import _custom
from store.services.crud import Access, EntitySpec, register
from store.types import utcnow

# Changing any of these writes a DealHistory snapshot (what forecasts and slips are built on).
TRACKED = ("stage_id", "amount", "currency", "close_date", "probability", "forecast_category", "owner_id")


def default_pipeline(session: Session, workspace_id: uuid.UUID) -> Pipeline:
    pipeline = session.scalar(
        select(Pipeline).where(Pipeline.workspace_id == workspace_id)
        .order_by(Pipeline.is_default.desc(), Pipeline.created_at)
    )
    if pipeline is None:
        raise ValidationFailed("this workspace has no pipeline yet; create one first", field="pipeline_id")
    return pipeline


def deal_by_id(session: Session, deal_id: uuid.UUID | None) -> Deal | None:
    """The deal a row points at (a quote's, an email's), as that row shows it."""
    return session.get(Deal, deal_id) if deal_id is not None else None


def stage_named(session: Session, pipeline_id: uuid.UUID, name: str) -> Stage | None:
    return session.scalar(select(Stage).where(Stage.pipeline_id == pipeline_id, Stage.name == name))


def stages_of(session: Session, pipeline_id: uuid.UUID) -> Sequence[Stage]:
    return session.scalars(select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position)).all()


def _prepare_deal(session: Session, actor: Actor, values: dict[str, Any], existing: Deal | None) -> dict[str, Any]:
    if existing is None:
        if not values.get("pipeline_id"):
            values["pipeline_id"] = default_pipeline(session, actor.workspace_id).id
        if not values.get("currency"):
            ws = session.get(Workspace, actor.workspace_id)
            values["currency"] = ws.default_currency if ws else "USD"
    if values.get("currency"):
        values["currency"] = normalize.currency(values["currency"])
    pipeline_id = values.get("pipeline_id") or (existing.pipeline_id if existing else None)
    if values.get("pipeline_id") and session.scalar(select(Pipeline.id).where(
            Pipeline.id == pipeline_id, Pipeline.workspace_id == actor.workspace_id)) is None:
        # Checked before its stages are read, so no other workspace's stage names are ever listed.
        raise ValidationFailed(f"pipeline_id: no pipeline with id {pipeline_id} in this workspace",
                               field="pipeline_id")
    stages = {s.id: s for s in stages_of(session, pipeline_id)} if pipeline_id else {}
    if existing is None and not values.get("stage_id"):
        if not stages:
            raise ValidationFailed(f"pipeline {pipeline_id} has no stages yet; add a stage to it first",
                                   field="pipeline_id")
        values["stage_id"] = next(iter(stages))
    stage_id = values.get("stage_id") or (existing.stage_id if existing else None)
    if stage_id not in stages:
        names = ", ".join(f"{s.name} ({s.id})" for s in stages.values())
        raise ValidationFailed(f"stage {stage_id} is not in this deal's pipeline; its stages: {names}",
                               field="stage_id")
    if values.get("probability") is not None and not 0 <= values["probability"] <= 100:
        raise ValidationFailed("probability is a percent between 0 and 100", field="probability")
    stage = stages[stage_id]
    moved = existing is None or stage_id != existing.stage_id
    if moved:
        now = utcnow()
        values["stage_entered_at"] = now
        if stage.kind != StageKind.open:
            values["closed_at"] = now
            values.setdefault("forecast_category",
                              ForecastCategory.closed if stage.kind == StageKind.won else ForecastCategory.omitted)
            values.setdefault("probability", None)
        elif existing is not None and existing.closed_at is not None:
            # Re-opened: it is back in the pipeline.
            values["closed_at"] = None
            if existing.forecast_category in (ForecastCategory.closed, ForecastCategory.omitted):
                values.setdefault("forecast_category", ForecastCategory.pipeline)
    _custom(session, actor, CustomFieldEntity.deal, values, existing)
    return values


def _record_history(session: Session, actor: Actor, deal: Deal, before: dict[str, Any] | None,
                    virtual: dict[str, Any]) -> None:
    if before is not None:
        from store.audit import snapshot

        after = snapshot(deal)
        if all(before.get(k) == after.get(k) for k in TRACKED):
            _set_contacts(session, actor, deal, virtual)
            return
    moved_from = None
    if before is not None and before.get("stage_id") != str(deal.stage_id):
        moved_from = uuid.UUID(before["stage_id"])
    session.add(DealHistory(
        workspace_id=deal.workspace_id, deal_id=deal.id, changed_at=utcnow(), changed_by_id=actor.user_id,
        from_stage_id=moved_from, stage_id=deal.stage_id, amount=deal.amount, currency=deal.currency,
        close_date=deal.close_date, probability=deal.probability, forecast_category=deal.forecast_category,
        owner_id=deal.owner_id,
    ))
    _set_contacts(session, actor, deal, virtual)


def _set_contacts(session: Session, actor: Actor, deal: Deal, virtual: dict[str, Any]) -> None:
    """`contacts: [{contact_id, role}]` on a deal replaces the people on it."""
    if "contacts" not in virtual:
        return
    from store.services.crud import get, spec_for

    wanted = virtual["contacts"] or []
    for item in wanted:
        get(session, spec_for("contact"), actor=actor, id=item["contact_id"])
    for row in session.scalars(select(DealContact).where(DealContact.deal_id == deal.id)):
        session.delete(row)
    session.flush()
    session.add_all(DealContact(workspace_id=deal.workspace_id, deal_id=deal.id, contact_id=item["contact_id"],
                                role=item.get("role") or "other", is_primary=bool(item.get("is_primary")))
                    for item in wanted)
    session.flush()


def _deal_extras(session: Session, deals: Sequence[Deal]) -> None:
    ids = [d.id for d in deals]
    by_deal: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    stage_names = {}
    if ids:
        for row in session.scalars(select(DealContact).where(DealContact.deal_id.in_(ids))):
            by_deal[row.deal_id].append({"contact_id": row.contact_id, "role": row.role,
                                         "is_primary": row.is_primary})
        stage_ids = {d.stage_id for d in deals}
        stage_names = dict(session.execute(select(Stage.id, Stage.name).where(Stage.id.in_(stage_ids))).all())
    for deal in deals:
        deal.contacts = by_deal.get(deal.id, [])  # type: ignore[attr-defined]
        deal.stage_name = stage_names.get(deal.stage_id)  # type: ignore[attr-defined]


def _prepare_pipeline(session: Session, actor: Actor, values: dict[str, Any],
                      existing: Pipeline | None) -> dict[str, Any]:
    if values.get("is_default"):
        # One default per workspace: new deals land in it.
        for other in session.scalars(select(Pipeline).where(Pipeline.workspace_id == actor.workspace_id,
                                                            Pipeline.is_default.is_(True))):
            if other is not existing:
                other.is_default = False
    return values


pipelines = register(EntitySpec(name="pipeline", plural="pipelines", model=Pipeline, access=Access.WORKSPACE,
                                unique=("name",), default_sort="name", prepare=_prepare_pipeline))
stages = register(EntitySpec(name="stage", plural="stages", model=Stage, access=Access.WORKSPACE,
                             refs={"pipeline_id": "pipeline"}, default_sort="position"))
deals = register(EntitySpec(
    name="deal", plural="deals", model=Deal, access=Access.OWNED,
    refs={"owner_id": "user", "company_id": "company", "pipeline_id": "pipeline", "stage_id": "stage"},
    search=("name",), default_sort="-created_at", virtual_fields=("contacts",),
    prepare=_prepare_deal, after_write=_record_history, extras=_deal_extras,
))
def _prepare_deal_contact(session: Session, actor: Actor, values: dict[str, Any],
                          existing: DealContact | None) -> dict[str, Any]:
    deal_id = values.get("deal_id") or (existing.deal_id if existing else None)
    contact_id = values.get("contact_id") or (existing.contact_id if existing else None)
    other = session.scalar(select(DealContact).where(DealContact.deal_id == deal_id,
                                                     DealContact.contact_id == contact_id))
    if other is not None and other is not existing:
        raise Duplicate("this contact is already on this deal; change its role instead",
                        entity="deal_contact", existing_id=str(other.id))
    return values


deal_contacts = register(EntitySpec(
    name="deal_contact", plural="deal-contacts", model=DealContact, access=Access.PARENT,
    parent=("deal_id", "deal"), refs={"deal_id": "deal", "contact_id": "contact"}, default_sort="id",
    prepare=_prepare_deal_contact,
))
deal_history = register(EntitySpec(
    name="deal_history", plural="deal-history", model=DealHistory, access=Access.PARENT,
    parent=("deal_id", "deal"), default_sort="changed_at", write_roles=(Role.admin,),
    creatable=False, updatable=False, deletable=False,
))
