"""LangChain adapter overhead: ``TrackerHandler`` against langchain-core's ``UsageMetadataCallbackHandler``.

All three sides invoke the same tiny in-process chat model whose ``AIMessage`` carries
``usage_metadata`` and ``response_metadata["model_name"]`` (no HTTP, so the model costs almost
nothing and the callback machinery dominates):

* base: ``model.invoke("hi")`` with no callbacks;
* built-in: ``callbacks=[UsageMetadataCallbackHandler()]`` (sums usage per model name, nothing else);
* tracker: ``callbacks=[TrackerHandler(meter)]``, with a Meter that prices the call and queues it
  for a background ``MemorySink`` (the realistic setup): run bookkeeping, attribution, a validated
  ``UsageEvent``, pricing and the hand-off to the writer.

Each handler's cost per call is the median paired difference against the base side
(``_harness.paired_overhead``). Reported: the ratio tracker cost / built-in cost (target ≤ 1.5), and
the two costs in microseconds. Run: ``/work/venv/bin/python -m benchmarks.bench_langchain``
(or via ``benchmarks/run.py langchain``).
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._harness import Result, interleaved_overheads, paired_overhead, print_results, thread_cpu

USAGE = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
         "input_token_details": {"cache_read": 100}, "output_token_details": {"reasoning": 12}}
TARGET = 1.5


def _fake_model():
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class UsageFake(BaseChatModel):
        """Answers "ok" with usage_metadata, like a provider model would."""

        @property
        def _llm_type(self) -> str:
            return "usage-fake"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            message = AIMessage(content="ok", usage_metadata=USAGE,
                                response_metadata={"model_name": "gpt-4o-mini", "model_provider": "openai"})
            return ChatResult(generations=[ChatGeneration(message=message)])

    return UsageFake()


def run(quick: bool = False) -> list[Result]:
    """Measure both handlers' cost per call against the no-callback call; return the ratio."""
    from langchain_core.callbacks import UsageMetadataCallbackHandler

    from a2a_llm_tracker import Meter, PricingRegistry
    from a2a_llm_tracker.integrations.langchain import TrackerHandler
    from a2a_llm_tracker.sinks.memory import MemorySink

    pairs = 600 if quick else 3000
    model = _fake_model()
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4o-mini", input_per_million=0.15, output_per_million=0.60,
                      cached_input_per_million=0.075)
    sink = MemorySink()
    meter = Meter(pricing=pricing, sinks=[sink], background=True)
    builtin_cfg = {"callbacks": [UsageMetadataCallbackHandler()]}
    tracker_cfg = {"callbacks": [TrackerHandler(meter)]}

    def base() -> object:
        return model.invoke("hi")

    def builtin() -> object:
        return model.invoke("hi", config=builtin_cfg)

    def tracked() -> object:
        return model.invoke("hi", config=tracker_cfg)

    try:
        # base, built-in and tracker in one rotating loop: each costs the median difference to the base
        # call measured next to it, so a slow patch of this shared machine hits all three alike
        tracked()  # starts the writer thread
        meter.flush(10.0)
        writer = meter._dispatcher._thread
        writer_before, written_before = thread_cpu(writer), len(sink.events)
        base_time, costs = interleaved_overheads(base, {"builtin": builtin, "tracker": tracked},
                                                 rounds=pairs)
        builtin_cost, tracker_cost = costs["builtin"], costs["tracker"]
        meter.flush(10.0)
        # the writer thread's share (building, pricing, writing the deferred events), per event
        writer_cost = (thread_cpu(writer) - writer_before) / max(len(sink.events) - written_before, 1)
        # the core's share: Meter.record (attribution, Decimal pricing, model_copy, queueing) of one
        # already-built event, against doing nothing
        meter.flush(10.0)
        sample = sink.events[-1]
        fresh = sample.model_copy(update={"cost_usd": None, "input_cost_usd": None, "output_cost_usd": None,
                                          "cost_source": None})
        _, _, d_record = paired_overhead(lambda: None, lambda: meter.record(fresh), pairs=pairs)
        meter.flush(10.0)
        recorded = len(sink.events)
    finally:
        meter.close(10.0)
    ratio = tracker_cost / builtin_cost if builtin_cost > 0 else float("inf")
    total_ratio = (tracker_cost + writer_cost) / builtin_cost if builtin_cost > 0 else float("inf")
    detail = (f"tracker +{tracker_cost * 1e6:.1f}us vs built-in +{builtin_cost * 1e6:.1f}us per call "
              f"(bare invoke {base_time * 1e6:.0f}us; {recorded} events written)")
    return [
        Result("langchain: TrackerHandler cost / UsageMetadataCallbackHandler cost", ratio,
               f"<= {TARGET}", ratio <= TARGET, detail),
        Result("langchain: TrackerHandler added time per call", tracker_cost * 1e6, "info", True,
               "on the caller's thread: run bookkeeping, attribution capture, queueing", unit="us"),
        Result("langchain: caller + writer-thread CPU / built-in cost", total_ratio, "info", True,
               f"writer thread {writer_cost * 1e6:.1f}us CPU per event (UsageEvent, pricing, MemorySink)"),
        Result("langchain: of which Meter.record (core) / built-in cost", d_record / builtin_cost
               if builtin_cost > 0 else float("inf"), "info", True,
               f"Meter.record of a built event +{d_record * 1e6:.1f}us per call"),
    ]


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
