"""The ``fake_openai`` fixture: a scripted OpenAI-compatible server per test.

The server itself lives in evals/openai_server.py (the evals' scripted models use it too);
see its docstring for scripting, streaming and token estimates. Register the fixture for
the whole suite with ``pytest_plugins = ["tests.fake_openai"]`` in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evals.openai_server import FakeOpenAI, Reply, error, estimate_tokens, text, tool_calls

__all__ = ["FakeOpenAI", "Reply", "error", "estimate_tokens", "fake_openai", "text", "tool_calls"]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh, started FakeOpenAI per test; stopped (thread joined, port closed) after it."""
    with FakeOpenAI() as server:
        yield server
