"""CSV import and export: HubSpot and Pipedrive files, bad rows by line, dry runs, round trips."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from store import exporter
from store.errors import ValidationFailed
from store.exporter import export_csv
from store.import_formats import parse_amount, parse_date
from store.importer import import_csv
from store.models import AuditLog, Company, Contact, Deal, DealContact, Stage, User
from store.models.enums import AuditAction, LifecycleStage, Surface
from tests import factories as f


@pytest.fixture
def w(session):  # type: ignore[no-untyped-def]
    return f.world(session)


class CsvFile:
    """A CSV file written row by row, remembering the line each marked row starts on."""

    def __init__(self, *header: str, delimiter: str = ",") -> None:
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, delimiter=delimiter, lineterminator="\r\n")
        self.writer.writerow(header)
        self.lines: dict[str, int] = {}

    def row(self, *values: str, mark: str | None = None) -> None:
        if mark:
            self.lines[mark] = self.buf.getvalue().count("\n") + 1
        self.writer.writerow(values)

    def data(self, encoding: str = "utf-8-sig") -> bytes:
        return self.buf.getvalue().encode(encoding)


def count(session, model, ws) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(model).where(model.workspace_id == ws.id))


def by_email(session, ws, email: str) -> Contact:  # type: ignore[no-untyped-def]
    return session.scalar(select(Contact).where(Contact.workspace_id == ws.id, Contact.email == email))


def hubspot_contacts(w) -> tuple[CsvFile, list[str]]:  # type: ignore[no-untyped-def]
    """A HubSpot contacts export: 41 rows, 8 of them bad; the emails the good rows store."""
    csv_file = CsvFile("First Name", "Last Name", "Email", "Phone Number", "Job Title", "Lifecycle Stage",
                       "Lead Status", "Contact owner", "Company Name", "Record ID", "Notes", "Create Date")
    good = []

    def ok(first: str, last: str, email: str, *rest: str, mark: str | None = None) -> None:
        csv_file.row(first, last, email, *rest, mark=mark)
        good.append(email.lower())

    ok("Marco", "Rossi", "Marco.Rossi@Borealis.Example", "+351 912 345 678", "Head of Ops",
       "Marketing Qualified Lead", "In Progress", "Priya Raman", "Borealis Logistics", "101",
       "Met at the expo.\nWants the pilot in January,\n48k -> 62k with telematics", "2025-10-01 09:00",
       mark="marco")
    csv_file.row("Hot", "Lead", "hot@borealis.example", "", "", "Hot Prospect", "", "", "", "102", "", "",
                 mark="bad_lifecycle")
    ok("Ana", "Silva", "ana@northwind.example", "", "CFO", "salesqualifiedlead", "Attempted to Contact",
       w.dana.email.upper(), "", "103", "", "")
    for name in ("Kim", "Lee", "Max"):
        ok(name, "Kestrel", f"{name.lower()}@kestrel.example", "", "", "lead", "", "", "Kestrel Analytics", "", "", "")
    ok("Jo", "Bloggs", "jo.bloggs@gmail.com", "", "", "subscriber", "", "", "", "", "", "")
    ok("Fay", "Free", "fay@gmail.com", "", "Designer", "", "", "", "Freelance Studio", "", "", "")
    ok("Bob", "Builder", "bob@acme-inc.example", "", "", "customer", "", w.raj.email, "Acme, Inc.", "", "", "")
    csv_file.row("Bad", "Email", "marco@@borealis", "", "", "", "", "", "", "", "", "", mark="bad_email")
    csv_file.row("Marco", "Again", "MARCO.ROSSI@borealis.example", "", "", "", "", "", "", "", "", "",
                 mark="dup_in_file")
    csv_file.row("Ines", "Duarte", "INES@Borealis.example", "", "", "", "", "", "", "", "", "",
                 mark="dup_existing")
    lifecycles = ["Lead", "Subscriber", "Customer", "Opportunity", "evangelist"]
    owners = ["", "Priya Raman", w.raj.email, "raj patel"]
    for i in range(1, 26):
        notes = "first line\nsecond line\nthird line" if i == 10 else ""
        ok(f"Lead{i}", "Filler", f"Lead{i}@Prospects.example", "", "", lifecycles[i % 5], "", owners[i % 4], "",
           str(200 + i), notes, "")
        if i == 10:
            csv_file.row("Zed", "Owned", "zed@prospects.example", "", "", "", "", "Zed Nobody", "", "", "", "",
                         mark="unknown_owner")
    csv_file.row("", "", "", "", "CEO", "", "", "", "", "", "", "", mark="no_name")
    csv_file.row("Short", "Phone", "short@prospects.example", "12", "", "", "", "", "", "", "", "", mark="bad_phone")
    csv_file.row("Two", "Problems", "two@@x", "", "", "Cold", "", "Nobody", "", "", "", "", mark="several")
    return csv_file, good


EXPECTED_REASONS = {  # mark -> words the reason must contain
    "bad_lifecycle": ["Lifecycle Stage", "'Hot Prospect'", "marketing_qualified_lead"],
    "bad_email": ["Email", "marco@@borealis", "not a valid email"],
    "dup_in_file": ["marco.rossi@borealis.example", "repeats line"],
    "dup_existing": ["already exists", "Ines Duarte"],
    "unknown_owner": ["Contact owner", "Zed Nobody", "not a user"],
    "no_name": ["no name and no email"],
    "bad_phone": ["Phone Number", "'12'"],
    "several": ["Email: 'two@@x'", "; Lifecycle Stage: 'Cold'", "; Contact owner: owner 'Nobody'"],
}


def setup_existing(session, w):  # type: ignore[no-untyped-def]
    borealis = f.create(session, w.priya, "company", name="Borealis Logistics", domain="borealis.example")
    northwind = f.create(session, w.dana, "company", name="Northwind", domain="northwind.example")
    ines = f.create(session, w.priya, "contact", first_name="Ines", last_name="Duarte",
                    email="ines@borealis.example", company_id=borealis.id)
    return borealis, northwind, ines


def test_hubspot_contacts_import(session, w) -> None:
    borealis, northwind, _ = setup_existing(session, w)
    csv_file, good = hubspot_contacts(w)
    report = import_csv(session, actor=f.actor(w.admin), entity="contacts", rows=csv_file.data(), dry_run=False)
    session.commit()

    assert report.total_rows == 41 and report.created == len(good) == 33
    assert report.ignored_columns == ["Record ID", "Notes", "Create Date"]
    errors = {e.line: e for e in report.errors}
    assert sorted(errors) == sorted(csv_file.lines[m] for m in EXPECTED_REASONS)
    assert csv_file.lines["bad_lifecycle"] == 5  # the header, then Marco's row over three lines
    for mark, words in EXPECTED_REASONS.items():
        error = errors[csv_file.lines[mark]]
        assert all(word in error.reason for word in words), (mark, error.reason)
    assert errors[csv_file.lines["dup_in_file"]].reason.endswith(f"line {csv_file.lines['marco']} of this file")
    assert errors[csv_file.lines["dup_existing"]].code == "duplicate"
    assert errors[csv_file.lines["bad_email"]].values["Email"] == "marco@@borealis"

    emails = set(session.scalars(select(Contact.email).where(Contact.workspace_id == w.ws.id)))
    assert emails == set(good) | {"ines@borealis.example"}
    marco = by_email(session, w.ws, "marco.rossi@borealis.example")
    ana = by_email(session, w.ws, "ana@northwind.example")
    assert marco.company_id == borealis.id and marco.owner_id == w.priya.id  # by name; owner by name
    assert marco.lifecycle_stage == LifecycleStage.mql and marco.phone == "+351912345678"
    assert ana.company_id == northwind.id and ana.owner_id == w.dana.id  # by email domain; owner by email
    assert ana.lifecycle_stage == LifecycleStage.sql and ana.lead_status.value == "attempted_to_contact"
    kestrel = {by_email(session, w.ws, f"{n}@kestrel.example").company_id for n in ("kim", "lee", "max")}
    assert len(kestrel) == 1  # created by the first row, found by name by the next two
    company = session.get(Company, kestrel.pop())
    assert (company.name, company.domain, company.owner_id) == ("Kestrel Analytics", "kestrel.example", w.admin.id)
    assert by_email(session, w.ws, "jo.bloggs@gmail.com").company_id is None  # free mail: no company
    assert session.get(Company, by_email(session, w.ws, "fay@gmail.com").company_id).domain is None
    assert session.get(Company, by_email(session, w.ws, "bob@acme-inc.example").company_id).name == "Acme, Inc."
    assert report.companies_created == 3
    assert by_email(session, w.ws, "lead3@prospects.example").owner_id == w.raj.id  # "raj patel"
    assert by_email(session, w.ws, "lead4@prospects.example").owner_id == w.admin.id  # no owner: the importer

    entries = session.scalars(select(AuditLog).where(AuditLog.workspace_id == w.ws.id,
                                                     AuditLog.surface == Surface.import_)).all()
    assert all(e.action == AuditAction.create and e.actor_id == w.admin.id for e in entries)
    assert sorted(e.entity_type for e in entries) == ["company"] * 3 + ["contact"] * 33
    contact_ids = set(session.scalars(select(Contact.id).where(Contact.workspace_id == w.ws.id)))
    assert {e.entity_id for e in entries if e.entity_type == "contact"} == contact_ids - {
        by_email(session, w.ws, "ines@borealis.example").id}


def test_dry_run_writes_nothing_and_reports_the_same(session, w) -> None:
    setup_existing(session, w)
    csv_file, _ = hubspot_contacts(w)
    before = (count(session, Contact, w.ws), count(session, Company, w.ws), count(session, AuditLog, w.ws))
    dry = import_csv(session, actor=f.actor(w.admin), entity="contacts", rows=csv_file.data(), dry_run=True)
    session.commit()
    assert (count(session, Contact, w.ws), count(session, Company, w.ws), count(session, AuditLog, w.ws)) == before
    real = import_csv(session, actor=f.actor(w.admin), entity="contacts", rows=csv_file.data(), dry_run=False)
    assert (dry.created, dry.companies_created, dry.total_rows) == (real.created, real.companies_created, 41)
    assert [(e.line, e.reason) for e in dry.errors] == [(e.line, e.reason) for e in real.errors]
    assert dry.dry_run and not real.dry_run


def test_hubspot_deals(session, w) -> None:
    borealis, northwind, ines = setup_existing(session, w)
    f.create(session, w.dana, "contact", first_name="Ana", last_name="Silva", email="ana@northwind.example",
             company_id=northwind.id)
    csv_file = CsvFile("Deal Name", "Deal Stage", "Amount", "Close Date", "Pipeline", "Deal owner",
                       "Associated Company", "Associated Contact", "Record ID")
    csv_file.row("Borealis pilot", "appointmentscheduled", "$48,000.00", "2026-01-31 00:00", "Sales Pipeline",
                 "Priya Raman", "Borealis Logistics", "Ines Duarte (ines@borealis.example)", "1")
    csv_file.row("Northwind expansion", "closedwon", "48.000,00 €", "01/31/2026", "default", w.dana.email,
                 "northwind", "ana@northwind.example", "2")
    csv_file.row("Brand new", "Contract Sent", "12500", "Jan 31, 2026", "", "", "Brand New Co", "", "3")
    csv_file.row("Via contact", "Qualified To Buy", "1000", "", "", "", "", "ana@northwind.example", "4")
    csv_file.row("Fuzzy amount", "Discovery", "about 5k", "", "", "", "", "", "5", mark="amount")
    csv_file.row("Odd stage", "Verbal Yes", "100", "", "", "", "", "", "6", mark="stage")
    csv_file.row("UK date", "Discovery", "100", "31/01/2026", "", "", "", "", "7", mark="uk_date")
    csv_file.row("No such day", "Discovery", "100", "2026-02-30", "", "", "", "", "8", mark="bad_date")
    csv_file.row("Ghost", "Discovery", "100", "", "", "", "", "ghost@nowhere.example", "9", mark="contact")
    csv_file.row("Borealis pilot", "Demo", "1", "", "", "", "Borealis Logistics", "", "10", mark="dup")
    report = import_csv(session, actor=f.actor(w.admin), entity="deals", rows=csv_file.data(), dry_run=False)

    reasons = {e.line: e.reason for e in report.errors}
    assert sorted(reasons) == sorted(csv_file.lines.values()) and report.created == 4
    assert reasons[csv_file.lines["amount"]].startswith("Amount: 'about 5k' is not an amount")
    assert "stage 'Verbal Yes' is not in pipeline Sales; its stages: Qualification" in reasons[csv_file.lines["stage"]]
    assert "month/day/year" in reasons[csv_file.lines["uk_date"]]
    assert "not a real date" in reasons[csv_file.lines["bad_date"]]
    assert "ghost@nowhere.example' matches no contact" in reasons[csv_file.lines["contact"]]
    assert "repeats line 2" in reasons[csv_file.lines["dup"]]
    deals = {d.name: d for d in session.scalars(select(Deal).where(Deal.workspace_id == w.ws.id))}
    stage = {s.id: s.name for s in session.scalars(select(Stage).where(Stage.workspace_id == w.ws.id))}
    pilot, expansion = deals["Borealis pilot"], deals["Northwind expansion"]
    assert (stage[pilot.stage_id], pilot.amount, pilot.currency, pilot.close_date, pilot.owner_id) == (
        "Qualification", Decimal("48000.00"), "USD", date(2026, 1, 31), w.priya.id)
    assert pilot.company_id == borealis.id
    people = session.scalars(select(DealContact).where(DealContact.deal_id == pilot.id)).all()
    assert [(p.contact_id, p.is_primary) for p in people] == [(ines.id, True)]
    assert (stage[expansion.stage_id], expansion.amount, expansion.currency, expansion.company_id) == (
        "Closed Won", Decimal("48000.00"), "EUR", northwind.id)
    assert stage[deals["Brand new"].stage_id] == "Negotiation"
    assert session.get(Company, deals["Brand new"].company_id).name == "Brand New Co"
    assert deals["Via contact"].company_id == northwind.id  # from its contact


def test_pipedrive_deals_in_windows_1252_with_semicolons(session, w) -> None:
    setup_existing(session, w)
    csv_file = CsvFile("Deal - Title", "Deal - Value", "Deal - Currency", "Deal - Stage", "Deal - Expected close date",
                       "Deal - Owner", "Deal - Organization", "Deal - Contact person", "Deal - Status", delimiter=";")
    csv_file.row("Café rollout", "12.500,50", "EUR", "Proposal Made", "2026-03-15", "Raj Patel", "Société Générale",
                 "Ines Duarte", "open")
    csv_file.row("Lost one", "3000", "USD", "Negotiations Started", "", "Raj Patel", "Borealis Logistics", "", "lost")
    csv_file.row("Won one", "7.000 €", "", "Demo Scheduled", "15.04.2026", "", "", "", "won")
    report = import_csv(session, actor=f.actor(w.admin), entity="deals", rows=csv_file.data("cp1252"))
    assert report.errors == [] and report.created == 3 and report.companies_created == 1
    assert "not UTF-8" in report.notes[0] and "Windows-1252" in report.notes[0]
    rows = session.execute(select(Deal.name, Stage.name, Deal.amount, Deal.currency, Deal.close_date, Deal.owner_id)
                           .join(Stage, Stage.id == Deal.stage_id).where(Deal.workspace_id == w.ws.id)).all()
    assert set(rows) == {
        ("Café rollout", "Proposal", Decimal("12500.50"), "EUR", date(2026, 3, 15), w.raj.id),
        ("Lost one", "Closed Lost", Decimal("3000.00"), "USD", None, w.raj.id),
        ("Won one", "Closed Won", Decimal("7000.00"), "EUR", date(2026, 4, 15), w.admin.id),
    }
    assert session.scalar(select(Company.name).where(Company.workspace_id == w.ws.id, Company.domain.is_(None)
                                                     )) == "Société Générale"


def test_hubspot_companies(session, w) -> None:
    setup_existing(session, w)
    csv_file = CsvFile("Company name", "Company Domain Name", "Industry", "Number of Employees", "Annual Revenue",
                       "Country/Region", "City", "State/Region", "Website URL", "Company owner")
    csv_file.row("Acme Corp", "acme.example", "Software", "1,200", "$5,000,000", "United States", "Austin", "Texas",
                 "https://www.acme.example", "Priya Raman")
    csv_file.row("Zeta GmbH", "", "Manufacturing", "50", "1.250.000,00 €", "Germany", "Berlin", "",
                 "https://zeta.example/de", "")
    csv_file.row("Acme Again", "ACME.example", "", "", "", "", "", "", "", "", mark="dup")
    csv_file.row("Borealis", "borealis.example", "", "", "", "", "", "", "", "", mark="existing")
    csv_file.row("Narnia Ltd", "narnia.example", "", "", "", "Narnia", "", "", "", "", mark="country")
    csv_file.row("Rangey", "rangey.example", "", "51-200", "", "", "", "", "", "", mark="range")
    report = import_csv(session, actor=f.actor(w.admin), entity="companies", rows=csv_file.data())
    reasons = {e.line: e.reason for e in report.errors}
    assert report.created == 2 and sorted(reasons) == sorted(csv_file.lines.values())
    assert "domain acme.example repeats line 2" in reasons[csv_file.lines["dup"]]
    assert "already exists: Borealis Logistics" in reasons[csv_file.lines["existing"]]
    assert reasons[csv_file.lines["country"]].startswith("Country/Region: country 'Narnia'")
    assert "'51-200' is not a whole number" in reasons[csv_file.lines["range"]]
    acme = session.scalar(select(Company).where(Company.workspace_id == w.ws.id, Company.domain == "acme.example"))
    assert (acme.employee_count, acme.annual_revenue, acme.country, acme.region, acme.owner_id) == (
        1200, Decimal("5000000.00"), "US", "Texas", w.priya.id)
    zeta = session.scalar(select(Company).where(Company.workspace_id == w.ws.id, Company.name == "Zeta GmbH"))
    assert (zeta.domain, zeta.annual_revenue, zeta.country) == ("zeta.example", Decimal("1250000.00"), "DE")


def export(session, who, entity: str, **filters: str) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    export_csv(session, actor=f.actor(who), entity=entity, out=out, filters=filters or None)
    return out.getvalue()


def test_export_then_import_into_another_workspace_round_trips(session, w, monkeypatch) -> None:
    monkeypatch.setattr(exporter, "PAGE_SIZE", 2)  # several pages
    borealis, northwind, ines = setup_existing(session, w)
    f.create(session, w.admin, "company", name="Kestrel", domain="kestrel.example", employee_count=40,
             annual_revenue="1250000.5", country="PT", owner_id=w.raj.id)
    ana = f.create(session, w.dana, "contact", first_name="Ana", last_name="Silva", email="ana@northwind.example",
                   company_id=northwind.id, lifecycle_stage="customer", phone="+1 415 555 0123", country="US")
    f.create(session, w.priya, "contact", first_name="Nomail", last_name="Person", company_id=borealis.id)
    won = session.scalar(select(Stage).where(Stage.workspace_id == w.ws.id, Stage.name == "Closed Won"))
    f.create(session, w.priya, "deal", name="Borealis pilot", amount="62000", company_id=borealis.id,
             close_date=date(2026, 1, 31), contacts=[{"contact_id": ines.id, "role": "champion", "is_primary": True}])
    f.create(session, w.dana, "deal", name="Northwind renewal", amount="9999.99", currency="EUR",
             company_id=northwind.id, stage_id=won.id, contacts=[{"contact_id": ana.id}])
    for user in (w.priya, w.dana, w.raj):  # the same people in the other workspace
        session.add(User(workspace_id=w.other_ws.id, email=user.email, name=user.name, role=user.role))
    session.flush()
    files = {entity: export(session, w.admin, entity) for entity in ("companies", "contacts", "deals")}
    assert files["contacts"].splitlines()[0].startswith("first_name,last_name,email,phone,title,company_name")
    for entity, text in files.items():
        report = import_csv(session, actor=f.actor(w.other_admin), entity=entity, rows=text)
        assert report.errors == [] and report.ignored_columns == [] and report.companies_created == 0, entity
    for entity, text in files.items():
        assert export(session, w.other_admin, entity) == text, entity  # names, emails, amounts, stages, owners
    assert "Borealis pilot,Sales,Qualification,62000.00,USD,2026-01-31" in files["deals"]


def test_a_rep_exports_only_what_they_can_read(session, w) -> None:
    eves_company = f.create(session, w.eve, "company", name="East Secret", domain="eastsecret.example")
    f.create(session, w.admin, "contact", first_name="P", last_name="One", email="p@x.example",
             company_id=eves_company.id, owner_id=w.priya.id)  # Priya's, at a company only East can read
    f.create(session, w.raj, "contact", first_name="R", last_name="Two", email="r@x.example")
    f.create(session, w.eve, "contact", first_name="E", last_name="Three", email="e@x.example")
    rows = list(csv.DictReader(io.StringIO(export(session, w.priya, "contacts"))))
    assert sorted(r["email"] for r in rows) == ["p@x.example", "r@x.example"]
    assert rows[0]["company_name"] == "" and "East Secret" not in export(session, w.priya, "companies")
    assert len(list(csv.DictReader(io.StringIO(export(session, w.admin, "contacts"))))) == 3
    assert [r["email"] for r in csv.DictReader(io.StringIO(export(session, w.admin, "contacts", last_name="Two")))
            ] == ["r@x.example"]


@pytest.mark.parametrize(("raw", "amount", "currency"), [
    ("48000", "48000", None), ("$48,000.00", "48000", "USD"), ("48.000,00 €", "48000", "EUR"),
    ("1,234,567.89", "1234567.89", None), ("EUR 1 250,5", "1250.5", "EUR"), ("48000,50", "48000.50", None),
])
def test_amount_formats(raw: str, amount: str, currency: str | None) -> None:
    assert parse_amount(raw) == (Decimal(amount), currency)


@pytest.mark.parametrize("raw", ["48k", "12,34,567", "1.234,567", "-5", "1,234.5,6", "0,500", "USD 5 EUR"])
def test_ambiguous_or_unreadable_amounts_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed, match=r"48000\.00|negative"):
        parse_amount(raw)


@pytest.mark.parametrize("raw", ["2026-01-31", "2026-01-31 00:00", "2026-01-31T00:00:00Z", "01/31/2026",
                                 "31.01.2026", "Jan 31, 2026", "2026/01/31"])
def test_date_formats(raw: str) -> None:
    assert parse_date(raw) == date(2026, 1, 31)


@pytest.mark.parametrize("raw", ["31/01/2026", "01/31/26", "2026-02-30", "next tuesday"])
def test_unreadable_dates_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailed, match="2026-01-31"):
        parse_date(raw)


# --- the CLI and the HTTP API ------------------------------------------------------------

runner = CliRunner()


def test_cli_import_and_export(cli_env, tmp_path) -> None:
    from crm import app

    def crm(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output + repr(result.exception)
        return result.output

    crm("setup", "--no-demo")
    crm("user", "add", "sam@acme.example", "--name", "Sam", "--role", "admin")
    crm("user", "add", "priya@acme.example", "--name", "Priya Raman")
    path = tmp_path / "contacts.csv"
    csv_file = CsvFile("First Name", "Last Name", "Email", "Contact owner", "Company Name")
    csv_file.row("Ines", "Duarte", "ines@borealis.example", "Priya Raman", "Borealis")
    csv_file.row("Bad", "Email", "not-an-email", "", "", mark="bad")
    csv_file.row("Marco", "Rossi", "marco@borealis.example", "", "Borealis")
    csv_file.row("Zed", "", "zed@borealis.example", "Nobody Here", "", mark="owner")
    path.write_bytes(csv_file.data())

    out = crm("import", "contacts", str(path), "--dry-run", code=2)
    assert "dry run" in out and "2 rejected" in out
    out = crm("import", "contacts", str(path), code=2)
    assert "2 contacts created" in out and "plus 1 new companies" in out and "2 rejected" in out
    with (tmp_path / "contacts.errors.csv").open(encoding="utf-8-sig", newline="") as fh:
        rejected = list(csv.DictReader(fh))
    assert [(int(r["import_line"]), r["Email"]) for r in rejected] == [
        (csv_file.lines["bad"], "not-an-email"), (csv_file.lines["owner"], "zed@borealis.example")]
    assert "Nobody Here" in rejected[1]["import_error"]

    exported = crm("export", "contacts")
    assert "ines@borealis.example" in exported and "marco@borealis.example" in exported
    assert "not-an-email" not in exported and "priya@acme.example" in exported

    mine = tmp_path / "mine.csv"
    mine.write_text("email,owner_email\nnew@borealis.example,sam@acme.example\nown@borealis.example,\n")
    out = crm("import", "contacts", str(mine), "--as", "priya@acme.example", code=2)
    assert "1 contacts created" in out
    assert "only assign records to yourself" in (tmp_path / "mine.errors.csv").read_text(encoding="utf-8-sig")
    crm("export", "contacts", "--as", "priya@acme.example", "--out", str(tmp_path / "out.csv"))
    assert "own@borealis.example" in (tmp_path / "out.csv").read_text()

    assert "cannot import 'widgets'" in crm("import", "widgets", str(path), code=1)
    assert "cannot read" in crm("import", "contacts", str(tmp_path / "missing.csv"), code=1)
    clean = tmp_path / "clean.csv"
    clean.write_text("name,domain\nOrbit,orbit.example\n")
    assert "1 companies created" in crm("import", "companies", str(clean))


@pytest.fixture
def data_http(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from channels.api import data_routes

    if not any(getattr(r, "path", "") == "/api/v1/imports/{entity}" for r in app.routes):
        app.include_router(data_routes.router, prefix="/api/v1")  # until app.py includes it
    with TestClient(app) as client:
        yield client


def test_http_upload_and_export(session, data_http, w) -> None:
    setup_existing(session, w)
    csv_file, good = hubspot_contacts(w)
    admin = f.api(session, data_http, w.admin)
    upload = {"file": ("hubspot.csv", csv_file.data(), "text/csv")}
    dry = admin.post("/imports/contacts", files=upload, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert count(session, Contact, w.ws) == 1
    real = admin.post("/imports/contacts", files=upload)
    body = real.json()
    assert real.status_code == 200 and body["created"] == 33 and body == dry.json() | {"dry_run": False}
    assert {e["line"] for e in body["errors"]} == {csv_file.lines[m] for m in EXPECTED_REASONS}
    assert count(session, Contact, w.ws) == 34

    got = admin.get("/exports/contacts.csv", params={"lifecycle_stage": "customer"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert got.headers["x-row-count"] == "6" and "bob@acme-inc.example" in got.text
    eve = f.api(session, data_http, w.eve)
    assert "marco.rossi@borealis.example" not in eve.get("/exports/contacts.csv").text
    assert admin.get("/exports/widgets.csv").status_code == 422
    assert admin.get("/exports/contacts.csv", params={"nope": "1"}).status_code == 422
    assert admin.post("/imports/contacts", files={"file": ("e.csv", b"", "text/csv")}).status_code == 422
