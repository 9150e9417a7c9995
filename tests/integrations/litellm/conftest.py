"""Fixtures for the LiteLLM integration tests: a MockProvider, a recording meter, logger cleanup."""

from __future__ import annotations

import os
import time

# litellm fetches its price map from GitHub at import unless told to use the bundled copy (no network in tests).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

pytest.importorskip("litellm")

from a2a_llm_tracker.mock_provider import MockProvider

from ..conftest import FlushingSink, make_meter

MESSAGES = [{"role": "user", "content": "Say hello in one sentence."}]


@pytest.fixture(scope="module", name="server")
def _server():
    with MockProvider(reply="Hello there, how are you today?", cached_tokens=5, reasoning_tokens=2,
                      cache_write_tokens=3,
                      models={"nousage": {"report_usage": False}, "strict-llm": {"reject_stream_options": True}}) as s:
        yield s


@pytest.fixture(autouse=True)
def _reset_server(server):
    server.reset()
    yield


@pytest.fixture(name="sink")
def _sink():
    return FlushingSink()


@pytest.fixture(name="meter", params=["inline", "writer-thread"])
def _meter(request, sink):
    """A strict meter writing inline into *sink*, then the default set-up (events built on the writer thread)."""
    meter = make_meter(request.param, sink, use_provider_cost=True)
    yield meter
    meter.close()


@pytest.fixture(name="openai_kw")
def _openai_kw(server):
    return {"api_base": server.base_url, "api_key": "sk-test-not-a-real-key-123456"}


@pytest.fixture(name="loggers")
def _loggers():
    """Install TrackerLoggers for one test and remove them from every litellm list afterwards."""
    from a2a_llm_tracker.integrations.litellm import TrackerLogger

    made: list[TrackerLogger] = []

    def make(meter, **kwargs):
        logger = TrackerLogger(meter, **kwargs)
        logger.flush(10)  # an earlier test's calls may still wait in litellm's logging threads
        logger.install()
        made.append(logger)
        return logger

    yield make
    for logger in made:
        logger.uninstall()


def wait_for(predicate, timeout: float = 5.0) -> bool:
    """Poll *predicate* (litellm's sync callbacks run on its worker threads a few ms later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
