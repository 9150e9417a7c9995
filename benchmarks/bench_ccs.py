"""CCS sink: per-event delivery cost stays flat over 10,000 events; write() is a local outbox append.

Runs the real mftsccs client against the fake CCS server of tests/ccs (127.0.0.1). Figures are ratios
measured in one run:

* last / first 1000-event block delivery time through CCSSink (target ≤ 1.5x: flat);
* the same ratio for the raw client used naively (one LocalTransaction per event, caches never
  reset), for comparison (informational: the client's caches grow and its lookups are linear);
* CCSSink.write_many throughput relative to serialising the events and one raw sqlite3 executemany.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _harness import Result, throughput

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ccs"))


def _events(n: int, offset: int = 0):
    from a2a_llm_tracker import UsageEvent

    return [UsageEvent(provider="openai", model=f"gpt-4o-{i % 3}", input_tokens=100, output_tokens=20,
                       total_tokens=120, cost_usd=0.001, agent_id=f"agent-{i % 5}", session_id=f"s-{offset + i}")
            for i in range(n)]


def _sink_blocks(fake, storage: Path, blocks: int, size: int) -> list[float]:
    from a2a_llm_tracker.sinks.ccs import CCSSink

    sink = CCSSink("bench-app", client_id=fake.client_id, client_secret=fake.client_secret, server_url=fake.url,
                   storage_path=storage, poll_interval=0.02)
    times = []
    try:
        for b in range(blocks):
            events = _events(size, b * size)
            t0 = time.perf_counter()
            sink.write_many(events)
            if not sink.flush(120):
                raise RuntimeError(f"CCS delivery did not finish: {sink.stats()}")
            times.append(time.perf_counter() - t0)
    finally:
        sink.close()
    return times


def _raw_client_blocks(fake, storage: Path, blocks: int, size: int) -> list[float]:
    """The client used the obvious way: a transaction per event, nothing ever evicted."""
    from a2a_llm_tracker._ccs_runtime import import_ccs, reset_client_state

    ccs = import_ccs()

    async def main() -> list[float]:
        await ccs.init(url=fake.url, nodeUrl=fake.url, applicationName="raw-app",
                       config=ccs.CCSConfig(clientId=fake.client_id, clientSecret=fake.client_secret,
                                            storagePath=str(storage)))
        tracker = None
        times = []
        for b in range(blocks):
            t0 = time.perf_counter()
            for event in _events(size, b * size):
                tx = ccs.LocalTransaction()
                await tx.initialize()
                if tracker is None:
                    tracker = await tx.MakeTheInstanceConceptLocal("the_llm_tracker", "raw-app", True, 4242)
                usage = await tx.MakeTheInstanceConceptLocal("the_llm_usage", event.model_dump_json(), False, 4242)
                await tx.CreateConnection(tracker, usage, "the_llm_tracker_s_usage")
                for concept_type, value in (("the_llm_model", event.model), ("the_cost", str(event.cost_usd)),
                                            ("the_token_count", str(event.total_tokens))):
                    part = await tx.MakeTheInstanceConceptLocal(concept_type, value, False, 4242)
                    await tx.CreateConnection(usage, part, concept_type.replace("the_", "the_llm_usage_s_"))
                await tx.commitTransaction()
            times.append(time.perf_counter() - t0)
        return times

    try:
        return asyncio.run(main())
    finally:
        reset_client_state(ccs, [])  # leave the process-global client clean for the sink benchmark


def _write_rates(storage: Path, n: int) -> tuple[float, float]:
    from a2a_llm_tracker.sinks.ccs import CCSSink

    events = _events(n)
    # server down (a closed port) with a long backoff: only the local append is measured
    sink = CCSSink("bench-write", client_id="1", client_secret="x", server_url="http://127.0.0.1:9",
                   storage_path=storage / "w", max_backoff=60, poll_interval=60)
    try:
        sink_rate = throughput(lambda k: sink.write_many(events[:k]), n)
    finally:
        sink.close()
    conn = sqlite3.connect(storage / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, sink TEXT, event_id TEXT, payload TEXT, created REAL)")
    def raw(k: int) -> None:  # the same work: serialise each event, insert all in one transaction
        rows = [("s", e.event_id, e.model_dump_json(), time.time()) for e in events[:k]]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t (sink, event_id, payload, created) VALUES (?, ?, ?, ?)", rows[:k])
        conn.execute("COMMIT")

    raw_rate = throughput(raw, n)
    conn.close()
    return sink_rate, raw_rate


def run(quick: bool = False) -> list[Result]:
    from fake_ccs import FakeCCS

    blocks, size = (3, 500) if quick else (10, 1000)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp, FakeCCS(client_id="4242", client_secret="bench-secret-000") as fake:
        storage = Path(tmp)
        times = _sink_blocks(fake, storage / "sink", blocks, size)
        ratio = times[-1] / times[0]
        per_event_ms = 1000 * sum(times) / (blocks * size)
        results.append(Result(f"CCSSink {blocks * size} events: last/first {size}-event block", ratio, "<= 1.5x",
                              ratio <= 1.5, f"{per_event_ms:.2f} ms/event delivered, blocks {[round(t, 2) for t in times]}"))
        raw_blocks, raw_size = (3, 200) if quick else (3, 500)
        raw_times = _raw_client_blocks(fake, storage / "raw", raw_blocks, raw_size)
        raw_ratio = raw_times[-1] / raw_times[0]
        results.append(Result(f"raw mftsccs, no cache reset: last/first {raw_size}-event block", raw_ratio,
                              "info", True, f"blocks {[round(t, 2) for t in raw_times]} s"))
    with tempfile.TemporaryDirectory() as tmp:
        sink_rate, raw_rate = _write_rates(Path(tmp), 2000 if quick else 10_000)
        results.append(Result("CCSSink.write_many rate / raw sqlite executemany", sink_rate / raw_rate, ">= 0.5x",
                              sink_rate / raw_rate >= 0.5, f"{sink_rate:,.0f} events/s"))
    return results


if __name__ == "__main__":
    from _harness import print_results

    print_results(run(quick="--quick" in sys.argv))
