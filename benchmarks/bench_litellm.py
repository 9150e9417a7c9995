"""LiteLLM: what the wrapper and the TrackerLogger add to a bare mocked ``litellm.completion``.

The baseline is ``litellm.completion(model="gpt-4o-mini", mock_response="ok")`` (no HTTP; about
2-4 ms of litellm's own work). Each figure is a ratio (tracked / bare) from the median of paired
differences of adjacent calls, alternating the order (``_harness.paired_overhead``).

Two clocks. Wall clock (``perf_counter``) is what the caller waits; but litellm hands its own
success logging (about 1-2 ms of Python) to a worker thread when ``completion()`` returns, and that
thread takes the GIL while the wrapper post-processes the response, so the wall-clock figure
charges part of litellm's own logging to the wrapper. The CPU clock of the calling thread
(``time.thread_time``) excludes time spent waiting for the GIL: it is the wrapper's own cost.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from _harness import Result, paired_overhead

MESSAGES = [{"role": "user", "content": "Say hello in one sentence."}]


def _paired_toggle(call, on, off, pairs: int, warmup: int = 20) -> tuple[float, float, float]:
    """Like paired_overhead, but the 'tracked' state is switched on/off outside the timed call."""
    perf = time.perf_counter
    for _ in range(warmup):
        on()
        call()
        off()
        call()
    base: list[float] = []
    tracked: list[float] = []
    for i in range(pairs):
        states = (off, on) if i % 2 == 0 else (on, off)
        spent = {}
        for state in states:
            state()
            t0 = perf()
            call()
            spent[state] = perf() - t0
        off()
        base.append(spent[off])
        tracked.append(spent[on])
    diffs = [t - b for t, b in zip(tracked, base, strict=True)]
    return statistics.median(base), statistics.median(tracked), statistics.median(diffs)


def _paired_cpu(base, tracked, pairs: int, warmup: int = 30) -> tuple[float, float]:
    """Median calling-thread CPU time of *base* and the median paired CPU difference."""
    clock = time.thread_time
    for _ in range(warmup):
        base()
        tracked()
    bases: list[float] = []
    diffs: list[float] = []
    for i in range(pairs):
        order = (base, tracked) if i % 2 == 0 else (tracked, base)
        spent = {}
        for fn in order:
            t0 = clock()
            fn()
            spent[fn] = clock() - t0
        bases.append(spent[base])
        diffs.append(spent[tracked] - spent[base])
    return statistics.median(bases), statistics.median(diffs)


def _result(name: str, target: float, base: float, diff: float, pairs: int) -> Result:
    ratio = (base + diff) / base
    return Result(name, ratio, f"<= {target:.2f}", ratio <= target,
                  f"bare {base * 1e6:.0f} µs, added {diff * 1e6:+.1f} µs/call, {pairs} pairs")


def run(quick: bool) -> list[Result]:
    try:
        import litellm
        from litellm.integrations.custom_logger import CustomLogger

        from a2a_llm_tracker import Meter
        from a2a_llm_tracker.integrations.litellm import LiteLLM, TrackerLogger
        from a2a_llm_tracker.sinks.memory import MemorySink
    except ImportError as exc:
        return [Result("LiteLLM wrapper / bare litellm.completion", 0.0, "<= 1.02", False, f"not run: {exc}")]

    pairs = 200 if quick else 1500
    meter = Meter(sinks=[MemorySink()], project="bench")
    llm = LiteLLM(meter=meter)

    def bare() -> object:
        return litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")

    def wrapped() -> object:
        return llm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")

    lean = LiteLLM(meter=meter, raw_usage=False)

    def wrapped_lean() -> object:
        return lean.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")

    results: list[Result] = []
    base, _tracked, diff = paired_overhead(bare, wrapped, pairs=pairs, warmup=30)
    results.append(_result("LiteLLM wrapper / bare litellm.completion, wall clock", 1.02, base, diff, pairs))
    base, diff = _paired_cpu(bare, wrapped, pairs)
    results.append(_result("LiteLLM wrapper / bare, caller CPU time (thread_time)", 1.02, base, diff, pairs))
    base, diff = _paired_cpu(bare, wrapped_lean, pairs)
    results.append(_result("LiteLLM wrapper raw_usage=False / bare, caller CPU time", 1.02, base, diff, pairs))

    def bare_stream() -> object:
        return list(litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="one two three",
                                       stream=True, stream_options={"include_usage": True}))

    def wrapped_stream() -> object:
        return list(llm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="one two three",
                                   stream=True, stream_options={"include_usage": True}))

    spairs = max(200, pairs // 3)
    base, _tracked, diff = paired_overhead(bare_stream, wrapped_stream, pairs=spairs, warmup=20)
    results.append(_result("LiteLLM wrapper / bare, sync stream consumed (mock_response)", 1.10, base, diff, spairs))

    logger = TrackerLogger(meter)

    class NoOp(CustomLogger):
        def log_success_event(self, kwargs, response_obj, start_time, end_time):
            pass

        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            pass

    noop = NoOp()
    manager = litellm.logging_callback_manager
    try:
        base, _tracked, diff = _paired_toggle(bare, lambda: manager.add_litellm_callback(logger),
                                              lambda: manager.remove_callback_from_all_lists(logger), pairs)
        results.append(Result("TrackerLogger installed / no logger (incl. litellm's callback machinery)",
                              (base + diff) / base, "info", True,
                              f"bare {base * 1e6:.0f} µs, added {diff * 1e6:+.1f} µs/call, {pairs} pairs"))
        manager.add_litellm_callback(noop)
        base, _tracked, diff = _paired_toggle(bare, lambda: manager.add_litellm_callback(logger),
                                              lambda: manager.remove_callback_from_all_lists(logger), pairs)
        results.append(_result("TrackerLogger / no-op CustomLogger (our callback body only)", 1.05, base, diff,
                               pairs))
    finally:
        manager.remove_callback_from_all_lists(logger)
        manager.remove_callback_from_all_lists(noop)
    meter.close()
    return results
