"""The process-wide meter: ``init_sync()`` / ``init()`` create it, ``get_meter()`` returns it.

Adapters built with ``meter=None`` use it. ``reset()`` closes and forgets it (tests use this).

``await init(client_id, client_secret, application_name)`` builds a meter whose events go to CCS
(mftsccs) through :class:`~a2a_llm_tracker.sinks.ccs.CCSSink`. It never waits on the network: the
CCS worker authenticates lazily, and events wait in a durable outbox until the server confirms
them, so ``init`` returns in milliseconds even when the server is slow or down (the README's
singleton pattern gives it 5 s). Credentials default to ``$CLIENT_ID`` / ``$CLIENT_SECRET``; a
``.env`` file in the current directory is read for those (and the ``CCS_*`` settings) when this
module is imported, without overriding real environment variables, so that code reading
``os.getenv("CLIENT_ID")`` right after ``from a2a_llm_tracker import init`` sees them too.
"""

from __future__ import annotations as _annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._dotenv import load_env_file
from ._meter import Meter
from ._pricing import PricingRegistry
from .exceptions import ConfigurationError, TrackerNotInitializedError

__all__ = ["get_llm", "get_meter", "init", "init_sync", "is_initialized", "parse_local_sink", "reset",
           "set_meter"]

load_env_file()  # CLIENT_ID / CLIENT_SECRET / CCS_* from ./.env, never overriding the environment

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


async def init(client_id: str | None = None, client_secret: str | None = None, application_name: str | None = None,
               server_url: str | None = None, *, node_url: str | None = None,
               pricing: PricingRegistry | str | Path | None = "catalog", sinks: Sequence[Any] | None = None,
               storage_path: str | Path | None = None, entity_id: int | str | None = None,
               local_sink: str | Any | None = None, project: str | None = None, allow_insecure: bool = False,
               sink_options: Mapping[str, Any] | None = None, **meter_kwargs: Any) -> Meter:
    """Create the global meter, sending events to CCS (mftsccs).

    Returns at once: nothing here touches the network. The CCS worker thread authenticates on
    its first delivery and retries with backoff while the server is slow or down; events wait in
    a durable outbox under *storage_path* meanwhile (see docs/ccs.md).

    Args:
        client_id: CCS OAuth client id (default ``$CLIENT_ID``, or ``CLIENT_ID`` in ``./.env``).
        client_secret: CCS OAuth client secret (default ``$CLIENT_SECRET``); kept in memory only.
        application_name: names the ``the_llm_tracker`` concept and is the events' default ``project``.
        server_url: CCS base URL (default ``$CCS_SERVER_URL``, ``$CLIENT_SERVER``, then
            ``https://a2aorchestra.com``). Plain HTTP only to loopback unless ``allow_insecure``.
            Also accepted as the 4th positional argument, as in earlier releases.
        node_url: CCS node URL for concept sync (default ``$CCS_NODE_URL``, then ``server_url``).
        pricing: a PricingRegistry, ``"catalog"`` (default), ``"none"``, or a price sheet path.
        sinks: more sinks to write to as well.
        storage_path: folder for the CCS outbox and client state (default under the outbox dir).
        entity_id: the CCS entity the tracker hangs off (default: ``client_id`` if numeric).
        local_sink: also keep a local copy: ``"sqlite:usage.db"``, ``"jsonl:usage.jsonl"``, ``"console"``.
        project: default ``project`` of events (default: *application_name*).
        allow_insecure: allow plain HTTP to a non-loopback CCS host.
        sink_options: more :class:`~a2a_llm_tracker.sinks.ccs.CCSSink` keywords (``batch_size``,
            ``request_timeout``, ``max_backoff`` ...).
        meter_kwargs: passed to :class:`Meter`.

    Returns:
        The new global meter (any previous one is closed).

    Raises:
        ConfigurationError: credentials missing, a URL malformed or insecure, bad options.
        AdapterUnavailable: mftsccs is not installed (``pip install a2a-llm-tracker[ccs]``).
    """
    from .sinks.ccs import CCSSink

    load_env_file()
    ccs_sink = CCSSink(application_name=application_name, entity_id=entity_id, client_id=client_id or None,
                       client_secret=client_secret or None, server_url=server_url, node_url=node_url,
                       storage_path=storage_path, allow_insecure=allow_insecure, **dict(sink_options or {}))
    try:
        all_sinks: list[Any] = [ccs_sink]
        if local_sink is not None:
            all_sinks.append(parse_local_sink(local_sink))
        all_sinks += list(sinks or [])
        meter = Meter(pricing=_pricing_from(pricing), sinks=all_sinks,
                      project=project or ccs_sink.settings.application_name, **meter_kwargs)
    except BaseException:
        ccs_sink.close()
        raise
    with _lock:
        previous = set_meter(meter)
    if previous is not None and previous is not meter:
        await asyncio.to_thread(previous.close, 5.0)  # flushing it must not block this event loop
    return meter
