"""Fixtures for the LangChain adapter tests (``server`` and ``sink`` come from ../conftest.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_openai")

from a2a_llm_tracker import Meter, PricingRegistry  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402


@pytest.fixture(name="pricing")
def _pricing() -> PricingRegistry:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4o-mini", input_per_million=0.15, output_per_million=0.60,
                      cached_input_per_million=0.075)
    return pricing


@pytest.fixture(name="meter")
def _meter(sink: MemorySink, pricing: PricingRegistry):
    """A strict meter (adapter failures raise) writing inline into *sink*."""
    meter = Meter(pricing=pricing, sinks=[sink], background=False, strict=True)
    yield meter
    meter.close()


@pytest.fixture(name="llm")
def _llm(server: MockProvider):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="test", max_retries=0)
