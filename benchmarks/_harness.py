"""Measurement helpers shared by every benchmark: paired differences, ratios, one table.

These machines are shared and noisy, so an overhead is the **median of paired differences**
of adjacent calls (A then B, B then A, alternating), which is stable to about ±1 %; a
throughput is compared with a raw baseline measured in the same process and run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["NullSink", "Result", "interleaved_clocks", "interleaved_overheads", "paired_overhead", "print_results", "thread_cpu", "throughput"]


@dataclass
class Result:
    """One benchmark figure: *value* against *target* (a ratio unless *unit* says otherwise)."""

    name: str
    value: float
    target: str
    ok: bool
    detail: str = ""
    unit: str = "x"

    def line(self) -> str:
        mark = "ok  " if self.ok else "MISS"
        return f"{mark} {self.name:<58} {self.value:>9.3f}{self.unit:<3} target {self.target:<10} {self.detail}"


class NullSink:
    """A sink that keeps nothing: what the tracker costs without any storage."""

    name = "null"

    def write_many(self, events: object) -> None:
        pass

    def write(self, event: object) -> None:
        pass


def paired_overhead(base: Callable[[], object], tracked: Callable[[], object], pairs: int = 1500,
                    warmup: int = 400) -> tuple[float, float, float]:
    """Median per-call time of *base*, of *tracked*, and the median paired difference (seconds).

    The first few hundred calls of a fresh process run several times slower (lazy set-up, cold
    caches) for every side alike, hence the long *warmup*.
    """
    for _ in range(warmup):
        base()
        tracked()
    perf = time.perf_counter
    base_times: list[float] = []
    tracked_times: list[float] = []
    diffs: list[float] = []
    for i in range(pairs):
        if i % 2 == 0:
            t0 = perf()
            base()
            t1 = perf()
            tracked()
            t2 = perf()
            b, t = t1 - t0, t2 - t1
        else:
            t0 = perf()
            tracked()
            t1 = perf()
            base()
            t2 = perf()
            t, b = t1 - t0, t2 - t1
        base_times.append(b)
        tracked_times.append(t)
        diffs.append(t - b)
    return statistics.median(base_times), statistics.median(tracked_times), statistics.median(diffs)


def interleaved_overheads(base: Callable[[], object], variants: dict[str, Callable[[], object]],
                          rounds: int = 1500, warmup: int = 400,
                          clock: Callable[[], float] = time.perf_counter) -> tuple[float, dict[str, float]]:
    """Median time of *base* and, per variant, the median difference to the base call next to it.

    Every round calls the base and each variant once, in a rotating order, so all of them are
    measured in the same moments of a noisy machine (a slow patch hits every side alike). *clock*
    may be ``time.thread_time`` for the calling thread's CPU time.
    """
    return interleaved_clocks(base, variants, rounds, warmup, (clock,))[0]


def interleaved_clocks(base: Callable[[], object], variants: dict[str, Callable[[], object]], rounds: int,
                       warmup: int, clocks: tuple[Callable[[], float], ...]
                       ) -> list[tuple[float, dict[str, float]]]:
    """:func:`interleaved_overheads` read on several clocks at once (e.g. wall and CPU), one result per clock."""
    calls = [("", base), *variants.items()]
    for _ in range(warmup):
        for _name, fn in calls:
            fn()
    base_times: list[list[float]] = [[] for _ in clocks]
    diffs: list[dict[str, list[float]]] = [{name: [] for name in variants} for _ in clocks]
    for i in range(rounds):
        shift = i % len(calls)
        order = calls[shift:] + calls[:shift]
        spent: list[dict[str, float]] = [{} for _ in clocks]
        for name, fn in order:
            starts = [clock() for clock in clocks]
            fn()
            for k, clock in enumerate(clocks):
                spent[k][name] = clock() - starts[k]
        for k in range(len(clocks)):
            base_times[k].append(spent[k][""])
            for name in variants:
                diffs[k][name].append(spent[k][name] - spent[k][""])
    return [(statistics.median(base_times[k]), {name: statistics.median(d) for name, d in diffs[k].items()})
            for k in range(len(clocks))]


def thread_cpu(thread: object) -> float:
    """CPU seconds a running thread (a ``threading.Thread``) has used so far."""
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))  # type: ignore[attr-defined]


def throughput(fn: Callable[[int], object], n: int, repeats: int = 3) -> float:
    """Best-of-*repeats* rate (items per second) of ``fn(n)``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def print_results(results: list[Result]) -> None:
    """Print the table (benchmarks are scripts; print is fine here)."""
    for r in results:
        print(r.line(), flush=True)
