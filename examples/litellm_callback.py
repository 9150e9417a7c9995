"""``TrackerLogger``: meter code that calls ``litellm`` directly, through LiteLLM's callback system.

Install the logger once; every ``litellm.completion`` / ``acompletion`` (streamed or not) anywhere
in the process is recorded. Attribution comes from litellm's ``metadata`` (explicit, wins) or the
``meter_context`` in force at the call.

Run: python examples/litellm_callback.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.integrations.litellm, litellm

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: LiteLLM's bundled model map

import litellm  # noqa: E402

from a2a_llm_tracker import Meter, PricingRegistry, meter_context  # noqa: E402
from a2a_llm_tracker.integrations.litellm import TrackerLogger  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402

MESSAGES = [{"role": "user", "content": "Summarise the meeting notes."}]


def main() -> None:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4.1-mini", 0.40, 1.60, cached_input_per_million=0.10)
    sink = MemorySink()
    meter = Meter(pricing=pricing, sinks=[sink], project="callback-example")
    tracker = TrackerLogger(meter).install()

    with MockProvider(cached_tokens=64) as server:
        mock = {"api_base": server.base_url, "api_key": "mock-key"}
        with meter_context(session_id="standup-1", user_id="erin"):
            litellm.completion(model="openai/gpt-4.1-mini", messages=MESSAGES, metadata={"agent_id": "scribe"},
                               **mock)
            with meter_context(agent_id="summariser"):
                for _ in litellm.completion(model="openai/gpt-4.1-mini", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True}, **mock):
                    pass

            async def async_call() -> None:
                await litellm.acompletion(model="openai/gpt-4.1-mini", messages=MESSAGES,
                                          metadata={"agent_id": "async-scribe"}, **mock)
                await tracker.aflush()  # let litellm's async callbacks run before the loop ends

            asyncio.run(async_call())
        tracker.flush()
        meter.flush()
        billed = list(server.billed)
    tracker.uninstall()
    meter.close()

    events = sink.events
    assert len(events) == 3 == len(billed), events
    by_agent = {e.agent_id: e for e in events}
    assert set(by_agent) == {"scribe", "summariser", "async-scribe"}, set(by_agent)
    assert by_agent["summariser"].stream
    for event in events:
        assert event.framework == "litellm" and (event.session_id, event.user_id) == ("standup-1", "erin")
        assert event.cached_input_tokens == 64 and event.accuracy == "exact" and event.cost_source == "pricing"
    assert sorted(e.input_tokens for e in events) == sorted(b["input_tokens"] for b in billed)
    print(f"{len(events)} litellm calls recorded by the callback, ${sum(e.cost_usd for e in events):.6f}")
    print("OK")


if __name__ == "__main__":
    main()
