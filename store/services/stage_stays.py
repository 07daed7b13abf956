"""Deal stage stays (`DealStageStay`): each deal's stage entries with when it left and what it
reached later, derived from `deal_history` and kept exact.

Stage conversion and days in stage used to find the entries with windows over the whole history
of every deal touched in the period (about 1 s for a year at 100k deals on PostgreSQL). A deal's
stays change only when its history does, so they are computed once per write instead:

- an entry is the deal's first history row, or a row with a from_stage_id (ordered by
  `(changed_at, id)`); its stay ends at the deal's next entry (`left_at`); `prev_entered_at` is
  the deal's previous entry into the same stage;
- `won_later`, `lost_later` and `top_open_later` look at the history rows strictly after the
  entry (a row at the same moment is not later), by the stages' current kind and position;
- `owner_id` is the deal's current owner, which is what the analytics scope and permissions
  go by.

Upkeep: an ORM `after_flush` hook recomputes the stays of every deal whose history rows were
added, changed or deleted, or whose owner changed, in the same transaction; a change of a stage's
kind or position recomputes the whole workspace (its figures depend on them). Writers that bypass
the ORM (bulk loads, migrations) call `rebuild`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from itertools import chain
from typing import Any

from sqlalchemy import Connection, case, delete, event, func, insert, inspect, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.sql.elements import Over

from store.models import Deal, DealHistory, DealStageStay, Stage
from store.models.enums import StageKind
from store.types import UTCDateTime


class LaterRows(Over[Any]):
    """A window over the rows strictly after the current one: ORDER BY ... DESC with
    `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP` (rows at the same moment are
    not later). SQLAlchemy has no EXCLUDE clause, so it is added when compiled. PostgreSQL 11+ and
    SQLite 3.28+."""

    inherit_cache = True


@compiles(LaterRows)
def _compile_later_rows(element: LaterRows, compiler: Any, **kw: Any) -> str:
    text = compiler.visit_over(element, **kw)
    assert text.endswith("CURRENT ROW)"), text
    return text[:-1] + " EXCLUDE GROUP)"


_COLUMNS = ("history_id", "workspace_id", "deal_id", "owner_id", "stage_id", "entered_at", "left_at",
            "prev_entered_at", "won_later", "lost_later", "top_open_later")


def _stays(where: Any) -> Any:
    """SELECT of the stays (in `_COLUMNS` order) of the deals whose history rows match `where`."""
    h, d = DealHistory, Deal
    first = func.row_number().over(partition_by=h.deal_id, order_by=(h.changed_at, h.id))

    def later(value: Any) -> Any:
        return LaterRows(func.max(value), partition_by=h.deal_id, order_by=h.changed_at.desc(), range_=(None, 0))

    rows = (select(h.id, h.workspace_id, h.deal_id, d.owner_id, h.stage_id, h.changed_at, h.from_stage_id,
                   first.label("n"),
                   later(case((Stage.kind == StageKind.won, 1), else_=0)).label("won"),
                   later(case((Stage.kind == StageKind.lost, 1), else_=0)).label("lost"),
                   later(case((Stage.kind == StageKind.open, Stage.position))).label("top_open"))
            .join(Stage, Stage.id == h.stage_id).join(d, d.id == h.deal_id).where(where).subquery())
    r = rows.c
    entries = (select(r.id, r.workspace_id, r.deal_id, r.owner_id, r.stage_id, r.changed_at, r.won, r.lost,
                      r.top_open).where(or_(r.n == 1, r.from_stage_id.is_not(None))).subquery())
    e = entries.c
    left = func.lead(e.changed_at, type_=UTCDateTime()).over(partition_by=e.deal_id, order_by=(e.changed_at, e.id))
    prev = func.lag(e.changed_at, type_=UTCDateTime()).over(partition_by=(e.deal_id, e.stage_id),
                                                             order_by=(e.changed_at, e.id))
    return select(e.id, e.workspace_id, e.deal_id, e.owner_id, e.stage_id, e.changed_at, left, prev,
                  func.coalesce(e.won, 0) == literal(1), func.coalesce(e.lost, 0) == literal(1), e.top_open)


def refresh(conn: Connection, deal_ids: Collection[uuid.UUID]) -> None:
    """Recompute the stays of these deals from their history."""
    ids = list(deal_ids)
    for start in range(0, len(ids), 500):  # bounded IN lists
        chunk = ids[start:start + 500]
        conn.execute(delete(DealStageStay).where(DealStageStay.deal_id.in_(chunk)))
        conn.execute(insert(DealStageStay).from_select(_COLUMNS, _stays(DealHistory.deal_id.in_(chunk))))


def rebuild(conn: Connection, workspace_id: uuid.UUID | None = None) -> None:
    """Recompute every stay of a workspace (or of all workspaces): after bulk loads and stage edits."""
    if workspace_id is None:
        conn.execute(delete(DealStageStay))
        conn.execute(insert(DealStageStay).from_select(_COLUMNS, _stays(literal(True))))
        return
    conn.execute(delete(DealStageStay).where(DealStageStay.workspace_id == workspace_id))
    conn.execute(insert(DealStageStay).from_select(_COLUMNS, _stays(DealHistory.workspace_id == workspace_id)))


def _changed(obj: Any, *names: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


@event.listens_for(Session, "after_flush")
def _keep_stays(session: Session, flush_context: UOWTransaction) -> None:
    """Recompute the stays the flush may have changed (the lists still show what was flushed)."""
    deal_ids: set[uuid.UUID] = set()
    workspaces: set[uuid.UUID] = set()
    deleted_deals = {obj.id for obj in session.deleted if isinstance(obj, Deal)}
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, DealHistory):
            deal_ids.add(obj.deal_id)
        elif isinstance(obj, Deal) and obj in session.dirty and _changed(obj, "owner_id"):
            deal_ids.add(obj.id)
        elif isinstance(obj, Stage) and obj in session.dirty and _changed(obj, "kind", "position"):
            workspaces.add(obj.workspace_id)
    deal_ids -= deleted_deals  # their stays go with them (ON DELETE CASCADE)
    if not deal_ids and not workspaces:
        return
    conn = session.connection()
    for workspace_id in workspaces:
        rebuild(conn, workspace_id)
    if deal_ids:
        refresh(conn, deal_ids)
