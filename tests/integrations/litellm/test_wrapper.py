"""The LiteLLM wrapper against real litellm and the local MockProvider (no network)."""

from __future__ import annotations

import asyncio
import copy
import gc
import time

import litellm
import pytest

import a2a_llm_tracker
from a2a_llm_tracker import Meter, PricingRegistry, meter_context
from a2a_llm_tracker._context import adapter_scope, suppress_tracking
from a2a_llm_tracker.exceptions import BudgetExceededError, TrackerNotInitializedError
from a2a_llm_tracker.integrations.litellm import LiteLLM
from a2a_llm_tracker.sinks.memory import MemorySink

from .conftest import MESSAGES

REPLY = "Hello there, how are you today?"


def assert_billed(event, billed):
    """The event's tokens are exactly what the mock provider billed."""
    assert event.input_tokens == billed["input_tokens"]
    assert event.output_tokens == billed["output_tokens"]
    assert event.total_tokens == billed["total_tokens"]
    assert event.cached_input_tokens == billed["cached_input_tokens"]
    if billed["reasoning_tokens"] is not None:
        assert event.reasoning_tokens == billed["reasoning_tokens"]
    if billed["cache_write_tokens"] is not None:
        assert event.cache_write_tokens == billed["cache_write_tokens"]
    assert event.accuracy == "exact"


class TestSeedCallStyles:
    def test_sync(self, meter, sink, server, openai_kw):
        """Sync completion: litellm's ModelResponse comes back; one exact event with every detail."""
        llm = LiteLLM(meter=meter)
        metadata = {"agent_id": "planner", "tags": ["t1"]}
        before = copy.deepcopy(metadata)
        response = llm.completion(model="openai/gpt-4.1", messages=MESSAGES, metadata=metadata, **openai_kw)
        assert isinstance(response, litellm.ModelResponse)
        assert response.choices[0].message.content == REPLY
        assert metadata == before  # the caller's dict is never mutated
        [event] = sink.events
        billed = server.billed[-1]
        assert_billed(event, billed)
        assert (event.cached_input_tokens, event.reasoning_tokens) == (5, 2)
        assert event.provider == "openai" and event.model == "openai/gpt-4.1" and event.response_model == "gpt-4.1"
        assert event.framework == "litellm" and event.operation == "chat" and event.stream is False
        assert event.request_id == billed["request_id"] and event.finish_reason == "stop"
        assert event.agent_id == "planner" and event.status == "ok" and event.latency_ms > 0
        assert event.cost_source == "provider" and event.cost_usd > 0  # litellm's gpt-4.1 price, user enabled it
        assert "stream_options" not in server.requests[-1].json

    def test_sync_stream(self, meter, sink, server, openai_kw):
        """Sync stream: chunks are litellm's, usage is requested and recorded after the stream ends."""
        llm = LiteLLM(meter=meter)
        chunks = []
        for chunk in llm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw):
            assert sink.events == []  # nothing before the end
            chunks.append(chunk)
        assert all(isinstance(c, litellm.ModelResponseStream) for c in chunks)
        assert all(c.choices for c in chunks)  # the usage-only chunk we asked for is not yielded
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY
        assert server.requests[-1].json["stream_options"] == {"include_usage": True}
        [event] = sink.events
        assert_billed(event, server.billed[-1])
        assert event.stream is True and event.finish_reason == "stop"
        assert event.request_id == server.billed[-1]["request_id"]
        assert 0 < event.time_to_first_token_ms <= event.latency_ms
        assert "stream_incomplete" not in event.metadata

    async def test_async(self, meter, sink, server, openai_kw):
        """Async completion."""
        llm = LiteLLM(meter=meter)
        response = await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        assert response.choices[0].message.content == REPLY
        [event] = sink.events
        assert_billed(event, server.billed[-1])
        assert event.stream is False

    async def test_async_stream(self, meter, sink, server, openai_kw):
        """Async stream: `stream = await llm.acompletion(..., stream=True); async for chunk in stream`."""
        llm = LiteLLM(meter=meter)
        stream = await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw)
        text = ""
        async for chunk in stream:
            text += chunk.choices[0].delta.content or ""
        assert text == REPLY
        [event] = sink.events
        assert_billed(event, server.billed[-1])
        assert event.stream is True and event.time_to_first_token_ms is not None

    def test_caller_include_usage_is_respected(self, meter, sink, server, openai_kw):
        """A caller who asked for usage gets litellm's usage chunk; one who refused it gets accuracy unknown."""
        llm = LiteLLM(meter=meter)
        chunks = list(llm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True,
                                     stream_options={"include_usage": True}, **openai_kw))
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == server.billed[-1]["input_tokens"]
        list(llm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True,
                            stream_options={"include_usage": False}, **openai_kw))
        assert server.requests[-1].json["stream_options"] == {"include_usage": False}
        first, second = sink.events
        assert_billed(first, server.billed[0])
        assert second.accuracy == "unknown" and second.input_tokens is None and second.total_tokens is None

    def test_positional_model_and_messages(self, meter, sink, openai_kw):
        """litellm's positional (model, messages) still work."""
        LiteLLM(meter=meter).completion("openai/gpt-4.1", MESSAGES, **openai_kw)
        assert sink.events[0].model == "openai/gpt-4.1"


class TestProviders:
    def test_anthropic_input_includes_cache(self, meter, sink, server):
        """litellm's Anthropic prompt_tokens already include cache reads and writes: never added twice."""
        llm = LiteLLM(meter=meter)
        llm.completion(model="anthropic/claude-sonnet-4-5", messages=MESSAGES, api_base=server.url, api_key="x")
        list(llm.completion(model="anthropic/claude-sonnet-4-5", messages=MESSAGES, stream=True,
                            api_base=server.url, api_key="x"))
        assert server.usages[0]["input_tokens"] == server.billed[0]["input_tokens"] - 5 - 3  # raw is uncached only
        for event, billed in zip(sink.events, server.billed, strict=True):
            assert_billed(event, billed)
            assert (event.cached_input_tokens, event.cache_write_tokens) == (5, 3)
            assert event.provider == "anthropic"
        assert "stream_options" not in server.requests[-1].json  # litellm keeps it local for Anthropic

    def test_gemini_output_includes_thoughts(self, meter, sink, server):
        """Gemini's thoughts are outside candidatesTokenCount; the event's output includes them."""
        llm = LiteLLM(meter=meter)
        llm.completion(model="gemini/gemini-2.5-flash", messages=MESSAGES, api_base=server.url + "/v1beta",
                       api_key="x")
        [event] = sink.events
        assert_billed(event, server.billed[-1])
        assert event.reasoning_tokens == 2 and event.provider == "gemini"


class TestOtherOperations:
    def test_embedding_sync_and_async(self, meter, sink, server, openai_kw):
        """Embeddings record input tokens only."""
        llm = LiteLLM(meter=meter)
        llm.embedding(model="openai/text-embedding-3-small", input=["hello world", "again"], **openai_kw)
        asyncio.run(llm.aembedding(model="openai/text-embedding-3-small", input="one two three", **openai_kw))
        assert [e.operation for e in sink.events] == ["embedding", "embedding"]
        assert [e.input_tokens for e in sink.events] == [b["input_tokens"] for b in server.billed]
        assert all(e.output_tokens == 0 for e in sink.events)

    def test_image_generation(self, meter, sink, server, openai_kw):
        """Image generation reads gpt-image-style usage."""
        LiteLLM(meter=meter).image_generation(model="openai/gpt-image-1", prompt="a red cat", **openai_kw)
        [event] = sink.events
        assert event.operation == "image"
        assert (event.input_tokens, event.output_tokens) == (server.billed[-1]["input_tokens"], 272)

    async def test_aimage_generation(self, meter, sink, server, openai_kw):
        """Async image generation."""
        await LiteLLM(meter=meter).aimage_generation(model="openai/gpt-image-1", prompt="a dog", n=2, **openai_kw)
        assert sink.events[0].output_tokens == 544

    def test_responses_sync_and_stream(self, meter, sink, server, openai_kw):
        """Responses API: usage from the response, and from response.completed when streaming."""
        llm = LiteLLM(meter=meter)
        resp = llm.responses(model="openai/gpt-4.1", input="tell me a joke", **openai_kw)
        assert resp.usage.input_tokens == server.billed[-1]["input_tokens"]
        events = list(llm.responses(model="openai/gpt-4.1", input="tell me a joke", stream=True, **openai_kw))
        assert events[-1].type == "response.completed"
        assert "metadata" not in server.requests[-1].json  # nothing injected into the Responses request
        for event, billed in zip(sink.events, server.billed, strict=True):
            assert_billed(event, billed)
            assert event.operation == "responses" and event.finish_reason == "completed"
        assert sink.events[1].stream is True and sink.events[1].time_to_first_token_ms is not None

    async def test_aresponses(self, meter, sink, server, openai_kw):
        """Async Responses API."""
        await LiteLLM(meter=meter).aresponses(model="openai/gpt-4.1", input="hi", **openai_kw)
        assert_billed(sink.events[0], server.billed[-1])


class TestErrors:
    def test_error_recorded_and_reraised_unchanged(self, meter, sink, server, openai_kw):
        """A 500 is re-raised as litellm raised it, after one error event without secrets."""
        server.fail_next(1, status=500)
        llm = LiteLLM(meter=meter)
        with pytest.raises(litellm.InternalServerError) as info:
            llm.completion(model="openai/gpt-4.1", messages=MESSAGES, max_retries=0, **openai_kw)
        assert "Mock provider error" in str(info.value)
        [event] = sink.events
        assert event.status == "error" and event.error_type == "InternalServerError"
        assert "Mock provider error" in event.error_message and event.accuracy == "unknown"
        assert event.input_tokens is None and event.provider == "openai"
        assert openai_kw["api_key"] not in event.model_dump_json()
        assert server.billed == []

    async def test_async_error(self, meter, sink, server, openai_kw):
        """The async path records errors too."""
        server.fail_next(1, status=429)
        with pytest.raises(litellm.RateLimitError):
            await LiteLLM(meter=meter).acompletion(model="openai/gpt-4.1", messages=MESSAGES, max_retries=0,
                                                   **openai_kw)
        assert sink.events[0].error_type == "RateLimitError"

    def test_secret_in_error_is_scrubbed(self, meter, sink):
        """An exception text that carries a key is scrubbed in the event."""
        with pytest.raises(Exception):
            LiteLLM(meter=meter).completion(model="gpt-4o-mini", messages=MESSAGES,
                                            mock_response=ValueError("bad key sk-proj-abcdefghijklmnopqrstuvwxyz0123"))
        assert "abcdefghijklmnopqrstuvwxyz0123" not in sink.events[0].error_message

    def test_stream_error_midway(self, meter, sink, server, openai_kw):
        """A stream that raises mid-way records one error event; the exception reaches the caller."""
        server.chunk_delay = 0.4
        try:
            stream = LiteLLM(meter=meter).completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True,
                                                     timeout=0.15, max_retries=0, **openai_kw)
            with pytest.raises(Exception):
                for _ in stream:
                    pass
        finally:
            server.chunk_delay = 0.0
        [event] = sink.events
        assert event.status == "error" and event.stream is True
        assert event.metadata["stream_incomplete"] == "error"

    def test_provider_rejecting_stream_options(self, meter, sink, server, openai_kw):
        """An endpoint that rejects stream_options gets the call again without them; one event, unknown usage."""
        llm = LiteLLM(meter=meter)
        text = "".join(c.choices[0].delta.content or "" for c in
                       llm.completion(model="openai/strict-llm", messages=MESSAGES, stream=True, max_retries=0,
                                      **openai_kw))
        assert text == REPLY
        assert [r.status for r in server.requests] == [400, 200]
        [event] = sink.events
        assert event.status == "ok" and event.accuracy == "unknown"
        list(llm.completion(model="openai/strict-llm", messages=MESSAGES, stream=True, **openai_kw))
        assert len(server.requests) == 3  # remembered: no second rejected attempt


class TestStreamsEnding:
    def test_abandoned_stream_records_once(self, meter, sink, openai_kw):
        """A consumer that stops after two chunks and drops the stream still gives one event."""
        stream = LiteLLM(meter=meter).completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw)
        for i, _chunk in enumerate(stream):
            if i == 1:
                break
        assert sink.events == []
        del stream
        gc.collect()
        [event] = sink.events
        assert event.metadata["stream_incomplete"] == "abandoned"
        assert event.status == "ok" and event.accuracy == "unknown" and event.input_tokens is None

    def test_closed_stream_records_once(self, meter, sink, openai_kw):
        """close() records at once; finishing or collecting later adds nothing."""
        stream = LiteLLM(meter=meter).completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw)
        next(stream)
        stream.close()
        assert len(sink.events) == 1 and sink.events[0].metadata["stream_incomplete"] == "closed"
        del stream
        gc.collect()
        assert len(sink.events) == 1

    def test_with_block(self, meter, sink, openai_kw):
        """The stream works as a context manager like litellm's."""
        with LiteLLM(meter=meter).completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True,
                                             **openai_kw) as stream:
            for _ in stream:
                pass
        assert len(sink.events) == 1 and "stream_incomplete" not in sink.events[0].metadata

    async def test_async_abandoned_and_aclose(self, meter, sink, openai_kw):
        """Async streams: aclose() records once."""
        stream = await LiteLLM(meter=meter).acompletion(model="openai/gpt-4.1", messages=MESSAGES, stream=True,
                                                        **openai_kw)
        await stream.__anext__()
        await stream.aclose()
        await stream.aclose()
        assert len(sink.events) == 1 and sink.events[0].metadata["stream_incomplete"] == "closed"

    def test_stream_full_then_gc_no_double(self, meter, sink, openai_kw):
        """A finished stream is not recorded again by its finalizer."""
        stream = LiteLLM(meter=meter).completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw)
        list(stream)
        del stream
        gc.collect()
        assert len(sink.events) == 1


class TestNoUsage:
    def test_provider_without_usage(self, meter, sink, server, openai_kw):
        """No usage from the provider: accuracy unknown, token fields None (litellm's zeros are not usage)."""
        llm = LiteLLM(meter=meter)
        llm.completion(model="openai/nousage", messages=MESSAGES, **openai_kw)
        list(llm.completion(model="openai/nousage", messages=MESSAGES, stream=True, **openai_kw))
        for event in sink.events:
            assert event.accuracy == "unknown" and event.input_tokens is None and event.output_tokens is None
            assert event.cost_usd is None

    def test_zero_provider_cost_is_unpriced(self, meter, sink, openai_kw):
        """litellm reports $0 for an unmapped model: that is unpriced (None), not free."""
        LiteLLM(meter=meter).completion(model="openai/my-local-llama", messages=MESSAGES, **openai_kw)
        [event] = sink.events
        assert event.input_tokens > 0 and event.cost_usd is None and event.cost_source is None


class TestExactUsageWithMockResponse:
    def _mock(self, usage):
        return litellm.ModelResponse(model="gpt-4o-mini", choices=[{"message": {"role": "assistant",
                                                                               "content": "ok"}}], usage=usage)

    def test_openai_style_details(self, meter, sink):
        """mock_response=ModelResponse(usage=...) gives exactly that usage (litellm note §2.7)."""
        from litellm.types.utils import CompletionTokensDetailsWrapper, PromptTokensDetailsWrapper, Usage

        usage = Usage(prompt_tokens=120, completion_tokens=30, total_tokens=150,
                      prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=64),
                      completion_tokens_details=CompletionTokensDetailsWrapper(reasoning_tokens=12))
        LiteLLM(meter=meter).completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=self._mock(usage))
        [e] = sink.events
        assert (e.input_tokens, e.output_tokens, e.total_tokens) == (120, 30, 150)
        assert (e.cached_input_tokens, e.reasoning_tokens, e.cache_write_tokens) == (64, 12, None)
        assert e.cost_source == "provider" and e.cost_usd == pytest.approx(3.12e-05)
        assert e.raw_usage["prompt_tokens"] == 120

    def test_anthropic_style_cache_counted_once(self, meter, sink):
        """Anthropic-normalised usage (note §2.9): 800 input incl. 500 read + 200 write, not 1500."""
        from litellm.types.utils import PromptTokensDetailsWrapper, Usage

        usage = Usage(prompt_tokens=800, completion_tokens=30, total_tokens=830,
                      prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=500, cache_write_tokens=200),
                      cache_read_input_tokens=500, cache_creation_input_tokens=200)
        LiteLLM(meter=meter).completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=self._mock(usage))
        [e] = sink.events
        assert (e.input_tokens, e.cached_input_tokens, e.cache_write_tokens, e.output_tokens) == (800, 500, 200, 30)

    def test_user_pricing_wins_over_provider_cost(self, sink):
        """The user's price is used, not litellm's response_cost."""
        pricing = PricingRegistry()
        pricing.set_price(provider="openai", model="openai/gpt-4.1", input_per_million=2.0, output_per_million=8.0)
        meter = Meter(pricing=pricing, sinks=[sink], background=False, strict=True, use_provider_cost=True)
        from litellm.types.utils import Usage

        mock = litellm.ModelResponse(model="gpt-4.1", choices=[{"message": {"role": "assistant", "content": "x"}}],
                                     usage=Usage(prompt_tokens=1000, completion_tokens=100, total_tokens=1100))
        LiteLLM(meter=meter).completion(model="openai/gpt-4.1", messages=MESSAGES, mock_response=mock)
        [e] = sink.events
        assert e.cost_source == "pricing" and e.cost_usd == pytest.approx(1000 * 2e-6 + 100 * 8e-6)

    def test_provider_cost_ignored_unless_enabled(self, sink):
        """Without use_provider_cost, litellm's cost is not used: unpriced."""
        meter = Meter(sinks=[sink], background=False, strict=True)
        LiteLLM(meter=meter).completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
        assert sink.events[0].cost_usd is None and sink.events[0].input_tokens == 10


class TestAttributionAndScopes:
    def test_context_and_explicit_metadata(self, meter, sink, openai_kw):
        """meter_context attributes the call; metadata ids passed to litellm win over it."""
        llm = LiteLLM(meter=meter)
        with meter_context(agent_id="ctx-agent", session_id="s-ctx", user_id="u-ctx", team="blue"):
            llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
            llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw,
                           metadata={"a2a_tracker": {"agent_id": "ns-agent"}, "session_id": "s-explicit",
                                     "trace_id": "t-1"})
        a, b = sink.events
        assert (a.agent_id, a.session_id, a.user_id, a.metadata["team"]) == ("ctx-agent", "s-ctx", "u-ctx", "blue")
        assert (b.agent_id, b.session_id, b.user_id, b.trace_id) == ("ns-agent", "s-explicit", "u-ctx", "t-1")

    def test_stream_consumed_outside_context_keeps_call_context(self, meter, sink, openai_kw):
        """The context in force at call time attributes a stream consumed after the block ended."""
        llm = LiteLLM(meter=meter)
        with meter_context(agent_id="caller"):
            stream = llm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw)
        with meter_context(agent_id="other", user_id="other-user"):
            list(stream)
        assert (sink.events[0].agent_id, sink.events[0].user_id) == ("caller", None)

    def test_threads_with_bind_context(self, meter, sink, openai_kw):
        """Each worker thread's call carries the context bound when it was submitted."""
        from concurrent.futures import ThreadPoolExecutor

        from a2a_llm_tracker import bind_context

        llm = LiteLLM(meter=meter)

        def work(i):
            return llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)

        with ThreadPoolExecutor(4) as pool:
            futures = []
            for i in range(6):
                with meter_context(agent_id=f"agent-{i}"):
                    futures.append(pool.submit(bind_context(work), i))
            [f.result() for f in futures]
        assert sorted(e.agent_id for e in sink.events) == [f"agent-{i}" for i in range(6)]

    async def test_asyncio_tasks(self, meter, sink, openai_kw):
        """Concurrent tasks, each in its own meter_context, including streams."""
        llm = LiteLLM(meter=meter)

        async def agent(name):
            async with meter_context(agent_id=name):
                stream = await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw)
                async for _ in stream:
                    await asyncio.sleep(0)
                await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)

        await asyncio.gather(*(agent(f"a{i}") for i in range(4)))
        assert sorted(e.agent_id for e in sink.events) == sorted([f"a{i}" for i in range(4)] * 2)
        assert all(e.accuracy == "exact" for e in sink.events)

    def test_outer_adapter_and_export_suppression(self, meter, sink, openai_kw):
        """Inside another adapter's scope, or while sinks export, the wrapper does not record."""
        llm = LiteLLM(meter=meter)
        with adapter_scope("langchain") as outer:
            assert outer
            llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        with suppress_tracking():
            llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        assert sink.events == []

    def test_budget_checked_with_explicit_attribution(self, sink, server, openai_kw):
        """A session over budget stops the next call before it reaches the provider."""
        from a2a_llm_tracker import Budget

        pricing = PricingRegistry()
        pricing.set_price(provider="openai", model="gpt-4.1", input_per_million=2.0, output_per_million=8.0)
        meter = Meter(pricing=pricing, sinks=[sink], background=False, strict=True,
                      budgets=[Budget(0.00001, scope="session")])
        llm = LiteLLM(meter=meter)
        llm.completion(model="openai/gpt-4.1", messages=MESSAGES, metadata={"session_id": "s1"}, **openai_kw)
        with pytest.raises(BudgetExceededError):
            llm.completion(model="openai/gpt-4.1", messages=MESSAGES, metadata={"session_id": "s1"}, **openai_kw)
        assert len(server.requests) == 1
        llm.completion(model="openai/gpt-4.1", messages=MESSAGES, metadata={"session_id": "s2"}, **openai_kw)
        assert len(server.requests) == 2

    def test_global_meter(self, sink, openai_kw):
        """meter=None needs a global meter, and follows it."""
        with pytest.raises(TrackerNotInitializedError, match="init_sync"):
            LiteLLM()
        a2a_llm_tracker.set_meter(Meter(sinks=[sink], background=False))
        a2a_llm_tracker.get_llm().completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        assert len(sink.events) == 1

    def test_tracking_failure_does_not_break_the_call(self, openai_kw, caplog):
        """A sink that raises (non-strict meter) leaves the response unchanged and logs a warning."""
        class Broken(MemorySink):
            def write(self, event):
                raise RuntimeError("disk on fire")

        meter = Meter(sinks=[Broken()], background=False, strict=False,
                      enrichers=[lambda e: (_ for _ in ()).throw(RuntimeError("enricher broke"))])
        response = LiteLLM(meter=meter).completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        assert response.choices[0].message.content == REPLY


def test_import_does_not_load_litellm():
    """`import a2a_llm_tracker` loads no litellm; the integration module is separate."""
    import subprocess
    import sys

    code = "import sys, a2a_llm_tracker; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class TestRecordedOnTheWriterThread:
    """A background meter reads the response on its writer thread: what it records is what litellm
    returned when the call ended, whatever the caller does with the response object afterwards."""

    @pytest.fixture(name="bg_meter")
    def _bg_meter(self, sink):
        from a2a_llm_tracker._dispatch import DispatchConfig

        meter = Meter(sinks=[sink], use_provider_cost=True, dispatch=DispatchConfig(schedule_delay=5.0))
        assert meter._defer
        # Start the writer now (it then waits 5 s for a batch), so the test's call stays queued
        # until the test flushes; tests read the events after this one.
        meter.record(provider="openai", model="warm-up", input_tokens=1, output_tokens=1)
        assert meter.flush(10) and len(sink.events) == 1
        time.sleep(0.1)  # let the writer get back to its 5 s wait (it needs the GIL to get there)
        yield meter
        meter.close()

    def test_the_response_read_is_a_snapshot(self, bg_meter, sink):
        from litellm.types.utils import PromptTokensDetailsWrapper, Usage

        usage = Usage(prompt_tokens=120, completion_tokens=30, total_tokens=150,
                      prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=64))
        mock = litellm.ModelResponse(model="gpt-4o-mini", choices=[{"message": {"role": "assistant",
                                                                               "content": "ok"}}], usage=usage)
        with meter_context(agent_id="planner"):
            response = LiteLLM(meter=bg_meter).completion(model="gpt-4o-mini", messages=MESSAGES,
                                                          mock_response=mock)
        assert len(sink.events) == 1  # not built yet: the writer waits for a batch
        # the caller reuses its response object before the writer gets to it
        response.usage = Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)
        response.model = "something-else"
        response._hidden_params["response_cost"] = 99.0
        assert bg_meter.flush(10)
        [e] = sink.events[1:]
        assert (e.input_tokens, e.output_tokens, e.cached_input_tokens) == (120, 30, 64)
        assert e.response_model == "gpt-4o-mini" and e.agent_id == "planner"
        # litellm's gpt-4o-mini price: 56 uncached at $0.15/M, 64 cached at $0.075/M, 30 out at $0.60/M
        assert e.cost_source == "provider" and e.cost_usd == pytest.approx(3.12e-05)

    def test_the_queued_reading_keeps_neither_prompt_nor_completion(self, bg_meter, sink):
        import gc
        import weakref

        prompt = [{"role": "user", "content": "a long prompt " * 100}]
        response = LiteLLM(meter=bg_meter).completion(model="gpt-4o-mini", messages=prompt, mock_response="ok")
        choice = weakref.ref(response.choices[0])
        prompt_refs = len(gc.get_referrers(prompt))
        assert len(sink.events) == 1  # still queued
        del response
        gc.collect()
        assert choice() is None  # the completion is not held by the queued event
        assert len(gc.get_referrers(prompt)) <= prompt_refs  # nor is the request
        assert bg_meter.flush(10)
        assert sink.events[1].finish_reason == "stop" and sink.events[1].output_tokens > 0

    async def test_every_call_style_once_with_billed_tokens(self, bg_meter, sink, server, openai_kw):
        llm = LiteLLM(meter=bg_meter)
        with meter_context(session_id="s-bg"):
            llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
            for _chunk in llm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw):
                pass
            await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
            stream = await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw)
            async for _chunk in stream:
                pass
        assert await bg_meter.aflush(10)
        events = sink.events[1:]
        assert len(events) == 4 == len(server.billed)
        for event, billed in zip(events, server.billed, strict=True):
            assert_billed(event, billed)
            assert event.session_id == "s-bg" and event.request_id == billed["request_id"]
        assert [e.stream for e in events] == [False, True, False, True]
