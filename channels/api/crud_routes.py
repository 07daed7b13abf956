"""One router factory for every entity's create / read / update / delete / list / history."""

# No `from __future__ import annotations`: FastAPI reads the closures' annotations at runtime.
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, create_model
from sqlalchemy.orm import Session

from channels.api.deps import get_actor, get_session
from store import schemas
from store.actor import Actor
from store.normalize import INT64_MAX
from store.services import crud
from store.services import history as history_service
from store.services.crud import EntitySpec
from store.settings import get_settings

RESERVED = {"limit", "offset", "sort", "q"}


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    created_at: Any
    actor_id: uuid.UUID | None
    surface: str
    action: str
    entity_type: str
    entity_id: uuid.UUID
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    approval_id: uuid.UUID | None
    note: str | None

    model_config = {"from_attributes": True}


class TransitionIn(BaseModel):
    model_config = {"extra": "forbid"}
    to: str


def _page_model(read: type[BaseModel], name: str) -> type[BaseModel]:
    return create_model(f"{name}Page", items=(list[read], ...), total=(int, ...),  # type: ignore[valid-type]
                        limit=(int, ...), offset=(int, ...), total_exact=(bool, True))


def entity_router(spec: EntitySpec[Any]) -> APIRouter:
    title = "".join(p.title() for p in spec.name.split("_"))
    read = schemas.read_schema(spec.model, f"{title}Out", schemas.READ_EXTRAS.get(spec.name))
    page = _page_model(read, title)
    router = APIRouter(prefix=f"/{spec.plural}", tags=[spec.plural])
    filterable = ", ".join(sorted(spec.public_columns))

    def out(obj: Any) -> Any:
        return read.model_validate(obj)

    @router.get("", response_model=page, summary=f"List {spec.plural}",
                description=f"Filters as query parameters: `field=value` (`null` for none) or "
                            f"`field__gte=value` (also `__lte`, `__gt`, `__lt`, `__ne`). "
                            f"Fields: {filterable}. `sort=-field,field2`. `q` searches "
                            f"{', '.join(spec.search) or 'nothing'}.")
    def list_items(request: Request, limit: int = Query(50, ge=1), offset: int = Query(0, ge=0, le=INT64_MAX),
                   sort: str | None = None, q: str | None = None,
                   session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
        filters = {k: v for k, v in request.query_params.items() if k not in RESERVED}
        result = crud.list_(session, spec, actor=actor, filters=filters, q=q, sort=sort,
                            limit=min(limit, get_settings().max_page_size), offset=offset)
        return {"items": [out(i) for i in result.items], "total": result.total,
                "limit": result.limit, "offset": result.offset, "total_exact": result.total_exact}

    @router.get("/{id}", response_model=read, summary=f"Get one {spec.name}")
    def get_item(id: uuid.UUID, session: Session = Depends(get_session),
                 actor: Actor = Depends(get_actor)) -> Any:
        obj = crud.get(session, spec, actor=actor, id=id)
        if spec.extras is not None:
            spec.extras(session, [obj])
        return out(obj)

    create_schema = schemas.CREATE_SCHEMAS.get(spec.name)
    if spec.creatable and create_schema is not None:
        @router.post("", response_model=read, status_code=201, summary=f"Create a {spec.name}")
        def create_item(body: create_schema, session: Session = Depends(get_session),  # type: ignore[valid-type]
                        actor: Actor = Depends(get_actor)) -> Any:
            obj = crud.create(session, spec, actor=actor, data=body.model_dump(exclude_unset=True))
            session.commit()
            return out(obj)

    if spec.updatable and create_schema is not None:
        update_schema = schemas.partial(create_schema)

        @router.patch("/{id}", response_model=read, summary=f"Change a {spec.name}")
        def update_item(id: uuid.UUID, body: update_schema, session: Session = Depends(get_session),  # type: ignore[valid-type]
                        actor: Actor = Depends(get_actor)) -> Any:
            obj = crud.update(session, spec, actor=actor, id=id, data=body.model_dump(exclude_unset=True))
            session.commit()
            return out(obj)

    if spec.transition is not None:
        @router.post("/{id}/transitions", response_model=read,
                     summary=f"Move a {spec.name} to another status", description=spec.transition.__doc__)
        def transition(id: uuid.UUID, body: TransitionIn, session: Session = Depends(get_session),
                       actor: Actor = Depends(get_actor)) -> Any:
            assert spec.transition is not None
            obj = spec.transition(session, actor=actor, id=id, to=body.to)
            session.commit()
            return out(obj)

    if spec.deletable:
        @router.delete("/{id}", status_code=204, summary=f"Delete a {spec.name}")
        def delete_item(id: uuid.UUID, session: Session = Depends(get_session),
                        actor: Actor = Depends(get_actor)) -> Response:
            crud.delete(session, spec, actor=actor, id=id)
            session.commit()
            return Response(status_code=204)

    @router.get("/{id}/history", response_model=list[AuditEntryOut],
                summary=f"Who changed this {spec.name}, when, through which door, before -> after")
    def history(id: uuid.UUID, session: Session = Depends(get_session),
                actor: Actor = Depends(get_actor)) -> Any:
        rows = history_service.of_record(session, actor=actor, entity=spec.name, id=id)
        return [AuditEntryOut.model_validate(r) for r in rows]

    return router


def audit_router() -> APIRouter:
    router = APIRouter(prefix="/audit-log", tags=["audit-log"])

    @router.get("", response_model=list[AuditEntryOut], summary="The workspace's audit log (admins)")
    def audit_log(entity_type: str | None = None, actor_id: uuid.UUID | None = None,
                  limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=INT64_MAX),
                  session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
        rows = history_service.workspace_log(session, actor=actor, entity_type=entity_type, actor_id=actor_id,
                                             limit=limit, offset=offset)
        return [AuditEntryOut.model_validate(r) for r in rows]

    return router


def all_entity_routers() -> list[APIRouter]:
    return [entity_router(spec) for spec in crud.REGISTRY.values()]
