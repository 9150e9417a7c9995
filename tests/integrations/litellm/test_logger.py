"""TrackerLogger (a litellm CustomLogger) against real litellm and the MockProvider."""

from __future__ import annotations

import asyncio
import threading

import litellm
import pytest

from a2a_llm_tracker import Meter, meter_context
from a2a_llm_tracker._context import adapter_scope
from a2a_llm_tracker.integrations.litellm import LiteLLM, TrackerLogger
from a2a_llm_tracker.sinks.memory import MemorySink

from .conftest import MESSAGES, wait_for


def same_tokens(event, billed):
    return (event.input_tokens, event.output_tokens, event.cached_input_tokens, event.reasoning_tokens) == (
        billed["input_tokens"], billed["output_tokens"], billed["cached_input_tokens"], billed["reasoning_tokens"])


class TestLoggerCalls:
    def test_sync(self, meter, sink, server, openai_kw, loggers):
        """Direct litellm.completion: one exact event from the standard logging payload, with attribution."""
        loggers(meter)
        metadata = {"agent_id": "agent-A", "session_id": "sess-1", "user_id": "user-9", "trace_id": "trace-xyz"}
        litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, metadata=metadata, **openai_kw)
        # litellm itself adds hidden_params / llm_api_timing_windows to a directly passed dict; the logger adds nothing
        assert "a2a_tracker" not in metadata
        assert wait_for(lambda: len(sink.events) == 1)
        [e] = sink.events
        assert same_tokens(e, server.billed[-1]) and e.accuracy == "exact"
        assert (e.agent_id, e.session_id, e.user_id, e.trace_id) == ("agent-A", "sess-1", "user-9", "trace-xyz")
        assert e.provider == "openai" and e.model == "openai/gpt-4.1" and e.response_model == "gpt-4.1"
        assert e.request_id == server.billed[-1]["request_id"] and e.finish_reason == "stop"
        assert e.cost_source == "provider" and e.cost_usd > 0 and e.framework == "litellm"

    def test_sync_stream_with_and_without_include_usage(self, meter, sink, server, openai_kw, loggers):
        """Streams: exact with include_usage; without it litellm's count is labelled estimated."""
        loggers(meter)
        list(litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True,
                                stream_options={"include_usage": True}, **openai_kw))
        assert wait_for(lambda: len(sink.events) == 1)
        assert same_tokens(sink.events[0], server.billed[0]) and sink.events[0].stream is True
        assert sink.events[0].accuracy == "exact"
        list(litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw))
        assert wait_for(lambda: len(sink.events) == 2)
        assert sink.events[1].accuracy == "estimated"

    async def test_async_and_async_stream_with_aflush(self, meter, sink, server, openai_kw, loggers):
        """Async calls and async streams; aflush() waits for litellm's fire-and-forget logging task."""
        logger = loggers(meter)
        await litellm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        stream = await litellm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, stream=True,
                                           stream_options={"include_usage": True}, **openai_kw)
        async for _ in stream:
            pass
        assert await logger.aflush(5.0)
        assert len(sink.events) == 2
        for event, billed in zip(sink.events, server.billed, strict=True):
            assert same_tokens(event, billed)

    def test_failure(self, meter, sink, server, openai_kw, loggers):
        """A failed call gives one error event."""
        loggers(meter)
        server.fail_next(1)
        with pytest.raises(litellm.InternalServerError):
            litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, max_retries=0, **openai_kw)
        assert wait_for(lambda: len(sink.events) == 1)
        assert sink.events[0].status == "error" and sink.events[0].error_type == "InternalServerError"
        assert openai_kw["api_key"] not in sink.events[0].model_dump_json()

    async def test_async_failure(self, meter, sink, server, openai_kw, loggers):
        """Async failures are recorded too."""
        logger = loggers(meter)
        server.fail_next(1)
        with pytest.raises(litellm.InternalServerError):
            await litellm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, max_retries=0, **openai_kw)
        await logger.aflush(5.0)
        assert [e.status for e in sink.events] == ["error"]

    def test_exact_usage_with_mock_response(self, meter, sink, loggers):
        """mock_response=ModelResponse(usage=...) reaches the logger exactly (cached 64, reasoning 12)."""
        from litellm.types.utils import CompletionTokensDetailsWrapper, PromptTokensDetailsWrapper, Usage

        loggers(meter)
        usage = Usage(prompt_tokens=120, completion_tokens=30, total_tokens=150,
                      prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=64),
                      completion_tokens_details=CompletionTokensDetailsWrapper(reasoning_tokens=12))
        mock = litellm.ModelResponse(model="gpt-4o-mini", usage=usage,
                                     choices=[{"message": {"role": "assistant", "content": "ok"}}])
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=mock)
        assert wait_for(lambda: len(sink.events) == 1)
        e = sink.events[0]
        assert (e.input_tokens, e.output_tokens, e.cached_input_tokens, e.reasoning_tokens) == (120, 30, 64, 12)
        assert e.cost_usd == pytest.approx(3.12e-05)


class TestFlush:
    """litellm runs a sync call's success callback on its logging threads after the call returns:
    flush() / aflush() wait for those threads, so an event is there as soon as they return."""

    def test_flush_right_after_each_sync_call(self, sink, server, openai_kw, loggers):
        meter = Meter(sinks=[sink])  # a background meter, as in a real script
        logger = loggers(meter)
        try:
            for i in range(15):
                litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
                assert logger.flush(10)
                assert len(sink.events) == i + 1
        finally:
            meter.close()

    async def test_aflush_right_after_sync_and_async_calls(self, sink, server, openai_kw, loggers):
        meter = Meter(sinks=[sink])
        logger = loggers(meter)
        try:
            for i in range(8):
                litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
                await litellm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
                assert await logger.aflush(10)
                assert len(sink.events) == 2 * (i + 1)
        finally:
            meter.close()


class TestDedupAndRegistration:
    def test_wrapper_plus_logger_counts_once(self, meter, sink, server, openai_kw, loggers):
        """Both installed: every wrapper call (all four styles) is one event, not two."""
        loggers(meter)
        llm = LiteLLM(meter=meter)
        llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        list(llm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw))

        async def run():
            await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
            stream = await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, stream=True, **openai_kw)
            async for _ in stream:
                pass
            await TrackerLogger(meter).aflush(2.0)

        asyncio.run(run())
        litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)  # direct: the logger's
        assert wait_for(lambda: len(sink.events) == 5)
        import time

        time.sleep(0.2)  # late callbacks would show up now
        assert len(sink.events) == 5
        assert len(server.billed) == 5

    def test_two_loggers_two_meters(self, server, openai_kw, loggers):
        """litellm de-duplicates equal loggers; ours differ by instance_id, so both meters get the call."""
        a, b = MemorySink(), MemorySink()
        ma, mb = Meter(sinks=[a], background=False), Meter(sinks=[b], background=False)
        la, lb = loggers(ma), loggers(mb)
        assert la.instance_id != lb.instance_id
        litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        assert wait_for(lambda: len(a.events) == 1 and len(b.events) == 1)
        assert a.events[0].input_tokens == b.events[0].input_tokens == server.billed[0]["input_tokens"]

    def test_uninstall(self, meter, sink, openai_kw):
        """uninstall() removes the logger from every list litellm promoted it into."""
        logger = TrackerLogger(meter).install()
        logger.uninstall()
        litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        import time

        time.sleep(0.1)
        assert sink.events == []

    def test_outer_adapter_skipped(self, meter, sink, openai_kw, loggers):
        """A call made inside another adapter's scope is that adapter's to record."""
        loggers(meter)
        with adapter_scope("langchain"):
            litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)
        assert wait_for(lambda: len(sink.events) == 1)
        import time

        time.sleep(0.1)
        assert len(sink.events) == 1


class TestLoggerContext:
    def test_context_survives_background_threads_for_streams(self, meter, sink, openai_kw, loggers):
        """Sync-stream callbacks run on litellm threads without the caller's context: captured at call time."""
        loggers(meter)
        with meter_context(agent_id="streamer", session_id="s-9"):
            list(litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, stream=True,
                                    stream_options={"include_usage": True}, **openai_kw))
        assert wait_for(lambda: len(sink.events) == 1)
        assert (sink.events[0].agent_id, sink.events[0].session_id) == ("streamer", "s-9")

    def test_threads(self, meter, sink, openai_kw, loggers):
        """Calls from several threads keep their own context."""
        loggers(meter)

        def work(i):
            with meter_context(agent_id=f"t{i}"):
                litellm.completion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wait_for(lambda: len(sink.events) == 4)
        assert sorted(e.agent_id for e in sink.events) == ["t0", "t1", "t2", "t3"]

    async def test_tasks(self, meter, sink, openai_kw, loggers):
        """Concurrent asyncio tasks keep their own context."""
        logger = loggers(meter)

        async def agent(name):
            async with meter_context(agent_id=name):
                await litellm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, **openai_kw)

        await asyncio.gather(*(agent(f"a{i}") for i in range(4)))
        await logger.aflush(5.0)
        assert sorted(e.agent_id for e in sink.events) == ["a0", "a1", "a2", "a3"]
