"""LiteLLM: what the wrapper and the TrackerLogger add to a bare mocked ``litellm.completion``.

The baseline is ``litellm.completion(model="gpt-4o-mini", mock_response="ok")`` (no HTTP; about
2-4 ms of litellm's own work). Each figure is a ratio (tracked / bare) from the median of paired
differences of adjacent calls, rotating the order (``_harness.interleaved_clocks``).

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

from _harness import Result, interleaved_clocks, paired_overhead

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
    # 1. The wrapper's own CPU: the calling thread's CPU time spent in the wrapper outside the
    #    litellm.completion call it makes (both clocks read in the same call). Exact where the
    #    paired figures below are at the mercy of a 1.3 ms call's jitter; litellm gets the caller's
    #    kwargs unchanged here (no TrackerLogger alive: no metadata marker), so it does no extra work.
    inner: list[float] = []

    def timed_completion(*args: object, **kwargs: object) -> object:
        t0 = time.thread_time()
        try:
            return litellm.completion(*args, **kwargs)
        finally:
            inner.append(time.thread_time() - t0)

    def through_wrapper() -> None:
        inner.clear()
        t0 = time.thread_time()
        llm._call(timed_completion, "chat", (), {"model": "gpt-4o-mini", "messages": MESSAGES, "mock_response": "ok"})
        own.append(time.thread_time() - t0 - inner[0])
        bare_cpu.append(inner[0])

    own: list[float] = []
    bare_cpu: list[float] = []
    for _ in range(50):
        through_wrapper()
    own.clear()
    bare_cpu.clear()
    for _ in range(pairs):
        through_wrapper()
    results.append(_result("LiteLLM wrapper's own CPU / bare litellm.completion CPU", 1.02,
                           statistics.median(bare_cpu), statistics.median(own), pairs))

    # 2. Paired figures, bare and wrapped in one rotating loop, on the wall clock and the calling
    #    thread's CPU clock at once (info: ±1-2 % of jitter on this shared machine)
    (wall_base, wall), (cpu_base, cpu) = interleaved_clocks(
        bare, {"wrapped": wrapped, "lean": wrapped_lean}, rounds=pairs, warmup=100,
        clocks=(time.perf_counter, time.thread_time))
    for name, base_time, diff in (("wall clock", wall_base, wall["wrapped"]),
                                  ("caller CPU time", cpu_base, cpu["wrapped"]),
                                  ("raw_usage=False, caller CPU time", cpu_base, cpu["lean"])):
        results.append(Result(f"LiteLLM wrapper / bare, paired, {name}", (base_time + diff) / base_time, "info",
                              True, f"bare {base_time * 1e6:.0f} µs, added {diff * 1e6:+.1f} µs/call, {pairs} rounds"))

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
