"""AutoGen: a two-agent team sharing one ``TrackedChatCompletionClient``; each call is attributed to its agent.

A writer and a critic take turns in a ``RoundRobinGroupChat``. Both use the same tracked client,
which wraps AutoGen's own ``OpenAIChatCompletionClient`` pointed at the built-in mock provider on
127.0.0.1. The session comes from the ambient ``meter_context``; the agent from AutoGen itself.

Run: python examples/autogen_team.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.integrations.autogen, autogen_agentchat, autogen_ext.models.openai

from __future__ import annotations

import asyncio

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_ext.models.openai import OpenAIChatCompletionClient

from a2a_llm_tracker import Meter, PricingRegistry, meter_context
from a2a_llm_tracker.integrations.autogen import TrackedChatCompletionClient
from a2a_llm_tracker.mock_provider import MockProvider
from a2a_llm_tracker.sinks.memory import MemorySink


async def run_team(server: MockProvider, meter: Meter) -> None:
    inner = OpenAIChatCompletionClient(model="gpt-4.1-mini", base_url=server.base_url, api_key="mock-key",
                                       max_retries=0)
    client = TrackedChatCompletionClient(inner, meter)
    writer = AssistantAgent("writer", model_client=client, system_message="You write short slogans.")
    critic = AssistantAgent("critic", model_client=client, system_message="You critique slogans briefly.")
    team = RoundRobinGroupChat([writer, critic], termination_condition=MaxMessageTermination(5))
    async with meter_context(session_id="campaign-7", user_id="dana"):
        result = await team.run(task="Write a slogan for a bicycle repair shop.")
    assert len(result.messages) == 5  # the task + writer, critic, writer, critic
    await client.close()


def main() -> None:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4.1-mini", 0.40, 1.60, cached_input_per_million=0.10)
    sink = MemorySink()
    meter = Meter(pricing=pricing, sinks=[sink], project="autogen-example")

    # like OpenAI, the mock answers with the dated snapshot name; it is priced as gpt-4.1-mini
    mock_model = {"reply": "Fixed fast, ridden far.", "response_model": "gpt-4.1-mini-2025-04-14"}
    with MockProvider(cached_tokens=8, models={"gpt-4.1-mini": mock_model}) as server:
        asyncio.run(run_team(server, meter))
        meter.close()
        billed = list(server.billed)

    events = sink.events
    assert len(events) == 4 == len(billed), events  # four model calls, each counted once
    assert [e.agent_id for e in events] == ["writer", "critic", "writer", "critic"], [e.agent_id for e in events]
    for event, bill in zip(events, billed, strict=True):
        assert event.framework == "autogen" and event.session_id == "campaign-7" and event.user_id == "dana"
        assert event.input_tokens == bill["input_tokens"] and event.output_tokens == bill["output_tokens"]
        assert event.cached_input_tokens == 8 and event.cost_source == "pricing"
    for agent in ("writer", "critic"):
        cost = sum(e.cost_usd for e in events if e.agent_id == agent)
        print(f"{agent}: {sum(e.agent_id == agent for e in events)} calls, ${cost:.6f}")
    print("OK")


if __name__ == "__main__":
    main()
