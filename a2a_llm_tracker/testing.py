"""Helpers for testing code that records usage.

``capture_events()`` gives you a Meter that keeps events in memory, installed as the global
meter for the block, so adapters built with ``meter=None`` record into it::

    with capture_events() as events:
        LiteLLM().completion(model="gpt-4.1", messages=[...], mock_response="hi")
    assert events[0].model == "gpt-4.1"
"""

from __future__ import annotations as _annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._meter import Meter
from ._pricing import PricingRegistry
from ._setup import set_meter
from .sinks.memory import MemorySink

__all__ = ["CapturedEvents", "capture_events"]


class CapturedEvents(list):  # type: ignore[type-arg]
    """The events recorded in a :func:`capture_events` block (a list), plus the meter."""

    meter: Meter


@contextmanager
def capture_events(pricing: PricingRegistry | None = None, **meter_kwargs: Any) -> Iterator[CapturedEvents]:
    """Record into memory for the block; events appear in the list as they are recorded."""
    captured = CapturedEvents()
    sink = _ListSink(captured)
    meter = Meter(pricing=pricing, sinks=[sink], background=False, **meter_kwargs)
    previous = set_meter(meter)
    captured.meter = meter
    try:
        yield captured
    finally:
        set_meter(previous)
        meter.close()


class _ListSink(MemorySink):
    def __init__(self, target: list[Any]) -> None:
        super().__init__("capture")
        self._target = target

    def write_many(self, events: Any) -> None:
        super().write_many(events)
        with self._lock:
            self._target[:] = self._events
