"""Quickstart: the README's tracker, with LiteLLM sync, streaming, async and agent/session context.

The same code as the README; the only addition is ``api_base``/``api_key`` pointing LiteLLM at the
built-in mock provider on 127.0.0.1, so it runs offline. Drop those two arguments (and set
OPENAI_API_KEY) to run it against OpenAI.

Run: python examples/quickstart.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.integrations.litellm, litellm

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: LiteLLM's bundled model map

from a2a_llm_tracker import Meter, PricingRegistry, meter_context  # noqa: E402
from a2a_llm_tracker.integrations.litellm import LiteLLM  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.jsonl import JSONLSink, read_jsonl  # noqa: E402

# -- Create a tracker ---------------------------------------------------------------------------
pricing = PricingRegistry()
pricing.set_price(
    provider="openai",
    model="openai/gpt-4.1",
    input_per_million=2.0,
    output_per_million=8.0,
)

meter = Meter(
    pricing=pricing,
    sinks=[JSONLSink("usage.jsonl")],
    project="my-a2a-system",
)

# -- Wrap LiteLLM -------------------------------------------------------------------------------
llm = LiteLLM(meter=meter)


def main(server: MockProvider) -> None:
    mock = {"api_base": server.base_url, "api_key": "mock-key"}  # remove to call OpenAI for real

    # sync
    response = llm.completion(
        model="openai/gpt-4.1",
        messages=[{"role": "user", "content": "Say hello in one sentence."}],
        **mock,
    )
    print(response.choices[0].message.content)

    # sync streaming: chunks are yielded as usual, usage is recorded when the stream finishes
    for chunk in llm.completion(
        model="openai/gpt-4.1",
        messages=[{"role": "user", "content": "Write a short poem."}],
        stream=True,
        **mock,
    ):
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()

    async def async_calls() -> None:
        # async, non-streaming
        await llm.acompletion(model="openai/gpt-4.1", messages=[{"role": "user", "content": "Async hello!"}],
                              **mock)
        # async streaming
        stream = await llm.acompletion(
            model="openai/gpt-4.1",
            messages=[{"role": "user", "content": "Stream async output"}],
            stream=True,
            **mock,
        )
        async for chunk in stream:
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
        print()

    asyncio.run(async_calls())

    # agent and session context
    with meter_context(agent_id="planner-agent", session_id="session-123", user_id="user-456"):
        llm.completion(model="openai/gpt-4.1", messages=[{"role": "user", "content": "Plan my day"}], **mock)


if __name__ == "__main__":
    with MockProvider(reply="Hello there, nice to meet you.") as server:
        main(server)
        billed = list(server.billed)
    meter.close()  # flush: usage.jsonl now holds every call

    events = list(read_jsonl("usage.jsonl"))
    assert len(events) == 5 == len(billed), events
    assert [e.stream for e in events] == [False, True, False, True, False]
    for event, bill in zip(events, billed, strict=True):
        assert event.project == "my-a2a-system" and event.framework == "litellm" and event.accuracy == "exact"
        assert (event.input_tokens, event.output_tokens) == (bill["input_tokens"], bill["output_tokens"])
        expected = (event.input_tokens * 2.0 + event.output_tokens * 8.0) / 1e6
        assert abs(event.cost_usd - expected) < 1e-12 and event.cost_source == "pricing"
    last = events[-1]
    assert (last.agent_id, last.session_id, last.user_id) == ("planner-agent", "session-123", "user-456")
    assert all(e.agent_id is None for e in events[:-1])
    print(f"Tracked: {sum(e.total_tokens for e in events)} tokens, ${sum(e.cost_usd for e in events):.6f} "
          f"in {len(events)} calls -> usage.jsonl")
    print("OK")
