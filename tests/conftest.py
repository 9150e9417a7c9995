"""Shared fixtures: every test starts with no global meter and its own outbox folder."""

from __future__ import annotations

import pytest

import a2a_llm_tracker


@pytest.fixture(autouse=True)
def _isolate_tracker(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No global meter leaks between tests, and outboxes land in a temp dir, not ~/.cache."""
    monkeypatch.setenv("A2A_TRACKER_OUTBOX_DIR", str(tmp_path_factory.mktemp("outbox")))
    a2a_llm_tracker.reset()
    yield
    a2a_llm_tracker.reset()
