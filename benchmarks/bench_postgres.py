"""PostgresSink sustained insert rate against a raw psycopg COPY of the same rows (target ≥ 0.5×).

Both sides write the same events in batches of 512 (the dispatcher's default batch) into an
empty table with the same columns, indexes and primary key, one transaction per batch, side by
side: batch by batch, rotating which side goes first, so load on a shared machine hits all alike.
The raw side gets its rows pre-built and skips deduplication; the sink turns events into rows,
COPYs them (falling back to a staged ``ON CONFLICT (event_id) DO NOTHING`` merge only on a
redelivery); ``method="insert"`` is measured too. Needs the PostgreSQL at 127.0.0.1:5432 (database ``test``);
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
    name_ = "PostgresSink insert rate / raw psycopg COPY"
    try:
        import psycopg

        from a2a_llm_tracker.sinks._columns import COLUMNS, event_row
        from a2a_llm_tracker.sinks.postgres import PostgresSink, connect, ensure_schema
    except ImportError as exc:
        return [Result(name_, 0.0, ">= 0.5", False, f"not run: {exc}")]
    try:
        admin = connect(DSN, connect_timeout=2, autocommit=True)
    except psycopg.OperationalError as exc:
        return [Result(name_, 0.0, ">= 0.5", False, f"not run: no PostgreSQL at {DSN!r} ({type(exc).__name__})")]
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

        for table in ("raw", "sink_copy", "sink_insert"):
            fresh(table)
        raw_conn = connect(DSN)
        copy_sql = f'COPY "{schema}"."raw" ({cols}) FROM STDIN'

        def raw_batch(i: int) -> None:
            with raw_conn.cursor() as cur, cur.copy(copy_sql) as cp:
                for row in rows[i:i + BATCH]:
                    cp.write_row(row)
            raw_conn.commit()

        sinks = {m: PostgresSink(DSN, table=f"sink_{m}", schema=schema, outbox_path=outbox, method=m)
                 for m in ("copy", "insert")}
        for sink in sinks.values():
            sink.write_many(_events(1))  # connect and migrate outside the timing
        sides = {"raw": raw_batch,
                 "copy": lambda i: sinks["copy"].write_many(events[i:i + BATCH]),
                 "insert": lambda i: sinks["insert"].write_many(events[i:i + BATCH])}
        spent = dict.fromkeys(sides, 0.0)
        order = list(sides)
        perf = time.perf_counter
        # Side by side, batch by batch, rotating the order: load on a shared machine hits every side alike.
        for k, i in enumerate(range(0, n, BATCH)):
            for name in order[k % 3:] + order[:k % 3]:
                t0 = perf()
                sides[name](i)
                spent[name] += perf() - t0
        for sink in sinks.values():
            assert sink.counts["parked"] == 0, "benchmark run parked events: the database went away"
            sink.close()
        raw_conn.close()
        raw_rate = n / spent["raw"]
        for method in ("copy", "insert"):
            rate = n / spent[method]
            ratio = rate / raw_rate
            label = f"{name_} (method={method}{', default' if method == 'copy' else ''})"
            detail = f"{rate:,.0f}/s vs raw {raw_rate:,.0f}/s, {n:,} events, batch {BATCH}"
            if method == "copy":
                results.append(Result(label, ratio, ">= 0.5", ratio >= 0.5, detail))
            else:  # the alternative, for comparison only: why COPY is the default
                results.append(Result(label, ratio, "info", True, detail + " (alternative, not the default)"))
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    return results


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
