"""Fixtures for the LlamaIndex adapter tests (``server`` and ``sink`` come from ../conftest.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai")

from a2a_llm_tracker import Meter, PricingRegistry  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402

from ..conftest import make_meter  # noqa: E402


@pytest.fixture(name="meter", params=["inline", "writer-thread"])
def _meter(request, sink: MemorySink):
    """A strict meter writing inline into *sink*, then the default set-up (events built on the writer thread)."""
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4o-mini", input_per_million=0.15, output_per_million=0.60)
    meter = make_meter(request.param, sink, pricing=pricing)
    yield meter
    meter.close()


@pytest.fixture(name="instrumented")
def _instrumented(meter: Meter):
    from a2a_llm_tracker.integrations.llamaindex import instrument

    with instrument(meter) as handle:
        yield handle


def _make_llm(server: MockProvider, usage_on_streams: bool):
    from llama_index.llms.openai import OpenAI

    extra = {"stream_options": {"include_usage": True}} if usage_on_streams else {}
    return OpenAI(api_base=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0,
                  additional_kwargs=extra)


@pytest.fixture(name="llm")
def _llm(server: MockProvider):
    """LlamaIndex OpenAI asking for usage on streams (stream_options.include_usage)."""
    return _make_llm(server, True)


@pytest.fixture(name="llm_plain")
def _llm_plain(server: MockProvider):
    """LlamaIndex OpenAI as configured by default (no usage on streams)."""
    return _make_llm(server, False)
