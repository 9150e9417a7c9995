"""LiteLLM wrapper in depth: sync, async and streaming calls, concurrency, failures, no-usage streams, embeddings.

* streams: the wrapper asks for the usage chunk (``stream_options.include_usage``) and records
  when the stream ends, with the same counts the provider billed;
* concurrent async calls, each in its own ``meter_context`` (the context follows asyncio tasks);
* a failing call: the exception reaches you unchanged, and an ``status="error"`` event is recorded;
* a provider that reports no usage for a stream: ``accuracy="unknown"``, tokens and cost ``None``
  (the tracker does not guess);
* embeddings: ``operation="embedding"``.

Run: python examples/litellm_modes.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.integrations.litellm, litellm

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: LiteLLM's bundled model map

import litellm  # noqa: E402

from a2a_llm_tracker import Meter, PricingRegistry, meter_context  # noqa: E402
from a2a_llm_tracker.integrations.litellm import LiteLLM  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402

MESSAGES = [{"role": "user", "content": "Explain prompt caching in two sentences."}]


def main() -> None:
    pricing = PricingRegistry()
    pricing.set_price("openai", "o4-mini", 1.10, 4.40, cached_input_per_million=0.275)
    pricing.set_price("openai", "text-embedding-3-small", 0.02, 0.0)
    sink = MemorySink()
    meter = Meter(pricing=pricing, sinks=[sink], project="litellm-modes")
    llm = LiteLLM(meter=meter)
    models = {"o4-mini": {"cached_tokens": 128, "reasoning_tokens": 256},
              "quiet-model": {"report_usage": False}}

    with MockProvider(models=models) as server:
        mock = {"api_base": server.base_url, "api_key": "mock-key"}

        # 1. sync and streamed: identical usage, reasoning and cache reads included
        plain = llm.completion(model="openai/o4-mini", messages=MESSAGES, **mock)
        text = "".join(c.choices[0].delta.content or "" for c in
                       llm.completion(model="openai/o4-mini", messages=MESSAGES, stream=True, **mock) if c.choices)
        assert text == plain.choices[0].message.content
        meter.flush()
        sync_event, stream_event = sink.events[-2:]
        for event, bill in zip((sync_event, stream_event), server.billed[-2:], strict=True):
            assert event.input_tokens == bill["input_tokens"] and event.output_tokens == bill["output_tokens"]
            assert (event.cached_input_tokens, event.reasoning_tokens) == (128, 256)
            assert event.accuracy == "exact" and event.cost_usd > 0
        assert stream_event.stream and not sync_event.stream
        assert stream_event.time_to_first_token_ms is not None
        print(f"sync: {sync_event.total_tokens} tokens; stream: {stream_event.total_tokens} tokens "
              f"(incl. {stream_event.reasoning_tokens} reasoning)")

        # 2. concurrent async calls, each attributed to its own agent
        async def agent(name: str) -> None:
            async with meter_context(agent_id=name, session_id="s-async"):
                stream = await llm.acompletion(model="openai/o4-mini", messages=MESSAGES, stream=True, **mock)
                async for _ in stream:
                    pass

        async def team() -> None:
            await asyncio.gather(*(agent(f"worker-{i}") for i in range(5)))

        asyncio.run(team())
        meter.flush()
        workers = [e for e in sink.events if e.session_id == "s-async"]
        assert sorted(e.agent_id for e in workers) == [f"worker-{i}" for i in range(5)]
        assert all(e.accuracy == "exact" and e.stream for e in workers)
        print(f"async: {len(workers)} concurrent streamed calls, one per agent")

        # 3. a failing call: your exception, unchanged; an error event recorded
        server.fail_next(1, status=500)
        try:
            llm.completion(model="openai/o4-mini", messages=MESSAGES, max_retries=0, num_retries=0, **mock)
        except litellm.exceptions.APIError as exc:
            caught: Exception | None = exc
        except Exception as exc:  # litellm maps a 500 to one of its exception classes
            caught = exc
        else:
            caught = None
        assert caught is not None, "the provider error must reach the caller"
        meter.flush()
        error_event = sink.events[-1]
        assert error_event.status == "error" and error_event.error_type, error_event
        assert error_event.input_tokens is None and error_event.cost_usd is None
        print(f"failed call recorded: {error_event.error_type}")

        # 4. a provider that never reports usage on streams: unknown, never guessed
        for _ in llm.completion(model="openai/quiet-model", messages=MESSAGES, stream=True, **mock):
            pass
        meter.flush()
        quiet = sink.events[-1]
        assert quiet.model.endswith("quiet-model") and quiet.accuracy == "unknown", quiet
        assert quiet.input_tokens is None and quiet.output_tokens is None and quiet.cost_usd is None
        print("stream without usage: accuracy=unknown, cost unpriced")

        # 5. embeddings
        emb = llm.embedding(model="openai/text-embedding-3-small", input=["tidal power", "wind power"], **mock)
        assert len(emb.data) == 2
        meter.flush()
        emb_event = sink.events[-1]
        assert emb_event.operation == "embedding" and emb_event.input_tokens == server.billed[-1]["input_tokens"]
        print(f"embedding: {emb_event.input_tokens} input tokens, ${emb_event.cost_usd:.8f}")

    meter.close()
    print("OK")


if __name__ == "__main__":
    main()
