"""TrackerHandler against real ChatOpenAI / LangGraph calls to the local MockProvider (no network)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

import a2a_llm_tracker
from a2a_llm_tracker import Budget, BudgetExceededError, Meter, meter_context
from a2a_llm_tracker._context import adapter_scope, current_adapter
from a2a_llm_tracker.integrations.langchain import TrackerHandler

TOKEN_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens")


def assert_billed(event, billed):
    """The event carries exactly the usage the server billed for that call."""
    for name in TOKEN_FIELDS:
        assert getattr(event, name) == billed[name], name
    assert event.accuracy == "exact"


def by_input(events):
    return {e.input_tokens: e for e in events}


class TestSingleCalls:
    def test_invoke_records_what_the_server_billed(self, llm, meter, sink, server):
        """One event per request; tokens, model, provider, ids and metadata mapped."""
        run_id = uuid.uuid4()
        handler = TrackerHandler(meter)
        llm.invoke("hello there", config={
            "callbacks": [handler], "run_id": run_id, "run_name": "greet",
            "metadata": {"agent_id": "agent-7", "user_id": "u-1", "session_id": "s-9"}})
        assert len(server.requests) == 1
        [event] = sink.events
        assert_billed(event, server.billed[0])
        assert event.framework == "langchain" and event.provider == "openai"
        assert event.model == "gpt-4o-mini" and event.operation == "chat" and event.stream is False
        assert (event.agent_id, event.user_id, event.session_id) == ("agent-7", "u-1", "s-9")
        assert event.call_id == str(run_id) and event.trace_id == str(run_id) and event.parent_call_id is None
        assert event.metadata["run_name"] == "greet"
        assert event.metadata["endpoint"].startswith("http://127.0.0.1:")
        assert event.cost_usd is not None and event.cost_usd > 0 and event.cost_source == "pricing"
        assert event.latency_ms is not None and event.latency_ms > 0
        assert event.raw_usage["input_token_details"]["cache_read"] == 4  # not redacted

    def test_stream_with_stream_usage_counts_once(self, llm, meter, sink, server):
        """The usage chunk and on_llm_end carry the same usage: recorded once."""
        chunks = list(llm.stream("tell me a story", config={"callbacks": [TrackerHandler(meter)]},
                                 stream_usage=True))
        assert len(chunks) > 2
        [event] = sink.events
        assert server.billed[0]["usage_reported"] is True
        assert_billed(event, server.billed[0])
        assert event.stream is True and event.time_to_first_token_ms is not None

    def test_stream_without_usage_warns_once(self, llm, meter, sink, server, caplog):
        """No usage on a stream → accuracy unknown and ONE warning naming stream_usage=True."""
        handler = TrackerHandler(meter)
        with caplog.at_level(logging.WARNING, logger="a2a_llm_tracker"):
            for _ in range(2):
                list(llm.stream("hi", config={"callbacks": [handler]}))
        events = sink.events
        assert len(events) == len(server.requests) == 2
        assert all(e.accuracy == "unknown" and e.input_tokens is None and e.cost_usd is None for e in events)
        warnings = [r for r in caplog.records if "stream_usage=True" in r.getMessage()]
        assert len(warnings) == 1

    async def test_ainvoke_and_astream(self, llm, meter, sink, server):
        handler = TrackerHandler(meter)
        await llm.ainvoke("one two", config={"callbacks": [handler]})
        [c async for c in llm.astream("three four five", config={"callbacks": [handler]}, stream_usage=True)]
        events = sink.events
        assert len(events) == len(server.requests) == 2
        for event, billed in zip(sorted(events, key=lambda e: e.ts), server.billed, strict=True):
            assert_billed(event, billed)
        assert [e.stream for e in sorted(events, key=lambda e: e.ts)] == [False, True]

    def test_error_records_an_error_event(self, llm, meter, sink, server):
        server.fail_next(1, status=500)
        with pytest.raises(Exception, match="500|Internal|error"):
            llm.invoke("hi", config={"callbacks": [TrackerHandler(meter)]})
        [event] = sink.events
        assert len(server.requests) == 1
        assert event.status == "error" and event.error_type in {"InternalServerError", "OpenAIAPIError"}
        assert event.accuracy == "unknown" and event.cost_usd is None
        assert "test" not in (event.error_message or "").split()  # the api key never leaks

    def test_llm_cache_hit_has_tokens_but_no_cost(self, server, meter, sink):
        from langchain_core.caches import InMemoryCache
        from langchain_openai import ChatOpenAI

        llm = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="test", max_retries=0,
                         cache=InMemoryCache())
        handler = TrackerHandler(meter)
        llm.invoke("same prompt", config={"callbacks": [handler]})
        llm.invoke("same prompt", config={"callbacks": [handler]})
        assert len(server.requests) == 1
        first, hit = sink.events
        assert first.cost_usd > 0 and "llm_cache_hit" not in first.metadata
        assert hit.metadata["llm_cache_hit"] is True and hit.cost_usd == 0.0 and hit.price_id == "llm-cache-hit"
        assert hit.input_tokens == first.input_tokens
        sink.clear()
        llm.invoke("same prompt", config={"callbacks": [TrackerHandler(meter, record_cache_hits=False)]})
        assert sink.events == []


class TestConcurrency:
    def test_batch_from_pool_threads_keeps_attribution_apart(self, llm, meter, sink, server):
        """batch runs each input on its own pool thread; every event keeps its own agent and tokens."""
        handler = TrackerHandler(meter)
        inputs = [" ".join(["w"] * (i + 1)) for i in range(6)]
        configs = [{"callbacks": [handler], "metadata": {"agent_id": f"agent-{i}"}, "max_concurrency": 6}
                   for i in range(6)]
        llm.batch(inputs, config=configs)
        events = sink.events
        assert len(events) == len(server.requests) == 6
        billed = {b["input_tokens"]: b for b in server.billed}
        for event in events:
            assert_billed(event, billed[event.input_tokens])
        base = min(e.input_tokens for e in events)
        assert {e.agent_id: e.input_tokens - base for e in events} == {f"agent-{i}": i for i in range(6)}
        assert len({e.call_id for e in events}) == 6

    async def test_abatch_and_gather_with_ambient_context(self, llm, meter, sink, server):
        """Ambient meter_context follows each asyncio task into the (inline) handler."""
        handler = TrackerHandler(meter)

        async def call(i: int):
            with meter_context(agent_id=f"task-{i}", session_id="s-async"):
                await llm.ainvoke(" ".join(["w"] * (i + 1)), config={"callbacks": [handler]})

        await asyncio.gather(*(call(i) for i in range(5)))
        await llm.abatch(["x", "x y"], config={"callbacks": [handler], "metadata": {"agent_id": "batcher"}})
        events = sink.events
        assert len(events) == len(server.requests) == 7
        tasks = [e for e in events if e.agent_id.startswith("task-")]
        base = min(e.input_tokens for e in tasks)
        assert {e.agent_id: e.input_tokens - base for e in tasks} == {f"task-{i}": i for i in range(5)}
        assert all(e.session_id == "s-async" for e in tasks)
        assert [e.agent_id for e in events].count("batcher") == 2


class TestAgents:
    def test_create_agent_with_thread_id(self, llm, meter, sink, server):
        """langchain create_agent(name=...) → agent_id; thread_id → session_id; root run → trace_id."""
        from langchain.agents import create_agent

        agent = create_agent(model=llm, tools=[], name="researcher")
        root = uuid.uuid4()
        agent.invoke({"messages": [{"role": "user", "content": "find facts"}]},
                     config={"callbacks": [TrackerHandler(meter)], "run_id": root,
                             "configurable": {"thread_id": "th-44"}, "metadata": {"user_id": "u-2"}})
        events = sink.events
        assert len(events) == len(server.requests) >= 1
        for event, billed in zip(events, server.billed, strict=True):
            assert_billed(event, billed)
            assert event.agent_id == "researcher" and event.session_id == "th-44" and event.user_id == "u-2"
            assert event.trace_id == str(root)
            assert event.parent_call_id is not None and event.parent_call_id != str(root)  # the "model" node
            assert event.metadata["langgraph_node"] == "model"

    def test_langgraph_nodes_are_agents(self, llm, meter, sink, server):
        """In a plain StateGraph, each node's LLM call is attributed to the node."""
        from typing import TypedDict

        from langgraph.graph import END, START, StateGraph

        class State(TypedDict):
            text: str

        def planner(state: State) -> State:
            return {"text": llm.invoke("plan " + state["text"]).content}

        def writer(state: State) -> State:
            return {"text": llm.invoke("write it all down now").content}

        graph = StateGraph(State)
        graph.add_node("planner", planner)
        graph.add_node("writer", writer)
        graph.add_edge(START, "planner")
        graph.add_edge("planner", "writer")
        graph.add_edge("writer", END)
        app = graph.compile(name="team")
        app.invoke({"text": "a trip"}, config={"callbacks": [TrackerHandler(meter)],
                                               "configurable": {"thread_id": "th-9"}})
        events = sink.events
        assert len(events) == len(server.requests) == 2
        assert [e.agent_id for e in events] == ["planner", "writer"]
        assert len({e.trace_id for e in events}) == 1 and all(e.session_id == "th-9" for e in events)


class TestMeterAndPrecedence:
    def test_meter_none_uses_the_global_meter(self, llm, server):
        meter = a2a_llm_tracker.init_sync(local_sink="memory", pricing="none", background=False)
        handler = TrackerHandler()  # built with meter=None
        llm.invoke("hi", config={"callbacks": [handler]})
        meter.flush()
        [event] = meter.sinks[0].events
        assert_billed(event, server.billed[0])

    def test_no_meter_is_logged_not_raised(self, llm, server, caplog):
        with caplog.at_level(logging.WARNING, logger="a2a_llm_tracker"):
            result = llm.invoke("hi", config={"callbacks": [TrackerHandler()]})
        assert result.content
        assert any("no meter" in r.getMessage() for r in caplog.records)

    def test_precedence_explicit_framework_ambient_defaults(self, llm, sink, pricing, server):
        """explicit handler args > LangChain metadata > ambient meter_context > Meter defaults."""
        meter = Meter(pricing=pricing, sinks=[sink], background=False, strict=True,
                      defaults={"agent_id": "default-agent", "user_id": "default-user", "session_id": "default-s"})
        plain, explicit = TrackerHandler(meter), TrackerHandler(meter, agent_id="explicit-agent")
        md = {"callbacks": [plain], "metadata": {"agent_id": "framework-agent"}}
        llm.invoke("a", config={"callbacks": [plain]})                                   # defaults
        with meter_context(agent_id="ambient-agent", user_id="ambient-user"):
            llm.invoke("a b", config={"callbacks": [plain]})                             # ambient
            llm.invoke("a b c", config=md)                                               # framework
            llm.invoke("a b c d", config={**md, "callbacks": [explicit]})                # explicit
        e0, e1, e2, e3 = sorted(sink.events, key=lambda e: e.input_tokens)
        assert (e0.agent_id, e0.user_id, e0.session_id) == ("default-agent", "default-user", "default-s")
        assert (e1.agent_id, e1.user_id) == ("ambient-agent", "ambient-user")
        assert (e2.agent_id, e2.user_id) == ("framework-agent", "ambient-user")
        assert (e3.agent_id, e3.user_id, e3.session_id) == ("explicit-agent", "ambient-user", "default-s")


class TestScopeAndBudgets:
    def _probe_model(self):
        """A tiny chat model that reports which adapter claims the call while it runs."""
        from langchain_core.language_models import BaseChatModel
        from langchain_core.messages import AIMessage
        from langchain_core.outputs import ChatGeneration, ChatResult

        seen: list[str | None] = []

        class Probe(BaseChatModel):
            @property
            def _llm_type(self) -> str:
                return "probe"

            def _generate(self, messages, stop=None, run_manager=None, **kwargs):
                seen.append(current_adapter())
                msg = AIMessage(content="ok", usage_metadata={"input_tokens": 5, "output_tokens": 1,
                                                              "total_tokens": 6})
                return ChatResult(generations=[ChatGeneration(message=msg)])

            async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
                return self._generate(messages, stop, run_manager, **kwargs)

        return Probe(), seen

    async def test_adapter_scope_reaches_the_model_call(self, meter, sink):
        """invoke, ainvoke and batch threads: the model runs inside the langchain scope, which then ends."""
        model, seen = self._probe_model()
        handler = TrackerHandler(meter)
        model.invoke("x", config={"callbacks": [handler]})
        await model.ainvoke("x", config={"callbacks": [handler]})
        model.batch(["x", "y", "z"], config={"callbacks": [handler]})
        assert seen == ["langchain"] * 5
        assert current_adapter() is None  # nothing leaks out of the calls
        assert len(sink.events) == 5 and all(e.input_tokens == 5 for e in sink.events)

    def test_outer_adapter_owns_the_call(self, meter, sink):
        """Inside another adapter's scope the handler records nothing (no double count)."""
        model, seen = self._probe_model()
        with adapter_scope("litellm"):
            model.invoke("x", config={"callbacks": [TrackerHandler(meter)]})
        assert seen == ["litellm"] and sink.events == []

    def test_budget_blocks_the_call_before_http(self, llm, sink, pricing, server):
        meter = Meter(pricing=pricing, sinks=[sink], background=False, strict=True,
                      budgets=[Budget(0.000001, scope="session")])
        handler = TrackerHandler(meter, session_id="s-budget")
        llm.invoke("spend a little", config={"callbacks": [handler]})
        with pytest.raises(BudgetExceededError):
            llm.invoke("spend more", config={"callbacks": [handler]})
        assert len(server.requests) == 1 and len(sink.events) == 1
        assert current_adapter() is None
