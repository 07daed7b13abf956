"""The store benches' loader: a generated world (companies, contacts, deals, activities, notes,
tasks, owners) bulk-loaded into a fresh migrated database per backend, the DEPENDENCIES.md
reference workloads measured on the same database, and the backends' set-up and options.

bench/store_queries.py and bench/pipeline_queries.py load through it. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import store.services  # noqa: F401  (registers every entity spec)
from store import migrate
from store.actor import Actor
from store.db import make_engine
from store.models import (
    Activity,
    ActivityTarget,
    Company,
    Contact,
    Deal,
    DealContact,
    DealStageStay,
    Note,
    Stage,
    Task,
    Team,
    User,
)
from store.models.enums import Role, Surface
from store.services import activity_rollup, stage_stays
from store.services.org import actor_for_user, create_workspace
from store.types import uuid7

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench"

# /work/shared/DEPENDENCIES.md, "PostgreSQL and SQLite (same table, 1M rows)" (2-core machine).
REF_SQLITE_EXECUTEMANY = 198_000  # rows/s, insert 100k rows, Core executemany
REF_PG_EXECUTEMANY = 31_600  # rows/s, insert 100k rows, Core executemany
REF_PG_COPY = 181_000  # rows/s, insert via COPY
REF_GROUP_BY_MS = {"postgres": 100.0, "sqlite": 472.0}  # GROUP BY over 1M rows

BATCH = 10_000
BUSY_COMPANY = "Borealis Quantum Freight"
TYPO = "Borelis Quantm Freight"  # no substring of any name; only the fuzzy fallback finds it
SUBSTRING = "ridge"  # Falconridge, Ridgeline, Stonebridge...: many hits in every kind
CONTACT_Q = "sen"  # Hansen, Larsen, Olsen, Sorensen...
SYLLABLES = ["ka", "vel", "dor", "mi", "tra", "lo", "zen", "ar", "qui", "sto", "ne", "ri", "bal", "os",
             "te", "mar", "gan", "lu", "pex", "ru", "sa", "vin", "co", "dex"]
REFUSED_PG_DBS = {"postgres", "template0", "template1"}

# Word lists: a frozen copy of those in store/demo/words.py when this bench was written, so the
# generated data (and with it the figures) do not move when the demo's words change.
PREFIXES = [
    "Aurora", "Basalt", "Beacon", "Birchwood", "Bluefin", "Brightwater", "Cobalt", "Copperline",
    "Crestview", "Driftwood", "Ember", "Evergreen", "Falconridge", "Fernhill", "Fjordline", "Foxglove",
    "Glacier", "Granite", "Greenhaven", "Harborview", "Hawthorne", "Helios", "Ironbark", "Juniper",
    "Kestrel", "Lakeshore", "Lanternfish", "Larkspur", "Lumen", "Maplestone", "Meridian", "Mistral",
    "Moonrise", "Nimbus", "Oakhurst", "Obsidian", "Orchard", "Palisade", "Pinecrest", "Quarry", "Quillon",
    "Redwood", "Ridgeline", "Riverbend", "Saltmarsh", "Sandpiper", "Sequoia", "Silverleaf", "Skylark",
    "Solstice", "Stonebridge", "Summit", "Tamarack", "Tidewater", "Timberline", "Topaz", "Trillium",
    "Umbra", "Vantage", "Verdant", "Westwind", "Willowmere", "Windrose", "Yellowpine", "Zephyr", "Alder",
    "Bramble", "Cinder", "Dovetail", "Elmstead",
]
# company name suffix -> industry
SUFFIXES = {
    "Logistics": "Logistics", "Freight": "Logistics", "Fleet Services": "Logistics",
    "Analytics": "Software", "Software": "Software", "Systems": "Software", "Cloud": "Software",
    "Labs": "Biotech", "Therapeutics": "Biotech", "Health": "Healthcare", "Clinics": "Healthcare",
    "Foods": "Food & Beverage", "Brewing": "Food & Beverage", "Energy": "Energy", "Solar": "Energy",
    "Manufacturing": "Manufacturing", "Robotics": "Manufacturing", "Materials": "Manufacturing",
    "Financial": "Financial Services", "Capital": "Financial Services", "Insurance": "Insurance",
    "Retail": "Retail", "Outfitters": "Retail", "Media": "Media", "Studios": "Media",
    "Construction": "Construction", "Engineering": "Construction", "Hospitality": "Hospitality",
    "Education": "Education", "Telecom": "Telecommunications",
}
# country, region, city
LOCATIONS = [
    ("US", "NA", "San Francisco"), ("US", "NA", "Seattle"), ("US", "NA", "Portland"),
    ("US", "NA", "Denver"), ("US", "NA", "Austin"), ("US", "NA", "Chicago"), ("US", "NA", "New York"),
    ("US", "NA", "Boston"), ("US", "NA", "Atlanta"), ("CA", "NA", "Toronto"), ("CA", "NA", "Vancouver"),
    ("GB", "EMEA", "London"), ("DE", "EMEA", "Berlin"), ("DE", "EMEA", "Munich"), ("FR", "EMEA", "Paris"),
    ("NL", "EMEA", "Amsterdam"), ("SE", "EMEA", "Stockholm"), ("ES", "EMEA", "Madrid"),
    ("AU", "APAC", "Sydney"), ("SG", "APAC", "Singapore"),
]
SOURCES = [
    "web", "inbound", "outbound", "referral", "event", "partner",
]
FIRST_NAMES = [
    "Adaeze", "Ahmed", "Aiko", "Alejandro", "Amara", "Anders", "Anika", "Arjun", "Astrid", "Beatriz",
    "Bilal", "Camille", "Carlos", "Chen", "Chiara", "Daniel", "Dmitri", "Elena", "Emeka", "Emily", "Fatima",
    "Felix", "Freya", "Gabriel", "Grace", "Hana", "Hannah", "Hiroshi", "Ibrahim", "Ingrid", "Isabel",
    "Jamal", "Javier", "Jin", "Joanna", "Jonas", "Julia", "Kai", "Kavya", "Keanu", "Kenji", "Laila", "Lars",
    "Leah", "Liam", "Lucia", "Magnus", "Maya", "Mei", "Mira", "Nadia", "Naveen", "Nia", "Noah", "Olga",
    "Omar", "Oskar", "Paulo", "Rafael", "Rania", "Rohan", "Ruth", "Sakura", "Samuel", "Sara", "Sean",
    "Sofia", "Tariq", "Thabo", "Tomas", "Valentina", "Victor", "Wei", "Yara", "Yusuf", "Zainab", "Zoe",
    "Ethan", "Olivia", "Marcus",
]
LAST_NAMES = [
    "Abara", "Adeyemi", "Almeida", "Andersson", "Bauer", "Bergstrom", "Brennan", "Castillo", "Chowdhury",
    "Costa", "Dahl", "Delgado", "Dubois", "Eriksen", "Fernandes", "Fischer", "Fitzgerald", "Garcia",
    "Gupta", "Haddad", "Hansen", "Hartmann", "Hoffman", "Ibrahim", "Ito", "Jansen", "Johansson", "Kapoor",
    "Kaur", "Keller", "Kim", "Kowalski", "Lambert", "Larsen", "Lindqvist", "Lopez", "Mahmoud", "Marchetti",
    "Mendes", "Moreau", "Mwangi", "Nakamura", "Nguyen", "Novak", "Nowak", "Obi", "Okafor", "Olsen",
    "Ortega", "Park", "Patel", "Petrov", "Quinn", "Reyes", "Rossi", "Sato", "Schmidt", "Silva", "Singh",
    "Sorensen", "Suzuki", "Tanaka", "Torres", "Tran", "Vasquez", "Vogel", "Walsh", "Weber", "Wojcik",
    "Yamamoto", "Yilmaz", "Zhang", "Zimmermann", "Carter", "Hughes", "Murphy",
]
TITLES = [
    "CEO", "COO", "CFO", "CTO", "CIO", "CISO", "VP Sales", "VP Operations", "VP Engineering", "VP Finance",
    "Head of Operations", "Head of IT", "Head of Procurement", "Director of Logistics",
    "Director of Engineering", "IT Manager", "Operations Manager", "Procurement Manager", "Fleet Manager",
    "Sales Operations Manager", "Solutions Architect", "Security Engineer", "Data Analyst",
    "Finance Manager", "Office Manager",
]
DEAL_THEMES = [
    "Platform Rollout", "Fleet Telematics", "Pilot", "Annual Renewal", "Seat Expansion", "Analytics Add-on",
    "EMEA Expansion", "Security Upgrade", "Route Optimization", "Warehouse Visibility",
    "Enterprise Agreement", "API Integration", "Onboarding Package", "Support Upgrade",
    "Multi-site Deployment", "Dispatch Automation",
]
NOTE_BODIES = [
    "{co}: {first} prefers email over calls, best reached mornings.",
    "Org chart at {co}: {first} reports to the COO; IT sign-off needed for anything over 50 seats.",
    "{co} renewal with {competitor} ends next quarter; good timing for {theme}.",
    "{first} mentioned a reorg at {co}; keep an eye on who owns the budget.",
    "Pricing sensitivity at {co}: asked twice about multi-year discounts.",
    "Reference call offered to {first} with an existing customer in the same industry.",
]
TASK_TITLES = [
    "Follow up with {first} on proposal",
    "Send case study to {first}",
    "Schedule demo with {co}",
    "Prepare pricing options for {co}",
    "Confirm decision timeline with {first}",
    "Send MSA redlines to {co} legal",
    "Book technical deep dive with {co}",
    "Check in with {first} after trial",
]


# --- output ------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


# --- data generation -----------------------------------------------------------------------


@dataclass
class World:
    """What the load made and the queries need: ids, and who acts."""

    workspace_id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_ids: list[uuid.UUID]
    stage_kinds: list[str]
    owner_ids: list[uuid.UUID]  # everyone who owns records (managers and reps of every team)
    rep: Actor
    admin: Actor
    busy_company: uuid.UUID = uuid.UUID(int=0)
    busy_contact: uuid.UUID = uuid.UUID(int=0)
    busy_deal: uuid.UUID = uuid.UUID(int=0)
    filter_stage: uuid.UUID = uuid.UUID(int=0)
    # An ordinary company (a few deals, so an exact search finds fewer than `limit` hits).
    plain_company: uuid.UUID = uuid.UUID(int=0)
    plain_company_name: str = ""


@dataclass
class LoadStat:
    rows: int = 0
    insert_s: float = 0.0
    gen_s: float = 0.0


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def make_org(engine: Engine, teams: int) -> World:
    """Workspace, default pipeline, an admin and `teams` teams of a manager + 10 reps (through the ORM)."""
    with Session(engine) as s:
        ws = create_workspace(s, name="Bench Co", slug="bench", own_domains=["bench-co.example"])
        admin = User(workspace_id=ws.id, email="admin@bench-co.example", name="Admin", role=Role.admin)
        s.add(admin)
        owners: list[User] = []
        rep: User | None = None
        for t in range(teams):
            team = Team(workspace_id=ws.id, name=f"Team {t + 1}")
            s.add(team)
            s.flush()
            manager = User(workspace_id=ws.id, email=f"manager{t + 1}@bench-co.example",
                           name=f"Manager {t + 1}", role=Role.manager, team_id=team.id)
            reps = [User(workspace_id=ws.id, email=f"rep{t + 1}-{i + 1}@bench-co.example",
                         name=f"Rep {t + 1}-{i + 1}", role=Role.rep, team_id=team.id) for i in range(10)]
            s.add_all([manager, *reps])
            owners += [manager, *reps]
            rep = rep or reps[0]
        s.flush()
        assert rep is not None
        stages = s.scalars(select(Stage).where(Stage.workspace_id == ws.id).order_by(Stage.position)).all()
        world = World(
            workspace_id=ws.id, pipeline_id=stages[0].pipeline_id, stage_ids=[st.id for st in stages],
            stage_kinds=[st.kind.value for st in stages], owner_ids=[u.id for u in owners],
            rep=actor_for_user(rep, Surface.api), admin=actor_for_user(admin, Surface.api),
        )
        world.filter_stage = world.stage_ids[3]  # "Proposal"
        s.commit()
    return world


class Generator:
    """Row dicts for every table, with coherent links (a contact's activity may name its company and deal)."""

    def __init__(self, world: World, deals: int, activities: int, seed: int) -> None:
        self.w = world
        self.rng = random.Random(seed)
        self.n_deals = deals
        self.n_activities = activities
        self.n_companies = max(1, deals // 4)
        self.n_contacts = max(1, deals // 2)
        self.now = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
        self.activity_days = 730  # activities occur over this many days before `now`
        self.company_ids: list[uuid.UUID] = []
        self.company_names: list[str] = []
        self.contact_ids: list[uuid.UUID] = []
        self.contact_company: list[int] = []
        self.deal_ids: list[uuid.UUID] = []
        self.deals_of: dict[int, list[int]] = {}
        self.contacts_of: dict[int, list[int]] = {}

    def _owner(self) -> uuid.UUID | None:
        return None if self.rng.random() < 0.05 else self.rng.choice(self.w.owner_ids)

    def _ago(self, days: int) -> datetime:
        return self.now - timedelta(seconds=self.rng.randrange(days * 86400))

    def _base(self, created: datetime) -> dict[str, Any]:
        return {"id": uuid7(), "workspace_id": self.w.workspace_id,
                "created_at": created, "updated_at": created}

    def companies(self) -> list[dict[str, Any]]:
        rng, rows, seen = self.rng, [], set()
        suffixes = list(SUFFIXES)
        for i in range(self.n_companies):
            if i == 0:
                name = BUSY_COMPANY
            else:
                name = f"{rng.choice(PREFIXES)} {_word(rng)} {rng.choice(suffixes)}"
                while name in seen:
                    name = f"{rng.choice(PREFIXES)} {_word(rng)} {rng.choice(suffixes)}"
            seen.add(name)
            loc = rng.choice(LOCATIONS)
            row = self._base(self._ago(900)) | {
                "owner_id": self.w.rep.user_id if i == 0 else self._owner(),
                "name": name, "domain": f"{name.lower().replace(' ', '-')}-{i}.example",
                "industry": SUFFIXES.get(name.rsplit(" ", 1)[-1]),
                "employee_count": rng.randint(5, 20000), "annual_revenue": Decimal(rng.randint(10**5, 10**9)),
                "phone": None, "website": None, "country": loc[0], "region": loc[1], "city": loc[2],
                "description": None, "source": rng.choice(SOURCES), "custom_fields": {},
            }
            rows.append(row)
            self.company_ids.append(row["id"])
            self.company_names.append(name)
        return rows

    def contacts(self) -> list[dict[str, Any]]:
        rng, rows = self.rng, []
        busy_people = min(40, self.n_contacts)
        for i in range(self.n_contacts):
            co = 0 if i < busy_people else rng.randrange(self.n_companies)
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            row = self._base(self._ago(900)) | {
                "owner_id": self.w.rep.user_id if i == 0 else self._owner(),
                "first_name": first, "last_name": last,
                "email": f"{first.lower()}.{last.lower()}.{i}@c{co}.example",
                "phone": f"+1415555{i % 10000:04d}", "title": rng.choice(TITLES),
                "company_id": self.company_ids[co],
                "lifecycle_stage": rng.choice(["lead", "sales_qualified_lead", "customer"]),
                "lead_status": None, "lead_score": rng.randint(0, 100), "source": None, "country": "US",
                "timezone": None, "linkedin_url": None, "last_activity_at": None, "custom_fields": {},
            }
            rows.append(row)
            self.contact_ids.append(row["id"])
            self.contact_company.append(co)
            self.contacts_of.setdefault(co, []).append(i)
        return rows

    def deals(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rng, rows, links = self.rng, [], []
        busy_deals = min(40, self.n_deals)
        weights = [30, 20, 15, 12, 8, 8, 7]
        for i in range(self.n_deals):
            co = 0 if i < busy_deals else rng.randrange(self.n_companies)
            stage = rng.choices(range(len(self.w.stage_ids)), weights)[0]
            kind = self.w.stage_kinds[stage]
            created = self._ago(720)
            row = self._base(created) | {
                "owner_id": self.w.rep.user_id if i == 0 else self._owner(),
                "name": f"{self.company_names[co]} - {rng.choice(DEAL_THEMES)}",
                "pipeline_id": self.w.pipeline_id, "stage_id": self.w.stage_ids[stage],
                "amount": Decimal(rng.randrange(1000, 500_000)), "currency": "USD",
                "close_date": date(2026, 1, 1) + timedelta(days=rng.randrange(-365, 365)),
                "probability": None, "forecast_category": "closed" if kind != "open" else "pipeline",
                "next_step": None, "company_id": self.company_ids[co],
                "lost_reason": "price" if kind == "lost" else None, "source": None, "description": None,
                "stage_entered_at": created, "closed_at": created if kind != "open" else None,
                "custom_fields": {},
            }
            rows.append(row)
            self.deal_ids.append(row["id"])
            self.deals_of.setdefault(co, []).append(i)
            people = self.contacts_of.get(co)
            if people:
                links.append({"id": uuid7(), "workspace_id": self.w.workspace_id, "deal_id": row["id"],
                              "contact_id": self.contact_ids[rng.choice(people)], "role": "champion",
                              "is_primary": True})
        self.w.busy_company = self.company_ids[0]
        plain = 1 if self.n_companies > 1 else 0
        self.w.plain_company, self.w.plain_company_name = self.company_ids[plain], self.company_names[plain]
        self.w.busy_contact = self.contact_ids[0]
        self.w.busy_deal = self.deal_ids[0]
        return rows, links

    def activities(self) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """Batches of (activities, their 1-3 targets). About 1% are about the busy company."""
        rng, ws = self.rng, self.w.workspace_id
        types = ["call", "meeting", "email", "note", "linkedin"]
        busy_people = self.contacts_of.get(0, [0])
        for start in range(0, self.n_activities, BATCH):
            acts: list[dict[str, Any]] = []
            targets: list[dict[str, Any]] = []
            for _ in range(min(BATCH, self.n_activities - start)):
                if rng.random() < 0.01:
                    person = 0 if rng.random() < 0.3 else rng.choice(busy_people)
                    deal = 0 if rng.random() < 0.3 else rng.choice(self.deals_of.get(0, [0]))
                else:
                    person = rng.randrange(self.n_contacts)
                    co_deals = self.deals_of.get(self.contact_company[person])
                    deal = rng.choice(co_deals) if co_deals else None
                co = self.contact_company[person]
                at = self._ago(self.activity_days)
                kind = rng.choice(types)
                act = self._base(at) | {
                    "owner_id": self._owner(), "type": kind,
                    "subject": f"{kind.title()} with {self.company_names[co]}",
                    "body": "Discussed next steps.",
                    "occurred_at": at, "duration_minutes": 30, "direction": "outbound", "outcome": None,
                    "email_id": None, "call_recording_id": None, "source": "import", "source_ref": {},
                }
                acts.append(act)
                links = [("contact_id", self.contact_ids[person])]
                if rng.random() < 0.6:
                    links.append(("company_id", self.company_ids[co]))
                if deal is not None and rng.random() < 0.5:
                    links.append(("deal_id", self.deal_ids[deal]))
                for column, target in links:
                    row = {"id": uuid7(), "workspace_id": ws, "activity_id": act["id"],
                           "contact_id": None, "company_id": None, "deal_id": None}
                    row[column] = target
                    targets.append(row)
            yield acts, targets

    def extra(self) -> Iterator[tuple[str, Table, list[dict[str, Any]], float]]:
        """More (group, table, rows, generate seconds) to load after the deals: none here. A bench
        that needs more data (bench/pipeline_queries.py: the deal history) overrides this."""
        return iter(())

    def notes_and_tasks(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """M/10 notes and M/10 tasks, each on one contact, company or deal."""
        rng, n = self.rng, max(1, self.n_activities // 10)

        def target() -> dict[str, Any]:
            out: dict[str, Any] = {"contact_id": None, "company_id": None, "deal_id": None}
            if rng.random() < 0.01:
                column, value = rng.choice([("contact_id", self.w.busy_contact),
                                            ("company_id", self.w.busy_company),
                                            ("deal_id", self.w.busy_deal)])
            else:
                column, pool = rng.choice([("contact_id", self.contact_ids), ("company_id", self.company_ids),
                                           ("deal_id", self.deal_ids)])
                value = rng.choice(pool)
            out[column] = value
            return out

        for start in range(0, n, BATCH):
            size = min(BATCH, n - start)
            notes = [self._base(self._ago(730)) | target() | {
                "owner_id": self._owner(), "body": rng.choice(NOTE_BODIES), "pinned": False,
                "source": "import", "source_ref": {}} for _ in range(size)]
            yield "notes", notes
            tasks = []
            for _ in range(size):
                status = rng.choice(["open", "open", "done", "cancelled"])
                tasks.append(self._base(self._ago(365)) | target() | {
                    "owner_id": self._owner(), "title": rng.choice(TASK_TITLES), "description": None,
                    "due_at": None if rng.random() < 0.1 else self._ago(400) + timedelta(days=60),
                    "status": status, "priority": "normal",
                    "completed_at": self.now if status == "done" else None, "created_by_id": None,
                    "source": "import", "source_ref": {}})
            yield "tasks", tasks


# --- loading ---------------------------------------------------------------------------------


class Loader:
    """Inserts row dicts: Core executemany, or COPY on PostgreSQL (--pg-load copy)."""

    def __init__(self, conn: Any, backend: str, use_copy: bool) -> None:
        self.conn = conn
        self.use_copy = use_copy and backend == "postgres"
        self.stats: dict[str, LoadStat] = {}
        self.analyze_s = 0.0

    def method(self) -> str:
        return "COPY" if self.use_copy else "Core executemany"

    def load(self, group: str, tbl: Table, rows: list[dict[str, Any]], gen_s: float = 0.0) -> None:
        stat = self.stats.setdefault(group, LoadStat())
        stat.gen_s += gen_s
        t0 = time.perf_counter()
        if self.use_copy:
            self._copy(tbl, rows)
        else:
            for i in range(0, len(rows), BATCH):
                self.conn.execute(insert(tbl), rows[i:i + BATCH])
        stat.insert_s += time.perf_counter() - t0
        stat.rows += len(rows)

    def _copy(self, tbl: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        raw = self.conn.connection.driver_connection
        names = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cur, cur.copy(f'COPY "{tbl.name}" ({names}) FROM STDIN') as cp:
            for row in rows:
                cp.write_row([json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()])


def timed(make: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = make()
    return value, time.perf_counter() - t0


LAST_ACTIVITY_SQL = {
    "postgres": "UPDATE deals SET last_activity_at = last.at FROM (SELECT t.deal_id, max(a.occurred_at) AS at"
                " FROM activity_targets t JOIN activities a ON a.id = t.activity_id WHERE t.deal_id IS NOT NULL"
                " GROUP BY t.deal_id) AS last WHERE deals.id = last.deal_id",
    "sqlite": "UPDATE deals SET last_activity_at = (SELECT max(a.occurred_at) FROM activity_targets t"
              " JOIN activities a ON a.id = t.activity_id WHERE t.deal_id = deals.id)",
}


def load_world(engine: Engine, backend: str, args: argparse.Namespace,
               make_generator: Callable[[World, int, int, int], Generator] = Generator,
               ) -> tuple[World, Loader, float]:
    t_all = time.perf_counter()
    world = make_org(engine, args.teams)
    gen = make_generator(world, args.deals, args.activities, args.seed)
    with engine.begin() as conn:
        if backend == "sqlite" and args.sqlite_load_cache_mb:
            # Index upkeep during a big load thrashes SQLite's default 2 MB page cache. This
            # connection is closed after the load (engine.dispose), so queries run with the default.
            conn.exec_driver_sql(f"PRAGMA cache_size=-{args.sqlite_load_cache_mb * 1024}")
        loader = Loader(conn, backend, args.pg_load == "copy")
        rows, g = timed(gen.companies)
        loader.load("companies", Company.__table__, rows, g)
        rows, g = timed(gen.contacts)
        loader.load("contacts", Contact.__table__, rows, g)
        (rows, links), g = timed(gen.deals)
        loader.load("deals", Deal.__table__, rows, g)
        loader.load("deal_contacts", DealContact.__table__, links)
        for group, tbl, extra_rows, g in gen.extra():
            loader.load(group, tbl, extra_rows, g)
        # The deals' stage stays (from any deal history a generator added), as the ORM upkeep keeps them:
        # one INSERT ... SELECT over the history.
        t0 = time.perf_counter()
        stage_stays.rebuild(conn, world.workspace_id)
        stat = loader.stats.setdefault("deal_stage_stays (INSERT ... SELECT)", LoadStat())
        stat.insert_s += time.perf_counter() - t0
        stat.rows += conn.scalar(select(func.count()).select_from(DealStageStay)) or 0
        batches = gen.activities()
        while True:
            batch, g = timed(lambda: next(batches, None))
            if batch is None:
                break
            acts, targets = batch
            loader.load("activities", Activity.__table__, acts, g)
            loader.load("activity_targets", ActivityTarget.__table__, targets)
        # deals.last_activity_at, as the activity service keeps it: one UPDATE once the activities are in.
        t0 = time.perf_counter()
        fill = LAST_ACTIVITY_SQL["postgres" if backend == "postgres" else "sqlite"]
        filled = conn.execute(text(fill)).rowcount
        stat = loader.stats.setdefault("deals.last_activity_at (UPDATE)", LoadStat())
        stat.insert_s += time.perf_counter() - t0
        stat.rows += max(filled, 0)
        # The daily activity rollup, as the activity service keeps it: one INSERT ... SELECT ... GROUP BY.
        t0 = time.perf_counter()
        cells = activity_rollup.rebuild(conn, world.workspace_id)
        stat = loader.stats.setdefault("activity_day_counts (INSERT ... SELECT)", LoadStat())
        stat.insert_s += time.perf_counter() - t0
        stat.rows += cells
        batches2 = gen.notes_and_tasks()
        while True:
            batch2, g = timed(lambda: next(batches2, None))
            if batch2 is None:
                break
            name, rows = batch2
            loader.load("notes+tasks", (Note if name == "notes" else Task).__table__, rows, g)
    t0 = time.perf_counter()
    if backend == "postgres":
        # VACUUM and CHECKPOINT as well: a live database is vacuumed by autovacuum (its pages carry hint
        # bits and visibility) and has long written its data out; right after a bulk load neither holds,
        # and the queries measured first pay for it (forecast_changes as the admin, the first query of a
        # run: 370-456 ms straight after the load, 160-180 ms on the same database minutes later).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    analyze_s = time.perf_counter() - t0
    loader.analyze_s = analyze_s
    engine.dispose()  # queries start on fresh connections (default PRAGMAs, cold statement caches)
    return world, loader, time.perf_counter() - t_all



@dataclass
class Calibration:
    """The DEPENDENCIES.md workloads, measured again in this run on the same database."""

    executemany: float  # rows/s: 100k rows into a 3-column table, Core executemany
    copy: float | None  # rows/s: the same through COPY (PostgreSQL only)
    group_by_s: float  # median of 3: GROUP BY over the activities table
    group_by_rows: int


def calibrate(engine: Engine, backend: str) -> Calibration:
    tbl = Table("bench_calibration", MetaData(), Column("id", Integer, primary_key=True),
                Column("name", String(100)), Column("n", Integer))
    rows = [{"id": i, "name": f"name {i}", "n": i % 1000} for i in range(100_000)]
    copy_rate = None
    with engine.begin() as conn:
        tbl.drop(conn, checkfirst=True)
        tbl.create(conn)
        t0 = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            conn.execute(insert(tbl), rows[i:i + BATCH])
        rate = len(rows) / (time.perf_counter() - t0)
        if backend == "postgres":
            conn.exec_driver_sql("TRUNCATE bench_calibration")
            t0 = time.perf_counter()
            Loader(conn, backend, True)._copy(tbl, rows)
            copy_rate = len(rows) / (time.perf_counter() - t0)
        tbl.drop(conn)
    times = []
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(Activity)) or 0
        for _ in range(3):
            t0 = time.perf_counter()
            conn.execute(select(Activity.owner_id, func.count()).group_by(Activity.owner_id)).all()
            times.append(time.perf_counter() - t0)
    return Calibration(rate, copy_rate, statistics.median(times), n)


def print_load(backend: str, loader: Loader, total_s: float, cal: Calibration) -> None:
    if loader.use_copy:
        assert cal.copy is not None
        now, doc, what = cal.copy, REF_PG_COPY, "COPY"
    else:
        now = cal.executemany
        doc = REF_SQLITE_EXECUTEMANY if backend == "sqlite" else REF_PG_EXECUTEMANY
        what = "Core executemany"
    rows = []
    stats = [*loader.stats.items(), ("all", LoadStat(sum(s.rows for s in loader.stats.values()),
                                                     sum(s.insert_s for s in loader.stats.values()),
                                                     sum(s.gen_s for s in loader.stats.values())))]
    for name, st in stats:
        rate = st.rows / st.insert_s if st.insert_s else 0.0
        rows.append([name, f"{st.rows:,}", f"{st.gen_s:.1f}", f"{st.insert_s:.1f}", f"{rate / 1000:.1f}k",
                     f"{rate / now:.2f}", f"{rate / doc:.2f}"])
    print(f"load ({loader.method()}, batches of {BATCH:,}, the real schema: indexes, foreign keys and checks"
          f" in place): {total_s:.1f} s in all, of which ANALYZE (PostgreSQL: VACUUM ANALYZE, CHECKPOINT)"
          f" {loader.analyze_s:.1f} s")
    print(table(["table group", "rows", "generate s", "insert s", "rows/s",
                 f"/ same-run 3-column {what} {now / 1000:.0f}k", f"/ DEPENDENCIES.md {doc / 1000:.1f}k"], rows))
    print("\nreference workloads (DEPENDENCIES.md, 'PostgreSQL and SQLite'), measured again in this run:")
    ref_rows = [["insert 100k rows, 3-column table, Core executemany", f"{cal.executemany / 1000:.1f}k rows/s",
                 f"{(REF_SQLITE_EXECUTEMANY if backend == 'sqlite' else REF_PG_EXECUTEMANY) / 1000:.1f}k rows/s",
                 f"{cal.executemany / (REF_SQLITE_EXECUTEMANY if backend == 'sqlite' else REF_PG_EXECUTEMANY):.2f}"]]
    if cal.copy is not None:
        ref_rows.append(["insert 100k rows, 3-column table, COPY", f"{cal.copy / 1000:.1f}k rows/s",
                         f"{REF_PG_COPY / 1000:.1f}k rows/s", f"{cal.copy / REF_PG_COPY:.2f}"])
    ref_ms = REF_GROUP_BY_MS[backend]
    comparable = 900_000 <= cal.group_by_rows <= 1_100_000
    ref_rows.append([f"GROUP BY owner_id over activities ({cal.group_by_rows:,} rows; ref: 1M rows)",
                     f"{ms(cal.group_by_s)} ms", f"{ref_ms:.0f} ms",
                     f"{cal.group_by_s * 1000 / ref_ms:.2f}" if comparable else "- (not 1M rows)"])
    print(table(["workload", "measured now", "DEPENDENCIES.md", "now / doc"], ref_rows))


# --- EXPLAIN -----------------------------------------------------------------------------------




# --- backends --------------------------------------------------------------------------------


def pg_database(args: argparse.Namespace) -> str | None:
    """URL of the bench database (created if missing), or None when PostgreSQL is unreachable."""
    import psycopg
    from psycopg import sql

    base = make_url(args.pg_url).set(drivername="postgresql")
    admin_url = base.set(database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.pg_db,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.pg_db)))
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        rest = "benching SQLite only" if "sqlite" in args.backends else "nothing left to bench"
        print(f"PostgreSQL unreachable at {base.render_as_string()} ({reason[:160]}); {rest}")
        return None
    return base.set(database=args.pg_db).render_as_string(hide_password=False)


def empty_pg(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def open_backend(backend: str, args: argparse.Namespace, name: str, cleanup: list[Callable[[], None]],
                 pg_url: Callable[[argparse.Namespace], str | None]) -> Engine | None:
    """An emptied, migrated database for one backend (None: PostgreSQL unreachable, already said);
    what empties it again at the end goes on `cleanup` unless --keep. Shared by both benches."""
    if backend == "postgres":
        url = pg_url(args)
        if url is None:
            return None
        engine = make_engine(url)
        empty_pg(engine)
        if not args.keep:
            cleanup.append(lambda e=engine: empty_pg(e))
        where = make_url(url).render_as_string()
    else:
        path = BENCH_DIR / f"{name}-{os.getpid()}.db"
        remove_sqlite(path)
        engine = make_engine(f"sqlite:///{path}")
        if not args.keep:
            cleanup.append(lambda p=path: remove_sqlite(p))
        where = str(path.relative_to(ROOT))
    print(f"\n## {backend} ({where})")
    t0 = time.perf_counter()
    migrate.upgrade(engine)
    print(f"migrated in {time.perf_counter() - t0:.1f} s")
    return engine



def add_backend_args(p: argparse.ArgumentParser, *, pg_db: str) -> None:
    """The options both benches share: where they load, how, and what they keep."""
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument("--pg-url", default=os.environ.get("CRM_TEST_POSTGRES_URL",
                                                      "postgresql://postgres@127.0.0.1:5432/test"),
                   help="server to use; its database is NOT touched, see --pg-db")
    p.add_argument("--pg-db", default=pg_db, help="database the bench creates and empties")
    p.add_argument("--pg-load", choices=["copy", "executemany"], default="copy")
    p.add_argument("--sqlite-load-cache-mb", type=int, default=256,
                   help="SQLite page cache for the load connection only (0: SQLite's default, 2 MB)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the loaded databases (to inspect them)")


def parse_backend_args(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, split --backends, and refuse a --pg-db the bench must not empty."""
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgres"}
    if unknown:
        p.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if args.pg_db in REFUSED_PG_DBS or args.pg_db == make_url(args.pg_url).database:
        p.error(f"refusing --pg-db {args.pg_db!r}: the bench empties its database (--pg-url names the"
                " test database, which it never touches); pick another name")
    return args
