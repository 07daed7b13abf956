"""The one implementation of create / get / update / delete / list for every entity.

Each entity is described once by an `EntitySpec` (its model, who may read and write
it, which fields reference other records, which must be unique, and hooks for what
is particular to it). Every query goes through `readable()` and every write through
`_check_write()`, so a new entity cannot forget the permission rules.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, Integer, Numeric, Select, SmallInteger, String, func, inspect, or_, select
from sqlalchemy.orm import Session

from store import audit, events, normalize
from store.actor import Actor
from store.errors import Duplicate, NotFound, PermissionDenied, ValidationFailed
from store.models.base import Base, is_server_only
from store.models.enums import AuditAction, Role
from store.permissions import can_write_owner, check_can_assign, owner_readable

M = TypeVar("M", bound=Base)


class Access(enum.Enum):
    OWNED = "owned"  # visibility by owner_id (store/permissions.py)
    WORKSPACE = "workspace"  # everyone in the workspace reads; `write_roles` write
    PARENT = "parent"  # visible and writable as its parent record is
    RULE = "rule"  # visible by its own service's rule (`visible`); read-only here


Hook = Callable[..., Any]


@dataclass
class EntitySpec(Generic[M]):
    name: str  # singular, as in messages and audit entries: "contact"
    plural: str  # URL segment: "contacts"
    model: type[M]
    access: Access
    write_roles: tuple[Role, ...] = (Role.admin,)
    # For Access.PARENT: the foreign key column name and the parent's spec name.
    parent: tuple[str, str] | None = None
    # field -> spec name of the record it points at; checked readable on every write.
    refs: dict[str, str] = field(default_factory=dict)
    # Fields whose value must be unique in the workspace (409 names the existing record);
    # with `unique_per_owner`, unique among one owner's records (each rep's copy of an email).
    unique: tuple[str, ...] = ()
    unique_per_owner: bool = False
    # Columns `?q=` searches (case-insensitive substring).
    search: tuple[str, ...] = ()
    default_sort: str = "-created_at"
    # Hooks: prepare(session, actor, values, existing) -> values, before the row is written;
    # after_write(session, actor, obj, before) once it is flushed; extras(session, objs)
    # to attach computed attributes for reading; before_delete(session, actor, obj).
    prepare: Hook | None = None
    after_write: Hook | None = None
    extras: Hook | None = None
    before_delete: Hook | None = None
    creatable: bool = True
    updatable: bool = True
    deletable: bool = True
    # Fields accepted by create/update that are not columns (handled by hooks).
    virtual_fields: tuple[str, ...] = ()
    # For Access.OWNED: the column naming whose record it is.
    owner_field: str = "owner_id"
    # For Access.RULE: visible(actor) -> SQL clause of the rows the actor may see (the same
    # rule the entity's own service applies, so every door shows the same rows).
    visible: Callable[[Actor], Any] | None = None
    # For an entity with a state machine: transition(session, actor=, id=, to=) -> record, the
    # one way its status moves (POST /<plural>/{id}/transitions).
    transition: Hook | None = None

    @property
    def columns(self) -> dict[str, Any]:
        return {c.key: c.columns[0] for c in inspect(self.model).mapper.column_attrs}

    @property
    def public_columns(self) -> dict[str, Any]:
        """The columns a caller may filter and sort by: not the server-only ones (a filter on a
        file's path would spell the path out, a character at a time)."""
        return {k: c for k, c in self.columns.items() if not is_server_only(c)}


REGISTRY: dict[str, EntitySpec[Any]] = {}


def register(spec: EntitySpec[M]) -> EntitySpec[M]:
    REGISTRY[spec.name] = spec
    return spec


def spec_for(name: str) -> EntitySpec[Any]:
    return REGISTRY[name]


# --- reading ---------------------------------------------------------------------------


def readable(spec: EntitySpec[M], actor: Actor) -> Select[tuple[M]]:
    """SELECT of the rows of `spec` the actor may see."""
    model: Any = spec.model
    query = select(model).where(model.workspace_id == actor.workspace_id)
    if spec.access is Access.OWNED:
        query = query.where(owner_readable(actor, getattr(model, spec.owner_field)))
    elif spec.access is Access.PARENT:
        assert spec.parent is not None
        fk, parent_name = spec.parent
        parent: Any = spec_for(parent_name).model
        visible_parents = readable(spec_for(parent_name), actor).with_only_columns(parent.id)
        query = query.where(getattr(model, fk).in_(visible_parents))
    elif spec.access is Access.RULE:
        assert spec.visible is not None
        query = query.where(spec.visible(actor))
    return query


def get(session: Session, spec: EntitySpec[M], *, actor: Actor, id: uuid.UUID) -> M:
    """One record the actor may read, or NotFound (never revealing that it exists)."""
    obj = session.scalar(readable(spec, actor).where(spec.model.id == id))  # type: ignore[attr-defined]
    if obj is None:
        raise NotFound(f"no {spec.name} with id {id}", entity=spec.name, id=str(id))
    return obj


def _check_write(session: Session, spec: EntitySpec[Any], actor: Actor, obj: Any) -> None:
    if spec.access is Access.OWNED:
        if not can_write_owner(session, actor, getattr(obj, spec.owner_field)):
            raise PermissionDenied(
                f"you can read this {spec.name} but only its owner, their manager or an admin can change it",
                entity=spec.name,
                id=str(obj.id),
            )
    elif spec.access is Access.WORKSPACE:
        if actor.role not in spec.write_roles and not actor.is_admin:
            roles = " or ".join(r.value for r in spec.write_roles)
            raise PermissionDenied(f"only {roles} users can change {spec.plural}", entity=spec.name)
    elif spec.access is Access.RULE:  # written only by its own service
        raise PermissionDenied(f"{spec.plural} cannot be changed through this interface", entity=spec.name)
    else:
        assert spec.parent is not None
        fk, parent_name = spec.parent
        parent_spec = spec_for(parent_name)
        parent = get(session, parent_spec, actor=actor, id=getattr(obj, fk))
        _check_write(session, parent_spec, actor, parent)


def get_for_write(session: Session, spec: EntitySpec[M], *, actor: Actor, id: uuid.UUID) -> M:
    obj = get(session, spec, actor=actor, id=id)
    _check_write(session, spec, actor, obj)
    return obj


@dataclass
class Page(Generic[M]):
    items: Sequence[M]
    total: int  # exact up to COUNT_CAP; beyond it, COUNT_CAP and total_exact is False
    limit: int
    offset: int
    total_exact: bool = True


# Counting a million permission-filtered rows costs more than the page itself
# (bench/README.md); past this many, lists say "10000+" instead.
COUNT_CAP = 10_000


FILTER_OPS = {"gte": "__ge__", "lte": "__le__", "gt": "__gt__", "lt": "__lt__", "ne": "__ne__"}


def _coerce(column: Any, raw: Any, key: str) -> Any:
    if raw is None or (isinstance(raw, str) and raw.lower() == "null"):
        return None
    normalize.storable({key: raw})
    try:
        py = column.type.python_type
    except NotImplementedError:
        return raw
    try:
        if isinstance(raw, py):
            value = raw
        elif issubclass(py, enum.Enum):
            return py(raw)
        elif py is bool:
            return str(raw).lower() in {"1", "true", "yes"}
        elif py is uuid.UUID:
            return uuid.UUID(str(raw))
        elif py is datetime:
            value = datetime.fromisoformat(str(raw))
            if value.tzinfo is None:
                raise ValueError("add a time zone offset, e.g. 2026-01-31T00:00:00Z")
        elif py is date:
            return date.fromisoformat(str(raw))
        elif py is Decimal:
            value = Decimal(str(raw))
        else:
            value = py(raw)
    except (ValueError, InvalidOperation) as exc:
        raise ValidationFailed(f"filter {key}={raw!r} is not a valid {py.__name__}: {exc}", field=key) from exc
    problem = out_of_range(column, value)
    if problem:
        raise ValidationFailed(f"filter {key}={raw!r} is out of range: {problem}", field=key)
    return value


# PostgreSQL's ranges, which SQLite would store but PostgreSQL refuses: the same answer on both.
_INT_RANGES = ((BigInteger, 2**63), (SmallInteger, 2**15), (Integer, 2**31))


def out_of_range(column: Any, value: Any) -> str | None:
    """Why the column cannot hold `value` (a number past its type's range), or None."""
    name = column.key
    if isinstance(value, int) and not isinstance(value, bool):
        bound = next((b for kind, b in _INT_RANGES if isinstance(column.type, kind)), 2**63)
        if not -bound <= value < bound:
            return f"whole numbers from {-bound} to {bound - 1} fit in {name}"
    if isinstance(value, Decimal):
        if not value.is_finite():
            return f"{name} takes finite numbers only"
        numeric = getattr(column.type, "impl", column.type)
        if isinstance(numeric, Numeric) and numeric.precision is not None:
            whole = numeric.precision - (numeric.scale or 0)
            if value != 0 and value.adjusted() >= whole:
                return f"{name} has at most {whole} digits before the decimal point"
    return None


def apply_filters(spec: EntitySpec[Any], query: Select[Any], filters: dict[str, Any]) -> Select[Any]:
    """`field=value` (equality, `null` for IS NULL) and `field__gte=value` etc."""
    columns = spec.public_columns
    for key, raw in filters.items():
        name, _, op = key.partition("__")
        column = columns.get(name)
        if column is None or (op and op not in FILTER_OPS):
            allowed = ", ".join(sorted(columns))
            raise ValidationFailed(
                f"cannot filter {spec.plural} by '{key}'; filterable fields: {allowed}"
                " (suffix __gte, __lte, __gt, __lt or __ne to compare)",
                field=key,
            )
        value = _coerce(column, raw, key)
        if op:
            query = query.where(getattr(column, FILTER_OPS[op])(value))
        else:
            query = query.where(column.is_(None) if value is None else column == value)
    return query


def apply_sort(spec: EntitySpec[Any], query: Select[Any], sort: str | None) -> Select[Any]:
    columns = spec.public_columns
    order = []
    for part in (sort or spec.default_sort).split(","):
        part = part.strip()
        name = part.lstrip("-+")
        if name not in columns:
            raise ValidationFailed(
                f"cannot sort {spec.plural} by '{name}'; sortable fields: {', '.join(sorted(columns))}",
                field="sort",
            )
        col = columns[name]
        order.append(col.desc() if part.startswith("-") else col.asc())
    # The id (time-ordered) breaks ties so pages never overlap or skip.
    order.append(columns["id"].desc() if (sort or spec.default_sort).startswith("-") else columns["id"].asc())
    return query.order_by(*order)


def list_(
    session: Session,
    spec: EntitySpec[M],
    *,
    actor: Actor,
    filters: dict[str, Any] | None = None,
    q: str | None = None,
    sort: str | None = None,
    limit: int = 50,
    offset: int = 0,
    base: Select[tuple[M]] | None = None,
) -> Page[M]:
    """A page of readable records, filtered, searched and sorted."""
    for name, number in (("limit", limit), ("offset", offset)):
        if not 0 <= number <= normalize.INT64_MAX:
            raise ValidationFailed(f"{name} must be between 0 and {normalize.INT64_MAX}", field=name)
    query = base if base is not None else readable(spec, actor)
    query = apply_filters(spec, query, filters or {})
    if q and spec.search:
        normalize.storable({"q": q})
        pattern = f"%{q.strip().lower()}%"
        cols = [spec.columns[c] for c in spec.search]
        query = query.where(or_(*(func.lower(c).like(pattern) for c in cols)))
    capped = query.order_by(None).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(capped)) or 0
    items = session.scalars(apply_sort(spec, query, sort).limit(limit).offset(offset)).all()
    if spec.extras is not None:
        spec.extras(session, items)
    return Page(items=items, total=min(total, COUNT_CAP), limit=limit, offset=offset,
                total_exact=total <= COUNT_CAP)


# --- writing ---------------------------------------------------------------------------


def _check_refs(session: Session, spec: EntitySpec[Any], actor: Actor, values: dict[str, Any]) -> None:
    for fld, target in spec.refs.items():
        ref_id = values.get(fld)
        if ref_id is None:
            continue
        try:
            get(session, spec_for(target), actor=actor, id=ref_id)
        except NotFound as exc:
            raise ValidationFailed(
                f"{fld}: no {target} with id {ref_id} that you can see", field=fld
            ) from exc


def _check_unique(session: Session, spec: EntitySpec[Any], actor: Actor, values: dict[str, Any],
                  existing: Any | None) -> None:
    model: Any = spec.model
    for fld in spec.unique:
        value = values.get(fld)
        scope = [model.workspace_id == actor.workspace_id]
        if spec.unique_per_owner:
            # Another owner's copy is no clash (and is never named); moving a copy to an owner
            # who has one already is.
            owner = values.get(spec.owner_field, getattr(existing, spec.owner_field, None))
            if existing is not None:
                if owner == getattr(existing, spec.owner_field) and value in (None, getattr(existing, fld)):
                    continue
                value = getattr(existing, fld) if value is None else value
            scope.append(getattr(model, spec.owner_field) == owner)
        elif existing is not None and getattr(existing, fld) == value:
            continue
        if value is None:
            continue
        # Values arrive normalized (emails and domains lower-cased by the prepare hooks), so a
        # plain equality uses the (workspace_id, field) unique index instead of scanning.
        match = getattr(model, fld) == value
        # Duplicates are checked across the whole scope, not only what the actor can see: the
        # unique index does the same, and a clear 409 beats an integrity error.
        other = session.scalar(select(model).where(*scope, match))
        if other is not None:
            visible = session.scalar(readable(spec, actor).where(model.id == other.id)) is not None
            raise Duplicate(
                f"a {spec.name} with {fld} '{value}' already exists"
                + ("" if visible else " (owned by someone outside your team; ask an admin)"),
                entity=spec.name,
                field=fld,
                existing_id=str(other.id) if visible else None,
            )


def _check_columns(spec: EntitySpec[Any], values: dict[str, Any]) -> None:
    """What the database would refuse, refused first with a sentence (not a 500 from the driver)."""
    for key, value in values.items():
        column = spec.columns.get(key)
        if column is None:
            continue
        if value is None and not column.nullable:
            raise ValidationFailed(f"{key} cannot be empty on a {spec.name}", field=key)
        limit = getattr(column.type, "length", None)
        if isinstance(value, str) and isinstance(column.type, String) and limit and len(value) > limit:
            raise ValidationFailed(f"{key} is {len(value)} characters long; at most {limit} fit", field=key)
        problem = out_of_range(column, value)
        if problem:
            raise ValidationFailed(f"{key} is out of range: {problem}", field=key)


def create(session: Session, spec: EntitySpec[M], *, actor: Actor, data: dict[str, Any]) -> M:
    if not spec.creatable:
        raise PermissionDenied(f"{spec.plural} cannot be created through this interface")
    normalize.storable(data)
    values = dict(data)
    if spec.access is Access.OWNED:
        values.setdefault("owner_id", actor.user_id)
        check_can_assign(session, actor, values.get("owner_id"))
    if spec.prepare is not None:
        values = spec.prepare(session, actor, values, None)
    _check_refs(session, spec, actor, values)
    _check_unique(session, spec, actor, values, None)
    virtual = {k: values.pop(k) for k in spec.virtual_fields if k in values}
    _check_columns(spec, values)
    obj = spec.model(workspace_id=actor.workspace_id, **values)
    _check_write(session, spec, actor, obj)
    session.add(obj)
    session.flush()
    if spec.after_write is not None:
        spec.after_write(session, actor, obj, None, virtual)
    session.refresh(obj)  # what the database holds (48000 reads back as 48000.00), as a GET shows it
    audit.record(session, actor, action=AuditAction.create, entity_type=spec.name, approval_id=actor.approval_id,
                 entity_id=obj.id, after=audit.snapshot(obj) | audit.jsonable(virtual))  # type: ignore[attr-defined]
    if spec.extras is not None:
        spec.extras(session, [obj])
    events.emit(session, spec.name, obj.id, "created", actor.workspace_id)
    return obj


def update(session: Session, spec: EntitySpec[M], *, actor: Actor, id: uuid.UUID,
           data: dict[str, Any]) -> M:
    if not spec.updatable:
        raise PermissionDenied(f"{spec.plural} cannot be changed through this interface")
    normalize.storable(data)
    obj: Any = get_for_write(session, spec, actor=actor, id=id)
    before = audit.snapshot(obj)
    values = dict(data)
    if spec.access is Access.OWNED and "owner_id" in values and values["owner_id"] != obj.owner_id:
        check_can_assign(session, actor, values["owner_id"])
    if spec.prepare is not None:
        values = spec.prepare(session, actor, values, obj)
    _check_refs(session, spec, actor, values)
    _check_unique(session, spec, actor, values, obj)
    virtual = {k: values.pop(k) for k in spec.virtual_fields if k in values}
    _check_columns(spec, values)
    for key, value in values.items():
        setattr(obj, key, value)
    session.flush()
    if spec.after_write is not None:
        spec.after_write(session, actor, obj, before, virtual)
    session.refresh(obj)
    old, new = audit.changes(before, audit.snapshot(obj))
    if virtual:
        new |= audit.jsonable(virtual)
    if new:
        audit.record(session, actor, action=AuditAction.update, entity_type=spec.name,
                     entity_id=obj.id, before=old, after=new, approval_id=actor.approval_id)
        events.emit(session, spec.name, obj.id, "updated", actor.workspace_id)
    if spec.extras is not None:
        spec.extras(session, [obj])
    return obj


def delete(session: Session, spec: EntitySpec[M], *, actor: Actor, id: uuid.UUID) -> None:
    if not spec.deletable:
        raise PermissionDenied(f"{spec.plural} cannot be deleted through this interface")
    obj: Any = get_for_write(session, spec, actor=actor, id=id)
    if spec.before_delete is not None:
        spec.before_delete(session, actor, obj)
    audit.record(session, actor, action=AuditAction.delete, entity_type=spec.name,
                 entity_id=obj.id, before=audit.snapshot(obj), approval_id=actor.approval_id)
    session.delete(obj)
    session.flush()
    events.emit(session, spec.name, obj.id, "deleted", actor.workspace_id)
