"""OTelSink: GenAI semconv spans and metrics, trace joining, OTLP/HTTP export to a local receiver."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from a2a_llm_tracker import Meter, PricingRegistry, UsageEvent
from a2a_llm_tracker.sinks.otel import OTelSink, capture_span_context

TS = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _event(**fields) -> UsageEvent:
    base = dict(ts=TS, provider="openai", model="gpt-4.1", response_model="gpt-4.1-2025-04-14", operation="chat",
                input_tokens=1200, output_tokens=300, cached_input_tokens=200, cache_write_tokens=100,
                reasoning_tokens=50, input_cost_usd=0.0024, output_cost_usd=0.0024, cost_usd=0.0048,
                cost_source="pricing", latency_ms=812.5, time_to_first_token_ms=120.0, request_id="chatcmpl-abc",
                finish_reason="stop", agent_id="planner", session_id="sess-1", user_id="u-7", project="proj",
                call_id="call-1", parent_call_id="call-0", framework="litellm")
    base.update(fields)
    return UsageEvent(**base)


def _ns(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000


class TestSpans:
    def test_one_client_span_named_by_semconv(self, otel):
        sink = OTelSink(otel.tracer_provider, otel.meter_provider)
        sink.write(_event())
        (span,) = otel.finished()
        assert span.name == "chat gpt-4.1"
        assert span.kind is SpanKind.CLIENT
        assert span.end_time == _ns(TS)
        assert span.start_time == _ns(TS) - 812_500_000
        assert span.status.status_code is StatusCode.UNSET
        assert span.parent is None
        a = dict(span.attributes)
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == "gpt-4.1"
        assert a["gen_ai.response.model"] == "gpt-4.1-2025-04-14"
        assert a["gen_ai.usage.input_tokens"] == 1200
        assert a["gen_ai.usage.output_tokens"] == 300
        assert a["gen_ai.usage.cache_read.input_tokens"] == 200
        assert a["gen_ai.usage.cache_write.input_tokens"] == 100
        assert a["gen_ai.usage.cache_creation.input_tokens"] == 100
        assert a["gen_ai.usage.reasoning.output_tokens"] == 50
        assert a["gen_ai.agent.id"] == "planner"
        assert a["gen_ai.conversation.id"] == "sess-1"
        assert a["gen_ai.response.id"] == "chatcmpl-abc"
        assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
        assert a["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.12)
        assert a["user.id"] == "u-7"
        assert a["llm.cost.prompt"] == 0.0024 and a["llm.cost.completion"] == 0.0024 and a["llm.cost.total"] == 0.0048
        assert a["a2a.call_id"] == "call-1" and a["a2a.parent_call_id"] == "call-0" and a["a2a.project"] == "proj"
        for legacy in ("gen_ai.system", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens"):
            assert legacy not in a

    def test_legacy_names_on_request(self, otel):
        OTelSink(otel.tracer_provider, otel.meter_provider, legacy_names=True).write(_event())
        a = dict(otel.finished()[0].attributes)
        assert a["gen_ai.system"] == "openai"
        assert a["gen_ai.usage.prompt_tokens"] == 1200 and a["gen_ai.usage.completion_tokens"] == 300
        assert a["gen_ai.usage.input_tokens"] == 1200  # the current names stay

    def test_error_status(self, otel):
        OTelSink(otel.tracer_provider, otel.meter_provider).write(
            _event(status="error", error_type="RateLimitError", error_message="429 slow down", input_tokens=None,
                   output_tokens=None, cached_input_tokens=None, cache_write_tokens=None, reasoning_tokens=None,
                   accuracy="unknown", cost_usd=None, input_cost_usd=None, output_cost_usd=None, cost_source=None))
        (span,) = otel.finished()
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "429 slow down"
        assert span.attributes["error.type"] == "RateLimitError"
        assert "gen_ai.usage.input_tokens" not in span.attributes  # not reported: absent, never 0

    def test_unpriced_call_has_no_cost(self, otel):
        sink = OTelSink(otel.tracer_provider, otel.meter_provider)
        sink.write(_event(cost_usd=None, input_cost_usd=None, output_cost_usd=None, cost_source=None))
        a = dict(otel.finished()[0].attributes)
        assert not any(k.startswith("llm.cost") for k in a)
        metrics = otel.metrics()
        assert "a2a.llm.cost" not in metrics or not metrics["a2a.llm.cost"]
        ((attrs, point),) = metrics["a2a.llm.calls"]
        assert attrs["a2a.priced"] is False and point.value == 1

    def test_operation_and_provider_names_mapped(self, otel):
        sink = OTelSink(otel.tracer_provider, otel.meter_provider)
        sink.write(_event(operation="embedding", provider="gemini", model="text-embedding-004"))
        span = otel.finished()[0]
        assert span.name == "embeddings text-embedding-004"
        assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"


class TestMetrics:
    def test_token_usage_histogram_and_counters(self, otel):
        sink = OTelSink(otel.tracer_provider, otel.meter_provider)
        sink.write_many([_event(), _event(input_tokens=800, cached_input_tokens=0, cache_write_tokens=0)])
        m = otel.metrics()
        usage = {a["gen_ai.token.type"]: p for a, p in m["gen_ai.client.token.usage"]}
        assert usage["input"].sum == 2000 and usage["input"].count == 2
        assert usage["output"].sum == 600
        attrs = next(a for a, _ in m["gen_ai.client.token.usage"])
        assert attrs["gen_ai.request.model"] == "gpt-4.1" and attrs["gen_ai.provider.name"] == "openai"
        tokens = {a["gen_ai.token.type"]: p.value for a, p in m["a2a.llm.tokens"]}
        assert tokens == {"input": 2000, "output": 600, "cache_read": 200, "cache_write": 100, "reasoning": 100}
        ((cost_attrs, cost),) = m["a2a.llm.cost"]
        assert cost.value == pytest.approx(0.0096) and cost_attrs["gen_ai.agent.id"] == "planner"
        ((_, duration),) = m["gen_ai.client.operation.duration"]
        assert duration.sum == pytest.approx(1.625) and duration.count == 2


class TestTraceJoin:
    def test_span_joins_the_callers_active_span_across_the_writer_thread(self, otel):
        """The enricher captures the caller's span on record(); the writer thread parents under it."""
        sink = OTelSink(otel.tracer_provider, otel.meter_provider)
        pricing = PricingRegistry()
        pricing.set_price(provider="openai", model="gpt-4.1", input_per_million=2.0, output_per_million=8.0)
        tracer = otel.tracer_provider.get_tracer("app")
        with Meter(pricing=pricing, sinks=[sink], enrichers=[capture_span_context]) as meter:
            with tracer.start_as_current_span("agent step") as outer:
                recorded = meter.record(UsageEvent(provider="openai", model="gpt-4.1", input_tokens=10,
                                                   output_tokens=5))
            assert meter.flush(5)
        outer_ctx = outer.get_span_context()
        llm = next(s for s in otel.finished() if s.name == "chat gpt-4.1")
        assert llm.context.trace_id == outer_ctx.trace_id
        assert llm.parent.span_id == outer_ctx.span_id
        assert recorded.metadata["otel.trace_id"] == f"{outer_ctx.trace_id:032x}"
        assert llm.attributes["llm.cost.total"] == pytest.approx(10 * 2e-6 + 5 * 8e-6)

    def test_no_active_span_makes_a_root(self, otel):
        assert capture_span_context(_event()).metadata == {}
        OTelSink(otel.tracer_provider, otel.meter_provider).write(capture_span_context(_event()))
        assert otel.finished()[0].parent is None

    def test_tracker_w3c_trace_id_places_the_span_in_that_trace(self, otel):
        trace_id, call_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        OTelSink(otel.tracer_provider, otel.meter_provider).write(_event(trace_id=trace_id, call_id=call_id))
        span = otel.finished()[0]
        assert span.context.trace_id == int(trace_id, 16)
        assert span.parent.span_id == int(call_id, 16) and span.parent.is_remote

    def test_captured_ids_win_over_tracker_ids(self, otel):
        ev = _event(trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
                    metadata={"otel.trace_id": "0af7651916cd43dd8448eb211c80319c", "otel.span_id": "b7ad6b7169203331",
                              "otel.trace_flags": 1})
        OTelSink(otel.tracer_provider, otel.meter_provider).write(ev)
        span = otel.finished()[0]
        assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
        assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"

    def test_malformed_captured_ids_are_ignored(self, otel):
        ev = _event(metadata={"otel.trace_id": "zz", "otel.span_id": "0" * 16})
        OTelSink(otel.tracer_provider, otel.meter_provider).write(ev)
        assert otel.finished()[0].parent is None


class TestOTLP:
    def test_exports_over_otlp_http_to_a_local_receiver(self, receiver):
        """Standard SDK OTLP/HTTP exporters carry the spans and metrics (decoded with opentelemetry-proto)."""
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": "agent-a"})
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", timeout=5)))
        mp = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{receiver.url}/v1/metrics", timeout=5), export_interval_millis=3_600_000)])
        try:
            with Meter(sinks=[OTelSink(tp, mp)]) as meter:
                meter.record(_event())
                meter.record(_event(model="gpt-4.1-mini", status="error", error_type="Timeout"))
                assert meter.flush(10)  # the sink force-flushes both providers
        finally:
            tp.shutdown()
            mp.shutdown()
        spans = [s for req in receiver.traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
        assert sorted(s.name for s in spans) == ["chat gpt-4.1", "chat gpt-4.1-mini"]
        span = next(s for s in spans if s.name == "chat gpt-4.1")
        attrs = {kv.key: kv.value for kv in span.attributes}
        assert attrs["gen_ai.usage.input_tokens"].int_value == 1200
        assert attrs["gen_ai.provider.name"].string_value == "openai"
        assert attrs["llm.cost.total"].double_value == pytest.approx(0.0048)
        assert span.kind == 3  # SPAN_KIND_CLIENT
        assert span.end_time_unix_nano - span.start_time_unix_nano == 812_500_000
        err = next(s for s in spans if s.name == "chat gpt-4.1-mini")
        assert err.status.code == 2  # STATUS_CODE_ERROR
        names = {m.name for req in receiver.metrics for rm in req.resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics}
        assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration", "a2a.llm.cost", "a2a.llm.tokens",
                "a2a.llm.calls"} <= names
        assert all(ct == "application/x-protobuf" for ct in receiver.content_types)


class TestOptionalDependency:
    def test_module_import_loads_no_opentelemetry(self):
        code = "import sys, a2a_llm_tracker.sinks.otel; print(any(m.startswith('opentelemetry') for m in sys.modules))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "False", out.stderr

    def test_missing_opentelemetry_says_how_to_install(self):
        code = textwrap.dedent("""
            import sys
            class Block:
                def find_spec(self, name, path=None, target=None):
                    if name == "opentelemetry" or name.startswith("opentelemetry."):
                        raise ImportError("blocked for the test")
            sys.meta_path.insert(0, Block())
            from a2a_llm_tracker import AdapterUnavailable, UsageEvent
            from a2a_llm_tracker.sinks.otel import OTelSink, capture_span_context
            e = UsageEvent(model="m")
            assert capture_span_context(e) is e   # the enricher is a no-op without OpenTelemetry
            try:
                OTelSink()
            except AdapterUnavailable as exc:
                print("HINT:", exc)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "pip install a2a-llm-tracker[otel]" in out.stdout
