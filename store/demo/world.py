"""The demo's cast and catalogue (people, stages, products) and the state a seeding run carries."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from store.models import (
    Company,
    Contact,
    Deal,
    Product,
    Stage,
    Team,
    User,
)
from store.models.enums import (
    ForecastCategory,
    Role,
)
from store.services.org import DEFAULT_STAGES
from store.types import uuid7

DEMO_DOMAIN = "demo.agentcrm.dev"
SOURCE = "seed"  # provenance of every seeded activity, note, task and email
WON, LOST = 5, 6  # stage positions; 0-4 are the open stages
FC = ForecastCategory

# (key, name, role, team, time zone, quarterly quota, win-rate multiplier)
PEOPLE = [
    ("sam", "Sam Okafor", Role.admin, None, "America/New_York", None, 0.0),
    ("dana", "Dana Whitfield", Role.manager, "West", "America/Los_Angeles", Decimal("710000"), 0.0),
    ("priya", "Priya Raman", Role.rep, "West", "America/Los_Angeles", Decimal("200000"), 1.25),
    ("jordan", "Jordan Ellis", Role.rep, "West", "America/Denver", Decimal("180000"), 1.0),
    ("mateo", "Mateo Alvarez", Role.rep, "West", "America/Los_Angeles", Decimal("160000"), 0.7),
    ("aisha", "Aisha Bello", Role.rep, "West", "America/Chicago", Decimal("170000"), 0.95),
    ("lena", "Lena Fischer", Role.rep, "EMEA", "Europe/Berlin", Decimal("180000"), 1.05),
]
WEST_REPS = {"priya": 30, "jordan": 25, "mateo": 22, "aisha": 23}  # share of non-EMEA accounts
REP_WIN = {key: mult for key, _, role, _, _, _, mult in PEOPLE if role == Role.rep}

STAGES = DEFAULT_STAGES  # (name, probability, kind): the pipeline every workspace starts with

PRODUCTS = [  # (sku, name, unit price, billing period)
    ("PLAT-LIC", "Platform licence (per seat)", "1000.00", "year"),
    ("TELE-MOD", "Telematics module", "14000.00", "year"),
    ("ONB-STD", "Onboarding package", "7500.00", None),
    ("ONB-ENT", "Enterprise onboarding", "18000.00", None),
    ("SUP-PRM", "Premium support", "4500.00", "year"),
    ("SUP-ENT", "Enterprise support (24/7)", "12000.00", "year"),
    ("API-ADD", "API access add-on", "6000.00", "year"),
    ("TRN-DAY", "Training day (remote)", "2200.00", None),
]
TIERS = ["Strategic", "Enterprise", "Mid-market", "SMB"]


@dataclass
class DemoSummary:
    workspace_id: uuid.UUID
    users: list[tuple[str, str, str]]  # (email, name, role)
    counts: dict[str, int]  # table name -> rows created


@dataclass
class Event:
    """A deal's state right after one change (one DealHistory row)."""

    at: datetime
    pos: int  # stage position
    moved: bool  # a stage move (False at creation and for amount/date changes)
    amount: Decimal
    close_date: date
    forecast: ForecastCategory


@dataclass
class Plan:
    deal: Deal
    company: Company
    owner: User
    contacts: list[Contact]
    events: list[Event]
    act_end: datetime  # the last activity on the deal (before any post-close ones)
    theme: str
    scripted: bool = False  # told by hand (Borealis): no generated activities, notes or tasks


@dataclass
class Ctx:
    rng: random.Random
    ws: uuid.UUID
    today: date
    now: datetime
    rows: dict[type, list[Any]] = field(default_factory=lambda: defaultdict(list))
    users: dict[str, User] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    products: dict[str, Product] = field(default_factory=dict)
    contacts_of: dict[uuid.UUID, list[Contact]] = field(default_factory=dict)
    first_seen: dict[uuid.UUID, datetime] = field(default_factory=dict)
    deal_names: set[str] = field(default_factory=set)
    # A second stream for later additions to the story, so that they leave the main stream
    # (and with it every other record) as it was.
    quiet: random.Random = field(default_factory=random.Random)
    plans: list[Plan] = field(default_factory=list)

    def add(self, obj: Any, at: datetime | None = None) -> Any:
        """Queue a row: id and workspace set now, so rows can link before any flush."""
        obj.id = obj.id or uuid7()
        obj.workspace_id = self.ws
        if at is not None:
            obj.created_at = obj.updated_at = at
        self.rows[type(obj)].append(obj)
        return obj

    def seen(self, record_id: uuid.UUID, at: datetime) -> None:
        if record_id not in self.first_seen or at < self.first_seen[record_id]:
            self.first_seen[record_id] = at

    def days_ago(self, days: float) -> datetime:
        return self.now - timedelta(seconds=int(days * 86400))

    def user(self, user_id: uuid.UUID | None) -> tuple[str, User]:
        return next((k, u) for k, u in self.users.items() if u.id == user_id)
