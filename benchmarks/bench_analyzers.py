"""Analyzer benchmarks: track_stream against iterating the bare SDK stream, analyze_response cost.

The stream target (DESIGN.md): a tracked stream adds at most 10 % to iterating the bare chunks of a
real SDK stream (openai-python reading SSE from the local MockProvider). Measured as the median of
paired differences of adjacent runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from _harness import NullSink, Result, paired_overhead

from a2a_llm_tracker import Meter, analyze_response, track_stream

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "analyzers" / "fixtures"


def bench_stream(quick: bool) -> list[Result]:
    try:
        import openai
    except ImportError:  # pragma: no cover - optional
        return []
    from a2a_llm_tracker.mock_provider import MockProvider

    pairs = 150 if quick else 600
    meter = Meter(sinks=[NullSink()])
    reply = " ".join(f"word{i}" for i in range(30))  # about 30 content chunks per stream
    with MockProvider(reply=reply, cached_tokens=8, reasoning_tokens=4) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-bench-000000000000", max_retries=0)
        kwargs = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "count"}], "stream": True,
                  "stream_options": {"include_usage": True}}

        def bare() -> None:
            for _chunk in client.chat.completions.create(**kwargs):
                pass

        def tracked() -> None:
            for _chunk in track_stream(client.chat.completions.create(**kwargs), "openai", meter):
                pass

        base, with_tracking, diff = paired_overhead(bare, tracked, pairs=pairs, warmup=20)
        chunks = list(client.chat.completions.create(**kwargs))
    meter.close()
    ratio = (base + diff) / base

    in_memory = chunks * 4  # per-chunk cost of the wrapper alone, with no I/O behind it

    def bare_list() -> None:
        for _chunk in in_memory:
            pass

    def tracked_list() -> None:
        for _chunk in track_stream(in_memory, "openai", Meter(sinks=[NullSink()], background=False), record=False):
            pass

    b2, _t2, d2 = paired_overhead(bare_list, tracked_list, pairs=pairs, warmup=20)
    return [
        Result("track_stream / bare openai SDK stream (MockProvider SSE)", ratio, "<= 1.10", ratio <= 1.10,
               f"bare {base * 1e3:.2f} ms, +{diff * 1e6:.0f} us per stream, {len(chunks)} chunks"),
        Result("track_stream fixed + per-chunk cost, in-memory chunks", d2 * 1e6, "info", True,
               f"{len(in_memory)} chunks; bare loop {b2 * 1e6:.1f} us", unit="us"),
    ]


def bench_analyze(quick: bool) -> list[Result]:
    fixture = json.loads((FIXTURES / "anthropic_cache_read.json").read_text())
    meter = Meter(sinks=[NullSink()])
    pairs = 300 if quick else 1500

    def nothing() -> None:
        pass

    def analyze() -> None:
        analyze_response(fixture["response"], "anthropic", meter)

    _b, _t, diff = paired_overhead(nothing, analyze, pairs=pairs)
    meter.close()
    return [Result("analyze_response (Anthropic dict) on the caller's thread", diff * 1e6, "info", True,
                   "parse + validate + price + enqueue", unit="us")]


def run(quick: bool) -> list[Result]:
    """All analyzer benchmarks."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return [*bench_stream(quick), *bench_analyze(quick)]


if __name__ == "__main__":
    from _harness import print_results

    print_results(run(quick=True))
