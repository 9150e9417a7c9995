"""LangChain and LangGraph: one ``TrackerHandler`` records every model call, with its agent and session.

1. A plain ``ChatOpenAI`` model with the handler attached (sync, streamed, async).
2. A LangChain agent (``create_agent(name="planner")``): the agent's name becomes ``agent_id``.
3. A two-node LangGraph graph invoked with a ``thread_id``: each node is an agent, the thread the session.

The models talk to the built-in mock provider (OpenAI-compatible) on 127.0.0.1.

Run: python examples/langchain_handler.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.integrations.langchain, langchain_openai, langchain.agents, langgraph.graph

from __future__ import annotations

import asyncio
from typing import TypedDict

from langchain.agents import create_agent
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

from a2a_llm_tracker import Meter, PricingRegistry, meter_context
from a2a_llm_tracker.integrations.langchain import TrackerHandler
from a2a_llm_tracker.mock_provider import MockProvider
from a2a_llm_tracker.sinks.memory import MemorySink


class State(TypedDict):
    topic: str
    plan: str
    draft: str


def main() -> None:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4.1-mini", 0.40, 1.60, cached_input_per_million=0.10)
    sink = MemorySink()
    meter = Meter(pricing=pricing, sinks=[sink], project="langchain-example")
    handler = TrackerHandler(meter)

    with MockProvider(cached_tokens=32) as server:
        llm = ChatOpenAI(model="gpt-4.1-mini", base_url=server.base_url, api_key="mock-key", max_retries=0,
                         stream_usage=True, callbacks=[handler])

        # 1. a plain model: sync, streamed, async
        with meter_context(agent_id="assistant", session_id="chat-1", user_id="alice"):
            llm.invoke("Say hello in one sentence.")
            text = "".join(chunk.content for chunk in llm.stream("Write a short poem."))
            asyncio.run(llm.ainvoke("Async hello!"))
        assert text
        meter.flush()  # events are written by a background thread
        plain = list(sink.events)
        assert len(plain) == 3, plain
        assert [e.stream for e in plain] == [False, True, False]
        for event, billed in zip(plain, server.billed, strict=True):
            assert event.framework == "langchain" and event.agent_id == "assistant"
            assert (event.session_id, event.user_id) == ("chat-1", "alice")
            assert event.input_tokens == billed["input_tokens"] and event.output_tokens == billed["output_tokens"]
            assert event.cached_input_tokens == 32 and event.cost_source == "pricing"
        print(f"plain model: {len(plain)} calls, ${sum(e.cost_usd for e in plain):.6f}")

        # 2. an agent: create_agent(name=...) names the agent
        agent_llm = ChatOpenAI(model="gpt-4.1-mini", base_url=server.base_url, api_key="mock-key", max_retries=0)
        agent = create_agent(agent_llm, tools=[], name="planner")
        agent.invoke({"messages": [{"role": "user", "content": "Plan my day"}]},
                     config={"callbacks": [handler], "metadata": {"user_id": "bob"}})
        meter.flush()
        agent_event = sink.events[-1]
        assert agent_event.agent_id == "planner" and agent_event.user_id == "bob", agent_event
        assert agent_event.input_tokens == server.billed[-1]["input_tokens"]
        assert agent_event.call_id and agent_event.trace_id  # LangChain run ids
        print(f"agent 'planner': {agent_event.total_tokens} tokens, ${agent_event.cost_usd:.6f}")

        # 3. a LangGraph graph: node names are agents, the thread is the session
        def plan(state: State) -> dict:
            return {"plan": agent_llm.invoke(f"Plan an article about {state['topic']}").content}

        def write(state: State) -> dict:
            return {"draft": agent_llm.invoke(f"Write it: {state['plan']}").content}

        graph = StateGraph(State)
        graph.add_node("planner", plan)
        graph.add_node("writer", write)
        graph.add_edge(START, "planner")
        graph.add_edge("planner", "writer")
        graph.add_edge("writer", END)
        app = graph.compile()
        before = len(sink.events)
        app.invoke({"topic": "tidal power", "plan": "", "draft": ""},
                   config={"callbacks": [handler], "configurable": {"thread_id": "thread-42"}})
        meter.flush()
        graph_events = sink.events[before:]
        assert [e.agent_id for e in graph_events] == ["planner", "writer"], graph_events
        assert {e.session_id for e in graph_events} == {"thread-42"}
        assert len({e.trace_id for e in graph_events}) == 1  # one graph run
        print(f"graph: {[e.agent_id for e in graph_events]} in session thread-42")

    meter.close()
    assert len(sink.events) == 6 == len(server.billed)  # every call counted once
    print("OK")


if __name__ == "__main__":
    main()
