"""Fixtures for the LangChain adapter tests (``server`` and ``sink`` come from ../conftest.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_openai")

from a2a_llm_tracker import PricingRegistry  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402

from ..conftest import make_meter  # noqa: E402


@pytest.fixture(name="pricing")
def _pricing() -> PricingRegistry:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4o-mini", input_per_million=0.15, output_per_million=0.60,
                      cached_input_per_million=0.075)
    return pricing


@pytest.fixture(name="meter", params=["inline", "writer-thread"])
def _meter(request, sink: MemorySink, pricing: PricingRegistry):
    """A strict meter writing inline into *sink*, then the default set-up (events built on the writer thread)."""
    meter = make_meter(request.param, sink, pricing=pricing)
    yield meter
    meter.close()


@pytest.fixture(name="llm")
def _llm(server: MockProvider):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="test", max_retries=0)
