"""Fixtures shared by the framework adapter tests (a folder's own conftest may override them)."""

from __future__ import annotations

import pytest

from a2a_llm_tracker.mock_provider import MockProvider
from a2a_llm_tracker.sinks.memory import MemorySink


@pytest.fixture(name="server")
def _server():
    """MockProvider reporting cache and reasoning details on every chat call."""
    with MockProvider(cached_tokens=4, reasoning_tokens=2) as server:
        yield server


@pytest.fixture(name="sink")
def _sink() -> MemorySink:
    return MemorySink()
