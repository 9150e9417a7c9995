"""instrument() against the real llama-index-llms-openai OpenAI and AgentWorkflow (local MockProvider)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from llama_index.core.llms import ChatMessage, MockLLM

import a2a_llm_tracker
from a2a_llm_tracker import Meter, meter_context
from a2a_llm_tracker._context import adapter_scope
from a2a_llm_tracker.integrations.llamaindex import TrackerCallbackHandler, instrument

TOKEN_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens")
HI = [ChatMessage(role="user", content="hi there")]


def assert_billed(event, billed):
    for name in TOKEN_FIELDS:
        assert getattr(event, name) == billed[name], name
    assert event.accuracy == "exact"


class TestLLMCalls:
    async def test_chat_complete_achat_astream(self, llm, instrumented, sink, server):
        """One event per HTTP request, with exactly the billed usage, for each entry point."""
        llm.chat(HI)
        llm.complete("hello world again")
        list(llm.stream_chat(HI))
        await llm.achat(HI)
        [r async for r in await llm.astream_chat(HI)]
        events = sink.events
        assert len(events) == len(server.requests) == 5
        for event, billed in zip(events, server.billed, strict=True):
            assert_billed(event, billed)
            assert event.framework == "llamaindex" and event.provider == "openai" and event.model == "gpt-4o-mini"
            assert event.cost_usd is not None and event.cost_usd > 0
        assert [e.operation for e in events] == ["chat", "completion", "chat", "chat", "chat"]
        assert [e.stream for e in events] == [False, False, True, False, True]
        assert events[0].call_id.startswith("OpenAI.chat-") and events[0].trace_id == events[0].call_id
        assert events[0].request_id and events[0].finish_reason == "stop"
        assert events[2].time_to_first_token_ms is not None

    def test_stream_without_usage_warns_once(self, llm_plain, instrumented, sink, server, caplog):
        with caplog.at_level(logging.WARNING, logger="a2a_llm_tracker"):
            for _ in range(2):
                list(llm_plain.stream_chat(HI))
        events = sink.events
        assert len(events) == len(server.requests) == 2
        assert all(e.accuracy == "unknown" and e.input_tokens is None for e in events)
        assert len([r for r in caplog.records if "include_usage" in r.getMessage()]) == 1

    def test_abandoned_stream_is_recorded_once(self, llm, instrumented, sink, server):
        """LlamaIndex sends no End event for a stream the consumer drops: recorded when it is collected."""
        import gc

        with meter_context(agent_id="reader"):
            stream = llm.stream_chat(HI)
            next(stream)  # one chunk, then the consumer loses interest
        assert sink.events == []
        del stream
        gc.collect()
        [event] = sink.events
        assert len(server.requests) == 1
        assert event.stream is True and event.status == "ok" and event.accuracy == "unknown"
        assert event.metadata["stream_incomplete"] == "abandoned"
        assert event.agent_id == "reader"  # the context of the call, not of the collector
        assert event.call_id.startswith("OpenAI.stream_chat-") and event.time_to_first_token_ms is not None
        list(llm.stream_chat(HI))  # a stream used up is recorded from its End event, once
        gc.collect()
        assert len(sink.events) == 2 == len(server.requests)
        assert "stream_incomplete" not in sink.events[1].metadata

    async def test_abandoned_async_stream_is_recorded_once(self, llm, instrumented, sink, server):
        import gc

        stream = await llm.astream_chat(HI)
        await stream.__anext__()
        await stream.aclose()
        del stream
        gc.collect()
        [event] = sink.events
        assert len(server.requests) == 1 and event.metadata["stream_incomplete"] == "abandoned"

    def test_chat_through_complete_counts_once(self, instrumented, sink):
        """MockLLM.chat is implemented through complete(): nested LLM spans, one event."""
        MockLLM().chat(HI)
        list(MockLLM().stream_chat(HI))
        events = sink.events
        assert len(events) == 2
        assert all(e.call_id.startswith("MockLLM.") and "chat" in e.call_id for e in events)
        assert all(e.accuracy == "unknown" and e.provider == "mockllm" for e in events)

    def test_error_records_an_error_event(self, llm, instrumented, sink, server):
        server.fail_next(1, status=500)
        with pytest.raises(Exception):
            llm.chat(HI)
        [event] = sink.events
        assert len(server.requests) == 1
        assert event.status == "error" and event.error_type and event.accuracy == "unknown"

    def test_threads_keep_ambient_attribution(self, llm, instrumented, sink, server):
        """Handlers run in the caller's thread: each thread's meter_context reaches its own event."""
        def work(i: int) -> None:
            with meter_context(agent_id=f"thread-{i}"):
                llm.chat([ChatMessage(role="user", content=" ".join(["w"] * (i + 1)))])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = sink.events
        assert len(events) == len(server.requests) == 5
        base = min(e.input_tokens for e in events)
        assert {e.agent_id: e.input_tokens - base for e in events} == {f"thread-{i}": i for i in range(5)}


class TestAgents:
    @staticmethod
    def _workflow(llm, name: str):
        from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent

        agent = FunctionAgent(name=name, description="answers", llm=llm, tools=[], system_prompt="be brief")
        return AgentWorkflow(agents=[agent], root_agent=name)

    async def test_agent_workflow_maps_agent_and_run(self, llm, instrumented, sink, server):
        await self._workflow(llm, "researcher").run(user_msg="find facts", run_id="run-123")
        events = sink.events
        assert len(events) == len(server.requests) >= 1
        for event, billed in zip(events, server.billed, strict=True):
            assert_billed(event, billed)
            assert event.agent_id == "researcher" and event.trace_id == "run-123"
            assert event.parent_call_id.startswith("AgentWorkflow.run_agent_step-")
            assert event.metadata["llamaindex_run_id"] == "run-123"

    async def test_function_agent_alone(self, llm, instrumented, sink, server):
        from llama_index.core.agent.workflow import FunctionAgent

        agent = FunctionAgent(name="solo", description="d", llm=llm, tools=[], system_prompt="x")
        await agent.run(user_msg="hello", run_id="run-solo")
        [event] = sink.events
        assert (event.agent_id, event.trace_id) == ("solo", "run-solo")

    async def test_concurrent_workflows_keep_attribution_apart(self, llm, instrumented, sink, server):
        names = [f"agent-{i}" for i in range(4)]
        await asyncio.gather(*(self._workflow(llm, n).run(user_msg=" ".join(["w"] * (i + 1)), run_id=f"run-{i}")
                               for i, n in enumerate(names)))
        events = sink.events
        assert len(events) == len(server.requests) == 4
        assert {(e.agent_id, e.trace_id) for e in events} == {(f"agent-{i}", f"run-{i}") for i in range(4)}
        base = min(e.input_tokens for e in events)
        assert {e.agent_id: e.input_tokens - base for e in events} == {f"agent-{i}": i for i in range(4)}


class TestHandleAndPrecedence:
    def test_instrument_is_idempotent_and_removable(self, llm, meter, sink, server):
        first = instrument(meter)
        again = instrument(meter)
        assert again is first
        llm.chat(HI)
        assert len(sink.events) == 1  # not twice
        first.remove()
        first.remove()  # idempotent
        assert not first.active
        llm.chat(HI)
        assert len(sink.events) == 1 and len(server.requests) == 2
        with instrument(meter):
            llm.chat(HI)
        llm.chat(HI)
        assert len(sink.events) == 2

    def test_meter_none_uses_the_global_meter(self, llm, server):
        meter = a2a_llm_tracker.init_sync(local_sink="memory", pricing="none", background=False)
        with instrument():
            llm.chat(HI)
        meter.flush()
        [event] = meter.sinks[0].events
        assert_billed(event, server.billed[0])

    def test_precedence_explicit_framework_ambient_defaults(self, llm, sink, server):
        from llama_index.core.instrumentation.dispatcher import instrument_tags

        meter = Meter(sinks=[sink], background=False, strict=True,
                      defaults={"agent_id": "default-agent", "user_id": "default-user"})
        with instrument(meter):
            llm.chat([ChatMessage(role="user", content="a")])                         # defaults
            with meter_context(agent_id="ambient-agent", user_id="ambient-user"):
                llm.chat([ChatMessage(role="user", content="a b")])                   # ambient
                with instrument_tags({"agent_id": "framework-agent"}):
                    llm.chat([ChatMessage(role="user", content="a b c")])             # framework
        with instrument(meter, agent_id="explicit-agent"), instrument_tags({"agent_id": "framework-agent"}):
            llm.chat([ChatMessage(role="user", content="a b c d")])                   # explicit
        e0, e1, e2, e3 = sorted(sink.events, key=lambda e: e.input_tokens)
        assert (e0.agent_id, e0.user_id) == ("default-agent", "default-user")
        assert (e1.agent_id, e1.user_id) == ("ambient-agent", "ambient-user")
        assert (e2.agent_id, e2.user_id) == ("framework-agent", "ambient-user")
        assert (e3.agent_id, e3.user_id) == ("explicit-agent", "default-user")

    def test_outer_adapter_owns_the_call(self, llm, instrumented, sink, server):
        with adapter_scope("langchain"):
            llm.chat(HI)
        assert sink.events == [] and len(server.requests) == 1


class TestLegacyCallbackManager:
    def test_legacy_handler_counts_each_call_once(self, server, meter, sink):
        from llama_index.core.callbacks import CallbackManager
        from llama_index.llms.openai import OpenAI

        manager = CallbackManager([TrackerCallbackHandler(meter, agent_id="legacy")])
        llm = OpenAI(api_base=server.base_url, api_key="test", model="gpt-4o-mini", max_retries=0,
                     callback_manager=manager)
        llm.chat(HI)
        llm.complete("one two three")
        MockLLM(callback_manager=manager).chat(HI)  # nested chat → complete: once
        events = sink.events
        assert len(events) == 3 and len(server.requests) == 2
        for event, billed in zip(events[:2], server.billed, strict=True):
            assert_billed(event, billed)
        assert all(e.agent_id == "legacy" and e.framework == "llamaindex" for e in events)
        # legacy nesting is only visible as "an LLM event is open": the inner (completion) one records
        assert [e.operation for e in events] == ["chat", "completion", "completion"]


def test_missing_llamaindex_raises_adapter_unavailable():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('llama_index', 'llama_index_instrumentation'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from a2a_llm_tracker.exceptions import AdapterUnavailable\n"
        "try:\n"
        "    import a2a_llm_tracker.integrations.llamaindex\n"
        "except AdapterUnavailable as exc:\n"
        "    print('OK', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("OK") and "pip install a2a-llm-tracker[llamaindex]" in out.stdout, out.stderr


def test_adapter_scope_covers_the_llm_call(instrumented, sink):
    """Inside a recorded LlamaIndex LLM call an inner adapter (LiteLLM) sees the claim; it ends after."""
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback

    from a2a_llm_tracker._context import current_adapter

    seen: list[str | None] = []

    class Probe(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="probe-1")

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
            seen.append(current_adapter())
            return CompletionResponse(text="ok", raw={"usage": {"prompt_tokens": 7, "completion_tokens": 2}})

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            raise NotImplementedError

    Probe().complete("x")
    Probe().chat(HI)  # chat → complete: the outer chat span claims, the inner sees it, one event
    assert seen == ["llamaindex", "llamaindex"] and current_adapter() is None
    first, second = sink.events
    assert (first.model, first.input_tokens, first.output_tokens, first.operation) == ("probe-1", 7, 2, "completion")
    assert (second.operation, second.input_tokens, second.output_tokens) == ("chat", 7, 2)  # raw carried over
