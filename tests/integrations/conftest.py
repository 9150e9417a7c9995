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


class FlushingSink(MemorySink):
    """A MemorySink whose ``events`` first flushes the meter writing into it: a test reads the same
    events whether that meter writes inline or builds and writes them on its writer thread."""

    meter = None

    @property
    def events(self):  # type: ignore[override]
        if self.meter is not None:
            assert self.meter.flush(10)
        return super().events


@pytest.fixture(name="sink")
def _sink() -> MemorySink:
    return FlushingSink()


def make_meter(mode: str, sink: FlushingSink, **kwargs):
    """The two set-ups every adapter test runs under: ``inline`` (strict, written in the call) and
    ``writer-thread`` (the default: the adapter's events are built, priced and written on the writer)."""
    from a2a_llm_tracker import Meter

    if mode == "inline":
        meter = Meter(sinks=[sink], background=False, strict=True, **kwargs)
    else:
        meter = Meter(sinks=[sink], **kwargs)
        assert meter._defer
    sink.meter = meter
    return meter
