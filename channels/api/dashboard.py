"""The manager's dashboard as one JSON document: pipeline by stage, the forecast for a period
(with quota attainment), the forecast by rep, and stale deals.

Every number comes from the same services the chat tools call (store/services/pipeline.py,
dashboard.py, analytics.py), acting as the token's user, so the page and the bot agree and a
rep sees only what they may read. Amounts are per currency ({"USD": "48000.00"}), never summed
across currencies. Included in channels/api/app.py under /api/v1; the page is /dashboard.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from channels.api.deps import get_actor, get_session
from store.actor import Actor
from store.services import analytics as analytics_service
from store.services import dashboard as dashboard_service
from store.services import pipeline as pipeline_service
from store.services.org import workspace_by_id
from tools.base import ToolContext
from tools.scope import resolve_period

router = APIRouter(tags=["dashboard"])

Amounts = dict[str, Decimal]  # currency -> amount
DashboardPeriod = Literal["this_quarter", "next_quarter", "this_month", "next_month"]


class PeriodOut(BaseModel):
    name: str
    start: date
    end: date


class StageOut(BaseModel):
    stage: str
    deals: int
    amount: Amounts
    weighted: Amounts


class PipelineOut(BaseModel):
    stages: list[StageOut]
    total_deals: int


class DealOut(BaseModel):
    id: uuid.UUID
    name: str
    amount: Decimal | None
    currency: str
    close_date: date | None
    stage: str
    forecast_category: str
    status: Literal["open", "won"]


class AttainmentOut(BaseModel):
    closed_won: float = Field(description="Closed won in the quota's currency, as a share of the quota (0.3 = 30%).")
    with_commit: float = Field(description="Closed won + commit, as a share of the quota.")


class ForecastOut(BaseModel):
    closed_won: Amounts
    commit: Amounts
    best_case: Amounts
    pipeline: Amounts
    weighted: Amounts
    open_deals: int
    won_deals: int
    quota: Decimal | None
    quota_currency: str | None
    attainment: AttainmentOut | None
    deals: list[DealOut] = Field(description="The largest deals counted.")


class RepForecastOut(ForecastOut):
    owner_id: uuid.UUID | None
    owner: str


class StaleDealOut(BaseModel):
    id: uuid.UUID
    name: str
    owner: str
    stage: str
    amount: Decimal | None
    currency: str
    last_activity: datetime | None = Field(description="None: no activity ever; `days` counts from its creation.")
    days: int


class StaleOut(BaseModel):
    days: int = Field(description="No activity for at least this many days.")
    total: int
    deals: list[StaleDealOut] = Field(description="The oldest first, at most 20.")


class DashboardOut(BaseModel):
    as_of: date = Field(description="Today, in the user's time zone: what the periods count from.")
    scope: Literal["mine", "team", "all"]
    scope_label: str
    not_shown: str | None = Field(None, description="When the scope asked for is wider than what you may see (a "
                                                    "rep's or manager's `all`): what is left out and why, as the "
                                                    "chat says it.")
    period: PeriodOut
    default_currency: str = Field(description="The workspace's currency (quotas are in it).")
    pipeline: PipelineOut
    forecast: ForecastOut
    forecast_by_rep: list[RepForecastOut]
    stale: StaleOut


def _attainment(att: dashboard_service.Attainment | None) -> AttainmentOut | None:
    return None if att is None else AttainmentOut(closed_won=float(att.closed_won), with_commit=float(att.with_commit))


def _forecast_fields(fc: Any, att: dashboard_service.Attainment | None) -> dict[str, Any]:
    """The fields a scope's forecast and a rep's line share (pipeline.Forecast, dashboard.OwnerForecast)."""
    return {"closed_won": fc.closed_won, "commit": fc.commit, "best_case": fc.best_case, "pipeline": fc.pipeline,
            "weighted": fc.weighted, "open_deals": fc.open_deals, "won_deals": fc.won_deals, "quota": fc.quota,
            "quota_currency": fc.quota_currency, "attainment": _attainment(att),
            "deals": [DealOut(**deal) for deal in fc.deals]}


@router.get("/dashboard", response_model=DashboardOut, summary="The manager's dashboard: pipeline, forecast, stale",
            description="Open pipeline by stage; the forecast for a period (closed won, commit, best case, pipeline, "
                        "weighted; quota attainment); the same forecast by rep; and open deals with no activity "
                        "for `stale_days` days. The numbers the chat's pipeline_summary, forecast_summary and "
                        "pipeline_analytics(stale_deals) give. Amounts are per currency.")
def dashboard(
    period: DashboardPeriod = Query("this_quarter", description="The forecast's period."),
    scope: Literal["mine", "team", "all"] | None = Query(
        None, description="Whose deals: mine, my team's, or all I can read. Default: a rep's own, a manager's team, "
                          "everything for an admin."),
    stale_days: int = Query(30, ge=1, le=365, description="Stale: no activity for at least this many days."),
    top: int = Query(10, ge=1, le=50, description="Deals listed per forecast (and per rep)."),
    session: Session = Depends(get_session), actor: Actor = Depends(get_actor),
) -> Any:
    ctx = ToolContext(actor=actor, session=session)  # today and the time zone, as the chat tools see them
    answered = pipeline_service.answer_scope(session, actor=actor, scope=scope)  # what the chat tools answer
    scope = answered.scope  # type: ignore[assignment]
    start, end, _label = resolve_period(ctx, period, None, None)  # the chat tools' own period rule
    stages = pipeline_service.pipeline_by_stage(session, actor=actor, scope=scope)
    fc = pipeline_service.forecast(session, actor=actor, scope=scope, start=start, end=end, top=top)
    reps = dashboard_service.forecast_by_owner(session, actor=actor, scope=scope, start=start, end=end, top=top)
    stale = analytics_service.stale_deals(session, actor=actor, scope=scope, today=ctx.today, days=stale_days,
                                          tz=ctx.tz)
    ws = workspace_by_id(session, actor.workspace_id)
    return DashboardOut(
        as_of=ctx.today, scope=scope, scope_label=answered.label, not_shown=answered.heading() or None,
        period=PeriodOut(name=period, start=start, end=end),
        default_currency=ws.default_currency if ws else "USD",
        pipeline=PipelineOut(stages=[StageOut(stage=s.stage, deals=s.deals, amount=s.amount, weighted=s.weighted)
                                     for s in stages], total_deals=sum(s.deals for s in stages)),
        forecast=ForecastOut(**_forecast_fields(
            fc, dashboard_service.attainment(fc.closed_won, fc.commit, fc.quota, fc.quota_currency))),
        forecast_by_rep=[RepForecastOut(owner_id=r.owner_id, owner=r.owner, **_forecast_fields(r, r.attainment))
                         for r in reps],
        stale=StaleOut(days=stale.days, total=stale.total, deals=[
            StaleDealOut(id=s.id, name=s.name, owner=s.owner, stage=s.stage, amount=s.amount, currency=s.currency,
                         last_activity=s.last_activity, days=s.days) for s in stale.deals]),
    )
