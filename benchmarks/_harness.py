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

__all__ = ["Result", "paired_overhead", "print_results", "throughput"]


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


def paired_overhead(base: Callable[[], object], tracked: Callable[[], object], pairs: int = 1500,
                    warmup: int = 50) -> tuple[float, float, float]:
    """Median per-call time of *base*, of *tracked*, and the median paired difference (seconds)."""
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
