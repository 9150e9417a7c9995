"""OTelSink: every recorded call as an OpenTelemetry span plus token and cost metrics (extra ``otel``).

Names follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``); cost uses
OpenInference's ``llm.cost.prompt`` / ``llm.cost.completion`` / ``llm.cost.total``; tracker-only
fields go under ``a2a.*``. Spans and metrics leave through whatever exporters the given (or
global) ``TracerProvider`` and ``MeterProvider`` use, e.g. the standard OTLP exporters.

**Joining the caller's trace.** Sinks run on the Meter's writer thread, which cannot see the
caller's active span. Add :func:`capture_span_context` to the Meter's enrichers: enrichers run
in ``record()`` on the caller's thread, and it stores the active span's ids in the event's
metadata (``otel.trace_id``, ``otel.span_id``, ``otel.trace_flags``); the sink makes the call's
span a child of that span::

    from a2a_llm_tracker.sinks.otel import OTelSink, capture_span_context
    meter = Meter(sinks=[OTelSink()], enrichers=[capture_span_context])

Without it, an event whose tracker ``trace_id`` is a W3C trace id (32 hex digits, as
:func:`a2a_llm_tracker.inject_context` carries it across agents) is placed in that trace, under
its ``call_id`` (or ``parent_call_id``) when that is a 16-hex span id (else under a stable virtual
parent id derived from the trace and call ids); otherwise the span is a root of a new trace.

opentelemetry is imported only when an OTelSink is built (or the enricher first runs with it
installed); importing this module costs nothing.
"""

from __future__ import annotations as _annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from .._events import UsageEvent
from .._version import __version__
from ..exceptions import AdapterUnavailable
from .base import Sink

__all__ = ["OTelSink", "capture_span_context", "span_attributes"]

_INSTALL_HINT = "OTelSink needs OpenTelemetry: pip install a2a-llm-tracker[otel]"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")

# tracker operation -> gen_ai.operation.name well-known value
_OPERATIONS = {"completion": "text_completion", "embedding": "embeddings", "embeddings": "embeddings"}
# tracker provider -> gen_ai.provider.name well-known value
_PROVIDERS = {
    "gemini": "gcp.gemini", "google": "gcp.gemini", "google_genai": "gcp.gemini",
    "vertex": "gcp.vertex_ai", "vertex_ai": "gcp.vertex_ai", "vertexai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock", "aws": "aws.bedrock", "azure": "azure.ai.openai", "azure_openai": "azure.ai.openai",
    "mistral": "mistral_ai", "mistralai": "mistral_ai", "xai": "x_ai", "watsonx": "ibm.watsonx.ai",
}
# semconv advisory bucket boundaries for gen_ai.client.token.usage and .operation.duration
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

_otel_trace: Any = None  # opentelemetry.trace once imported; False if not installed


def _trace_api() -> Any:
    global _otel_trace
    if _otel_trace is None:
        try:
            from opentelemetry import trace
        except ImportError:
            _otel_trace = False
        else:
            _otel_trace = trace
    return _otel_trace


def capture_span_context(event: UsageEvent) -> UsageEvent:
    """A Meter enricher: put the caller's active span ids into ``event.metadata``.

    Stores ``otel.trace_id`` (32 hex), ``otel.span_id`` (16 hex) and ``otel.trace_flags`` (int)
    when a valid span is active, so :class:`OTelSink` (on the writer thread) can parent the
    call's span under it. Returns the event unchanged when there is no active span or
    OpenTelemetry is not installed, or when the event already carries ``otel.span_id``.

    Example::

        meter = Meter(sinks=[OTelSink()], enrichers=[capture_span_context])
    """
    trace = _trace_api()
    if not trace or "otel.span_id" in event.metadata:
        return event
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return event
    return event.model_copy(update={"metadata": {
        **event.metadata, "otel.trace_id": f"{ctx.trace_id:032x}", "otel.span_id": f"{ctx.span_id:016x}",
        "otel.trace_flags": int(ctx.trace_flags)}})


def _operation(event: UsageEvent) -> str:
    return _OPERATIONS.get(event.operation, event.operation)


def _provider(event: UsageEvent) -> str | None:
    if event.provider is None:
        return None
    return _PROVIDERS.get(event.provider.lower(), event.provider.lower())


def span_attributes(event: UsageEvent, *, legacy_names: bool = False) -> dict[str, Any]:
    """The span attributes for *event* (GenAI semconv, OpenInference cost, ``a2a.*``); None values left out."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": _operation(event),
        "gen_ai.provider.name": _provider(event),
        "gen_ai.request.model": event.model,
        "gen_ai.response.model": event.response_model,
        "gen_ai.request.stream": event.stream,
        "gen_ai.usage.input_tokens": event.input_tokens,
        "gen_ai.usage.output_tokens": event.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": event.cached_input_tokens,
        # the name the GenAI registry uses, and the one of the spec: backends differ
        "gen_ai.usage.cache_creation.input_tokens": event.cache_write_tokens,
        "gen_ai.usage.cache_write.input_tokens": event.cache_write_tokens,
        "gen_ai.usage.reasoning.output_tokens": event.reasoning_tokens,
        "gen_ai.agent.id": event.agent_id,
        "gen_ai.conversation.id": event.session_id,
        "gen_ai.response.id": event.request_id,
        "gen_ai.response.finish_reasons": [event.finish_reason] if event.finish_reason else None,
        "gen_ai.response.time_to_first_chunk": (None if event.time_to_first_token_ms is None
                                                else event.time_to_first_token_ms / 1000.0),
        "user.id": event.user_id,
        "error.type": (event.error_type or "error") if event.status == "error" else None,
        # OpenInference cost names; absent (never 0) when the call is unpriced
        "llm.cost.prompt": event.input_cost_usd,
        "llm.cost.completion": event.output_cost_usd,
        "llm.cost.total": event.cost_usd,
        "a2a.event_id": event.event_id,
        "a2a.project": event.project,
        "a2a.call_id": event.call_id,
        "a2a.parent_call_id": event.parent_call_id,
        "a2a.trace_id": event.trace_id,
        "a2a.framework": event.framework,
        "a2a.accuracy": event.accuracy,
        "a2a.cost_source": event.cost_source,
        "a2a.price_id": event.price_id,
        "a2a.total_tokens": event.total_tokens,
    }
    if legacy_names:
        attrs["gen_ai.system"] = event.provider
        attrs["gen_ai.usage.prompt_tokens"] = event.input_tokens
        attrs["gen_ai.usage.completion_tokens"] = event.output_tokens
    return {k: v for k, v in attrs.items() if v is not None}


def _ns(dt: Any) -> int:
    # exact integer nanoseconds (a float timestamp would lose the microseconds)
    from datetime import UTC, datetime

    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


class OTelSink(Sink):
    """Exports each event as a CLIENT span and as GenAI token/cost metrics.

    Span: name ``"{gen_ai.operation.name} {gen_ai.request.model}"`` (e.g. ``"chat gpt-4.1"``),
    kind CLIENT, ending at ``event.ts`` and starting ``latency_ms`` earlier, status ERROR (with
    ``error.type``) when ``status="error"``. Metrics: ``gen_ai.client.token.usage`` (histogram,
    ``gen_ai.token.type`` input/output), ``gen_ai.client.operation.duration`` (histogram, s), and the
    tracker's ``a2a.llm.tokens`` (counter by token type incl. cache_read, cache_write, reasoning),
    ``a2a.llm.cost`` (counter, USD; unpriced calls add nothing) and ``a2a.llm.calls`` (counter,
    with ``a2a.priced``).

    Args:
        tracer_provider: where spans go; None uses the global provider.
        meter_provider: where metrics go; None uses the global provider.
        legacy_names: also set ``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` and
            ``gen_ai.usage.completion_tokens`` for older backends.
        spans: export spans. metrics: export metrics.
        use_tracker_ids: without captured span ids, put a span in the trace named by a 32-hex
            ``event.trace_id`` (see the module docs).
        flush_providers: :meth:`flush` also force-flushes the providers (so ``meter.flush()``
            pushes spans and metrics out). The sink never shuts the providers down: they are yours.
        name: the sink's stable name (give two OTelSinks distinct names).

    Raises:
        AdapterUnavailable: OpenTelemetry is not installed (``pip install a2a-llm-tracker[otel]``).

    .. versionadded:: 0.1
    """

    remote = False  # spans go to the SDK's own batch processor, which does the network I/O

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None, *, legacy_names: bool = False,
                 spans: bool = True, metrics: bool = True, use_tracker_ids: bool = True,
                 flush_providers: bool = True, name: str = "otel") -> None:
        try:
            from opentelemetry import metrics as otel_metrics
            from opentelemetry import trace
        except ImportError as exc:
            raise AdapterUnavailable(_INSTALL_HINT) from exc
        self._trace = trace
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.legacy_names = legacy_names
        self._spans = spans
        self._metrics = metrics
        self._use_tracker_ids = use_tracker_ids
        self._flush_providers = flush_providers
        self._name = name
        self._tracer = trace.get_tracer("a2a_llm_tracker", __version__, tracer_provider=tracer_provider)
        meter = otel_metrics.get_meter("a2a_llm_tracker", __version__, meter_provider=meter_provider)
        self._token_usage = _histogram(meter, "gen_ai.client.token.usage", "{token}",
                                       "Number of input and output tokens used.", _TOKEN_BUCKETS)
        self._duration = _histogram(meter, "gen_ai.client.operation.duration", "s",
                                    "GenAI operation duration.", _DURATION_BUCKETS)
        self._tokens = meter.create_counter("a2a.llm.tokens", unit="{token}",
                                            description="Tokens by type, as the provider reported them.")
        self._cost = meter.create_counter("a2a.llm.cost", unit="USD", description="Cost of priced LLM calls.")
        self._calls = meter.create_counter("a2a.llm.calls", unit="{call}", description="Recorded LLM calls.")

    @property
    def name(self) -> str:
        """The sink's name (``otel`` unless given)."""
        return self._name

    def write(self, event: UsageEvent) -> None:
        """Export one event (a span and its metrics)."""
        if self._spans:
            self._span(event)
        if self._metrics:
            self._record_metrics(event)

    def write_many(self, events: Sequence[UsageEvent]) -> None:
        """Export a batch."""
        for event in events:
            self.write(event)

    # -- spans -----------------------------------------------------------------------------------------
    def _parent(self, event: UsageEvent) -> Any:
        trace = self._trace
        meta = event.metadata
        trace_id, span_id, flags, remote = meta.get("otel.trace_id"), meta.get("otel.span_id"), None, False
        if isinstance(trace_id, str) and isinstance(span_id, str) and _HEX32.match(trace_id) and _HEX16.match(span_id):
            raw_flags = meta.get("otel.trace_flags", 1)
            flags = raw_flags if isinstance(raw_flags, int) and 0 <= raw_flags <= 255 else 1
        elif self._use_tracker_ids and event.trace_id and _HEX32.match(event.trace_id):
            trace_id = event.trace_id
            span_id = next((v for v in (event.call_id, event.parent_call_id) if v and _HEX16.match(v)), None)
            if span_id is None:  # a stable virtual parent per (trace, call), so one call's spans stay together
                key = f"{trace_id}:{event.call_id or event.parent_call_id or ''}".encode()
                span_id = hashlib.sha1(key).hexdigest()[:16]
            flags, remote = 1, True
        else:
            return None
        if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
            return None
        parent = trace.SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=remote,
                                   trace_flags=trace.TraceFlags(flags))
        return trace.set_span_in_context(trace.NonRecordingSpan(parent))

    def _span(self, event: UsageEvent) -> None:
        trace = self._trace
        end = _ns(event.ts)
        start = end - int((event.latency_ms or 0.0) * 1_000_000)
        operation = _operation(event)
        name = f"{operation} {event.model}" if event.model else operation
        span = self._tracer.start_span(name, context=self._parent(event), kind=trace.SpanKind.CLIENT,
                                       attributes=span_attributes(event, legacy_names=self.legacy_names),
                                       start_time=start)
        if event.status == "error":
            span.set_status(trace.Status(trace.StatusCode.ERROR, event.error_message or event.error_type))
        span.end(end_time=end)

    # -- metrics ---------------------------------------------------------------------------------------
    def _record_metrics(self, event: UsageEvent) -> None:
        base = {k: v for k, v in {
            "gen_ai.operation.name": _operation(event), "gen_ai.provider.name": _provider(event),
            "gen_ai.request.model": event.model, "gen_ai.response.model": event.response_model,
            "error.type": (event.error_type or "error") if event.status == "error" else None,
        }.items() if v is not None}
        for token_type, value in (("input", event.input_tokens), ("output", event.output_tokens)):
            if value is not None:
                self._token_usage.record(value, {**base, "gen_ai.token.type": token_type})
        if event.latency_ms is not None:
            self._duration.record(event.latency_ms / 1000.0, base)
        owner = {**base, **{k: v for k, v in (("gen_ai.agent.id", event.agent_id), ("a2a.project", event.project))
                            if v is not None}}
        for token_type, value in (("input", event.input_tokens), ("output", event.output_tokens),
                                  ("cache_read", event.cached_input_tokens), ("cache_write", event.cache_write_tokens),
                                  ("reasoning", event.reasoning_tokens)):
            if value:
                self._tokens.add(value, {**owner, "gen_ai.token.type": token_type})
        if event.cost_usd is not None:
            self._cost.add(event.cost_usd, {**owner, "a2a.cost_source": event.cost_source or "unknown"})
        self._calls.add(1, {**owner, "a2a.priced": event.cost_usd is not None})

    # -- lifecycle -------------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Force-flush the providers (when ``flush_providers``); True if they finished in time."""
        if not self._flush_providers:
            return True
        millis = 30_000 if timeout is None else max(int(timeout * 1000), 1)
        ok = True
        from opentelemetry import metrics as otel_metrics

        for provider in (self._tracer_provider or self._trace.get_tracer_provider(),
                         self._meter_provider or otel_metrics.get_meter_provider()):
            force_flush = getattr(provider, "force_flush", None)
            if force_flush is not None:
                result = force_flush(millis)
                ok = ok and result is not False
        return ok


def _histogram(meter: Any, name: str, unit: str, description: str, buckets: Sequence[float]) -> Any:
    try:
        return meter.create_histogram(name, unit=unit, description=description,
                                      explicit_bucket_boundaries_advisory=list(buckets))
    except TypeError:  # opentelemetry-api before 1.23 has no advisory buckets
        return meter.create_histogram(name, unit=unit, description=description)
