"""Routes that are not plain CRUD: who am I, the workspace, search, timelines, API tokens."""

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from channels.api.deps import get_actor, get_session
from store import schemas
from store.actor import Actor
from store.models import User
from store.normalize import INT64_MAX
from store.services import org as org_service
from store.services import search as search_service
from store.services import timeline as timeline_service
from store.services.org import user_by_id, workspace_by_id

router = APIRouter()


class MeOut(BaseModel):
    id: uuid.UUID | None
    email: str | None
    name: str | None
    role: str
    team_id: uuid.UUID | None
    timezone: str
    workspace_id: uuid.UUID
    workspace_name: str


@router.get("/me", response_model=MeOut, tags=["me"], summary="The user this token acts as")
def me(session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    user = user_by_id(session, actor.user_id)
    ws = workspace_by_id(session, actor.workspace_id)
    return MeOut(id=actor.user_id, email=user.email if user else None, name=user.name if user else None,
                 role=actor.role.value, team_id=actor.team_id, timezone=actor.timezone,
                 workspace_id=actor.workspace_id, workspace_name=ws.name if ws else "")


class WorkspaceOut(BaseModel):
    model_config = {"from_attributes": True}
    id: uuid.UUID
    name: str
    slug: str
    default_currency: str
    timezone: str
    own_domains: list[str]
    settings: dict[str, Any]


class WorkspaceUpdate(BaseModel):
    model_config = {"extra": "forbid"}
    name: str | None = Field(None, min_length=1, max_length=200)
    default_currency: str | None = Field(None, min_length=3, max_length=3)
    timezone: str | None = None
    own_domains: list[str] | None = Field(None, description="The company's own mail domains.")
    settings: dict[str, Any] | None = Field(
        None, description='e.g. {"approvals": {"auto_approve": ["create_task"], "manager_discount_percent": 20}}')


@router.get("/workspace", response_model=WorkspaceOut, tags=["workspace"], summary="This workspace")
def get_workspace(session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    return workspace_by_id(session, actor.workspace_id)


@router.patch("/workspace", response_model=WorkspaceOut, tags=["workspace"],
              summary="Change this workspace: name, currency, own domains, approval policy (admins)")
def update_workspace(body: WorkspaceUpdate, session: Session = Depends(get_session),
                     actor: Actor = Depends(get_actor)) -> Any:
    ws = org_service.update_workspace(session, actor=actor, changes=body.model_dump(exclude_unset=True))
    session.commit()
    return ws


@router.get("/search", response_model=list[schemas.SearchHitOut], tags=["search"],
            summary="Find contacts, companies and deals by name, email, domain or phone (typos tolerated)")
def search(q: str = Query(min_length=1), kind: list[Literal["contact", "company", "deal"]] | None = Query(None),
           limit: int = Query(20, ge=1, le=100), session: Session = Depends(get_session),
           actor: Actor = Depends(get_actor)) -> Any:
    kinds = tuple(kind) if kind else ("contact", "company", "deal")
    return search_service.search(session, actor=actor, q=q, kinds=kinds, limit=limit)


def _timeline_route(kind: str, plural: str) -> None:
    @router.get(f"/{plural}/{{id}}/timeline", response_model=list[schemas.TimelineItemOut], tags=[plural],
                summary=f"Everything that happened with this {kind}, newest first")
    def timeline(id: uuid.UUID, limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=INT64_MAX),
                 session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
        return timeline_service.timeline(session, actor=actor, kind=kind, record_id=id, limit=limit,
                                         offset=offset)


for _kind, _plural in (("contact", "contacts"), ("company", "companies"), ("deal", "deals")):
    _timeline_route(_kind, _plural)


class TokenOut(BaseModel):
    id: uuid.UUID
    prefix: str = Field(description="The token's first characters, to tell tokens apart (the token itself is "
                                    "shown once, when it is created).")
    name: str
    user_id: uuid.UUID
    user_email: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _token_out(token: Any, user: User) -> TokenOut:
    return TokenOut(id=token.id, prefix=token.prefix, name=token.name, user_id=user.id, user_email=user.email,
                    created_at=token.created_at, last_used_at=token.last_used_at, revoked_at=token.revoked_at)


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"],
            summary="API tokens: your own (an admin: everyone's in the workspace), newest first")
def list_tokens(user_id: uuid.UUID | None = Query(None, description="Only this user's tokens."),
                session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    return [_token_out(t, u) for t, u in org_service.list_tokens(session, actor=actor, user_id=user_id)]


@router.post("/tokens/{token}/revoke", response_model=TokenOut, tags=["tokens"],
             summary="Revoke a token (yours; an admin: anyone's): every request with it gets 401 from now on",
             description="`token` is the token's id or the prefix the list shows. Revoking a revoked token "
                         "changes nothing. Another user's token is 404 unless you are an admin.")
def revoke_token(token: str, session: Session = Depends(get_session), actor: Actor = Depends(get_actor)) -> Any:
    row = org_service.revoke_token(session, actor=actor, ref=token)
    out = _token_out(row, user_by_id(session, row.user_id))  # type: ignore[arg-type]
    session.commit()
    return out
