"""Core benchmarks: record() on the caller's thread, sink throughput vs raw baselines, import time."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import NullSink, Result

from a2a_llm_tracker import Meter, PricingRegistry, UsageEvent, meter_context
from a2a_llm_tracker.sinks._columns import COLUMNS, event_row
from a2a_llm_tracker.sinks.jsonl import JSONLSink
from a2a_llm_tracker.sinks.sqlite import SQLiteSink


def _events(n: int) -> list[UsageEvent]:
    return [UsageEvent(provider="openai", model="gpt-4.1", input_tokens=1000 + i % 50, output_tokens=200,
                       cached_input_tokens=300, reasoning_tokens=20, agent_id=f"agent-{i % 7}",
                       session_id=f"s-{i % 31}", user_id="u-1", latency_ms=12.5, finish_reason="stop",
                       metadata={"team": "blue"}) for i in range(n)]


def bench_record(quick: bool) -> list[Result]:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4.1", 2.0, 8.0, cached_input_per_million=0.5)
    meter = Meter(pricing=pricing, sinks=[NullSink()], project="bench")
    n = 10_000 if quick else 50_000
    samples, samples_no_gc = [], []
    with meter_context(agent_id="planner", session_id="s-1"):
        for chunk in range(0, n, 1000):
            # built per chunk, as an application builds them per call (a heap of 50,000 live events
            # would make every garbage collection in the timed loop walk them all)
            batch = _events(1000)
            # collect now: the garbage collections the timed loop then runs are those record()'s own
            # allocations cause, not those the untimed building of the batch left pending
            gc.collect()
            no_gc = chunk % 2000 == 1000  # every other chunk with the cyclic GC paused: its share
            if no_gc:
                gc.disable()
            t0 = time.perf_counter()
            for e in batch:
                meter.record(e)
            spent = (time.perf_counter() - t0) / len(batch)
            gc.enable()
            (samples_no_gc if no_gc else samples).append(spent)
            meter.flush()
            del batch
    meter.close()
    per_call_us = statistics.median(samples) * 1e6
    no_gc_us = statistics.median(samples_no_gc) * 1e6
    return [
        Result("record(): caller-side cost per event (priced, attributed)", per_call_us, "≤ 6 µs",
               per_call_us <= 6, f"writer thread running; {no_gc_us:.1f} µs with the cyclic GC paused", unit="µs"),
    ]


def _raw_sqlite(path: Path, rows: list[tuple], batch: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"CREATE TABLE IF NOT EXISTS t ({', '.join(COLUMNS)}, PRIMARY KEY (event_id))")
    sql = f"INSERT OR IGNORE INTO t VALUES ({', '.join('?' * len(COLUMNS))})"
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[i:i + batch])
        conn.execute("COMMIT")
    conn.close()


def bench_sinks(quick: bool) -> list[Result]:
    n = 20_000 if quick else 100_000
    batch = 512  # the dispatcher's default batch size
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        counter = iter(range(10**6))

        def fresh_events() -> list[UsageEvent]:
            return _events(n)

        # SQLite: sink (event → row conversion included) vs raw executemany of prepared rows
        def raw_sqlite(count: int) -> None:
            events = fresh_events()
            rows = [event_row(e) for e in events]
            t0 = time.perf_counter()
            _raw_sqlite(tmpdir / f"raw{next(counter)}.db", rows, batch)
            timings["raw_sqlite"].append(time.perf_counter() - t0)

        def sink_sqlite(count: int) -> None:
            events = fresh_events()
            sink = SQLiteSink(tmpdir / f"sink{next(counter)}.db")
            t0 = time.perf_counter()
            for i in range(0, len(events), batch):
                sink.write_many(events[i:i + batch])
            sink.close()
            timings["sink_sqlite"].append(time.perf_counter() - t0)

        def raw_jsonl(count: int) -> None:
            events = fresh_events()
            dicts = [e.model_dump(mode="json") for e in events]
            t0 = time.perf_counter()
            with open(tmpdir / f"raw{next(counter)}.jsonl", "a", encoding="utf-8") as fh:
                for i in range(0, len(dicts), batch):
                    fh.write("".join(json.dumps(d) + "\n" for d in dicts[i:i + batch]))
            timings["raw_jsonl"].append(time.perf_counter() - t0)

        def sink_jsonl(count: int) -> None:
            events = fresh_events()
            sink = JSONLSink(tmpdir / f"sink{next(counter)}.jsonl")
            t0 = time.perf_counter()
            for i in range(0, len(events), batch):
                sink.write_many(events[i:i + batch])
            sink.close()
            timings["sink_jsonl"].append(time.perf_counter() - t0)

        timings: dict[str, list[float]] = {k: [] for k in ("raw_sqlite", "sink_sqlite", "raw_jsonl", "sink_jsonl")}
        for _ in range(3):  # interleaved, so both sides see the same machine
            for step in (raw_sqlite, sink_sqlite, raw_jsonl, sink_jsonl):
                step(n)
        for kind in ("sqlite", "jsonl"):
            raw = n / min(timings[f"raw_{kind}"])
            sink = n / min(timings[f"sink_{kind}"])
            results.append(Result(f"{kind} sink throughput / raw {'executemany' if kind == 'sqlite' else 'json.dumps+write'}",
                                  sink / raw, "≥ 0.5", sink / raw >= 0.5,
                                  f"({sink:,.0f} vs {raw:,.0f} events/s)"))
        # the whole path: record() through the background dispatcher into SQLite
        meter = Meter(sinks=[SQLiteSink(tmpdir / "meter.db")])
        events = fresh_events()
        t0 = time.perf_counter()
        for e in events:
            meter.record(e)
        meter.flush()
        dt = time.perf_counter() - t0
        meter.close()
        raw = n / min(timings["raw_sqlite"])
        # info, not a target: record() on the caller and the SQLite writer share one GIL here
        results.append(Result("Meter → dispatcher → SQLite end-to-end / raw executemany", (n / dt) / raw, "info",
                              True, f"({n / dt:,.0f} events/s; record() and the writer share the GIL)"))
    return results


def bench_import(quick: bool) -> list[Result]:
    def timed(stmt: str) -> float:
        best = float("inf")
        for _ in range(3 if quick else 7):
            out = subprocess.run([sys.executable, "-X", "importtime", "-c", stmt], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
            total = 0
            for line in out.stderr.splitlines():
                parts = line.split("|")
                if len(parts) == 3 and parts[2].strip() == stmt.split()[-1]:
                    total = int(parts[1].strip())
            best = min(best, total)
        return best

    ours = timed("import a2a_llm_tracker")
    pydantic = timed("import pydantic")
    ours_full = _full_import_us()
    return [Result("import a2a_llm_tracker / import pydantic", ours / pydantic, "≤ 1.5", ours / pydantic <= 1.5,
                   f"({ours / 1000:.1f} ms vs {pydantic / 1000:.1f} ms)"),
            Result("import + first Meter/UsageEvent use / import pydantic", ours_full / pydantic, "info", True,
                   f"({ours_full / 1000:.1f} ms)")]


def _full_import_us() -> float:
    code = ("import time; t=time.perf_counter(); import a2a_llm_tracker as a; a.Meter; a.UsageEvent; "
            "a.PricingRegistry; a.meter_context; print((time.perf_counter()-t)*1e6)")
    return min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
               for _ in range(3))


def run(quick: bool = False) -> list[Result]:
    return bench_record(quick) + bench_sinks(quick) + bench_import(quick)
