"""AutoGen adapter overhead: ``TrackedChatCompletionClient`` against the bare client it wraps.

1. Against a real ``OpenAIChatCompletionClient`` talking to the local ``MockProvider`` (a call of a
   few hundred microseconds, far faster than any real provider): the tracked side also reads the
   ``LLMCallEvent`` (cached/reasoning tokens), prices the event and queues it for a background
   JSONL sink. Target: ≤ 1.10× (the streaming-wrapper target of DESIGN.md; a real provider call is
   100-1000× slower, so the real-world ratio is ≈ 1.00).
2. The same for ``create_stream`` (usage chunk requested on the tracked side only is *not* done here:
   both sides send ``include_usage`` so they do the same HTTP work).
3. The adapter's own cost per call against ``ReplayChatCompletionClient`` (no HTTP at all), as an
   absolute figure in microseconds: what tracking adds to any call (most of it is building and
   validating the ``UsageEvent`` and ``Meter.record``). The mock server's round trips are noisy
   (15-60 ms on a shared machine), so 1. and 2. are within noise; 3. is the figure to read.

Overheads are medians of paired differences of adjacent calls (see ``_harness.paired_overhead``).
Run: ``/work/venv/bin/python -m benchmarks.bench_autogen`` (or via ``benchmarks/run.py autogen``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._harness import Result, paired_overhead, print_results

MODEL_INFO = {"vision": False, "function_calling": True, "json_output": True, "family": "gpt-4o",
              "structured_output": True}


def run(quick: bool = False) -> list[Result]:
    try:
        from autogen_core.models import UserMessage
        from autogen_ext.models.openai import OpenAIChatCompletionClient
        from autogen_ext.models.replay import ReplayChatCompletionClient

        from a2a_llm_tracker import Meter, PricingRegistry
        from a2a_llm_tracker.integrations.autogen import TrackedChatCompletionClient, _EventTap
        from a2a_llm_tracker.mock_provider import MockProvider
        from a2a_llm_tracker.sinks.jsonl import JSONLSink
    except ImportError as exc:
        return [Result("AutoGen tracked create / bare create", 0.0, "<= 1.10", False, f"not run: {exc}")]

    pairs = 60 if quick else 300
    messages = [UserMessage(content="What is the capital of France?", source="user")]
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4o-mini", 0.15, 0.60, cached_input_per_million=0.075)
    tmp = tempfile.mkdtemp(prefix="a2a-bench-autogen-")
    os.environ.setdefault("A2A_TRACKER_OUTBOX_DIR", tmp)
    meter = Meter(pricing=pricing, sinks=[JSONLSink(os.path.join(tmp, "usage.jsonl"))])
    loop = asyncio.new_event_loop()
    results: list[Result] = []
    try:
        with MockProvider(cached_tokens=8, reasoning_tokens=3,
                          models={"gpt-4o-mini": {"response_model": "gpt-4o-mini-2024-07-18"}}) as server:
            def client() -> OpenAIChatCompletionClient:
                return OpenAIChatCompletionClient(model="gpt-4o-mini", base_url=server.base_url, api_key="test",
                                                  model_info=MODEL_INFO)

            # Both sides share one inner client (one keep-alive connection), so TCP timing is alike.
            bare = client()
            tracked = TrackedChatCompletionClient(bare, meter)
            base_t, tracked_t, diff = paired_overhead(
                lambda: loop.run_until_complete(bare.create(messages)),
                lambda: loop.run_until_complete(tracked.create(messages)), pairs=pairs, warmup=30)
            ratio = (base_t + diff) / base_t
            results.append(Result("AutoGen tracked create / bare create (mock HTTP)", ratio, "<= 1.10",
                                  ratio <= 1.10, f"bare {base_t * 1e6:.0f} us, +{diff * 1e6:.0f} us/call"))

            async def drain(c: object, **kw: object) -> None:
                async for _ in c.create_stream(messages, **kw):  # type: ignore[attr-defined]
                    pass

            opts = {"extra_create_args": {"stream_options": {"include_usage": True}}}
            base_t, tracked_t, diff = paired_overhead(
                lambda: loop.run_until_complete(drain(bare, **opts)),
                lambda: loop.run_until_complete(drain(tracked, **opts)), pairs=pairs // 2, warmup=20)
            ratio = (base_t + diff) / base_t
            results.append(Result("AutoGen tracked create_stream / bare (mock HTTP)", ratio, "<= 1.10",
                                  ratio <= 1.10, f"bare {base_t * 1e6:.0f} us, +{diff * 1e6:.0f} us/call"))
            loop.run_until_complete(tracked.close())

        pairs_replay = pairs * 4
        replay_bare = ReplayChatCompletionClient(["Paris is the capital."] * (pairs_replay + 100))
        replay_inner = ReplayChatCompletionClient(["Paris is the capital."] * (pairs_replay + 100))
        replay_inner.set_cached_bool_value(False)
        replay_bare.set_cached_bool_value(False)
        replay_tracked = TrackedChatCompletionClient(replay_inner, meter)
        base_t, tracked_t, diff = paired_overhead(
            lambda: loop.run_until_complete(replay_bare.create(messages)),
            lambda: loop.run_until_complete(replay_tracked.create(messages)), pairs=pairs_replay, warmup=50)
        results.append(Result("AutoGen adapter cost per call (Replay client, no HTTP)", diff * 1e6, "<= 100",
                              diff * 1e6 <= 100, f"bare Replay create {base_t * 1e6:.0f} us", unit="us"))
    finally:
        meter.close(10)
        loop.close()
        _EventTap.uninstall()
    return results


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
