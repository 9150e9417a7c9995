"""Meter: enrich → price → observe (budgets) → dispatch.

``record()`` runs on the caller's thread and costs a few microseconds: it never waits on a
network or a disk (the dispatcher does the writing).
"""

from __future__ import annotations as _annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ._context import _CURRENT, CONTEXT_FIELDS, TrackContext, get_context
from ._dispatch import Deferred, DispatchConfig, Dispatcher, DispatchStats
from ._events import UsageEvent, event_from
from ._pricing import PricingRegistry
from .exceptions import ConfigurationError

__all__ = ["Enricher", "Meter"]

logger = logging.getLogger("a2a_llm_tracker")

#: A step that returns an updated copy of an event (``event.model_copy(update=...)``).
Enricher = Callable[[UsageEvent], UsageEvent]


class Meter:
    """Records usage events: attributes them, prices them and hands them to the sinks.

    Args:
        pricing: the user's prices (a :class:`PricingRegistry`); None prices nothing.
        sinks: where events go (``JSONLSink``, ``SQLiteSink``, ``MemorySink``, your own ``Sink``).
        project: default ``project`` for events that have none.
        background: write from a background thread (default); False writes inline, for debugging.
        strict: raise errors from adapters, analyzers and sinks instead of logging them (tests).
        dispatch: batching, retry and outbox settings.
        enrichers: callables applied to every event after pricing.
        use_provider_cost: where you have no price for a model, keep a cost the provider or
            framework reported (e.g. LiteLLM's ``response_cost``), labelled ``cost_source="provider"``.
        defaults: default attribution (``agent_id``, ``user_id`` ...) for events that lack it.
        budgets: :class:`Budget` guards; wrappers call :meth:`check_budgets` before each LLM call.

    Example::

        meter = Meter(pricing=pricing, sinks=[JSONLSink("usage.jsonl")], project="my-a2a-system")

    .. versionadded:: 0.1
    """

    def __init__(self, pricing: PricingRegistry | None = None, sinks: Sequence[Any] | None = None,
                 project: str | None = None, *, background: bool = True, strict: bool = False,
                 dispatch: DispatchConfig | None = None, enrichers: Iterable[Enricher] = (),
                 use_provider_cost: bool = False, defaults: Mapping[str, str] | None = None,
                 budgets: Iterable[Any] = ()) -> None:
        if pricing is not None and not isinstance(pricing, PricingRegistry):
            raise ConfigurationError(f"pricing must be a PricingRegistry, got {type(pricing).__name__}")
        sink_list = list(sinks or [])
        for sink in sink_list:
            if not callable(getattr(sink, "write", None)) and not callable(getattr(sink, "write_many", None)):
                raise ConfigurationError(f"sink {sink!r} has no write(event) method")
        if project is not None and not isinstance(project, str):
            raise ConfigurationError(f"project must be a str, got {type(project).__name__}")
        defaults = dict(defaults or {})
        unknown = set(defaults) - set(CONTEXT_FIELDS)
        if unknown:
            raise ConfigurationError(f"unknown default field(s) {sorted(unknown)}; expected {CONTEXT_FIELDS}")
        if project is not None:
            defaults["project"] = project
        self.pricing = pricing if pricing is not None else PricingRegistry()
        self.project = project
        self._strict = bool(strict)
        self.use_provider_cost = use_provider_cost
        self._defaults = defaults
        # (context, its attribution pairs): one entry, swapped atomically, checked by identity.
        self._attribution_cache: tuple[Any, tuple[tuple[str, str], ...]] = (None, ())
        self._enrichers = tuple(enrichers)
        self._observers: list[Callable[[UsageEvent], None]] = []
        self._dispatcher = Dispatcher(sink_list, dispatch, background=background, strict=strict)
        self._build_later = self._build_on_writer  # bound once: it goes with every deferred event
        self._update_defer()
        self._budgets: list[Any] = []
        for budget in budgets:
            self.add_budget(budget)

    # -- recording -------------------------------------------------------------------------------------
    def record(self, event: UsageEvent | Mapping[str, Any] | None = None, /, **fields: Any) -> UsageEvent:
        """Record one event and return it as stored (attributed and priced).

        *event* may be a :class:`UsageEvent`, a dict of its fields, or omitted with the fields
        given as keyword arguments. Attribution precedence: the event's own fields, then the
        ambient :func:`meter_context`, then the Meter's defaults.

        Raises:
            pydantic.ValidationError: (a ``ValueError``) the event is malformed; the message
                names the field. Nothing is recorded then.
        """
        if isinstance(event, UsageEvent) and not fields:
            # the caller's event: attributed and priced in a copy (prepare(), inlined)
            filled = self._fill(event)
            final = event._replace(filled) if filled else event
            return self._dispatch(self._enrich(final) if self._enrichers else final)
        if event is None:
            event = UsageEvent(**fields)
        elif isinstance(event, UsageEvent):
            event = UsageEvent(**{**event.model_dump(), **fields})
        elif isinstance(event, Mapping):
            data = {**event, **fields}
            try:
                event = UsageEvent(**data)
            except TypeError:  # a key that is not a string: let pydantic name it
                event = UsageEvent.model_validate(data)
        else:
            raise TypeError(f"record() takes a UsageEvent or a dict, got {type(event).__name__}")
        return self._record_fresh(event)  # built here: nobody else holds it, so filled in place

    def _record_fresh(self, event: UsageEvent) -> UsageEvent:
        """:meth:`record` for an event built just now and held nowhere else (TrackerLogger, ``record(**fields)``).

        The event is attributed and priced in place instead of copied, which is what makes this
        cheaper; do not pass an event that anything else may read.
        """
        self._fill_in_place(event)
        return self._dispatch(self._enrich(event) if self._enrichers else event)

    def _record_later(self, fields: dict[str, Any], context: TrackContext | None = None,
                      complete: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Record the event an adapter's *fields* make (see :func:`event_from`), built on the writer thread.

        The caller's thread only stamps the time and captures the attribution in force (*context*,
        else the current one); ``complete(fields)``, when given, adds what is cheaper to read later
        (usage from a response object); validation, attribution and pricing then run in batches
        on the writer thread, where they cost a fraction of what they cost between the
        framework's own calls. Built at once instead (exactly like ``record``) when anything must
        see the event now: observers (budgets), enrichers, a strict meter, or an inline
        (``background=False``) one. A call whose fields cannot form an event is logged and
        counted in ``stats().invalid``.
        """
        if "ts" not in fields:
            fields["ts"] = datetime.now(UTC)
        deferred = Deferred(self._build_later, fields, context or _CURRENT.get(), complete)
        if self._defer:
            self._dispatcher.submit(deferred)
        else:
            event = self._build_on_writer(deferred)
            self._dispatch(self._enrich(event) if self._enrichers else event)

    def _build_on_writer(self, deferred: Deferred) -> UsageEvent:
        """The event of a deferred call: completed, validated, attributed (with its context) and priced."""
        fields = deferred.fields
        if deferred.complete is not None:
            deferred.complete(fields)
        event = event_from(fields)
        self._fill_in_place(event, deferred.context)
        return event

    def _fill_in_place(self, event: UsageEvent, ctx: TrackContext | None = None) -> None:
        filled = self._fill(event, ctx)
        if filled:
            event.__dict__.update(filled)
            event.__pydantic_fields_set__.update(filled)

    def _update_defer(self) -> None:
        # Deferred building only where nothing needs the event at once (see _record_later).
        self._defer = not (self._observers or self._enrichers or self._strict) and self._dispatcher.background

    @property
    def strict(self) -> bool:
        """Raise errors from adapters, analyzers and sinks instead of logging them."""
        return self._strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._strict = bool(value)
        self._update_defer()

    def prepare(self, event: UsageEvent) -> UsageEvent:
        """Attribute and price *event* without recording it (what ``record`` stores)."""
        filled = self._fill(event)
        prepared = event._replace(filled) if filled else event
        return self._enrich(prepared) if self._enrichers else prepared

    def _dispatch(self, event: UsageEvent) -> UsageEvent:
        self._dispatcher.submit(event)
        if self._observers:
            for observer in self._observers:
                try:
                    observer(event)
                except Exception:
                    if self._strict:
                        raise
                    logger.warning("a2a_llm_tracker: observer failed", exc_info=True)
        return event

    def _fill(self, event: UsageEvent, ctx: TrackContext | None = None) -> dict[str, Any]:
        """The attribution (from *ctx*, default the current context) and cost fields *event* lacks."""
        data = event.__dict__
        if ctx is None:
            ctx = _CURRENT.get()
        cached = self._attribution_cache
        if cached[0] is not ctx:  # a new context: resolve it over the defaults once, not per event
            cached = self._attribution_cache = (ctx, self._attribution(ctx))
        filled: dict[str, Any] = {}
        for name, value in cached[1]:
            if data[name] is None:
                filled[name] = value
        if ctx.metadata:
            filled["metadata"] = {**ctx.metadata, **data["metadata"]}
        cost = self._cost_fields(event)
        if cost:
            filled.update(cost)
        return filled

    def _enrich(self, event: UsageEvent) -> UsageEvent:
        for enrich in self._enrichers:
            try:
                event = enrich(event)
            except Exception:
                if self.strict:
                    raise
                logger.warning("a2a_llm_tracker: enricher %r failed", enrich, exc_info=True)
        return event

    def _attribution(self, ctx: TrackContext) -> tuple[tuple[str, str], ...]:
        """The (field, value) pairs *ctx* and the Meter's defaults give an event that lacks them."""
        defaults = self._defaults
        pairs = ((name, getattr(ctx, name) or defaults.get(name)) for name in CONTEXT_FIELDS)
        return tuple((name, value) for name, value in pairs if value is not None)

    def _cost_fields(self, event: UsageEvent) -> dict[str, Any] | None:
        """The cost fields to set on *event*: the user's price > a provider cost (if enabled) > catalog."""
        d = event.__dict__  # read the fields from the dict: attribute access on a pydantic model is slower
        source = d["cost_source"]
        if source == "pricing" or source == "catalog":
            return None  # already priced (e.g. a replayed or re-recorded event)
        inp, out, requested, answered = d["input_tokens"], d["output_tokens"], d["model"], d["response_model"]
        # The model that answered first (a dated snapshot, a deployment), then the one asked for.
        names = (answered, requested) if answered != requested else (requested,)
        pricing = self.pricing
        try:
            if inp is not None or out is not None:
                for model in names:
                    if model:
                        fields = pricing._event_cost_fields(
                            d["provider"], model, d["ts"], inp, out, d["cached_input_tokens"],
                            d["cache_write_tokens"], d["reasoning_tokens"], d["token_details"])
                        if fields is not None:
                            return fields
        except Exception:
            if self._strict:
                raise
            logger.warning("a2a_llm_tracker: pricing failed for %s", requested, exc_info=True)
        cost = d["cost_usd"]
        if source == "provider" and self.use_provider_cost and cost is not None:
            if not (cost == 0 and (inp or 0) + (out or 0) > 0):  # $0 with tokens is "unpriced"
                return None
        if pricing.catalog_enabled:
            try:
                for model in names:
                    found = pricing._cost(d["provider"], model, d["ts"], inp, out, d["cached_input_tokens"],
                                          d["cache_write_tokens"], d["reasoning_tokens"], d["token_details"])
                    if found is not None:
                        return found.event_fields()
            except Exception:
                if self._strict:
                    raise
                logger.warning("a2a_llm_tracker: catalog pricing failed for %s", requested, exc_info=True)
        if cost is not None or source is not None:
            return _UNPRICED
        return None

    # -- hooks for budgets and other observers ---------------------------------------------------------
    def add_observer(self, observer: Callable[[UsageEvent], None]) -> None:
        """Call *observer* with every recorded event (on the recording thread; keep it fast)."""
        self._observers.append(observer)
        self._update_defer()

    def remove_observer(self, observer: Callable[[UsageEvent], None]) -> None:
        """Stop calling *observer*."""
        self._observers.remove(observer)
        self._update_defer()

    def add_budget(self, budget: Any) -> None:
        """Guard calls with *budget* (anything with ``attach(meter)`` and ``check(attribution)``)."""
        if not callable(getattr(budget, "check", None)):
            raise ConfigurationError(f"budget {budget!r} has no check(attribution) method")
        attach = getattr(budget, "attach", None)
        if attach is not None:
            attach(self)
        self._budgets.append(budget)

    @property
    def budgets(self) -> tuple[Any, ...]:
        """The budgets guarding this meter's calls."""
        return tuple(self._budgets)

    def check_budgets(self, **attribution: str | None) -> None:
        """Raise :class:`BudgetExceededError` (or warn, per budget) before a call whose scope is over budget.

        *attribution* is the call's explicit attribution; the ambient context and the Meter's
        defaults fill what it leaves out. Cheap when there are no budgets.
        """
        if not self._budgets:
            return
        ctx = get_context()
        resolved = {name: attribution.get(name) or getattr(ctx, name) or self._defaults.get(name)
                    for name in CONTEXT_FIELDS}
        for budget in self._budgets:
            budget.check(resolved)

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def sinks(self) -> tuple[Any, ...]:
        """The sinks this meter writes to."""
        return self._dispatcher.sinks

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every recorded event reached the sinks; True if done within *timeout* seconds."""
        return self._dispatcher.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` for async code (does not block the event loop)."""
        return await self._dispatcher.aflush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, stop the writer and close the sinks. Idempotent. Events recorded later are
        kept in the outbox and written by the next Meter with the same sinks."""
        return self._dispatcher.shutdown(timeout)

    def replay_outbox(self) -> int:
        """Deliver events waiting in the outbox for this meter's sinks now."""
        return self._dispatcher.replay_outbox()

    def stats(self) -> DispatchStats:
        """Counters: submitted, written, spilled, retried, export_failed, lost, ..."""
        return self._dispatcher.stats()

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Meter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aflush()
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(getattr(s, "name", type(s).__name__) for s in self.sinks)
        return f"Meter(project={self.project!r}, sinks=[{names}], pricing={self.pricing!r})"


_UNPRICED: dict[str, Any] = {"input_cost_usd": None, "output_cost_usd": None, "cost_usd": None,
                             "cost_source": None, "price_id": None, "price_effective_from": None}
