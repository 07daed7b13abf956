"""The process's shared agent runner: the app, the Slack handlers and the jobs use one.

Built on first use from settings (model, checkpointer); the app or a test can install
its own with `install_runner` (tests pass a runner on their rolled-back connection).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agents.runner import AgentRunner

_runner: AgentRunner | None = None
_lock = threading.Lock()


def agent_runner(sessions: sessionmaker[Session] | None = None) -> AgentRunner:
    global _runner
    with _lock:
        if _runner is None:
            from agents.checkpoint import make_checkpointer
            from agents.models import load_brain
            from store.db import get_sessionmaker

            _runner = AgentRunner(sessions=sessions or get_sessionmaker(), checkpointer=make_checkpointer(),
                                  brain=load_brain())
        return _runner


def install_runner(runner: AgentRunner | None) -> Any:
    """Use `runner` from now on (None: build from settings on next use); returns the previous one."""
    global _runner
    with _lock:
        previous, _runner = _runner, runner
    return previous
