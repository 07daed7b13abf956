"""CSV import of contacts, companies and deals (our own columns, HubSpot and Pipedrive exports).

Every row is created through `crud.create` (permissions, duplicate checks, an audit entry
with surface `import`) inside its own SAVEPOINT, so a bad row leaves nothing behind and
the good rows wait for the caller's single commit. Rows are never updated: a record that
already exists is an error row naming it. What the file may contain (headers, amounts,
dates, stage names) is in `store.import_formats`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from store import normalize, schemas
from store.actor import Actor
from store.errors import CRMError, Duplicate, ValidationFailed
from store.import_formats import (
    DEFAULT_PIPELINE_NAMES,
    FREE_MAIL,
    HEADERS,
    PLAIN_FIELDS,
    STAGE_ALIASES,
    Source,
    cell_value,
    compact,
    parse_amount,
    parse_choice,
    parse_country,
    parse_date,
    parse_integer,
    read_rows,
)
from store.models import Company, Contact, Deal, Pipeline, Stage, User, Workspace
from store.models.enums import ForecastCategory, LeadStatus, LifecycleStage, Surface
from store.services import crud

Entity = Literal["contacts", "companies", "deals"]
ENTITIES: tuple[str, ...] = ("contacts", "companies", "deals")
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}


@dataclass
class RowError:
    line: int  # physical line in the file where the row starts (the header is line 1)
    reason: str
    values: dict[str, str]
    code: str = "validation_error"  # or "duplicate", "forbidden", "not_found", "conflict"


@dataclass
class ImportReport:
    """Rows are created or rejected; an existing record is never overwritten (no upsert)."""

    entity: str
    dry_run: bool
    total_rows: int = 0
    created: int = 0
    companies_created: int = 0  # made from a contact's or deal's company name
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # the file's header, for an errors file


# --- the run --------------------------------------------------------------------------


def import_csv(session: Session, *, actor: Actor, entity: Entity | str, rows: Source, dry_run: bool = False,
               progress: Callable[[int], None] | None = None) -> ImportReport:
    """Create a record per valid row; report every other row with its line and what to fix."""
    if entity not in ENTITIES:
        raise ValidationFailed(f"cannot import '{entity}'; import one of: {', '.join(ENTITIES)}", field="entity")
    report = ImportReport(entity=entity, dry_run=dry_run)
    header, records = read_rows(rows, report.notes)
    if not any(header):
        raise ValidationFailed("the file is empty: the first line must name the columns", field="file")
    report.columns = header
    run = _Run(session, actor.via(Surface.import_), report, header)
    build = {"contacts": run.contact_row, "companies": run.company_row, "deals": run.deal_row}[entity]
    # One savepoint around the whole file: a dry run always rolls it back, and so does a file
    # that cannot be read to its end (a field over the size limit), so no half of it stays.
    outer = session.begin_nested()
    try:
        for line, values in records:
            report.total_rows += 1
            run.start(line)
            raw = dict(zip(header, values, strict=False))
            try:
                if len(values) > len(header) and any(v.strip() for v in values[len(header):]):
                    raise ValidationFailed(f"the row has {len(values)} values but the header names {len(header)} "
                                           "columns (a delimiter inside a value that is not quoted?)")
                with session.begin_nested():
                    build(run.fields(values))
                report.created += 1
                run.finish(ok=True)
            except (CRMError, DBAPIError) as exc:
                report.errors.append(RowError(line, run.reason(exc), raw, getattr(exc, "code", "conflict")))
                run.finish(ok=False)
            if progress is not None:
                progress(report.total_rows)
    except BaseException:
        outer.rollback()
        raise
    if dry_run:
        outer.rollback()
    else:
        outer.commit()
    return report


class _Run:
    """The state of one import: lookups, what earlier rows claimed, the current line."""

    def __init__(self, session: Session, actor: Actor, report: ImportReport, header: list[str]) -> None:
        self.session, self.actor, self.report = session, actor, report
        aliases = {compact(f): f for f in PLAIN_FIELDS[report.entity]}
        for fld, names in HEADERS[report.entity].items():
            aliases |= {n: fld for n in names.split()} | {compact(fld): fld}
        model_fields = schemas.CREATE_SCHEMAS[_SINGULAR[report.entity]].model_fields
        aliases |= {compact(f): f for f in model_fields if not f.endswith("_id") and f != "custom_fields"}
        self.columns = [aliases.get(compact(h)) for h in header]
        self.column_of: dict[str, str] = {}
        for h, fld in zip(header, self.columns, strict=True):
            if fld:
                self.column_of.setdefault(fld, h)
        report.ignored_columns = [h for h, fld in zip(header, self.columns, strict=True) if fld is None and h]
        ws = session.get(Workspace, actor.workspace_id)
        self.own_domains = {d.lower() for d in (ws.own_domains if ws else [])}
        self.users = session.scalars(select(User).where(User.workspace_id == actor.workspace_id)).all()
        self.seen: dict[tuple[str, str], int] = {}
        self._pipelines: Sequence[Pipeline] | None = None
        self._stages: dict[uuid.UUID, Sequence[Stage]] = {}
        self.line, self._claims, self._companies = 0, {}, 0  # type: ignore[var-annotated]
        self.problems: list[str] = []

    def start(self, line: int) -> None:
        self.line, self._claims, self._companies, self.problems = line, {}, 0, []

    def soft(self, parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`parse(...)`, or None with its reason noted: a row's reason lists all its bad values at once."""
        try:
            return parse(*args, **kwargs)
        except ValidationFailed as exc:
            self.problems.append(self.reason(exc))
            return None

    def check(self) -> None:
        if self.problems:
            raise ValidationFailed("; ".join(self.problems))

    def finish(self, *, ok: bool) -> None:
        if ok:
            self.seen |= self._claims
            self.report.companies_created += self._companies

    def fields(self, values: list[str]) -> dict[str, str]:
        """Our field -> the row's value (the first non-empty one when several columns map to it)."""
        out: dict[str, str] = {}
        for fld, raw in zip(self.columns, values, strict=False):
            value = cell_value(raw)
            if fld and value.strip() and fld not in out:
                out[fld] = value
        return out

    def reason(self, exc: Exception) -> str:
        if isinstance(exc, DBAPIError):
            return f"the database refused the row: {str(exc.orig).splitlines()[0]}"
        assert isinstance(exc, CRMError)
        col = self.column_of.get(exc.details.get("field") or "")
        return f"{col}: {exc.message}" if col and not exc.message.startswith(col) else exc.message

    def claim(self, kind: str, key: str, what: str) -> None:
        """A key (an email, a domain) that a later row of this file may not repeat."""
        if (kind, key) in self.seen:
            raise Duplicate(f"{what} repeats line {self.seen[(kind, key)]} of this file", field=kind)
        self._claims[(kind, key)] = self.line

    # --- lookups ---

    def owner(self, raw: str | None) -> Any:
        if not raw:
            return None
        email = re.search(r"[^\s<>()]+@[^\s<>()]+", raw)
        key = (email[0] if email else raw).strip().lower()
        found = [u for u in self.users if (u.email.lower() if email else u.name.lower()) == key]
        if len(found) != 1:
            what = "is not a user in this workspace" if not found else "matches several users; use their email"
            raise ValidationFailed(f"owner '{raw}' {what}; add them as a user or change the owner", field="owner")
        if not found[0].is_active:
            raise ValidationFailed(f"owner '{raw}' is deactivated; pick an active user", field="owner")
        return found[0].id

    def _companies_named(self, name: str) -> list[Company]:
        query = crud.readable(crud.spec_for("company"), self.actor)
        return list(self.session.scalars(query.where(func.lower(Company.name) == name.lower()).limit(10)))

    def _company_by_domain(self, domain: str) -> Company | None:
        query = crud.readable(crud.spec_for("company"), self.actor)
        return self.session.scalar(query.where(Company.domain == domain))

    def find_company(self, *, name: str | None, domain: str | None, email: str | None, owner_id: Any) -> Any:
        """The company a row points at: by domain, by exact name, by the email's domain, else created."""
        if domain:
            domain = normalize.domain(domain)
            found = self._company_by_domain(domain) if domain else None
            if found is not None:
                return found.id
            if not name:
                raise ValidationFailed(f"no company with domain {domain}; import companies first or add a "
                                       "company name column to create it", field="company_domain")
        mail_domain = email.rsplit("@", 1)[1] if email else None
        if mail_domain in FREE_MAIL or mail_domain in self.own_domains:
            mail_domain = None
        if name:
            named = self._companies_named(name)
            if len(named) > 1:
                named = [c for c in named if c.domain and c.domain == mail_domain] or named
            if len(named) == 1:
                return named[0].id
            if named:
                domains = ", ".join(c.domain or "no domain" for c in named)
                raise ValidationFailed(f"{len(named)} companies are named '{name}' ({domains}); add a company "
                                       "domain column to say which", field="company_name")
        if mail_domain and (found := self._company_by_domain(mail_domain)) is not None:
            return found.id
        if not name:
            return None
        data = {"name": name, "domain": domain or mail_domain, "owner_id": owner_id, "source": "import"}
        created = self.create("company", schemas.CompanyCreate, data)
        self._companies += 1
        return created.id

    def pipeline(self, raw: str | None) -> Pipeline:
        if self._pipelines is None:
            self._pipelines = self.session.scalars(
                select(Pipeline).where(Pipeline.workspace_id == self.actor.workspace_id)
                .order_by(Pipeline.is_default.desc(), Pipeline.created_at)).all()
        pipelines = self._pipelines
        if not pipelines:
            raise ValidationFailed("this workspace has no pipeline yet; create one first", field="pipeline")
        if not raw:
            return pipelines[0]
        for p in pipelines:
            if compact(p.name) == compact(raw):
                return p
        if compact(raw) in DEFAULT_PIPELINE_NAMES:
            return pipelines[0]
        names = ", ".join(p.name for p in pipelines)
        raise ValidationFailed(f"pipeline '{raw}' does not exist; pipelines: {names}", field="pipeline")

    def stage(self, pipeline: Pipeline, raw: str | None, status: str | None) -> Any:
        if pipeline.id not in self._stages:
            self._stages[pipeline.id] = self.session.scalars(
                select(Stage).where(Stage.pipeline_id == pipeline.id).order_by(Stage.position)).all()
        stages = self._stages[pipeline.id]
        wanted = STAGE_ALIASES.get(compact(status or "")) if compact(status or "") in ("won", "lost") else None
        if not raw and not wanted:
            return None
        for s in stages if not wanted else ():
            if compact(s.name) == compact(raw or ""):
                return s.id
        target = wanted or STAGE_ALIASES.get(compact(raw or ""))
        for s in stages:
            if target and (s.kind.value == target if target in ("won", "lost") else s.name == target):
                return s.id
        names = ", ".join(s.name for s in stages)
        raise ValidationFailed(f"stage '{raw}' is not in pipeline {pipeline.name}; its stages: {names}",
                               field="stage")

    def contacts(self, raw: str | None) -> list[Contact]:
        """'ines@borealis.example; Marco Rossi' -> those contacts (by email, else by full name)."""
        found: list[Contact] = []
        query = crud.readable(crud.spec_for("contact"), self.actor)
        for part in filter(None, (p.strip() for p in re.split(r"[;\n]", raw or ""))):
            email = re.search(r"[^\s<>(),]+@[^\s<>(),]+", part)
            if email:
                rows = list(self.session.scalars(query.where(Contact.email == normalize.email(email[0]))))
            else:
                full = func.lower(func.trim(Contact.first_name + " " + Contact.last_name))
                rows = list(self.session.scalars(query.where(full == part.lower()).limit(5)))
            if len(rows) != 1:
                what = "matches no contact you can see" if not rows else "matches several contacts; use the email"
                raise ValidationFailed(f"contact '{part}' {what} (import contacts first)", field="contacts")
            found.append(rows[0])
        return found

    # --- writing ---

    def create(self, entity: str, schema: type[BaseModel], data: dict[str, Any]) -> Any:
        spec = crud.spec_for(entity)
        try:
            clean = schema.model_validate({k: v for k, v in data.items() if v not in (None, "")})
        except ValidationError as exc:
            problems = [f"{self.column_of.get(str(e['loc'][0]), str(e['loc'][0]))}: {e['msg']}"
                        for e in exc.errors()]
            raise ValidationFailed("; ".join(problems), field=str(exc.errors()[0]["loc"][0])) from exc
        values = clean.model_dump(exclude_unset=True)
        for key, value in values.items():
            length = getattr(getattr(spec.columns.get(key), "type", None), "length", None)
            if isinstance(value, str) and length and len(value) > length:
                raise ValidationFailed(f"{key} has {len(value)} characters; at most {length} fit", field=key)
        try:
            return crud.create(self.session, spec, actor=self.actor, data=values)
        except Duplicate as exc:
            existing = exc.details.get("existing_id")
            label = self._label(spec.model, existing) if existing else None
            raise Duplicate(exc.message + (f": {label}" if label else ""), **exc.details) from exc

    def _label(self, model: Any, id_: str) -> str | None:
        try:
            obj = self.session.get(model, uuid.UUID(id_))
        except ValueError:
            return None
        if obj is None:
            return None
        name = obj.full_name if isinstance(obj, Contact) else obj.name
        return f"{name or '(no name)'} (id {obj.id})"

    # --- one builder per entity: the row's fields -> crud.create ---

    def contact_row(self, v: dict[str, str]) -> None:
        first, last = v.get("first_name", ""), v.get("last_name", "")
        if not (first or last) and v.get("name"):
            first, _, last = v["name"].partition(" ")
        email = self.soft(normalize.email, v.get("email"))
        if not (first or last or v.get("email")):
            raise ValidationFailed("the row has no name and no email; a contact needs one of them")
        data = {
            "first_name": first, "last_name": last, "email": email, "phone": v.get("phone"),
            "title": v.get("title"), "source": v.get("source"), "timezone": v.get("timezone"),
            "lifecycle_stage": self.soft(parse_choice, LifecycleStage, v.get("lifecycle_stage"),
                                         column="lifecycle_stage"),
            "lead_status": self.soft(parse_choice, LeadStatus, v.get("lead_status"), column="lead_status"),
            "lead_score": self.soft(parse_integer, v.get("lead_score"), column="lead_score"),
            "country": self.soft(parse_country, v.get("country")), "linkedin_url": v.get("linkedin_url"),
            "owner_id": self.soft(self.owner, v.get("owner")),
        }
        self.check()
        if email:
            self.claim("email", email, f"the email {email}")
        data["company_id"] = self.find_company(name=v.get("company_name"), domain=v.get("company_domain"),
                                               email=email, owner_id=data["owner_id"])
        self.create("contact", schemas.ContactCreate, data)

    def company_row(self, v: dict[str, str]) -> None:
        name = v.get("name")
        if not name:
            raise ValidationFailed("the company name is empty", field="name")
        domain = self.soft(normalize.domain, v.get("domain") or v.get("website"))
        data = {
            "name": name, "domain": domain, "industry": v.get("industry"), "phone": v.get("phone"),
            "employee_count": self.soft(parse_integer, v.get("employee_count"), column="employee_count"),
            "annual_revenue": (self.soft(parse_amount, v.get("annual_revenue"), column="annual_revenue")
                               or (None, None))[0],
            "website": v.get("website"), "country": self.soft(parse_country, v.get("country")),
            "region": v.get("region"), "city": v.get("city"), "source": v.get("source"),
            "description": "\n".join(filter(None, (v.get("description"),
                                                   v.get("address") and f"Address: {v['address']}"))),
            "owner_id": self.soft(self.owner, v.get("owner")),
        }
        self.check()
        if domain:
            self.claim("domain", domain, f"the domain {domain}")
        else:
            self.claim("name", name.lower(), f"the company name '{name}' (without a domain)")
        named = self._companies_named(name)
        if named and (not domain or any(not c.domain for c in named)):
            # Without a domain on both sides two companies of one name are the same company.
            raise Duplicate(f"a company named '{name}' already exists: {self._label(Company, str(named[0].id))}; "
                            "give both a domain if they are different companies", existing_id=str(named[0].id))
        self.create("company", schemas.CompanyCreate, data)

    def deal_row(self, v: dict[str, str]) -> None:
        name = v.get("name")
        if not name:
            raise ValidationFailed("the deal name is empty", field="name")
        pipeline = self.soft(self.pipeline, v.get("pipeline"))
        stage_id = self.soft(self.stage, pipeline, v.get("stage"), v.get("status")) if pipeline else None
        amount, symbol_currency = self.soft(parse_amount, v.get("amount")) or (None, None)
        owner_id = self.soft(self.owner, v.get("owner"))
        people = self.soft(self.contacts, v.get("contacts")) or []
        close_date = self.soft(parse_date, v.get("close_date"), column="close_date")
        probability = self.soft(parse_integer, v.get("probability"), column="probability")
        forecast = self.soft(parse_choice, ForecastCategory, v.get("forecast_category"), column="forecast_category")
        self.check()
        company_id = self.find_company(name=v.get("company_name"), domain=v.get("company_domain"), email=None,
                                       owner_id=owner_id) or (people[0].company_id if people else None)
        self.claim("deal", f"{name.lower()} at {company_id}", f"the deal '{name}' (same company)")
        same = crud.readable(crud.spec_for("deal"), self.actor).where(
            func.lower(Deal.name) == name.lower(),
            Deal.company_id == company_id if company_id else Deal.company_id.is_(None))
        if (existing := self.session.scalar(same.limit(1))) is not None:
            # Deals have no unique key; name + company is how a re-imported file would repeat one.
            raise Duplicate(f"a deal named '{name}' already exists for this company: "
                            f"{self._label(Deal, str(existing.id))}", existing_id=str(existing.id))
        self.create("deal", schemas.DealCreate, {
            "name": name, "pipeline_id": pipeline.id, "stage_id": stage_id, "amount": amount,
            "currency": v.get("currency") or symbol_currency, "close_date": close_date, "probability": probability,
            "forecast_category": forecast,
            "next_step": v.get("next_step"), "lost_reason": v.get("lost_reason"), "source": v.get("source"),
            "description": v.get("description"), "owner_id": owner_id, "company_id": company_id,
            "contacts": [{"contact_id": c.id, "is_primary": i == 0} for i, c in enumerate(people)] or None,
        })
