"""The process-wide meter: ``init_sync()`` / ``init()`` create it, ``get_meter()`` returns it.

Adapters built with ``meter=None`` use it. ``reset()`` closes and forgets it (tests use this).
"""

from __future__ import annotations as _annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._meter import Meter
from ._pricing import PricingRegistry
from .exceptions import ConfigurationError, TrackerNotInitializedError

__all__ = ["get_llm", "get_meter", "init_sync", "is_initialized", "parse_local_sink", "reset", "set_meter"]

_lock = threading.RLock()
_meter: Meter | None = None


def set_meter(meter: Meter | None) -> Meter | None:
    """Make *meter* the global meter (None clears it without closing); returns the previous one."""
    global _meter
    if meter is not None and not isinstance(meter, Meter):
        raise ConfigurationError(f"set_meter() takes a Meter, got {type(meter).__name__}")
    with _lock:
        previous, _meter = _meter, meter
    return previous


def get_meter() -> Meter:
    """The global meter.

    Raises:
        TrackerNotInitializedError: neither ``init()`` nor ``init_sync()`` ran yet.
    """
    meter = _meter
    if meter is None:
        raise TrackerNotInitializedError(
            "no global meter: call a2a_llm_tracker.init_sync(...) (local) or await a2a_llm_tracker.init(...) "
            "(CCS) first, or pass meter= explicitly")
    return meter


def is_initialized() -> bool:
    """True when a global meter exists."""
    return _meter is not None


def resolve_meter(meter: Meter | None) -> Meter:
    """*meter*, or the global one (for adapters built with ``meter=None``)."""
    return meter if meter is not None else get_meter()


def reset(timeout: float | None = 5.0) -> None:
    """Close the global meter (flushing it) and forget it."""
    previous = set_meter(None)
    if previous is not None:
        previous.close(timeout)


def parse_local_sink(spec: str | Any) -> Any:
    """``"sqlite:usage.db"``, ``"jsonl:usage.jsonl"``, ``"console"`` or ``"memory"`` → a sink object."""
    if not isinstance(spec, str):
        return spec
    kind, _, target = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "sqlite":
        from .sinks.sqlite import SQLiteSink

        return SQLiteSink(target or "usage.db")
    if kind == "jsonl":
        from .sinks.jsonl import JSONLSink

        return JSONLSink(target or "usage.jsonl")
    if kind == "console":
        from .sinks.console import ConsoleSink

        return ConsoleSink()
    if kind == "memory":
        from .sinks.memory import MemorySink

        return MemorySink()
    raise ConfigurationError(
        f"unknown local sink {spec!r}; use 'sqlite:PATH', 'jsonl:PATH', 'console' or 'memory'")


def _pricing_from(pricing: PricingRegistry | str | Path | None) -> PricingRegistry:
    if isinstance(pricing, PricingRegistry):
        return pricing
    if pricing is None or pricing == "none":
        return PricingRegistry()
    if pricing == "catalog":
        return PricingRegistry.with_catalog()
    if isinstance(pricing, str | Path) and Path(pricing).suffix.lower() in {".toml", ".json"}:
        return PricingRegistry.from_file(pricing)
    raise ConfigurationError(
        f"pricing must be a PricingRegistry, 'catalog', 'none' or a .toml/.json price sheet path, got {pricing!r}")


def init_sync(application_name: str | None = None, *, local_sink: str | Any = "sqlite:usage.db",
              sinks: Sequence[Any] | None = None, pricing: PricingRegistry | str | Path | None = "catalog",
              project: str | None = None, **meter_kwargs: Any) -> Meter:
    """Create the global meter for local use, without CCS.

    Args:
        application_name: the project name stamped on events (``project``).
        local_sink: ``"sqlite:usage.db"`` (default), ``"jsonl:usage.jsonl"``, ``"console"``, or a sink.
        sinks: more sinks to write to as well.
        pricing: a PricingRegistry, ``"catalog"`` (bundled list prices, default), ``"none"``, or a sheet path.
        meter_kwargs: passed to :class:`Meter`.

    Returns:
        The new global meter (any previous one is closed).
    """
    all_sinks = [parse_local_sink(local_sink)] if local_sink is not None else []
    all_sinks += list(sinks or [])
    meter = Meter(pricing=_pricing_from(pricing), sinks=all_sinks, project=project or application_name,
                  **meter_kwargs)
    with _lock:
        previous = set_meter(meter)
    if previous is not None and previous is not meter:
        previous.close(5.0)
    return meter


def get_llm(meter: Meter | None = None) -> Any:
    """A LiteLLM wrapper recording into *meter* (default: the global meter)."""
    from .integrations.litellm import LiteLLM

    return LiteLLM(meter=resolve_meter(meter))
