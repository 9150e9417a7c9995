"""Fixtures for the analyzer tests: a strict in-memory Meter and the recorded-response corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

# LiteLLM would otherwise try to download its price map on import (no network in tests).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from a2a_llm_tracker import Meter  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"

#: Every normalised field a fixture's "expected" block must state.
NORMALISED_FIELDS = ("provider", "model", "response_model", "operation", "stream", "input_tokens", "output_tokens",
                     "total_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
                     "token_details", "accuracy", "status", "error_type", "finish_reason", "request_id",
                     "metadata")


def load_fixture(name: str) -> dict[str, Any]:
    """One fixture file by name (without .json)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def all_fixtures() -> list[str]:
    """Names of every fixture file."""
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.fixture(name="sink")
def _sink() -> MemorySink:
    return MemorySink()


@pytest.fixture(name="meter")
def _meter(sink: MemorySink):
    meter = Meter(sinks=[sink], background=False, strict=True)
    yield meter
    meter.close()


@pytest.fixture(name="lenient_meter")
def _lenient_meter(sink: MemorySink):
    meter = Meter(sinks=[sink], background=False, strict=False)
    yield meter
    meter.close()
