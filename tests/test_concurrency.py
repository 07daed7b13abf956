"""Overlapping requests on one database never fail (SQLite has a single write lock)."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm import app as cli


def test_overlapping_reads_and_writes_all_succeed(cli_env) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["setup", "--no-demo"]).exit_code == 0
    assert runner.invoke(cli, ["user", "add", "priya@acme.example", "--name", "Priya"]).exit_code == 0
    token = runner.invoke(cli, ["token", "create", "--user", "priya@acme.example"]).output.strip()

    from channels.api.app import create_app

    app = create_app()  # real sessions: each request its own connection to the same database
    headers = {"Authorization": f"Bearer {token}"}
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with TestClient(app) as client:
            for i in range(8):
                made = client.post("/api/v1/companies", headers=headers, json={"name": f"Co {n}-{i}"})
                listed = client.get("/api/v1/companies", headers=headers)
                changed = client.patch(f"/api/v1/companies/{made.json()['id']}", headers=headers,
                                       json={"industry": "Logistics"}) if made.status_code == 201 else made
                with lock:
                    statuses.extend([made.status_code, listed.status_code, changed.status_code])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(statuses) == 6 * 8 * 3
    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    with TestClient(app) as client:
        assert client.get("/api/v1/companies", headers=headers).json()["total"] == 48


def test_a_slow_read_only_unit_does_not_hold_up_writers(fresh_database_url) -> None:
    """A read tool that takes seconds (loading the embedding model, drawing a chart) must not
    lock out the Slack bot's acknowledgements or anyone's writes."""
    import time

    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from store import migrate
    from store.db import make_engine, unit_of_work
    from store.models import Workspace

    engine = make_engine(fresh_database_url)
    migrate.upgrade(engine)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    reading, done = threading.Event(), threading.Event()

    def slow_reader() -> None:
        with unit_of_work(sessions, readonly=True) as session:
            session.scalars(select(Workspace)).all()
            reading.set()
            done.wait(10)  # still inside its transaction

    reader = threading.Thread(target=slow_reader)
    reader.start()
    assert reading.wait(10)
    began = time.monotonic()
    with unit_of_work(sessions) as session:
        session.add(Workspace(name="Written meanwhile", slug="meanwhile"))
    waited = time.monotonic() - began
    done.set()
    reader.join(10)
    assert waited < 1, f"the write waited {waited:.1f}s for a read-only unit"
    with unit_of_work(sessions, readonly=True) as session:
        assert session.scalar(select(Workspace.name).where(Workspace.slug == "meanwhile")) == "Written meanwhile"
    engine.dispose()
