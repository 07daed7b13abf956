"""The API fuzzed from its own /openapi.json as a demo rep: no 5xx, no answer that breaks its schema.

The real app, on a migrated SQLite store holding the demo workspace, is served by uvicorn on
127.0.0.1 inside this test; schemathesis' CLI runs its phases against it with a rep's token:
the schema's examples, the coverage phase (boundary and invalid values of every parameter,
deterministic: it is what found POST /deals with an unknown pipeline_id), random fuzzing with a
bounded number of examples per operation, and stateful sequences along the links it infers
(create, then read, change and delete what was created). Generation is deterministic, the
requests go one at a time, and the whole test takes about 2 minutes on two cores.

It runs once, on SQLite (DESIGN.md, CI budget): what it exercises lies above the database, and
tests/test_api_malformed.py checks on both backends what differs between them (NUL characters,
integer ranges). Schemathesis' own pytest loader (`from_fixture`) does not run on pytest 9, and
its bare Hypothesis strategies (no coverage phase) found nothing at this budget.
CRM_FUZZ_EXAMPLES and CRM_FUZZ_PHASES widen a run by hand.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKEND

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BACKEND == "postgres", reason="fuzzes the HTTP layer once, on SQLite (DESIGN.md, CI budget)"),
]

# Random examples per operation in the fuzzing phase (151 operations); the coverage phase adds its own.
EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "20"))
PHASES = os.environ.get("CRM_FUZZ_PHASES", "examples,coverage,fuzzing,stateful")
TODAY = date(2026, 11, 2)  # the demo's "today": the data are the same whatever the real date


class HeldQueue:
    """Jobs (transcripts, emails) are queued and left there: this test is about the HTTP answers,
    and tests/test_jobs.py and the ingestion tests run the jobs themselves."""

    def __init__(self) -> None:
        self.jobs: list[uuid.UUID] = []

    def enqueue(self, job_id: uuid.UUID) -> None:
        self.jobs.append(job_id)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def demo_rep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The real app on a migrated SQLite store holding the demo workspace, and Priya's (a rep) token."""
    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from channels.api.app import create_app
    from flows.jobs import set_queue
    from memory import reset_memory
    from store import migrate
    from store.db import make_engine
    from store.demo import DEMO_DOMAIN, seed_demo
    from store.models import User
    from store.services.org import create_token, ensure_workspace
    from store.settings import get_settings

    root: Path = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CRM_DATA_DIR", str(root / "data"))
        env.setenv("CRM_CHROMA_PATH", str(root / "chroma"))
        env.setenv("CRM_DATABASE_URL", f"sqlite:///{root / 'crm.db'}")
        for name in [k for k in os.environ if k.startswith(("CRM_LLM_", "CRM_SLACK_"))]:
            env.delenv(name)
        # The mail webhooks configured, so they answer for their signature (401) and not "set X" (503).
        env.setenv("CRM_MAILGUN_SIGNING_KEY", "fuzz-signing-key")
        env.setenv("CRM_INBOUND_WEBHOOK_USER", "mail")
        env.setenv("CRM_INBOUND_WEBHOOK_PASSWORD", "fuzz-password")
        get_settings.cache_clear()
        reset_memory()
        engine = make_engine(f"sqlite:///{root / 'crm.db'}")
        migrate.upgrade(engine)
        sessions = sessionmaker(bind=engine, expire_on_commit=False)
        with sessions() as session:
            ws, _ = ensure_workspace(session, slug="demo")
            seed_demo(session, workspace=ws, today=TODAY, companies=20)
            priya = session.scalar(select(User).where(User.email == f"priya@{DEMO_DOMAIN}"))
            token = create_token(session, user=priya, name="fuzz")
            session.commit()
        previous = set_queue(HeldQueue())
        try:
            yield create_app(sessions), token
        finally:
            set_queue(previous)
            reset_memory()
            engine.dispose()
            get_settings.cache_clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(demo_rep: tuple[Any, str]) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 in this process (so the held queue and settings apply)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(demo_rep[0], host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_no_request_gets_a_5xx_or_an_answer_outside_its_schema(served: str, demo_rep: tuple[Any, str],
                                                               tmp_path: Path) -> None:
    run = subprocess.run([
        sys.executable, "-m", "schemathesis.cli", "run", f"{served}/openapi.json",
        "--header", f"Authorization: Bearer {demo_rep[1]}",
        "--checks", "not_a_server_error,response_schema_conformance",
        "--phases", PHASES, "--max-examples", str(EXAMPLES), "--generation-deterministic",
        # One request at a time: SQLite has one writer, and a "busy, retry" 503 is not what is tested.
        "--workers", "1", "--request-timeout", "60", "--no-color", "--warnings", "off",
    ], capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    # The summary (operations, cases, failures with a curl line to reproduce each) is the message.
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
