"""The daily activity rollup (`ActivityDayCount`): its upkeep and the counts that read it.

A cell is (workspace, UTC day of occurred_at, owner, type); its count is the sum of `n` over its
rows. The activity service adds +1 / -1 on every write (`count_activity`, from
store/services/engagement.py), so the rollup is exact inside the writing transaction; `rebuild`
refills it from the activities (the demo, the bench loader, a repair). `counts` answers "activities
in [lo, hi) per owner and type": whole UTC days from the rollup, the partial days at either end
(a period in a zone that is not UTC) from the activities themselves, in one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    Select,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import Activity, ActivityDayCount
from store.models.enums import ActivityType
from store.types import uuid7

# A filter on an owner column (the activities' or the rollup's): the caller's permission and scope.
OwnerFilter = Callable[[Any], ColumnElement[bool]]

_T = ActivityDayCount.__table__
_A = Activity.__table__
_CELL = [_T.c.workspace_id, _T.c.day, _T.c.owner_id, _T.c.type]


def utc_day(at: datetime) -> date:
    """The UTC date of an instant (a naive datetime is taken as UTC)."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC).date()


def _dialect(bind: Session | Connection) -> str:
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name


def count_activity(session: Session | Connection, workspace_id: uuid.UUID, owner_id: uuid.UUID | None,
                   type: ActivityType | str, occurred_at: datetime, delta: int) -> None:
    """Add `delta` (+1 or -1) to the activity's cell. An upsert on the cell's unique key, safe with
    concurrent writers; a NULL owner escapes the key, so its delta goes to one existing row of the
    cell or, when there is none, to a new row (concurrent writers may add two: they still sum right)."""
    if not delta:
        return
    values = {"workspace_id": workspace_id, "day": utc_day(occurred_at), "owner_id": owner_id,
              "type": ActivityType(type), "n": delta}
    if owner_id is None:
        one = (select(_T.c.id).where(_T.c.workspace_id == workspace_id, _T.c.day == values["day"],
                                     _T.c.owner_id.is_(None), _T.c.type == values["type"])
               .limit(1).scalar_subquery())
        if session.execute(update(_T).where(_T.c.id == one).values(n=_T.c.n + delta)).rowcount:  # type: ignore[attr-defined]
            return
        session.execute(insert(_T).values(id=uuid7(), **values))
        return
    upsert = (postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert)(_T)
    stmt = upsert.values(id=uuid7(), **values)
    session.execute(stmt.on_conflict_do_update(index_elements=_CELL, set_={"n": _T.c.n + stmt.excluded.n}))


def _day_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """SQL: the UTC date of a timestamp column (PostgreSQL timestamptz; SQLite UTC text)."""
    if dialect == "postgresql":
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    return func.date(column)


def rebuild(bind: Session | Connection, workspace_id: uuid.UUID | None = None) -> int:
    """Delete the rollup (of one workspace, or all) and refill it from the activities with one
    INSERT ... SELECT ... GROUP BY. Returns the number of cells written."""
    dialect = _dialect(bind)
    a = _A.c
    day = _day_of(a.occurred_at, dialect)
    grouped = select(a.workspace_id, day.label("day"), a.owner_id, a.type, func.count().label("n"))
    gone = delete(_T)
    if workspace_id is not None:
        grouped = grouped.where(a.workspace_id == workspace_id)
        gone = gone.where(_T.c.workspace_id == workspace_id)
    g = grouped.group_by(a.workspace_id, day, a.owner_id, a.type).subquery()
    new_id = func.gen_random_uuid() if dialect == "postgresql" else func.lower(func.hex(func.randomblob(16)))
    bind.execute(gone)
    result = bind.execute(insert(_T).from_select(
        ["id", "workspace_id", "day", "owner_id", "type", "n"],
        select(new_id, g.c.workspace_id, g.c.day, g.c.owner_id, g.c.type, g.c.n),
    ).execution_options(preserve_rowcount=True))  # an INSERT's rowcount is kept only when asked
    return max(result.rowcount, 0)  # type: ignore[attr-defined]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def counts_query(*, workspace_id: uuid.UUID, lo: datetime, hi: datetime,
                 owners: OwnerFilter | None = None) -> Select[Any]:
    """SELECT owner_id, type, n: the activities of the workspace that occurred in [lo, hi) (aware
    instants), per owner and type, only the owners that `owners(owner_column)` admits; groups of
    0 left out. The whole UTC days inside [lo, hi) are summed from the rollup, the partial days at
    either end counted from the activities (through ix_activities_workspace_occurred)."""
    def admit(column: Any) -> ColumnElement[bool]:
        return owners(column) if owners is not None else true()

    def raw(start: datetime, end: datetime) -> Select[Any]:
        a = _A.c
        return (select(a.owner_id, a.type, func.count().label("n"))
                .where(a.workspace_id == workspace_id, a.occurred_at >= start, a.occurred_at < end,
                       admit(a.owner_id))
                .group_by(a.owner_id, a.type))

    lo_utc, hi_utc = lo.astimezone(UTC), hi.astimezone(UTC)
    first = lo_utc.date() + timedelta(days=0 if lo_utc == _midnight(lo_utc.date()) else 1)
    last = hi_utc.date()  # whole days: [first, last)
    parts: list[Select[Any]] = []
    if first < last:
        r = _T.c
        parts.append(select(r.owner_id, r.type, func.sum(r.n).label("n"))
                     .where(r.workspace_id == workspace_id, r.day >= first, r.day < last, admit(r.owner_id))
                     .group_by(r.owner_id, r.type))
        if lo_utc < _midnight(first):
            parts.append(raw(lo_utc, _midnight(first)))
        if _midnight(last) < hi_utc:
            parts.append(raw(_midnight(last), hi_utc))
    else:
        parts.append(raw(lo_utc, hi_utc))
    u = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("counted")
    total = func.sum(u.c.n)
    return (select(u.c.owner_id, u.c.type, cast(total, BigInteger).label("n"))
            .group_by(u.c.owner_id, u.c.type).having(total != 0))


def counts(session: Session | Connection, *, workspace_id: uuid.UUID, lo: datetime, hi: datetime,
           owners: OwnerFilter | None = None) -> list[tuple[uuid.UUID | None, ActivityType, int]]:
    """[(owner_id, type, n)] for the activities in [lo, hi); see `counts_query`."""
    return [(o, t, int(n)) for o, t, n in
            session.execute(counts_query(workspace_id=workspace_id, lo=lo, hi=hi, owners=owners))]
