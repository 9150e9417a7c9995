"""PostgresSink sustained insert rate against a raw psycopg COPY of the same rows (target ≥ 0.5×).

Both sides write the same events in batches of 512 (the dispatcher's default batch) into an
empty table with the same columns and primary key, one transaction per batch, in the same run.
The raw side gets its rows pre-built and skips deduplication; the sink turns events into rows,
stages them with COPY and merges with ``ON CONFLICT (event_id) DO NOTHING``. Each rate is the
best of 5 repeats on a fresh table. Needs the PostgreSQL at 127.0.0.1:5432 (database ``test``);
without it the result is reported as not run.

Run: ``/work/venv/bin/python -m benchmarks.bench_postgres`` (or via ``benchmarks/run.py``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._harness import Result, print_results

DSN = os.environ.get("A2A_BENCH_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")
BATCH = 512


def _events(n: int) -> list:
    from a2a_llm_tracker import UsageEvent

    return [UsageEvent(provider="openai", model="gpt-4.1", input_tokens=1200 + i % 50, output_tokens=300,
                       cached_input_tokens=200, cost_usd=0.0048, cost_source="pricing", agent_id=f"agent-{i % 7}",
                       session_id=f"s-{i % 101}", user_id="u-1", project="bench", latency_ms=812.5,
                       token_details={"audio_input_tokens": 0}, metadata={"node": "plan"}) for i in range(n)]


def run(quick: bool = False) -> list[Result]:
    name = "PostgresSink insert rate / raw psycopg COPY"
    try:
        import psycopg

        from a2a_llm_tracker.sinks._columns import COLUMNS, event_row
        from a2a_llm_tracker.sinks.postgres import PostgresSink, connect, ensure_schema
    except ImportError as exc:
        return [Result(name, 0.0, ">= 0.5", False, f"not run: {exc}")]
    try:
        admin = connect(DSN, connect_timeout=2, autocommit=True)
    except psycopg.OperationalError as exc:
        return [Result(name, 0.0, ">= 0.5", False, f"not run: no PostgreSQL at {DSN!r} ({type(exc).__name__})")]
    n = 20_000 if quick else 100_000
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    events = _events(n)
    rows = [event_row(e, native_time=True, native_bool=True) for e in events]
    cols = ", ".join(COLUMNS)
    outbox = os.path.join(tempfile.mkdtemp(prefix="a2a-bench-"), "outbox.db")
    results: list[Result] = []
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')

        def fresh(table: str) -> None:
            with connect(DSN) as c:
                c.execute(f'DROP TABLE IF EXISTS "{schema}"."{table}"')
                c.commit()
                ensure_schema(c, table, schema)

        raw_conn = connect(DSN)

        def raw_once() -> float:
            fresh("raw")
            t0 = time.perf_counter()
            for i in range(0, n, BATCH):
                with raw_conn.cursor() as cur, cur.copy(f'COPY "{schema}"."raw" ({cols}) FROM STDIN') as cp:
                    for row in rows[i:i + BATCH]:
                        cp.write_row(row)
                raw_conn.commit()
            return time.perf_counter() - t0

        def sink_once(method: str) -> float:
            fresh(f"sink_{method}")
            sink = PostgresSink(DSN, table=f"sink_{method}", schema=schema, outbox_path=outbox, method=method)
            sink.write_many(events[:1])  # connect and migrate outside the timing
            t0 = time.perf_counter()
            for i in range(0, n, BATCH):
                sink.write_many(events[i:i + BATCH])
            elapsed = time.perf_counter() - t0
            assert sink.counts["parked"] == 0, "benchmark run parked events: the database went away"
            sink.close()
            return elapsed

        best = {"raw": float("inf"), "copy": float("inf"), "insert": float("inf")}
        for _ in range(5):  # interleaved, so drift on a shared machine hits every side alike
            best["raw"] = min(best["raw"], raw_once())
            best["copy"] = min(best["copy"], sink_once("copy"))
            best["insert"] = min(best["insert"], sink_once("insert"))
        raw_conn.close()
        raw_rate = n / best["raw"]
        for method in ("copy", "insert"):
            rate = n / best[method]
            ratio = rate / raw_rate
            label = f"{name} (method={method}{', default' if method == 'copy' else ''})"
            results.append(Result(label, ratio, ">= 0.5", ratio >= 0.5,
                                  f"{rate:,.0f}/s vs raw {raw_rate:,.0f}/s, {n:,} events, batch {BATCH}"))
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    return results


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
