"""LlamaIndex: ``instrument(meter)`` records every LLM call made anywhere in LlamaIndex.

Chat, completion and a streamed chat with LlamaIndex's ``OpenAI`` LLM, attributed with
``instrument_tags`` (session and user) and with a ``FunctionAgent`` whose name becomes ``agent_id``.
The LLM talks to the built-in mock provider (OpenAI-compatible) on 127.0.0.1.

Run: python examples/llamaindex_instrument.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.integrations.llamaindex, llama_index.core, llama_index.llms.openai

from __future__ import annotations

import asyncio

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.instrumentation.dispatcher import instrument_tags
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

from a2a_llm_tracker import Meter, PricingRegistry
from a2a_llm_tracker.integrations.llamaindex import instrument
from a2a_llm_tracker.mock_provider import MockProvider
from a2a_llm_tracker.sinks.memory import MemorySink


def main() -> None:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4.1-mini", 0.40, 1.60, cached_input_per_million=0.10)
    sink = MemorySink()
    meter = Meter(pricing=pricing, sinks=[sink], project="llamaindex-example")

    with MockProvider(cached_tokens=16) as server, instrument(meter):
        llm = OpenAI(model="gpt-4.1-mini", api_base=server.base_url, api_key="mock-key", max_retries=0,
                     # LlamaIndex does not ask for usage on streams unless told to
                     additional_kwargs={"stream_options": {"include_usage": True}})
        with instrument_tags({"session_id": "s-1", "user_id": "alice", "agent_id": "assistant"}):
            llm.chat([ChatMessage(role="user", content="Say hello in one sentence.")])
            llm.complete("Complete this sentence: the sea is")
            "".join(r.delta or "" for r in llm.stream_chat([ChatMessage(role="user", content="A short poem.")]))
        meter.flush()
        assert len(sink.events) == 3, sink.events
        for event, billed in zip(sink.events, server.billed, strict=True):
            assert event.framework == "llamaindex"
            assert (event.agent_id, event.session_id, event.user_id) == ("assistant", "s-1", "alice")
            assert event.input_tokens == billed["input_tokens"] and event.output_tokens == billed["output_tokens"]
            assert event.cached_input_tokens == 16 and event.accuracy == "exact" and event.cost_usd > 0
        assert [e.stream for e in sink.events] == [False, False, True]
        print(f"LLM calls: {len(sink.events)}, ${sum(e.cost_usd for e in sink.events):.6f}")

        # an agent: its name is the agent_id of the calls its steps make
        agent = FunctionAgent(name="researcher", description="Finds facts.", tools=[], llm=llm,
                              system_prompt="You research questions.")

        async def ask() -> str:
            return str(await agent.run("What is tidal power?"))

        answer = asyncio.run(ask())
        meter.flush()
        agent_events = sink.events[3:]
        assert answer and agent_events, agent_events
        assert {e.agent_id for e in agent_events} == {"researcher"}, agent_events
        assert len(sink.events) == len(server.billed)  # every call counted once
        print(f"agent 'researcher': {len(agent_events)} call(s)")

    meter.close()
    print("OK")


if __name__ == "__main__":
    main()
