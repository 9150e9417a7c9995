"""Fixtures for the AutoGen adapter tests: a local mock provider and real autogen-ext clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("autogen_agentchat")
pytest.importorskip("autogen_ext.models.openai")

from a2a_llm_tracker import Meter, PricingRegistry  # noqa: E402
from a2a_llm_tracker.integrations import autogen as tracked_autogen  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402

#: ModelInfo for gpt-4o-mini (the field set AutoGen 0.7.5 requires); avoids any model-table lookup.
MODEL_INFO: dict[str, Any] = {"vision": False, "function_calling": True, "json_output": True,
                              "family": "gpt-4o", "structured_output": True}
#: The dated name OpenAI answers with for "gpt-4o-mini" (what AutoGen resolves it to), so AutoGen
#: does not warn about a resolved-model mismatch.
SERVED_MODEL = "gpt-4o-mini-2024-07-18"
CACHED, REASONING = 8, 3


@pytest.fixture(name="server")
def _server() -> Iterator[MockProvider]:
    """A mock OpenAI/Anthropic server reporting cached and reasoning tokens."""
    with MockProvider(cached_tokens=CACHED, reasoning_tokens=REASONING,
                      models={"gpt-4o-mini": {"response_model": SERVED_MODEL}}) as server:
        yield server


@pytest.fixture(name="pricing")
def _pricing() -> PricingRegistry:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4o-mini", 0.15, 0.60, cached_input_per_million=0.075)
    return pricing


@pytest.fixture(name="sink")
def _sink() -> MemorySink:
    return MemorySink()


@pytest.fixture(name="meter")
def _meter(pricing: PricingRegistry, sink: MemorySink) -> Iterator[Meter]:
    """An inline, strict meter (adapter errors raise) writing to memory."""
    meter = Meter(pricing=pricing, sinks=[sink], background=False, strict=True)
    yield meter
    meter.close()


@pytest.fixture(name="openai_client")
def _openai_client(server: MockProvider) -> Callable[..., Any]:
    """Factory for a REAL OpenAIChatCompletionClient pointed at the mock server."""
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    def make(**kwargs: Any) -> Any:
        return OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=server.base_url, api_key="test",
                                          model_info=MODEL_INFO, **kwargs)

    return make


@pytest.fixture(autouse=True)
def _remove_event_tap() -> Iterator[None]:
    """The adapter's logger filter is process-wide: take it off after each test."""
    yield
    tracked_autogen._EventTap.uninstall()
