"""Report over stored events vs the same hand-written SQL GROUP BY, in the same run.

Builds 1,000,000 events (100,000 with --quick) in a SQLite file laid out exactly as SQLiteSink
lays it out (same columns, same indexes), then times ``summarize(db, by=("agent_id", "model"))``
against a hand-written query computing the same totals with ``sqlite3``. Target: ≤ 1.5x.

Also, informative: a JSONL report against a hand-written ``json.loads`` loop (same totals), and,
when a PostgreSQL server answers at A2A_TEST_PG_DSN (default 127.0.0.1:5432/test), the report
against hand-written SQL there.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Result  # noqa: E402

from a2a_llm_tracker import UsageEvent  # noqa: E402
from a2a_llm_tracker.report import summarize  # noqa: E402
from a2a_llm_tracker.sinks._columns import COLUMNS, event_row  # noqa: E402
from a2a_llm_tracker.sinks.sqlite import TABLE, _create_sql  # noqa: E402

AGENTS = [f"agent-{i}" for i in range(20)]
MODELS = ["gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "mystery-model"]
PG_DSN = os.environ.get("A2A_TEST_PG_DSN", "postgresql://127.0.0.1:5432/test")

# What someone would type into the sqlite3 shell for the same totals.
HAND_SQL = """
SELECT agent_id, model, count(*), sum(status = 'error'),
       sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(reasoning_tokens), sum(total_tokens),
       sum(cost_usd), count(cost_usd),
       sum(cost_usd IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)),
       sum(input_tokens IS NULL AND output_tokens IS NULL)
FROM usage_events GROUP BY agent_id, model
"""
HAND_PG = HAND_SQL.replace("sum(status = 'error')", "count(*) FILTER (WHERE status = 'error')").replace(
    "sum(cost_usd IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL))",
    "count(*) FILTER (WHERE cost_usd IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL))").replace(
    "sum(input_tokens IS NULL AND output_tokens IS NULL)",
    "count(*) FILTER (WHERE input_tokens IS NULL AND output_tokens IS NULL)").replace(
    "usage_events", "a2a_bench_report.usage_events")


def _rows(n: int, *, native: bool = False):
    """*n* rows in COLUMNS order, varied from one real event's row (fast: no pydantic per row)."""
    base = UsageEvent(provider="openai", model="gpt-4.1", input_tokens=1, output_tokens=1, project="bench",
                      session_id="s", user_id="u")
    template = list(event_row(base, native_time=native, native_bool=native))
    at = {name: i for i, name in enumerate(COLUMNS)}
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        row = template.copy()
        model = MODELS[i % len(MODELS)]
        inp, out = rng.randint(50, 5000), rng.randint(10, 800)
        error = i % 97 == 0
        ts = start + timedelta(seconds=i * 3)
        row[at["event_id"]] = f"ev{i:08d}"
        row[at["ts"]] = ts if native else ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        row[at["agent_id"]] = AGENTS[(i // len(MODELS)) % len(AGENTS)]  # 100 (agent, model) groups
        row[at["model"]] = model
        row[at["status"]] = "error" if error else "ok"
        if error:
            for name in ("input_tokens", "output_tokens", "total_tokens"):
                row[at[name]] = None
            row[at["cost_usd"]] = None
        else:
            row[at["input_tokens"]], row[at["output_tokens"]], row[at["total_tokens"]] = inp, out, inp + out
            row[at["cached_input_tokens"]] = inp // 4
            row[at["cost_usd"]] = None if model == "mystery-model" else (inp * 2 + out * 8) / 1e6
        yield tuple(row)


def build_sqlite(path: Path, n: int) -> None:
    """The sink's table (and, after loading, its indexes) filled with one executemany."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    stmts = _create_sql()
    conn.execute(stmts[0])  # the table; indexes after the load (much faster, same final layout)
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                     _rows(n))
    conn.execute("COMMIT")
    for stmt in stmts[1:]:
        conn.execute(stmt)
    conn.execute("ANALYZE")
    conn.close()


def _alternate(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of *a* and *b*, run alternately (A B, B A, ...) after one warm-up each."""
    a(), b()
    ta: list[float] = []
    tb: list[float] = []
    for i in range(repeats):
        order = (a, b) if i % 2 == 0 else (b, a)
        for fn in order:
            t0 = time.perf_counter()
            fn()
            (ta if fn is a else tb).append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def _hand_sqlite(path: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(HAND_SQL).fetchall()
    finally:
        conn.close()


def _hand_jsonl(path: Path) -> dict:
    groups: dict = {}
    with open(path, "rb") as fh:
        for line in fh:
            e = json.loads(line)
            g = groups.setdefault((e.get("agent_id"), e.get("model")), [0, 0, 0, 0.0, 0])
            g[0] += 1
            g[1] += e.get("input_tokens") or 0
            g[2] += e.get("output_tokens") or 0
            if e.get("cost_usd") is not None:
                g[3] += e["cost_usd"]
            else:
                g[4] += 1
    return groups


def _sqlite_result(n: int, tmp: Path, repeats: int) -> list[Result]:
    db = tmp / "report.db"
    t0 = time.perf_counter()
    build_sqlite(db, n)
    build_s = time.perf_counter() - t0
    rows = summarize(db, by=("agent_id", "model"))
    hand = _hand_sqlite(db)
    assert len(rows) == len(hand) and sum(r.calls for r in rows) == n
    ours, raw = _alternate(lambda: summarize(db, by=("agent_id", "model")), lambda: _hand_sqlite(db), repeats)
    ratio = ours / raw
    return [Result(f"report SQLite {n:,} events by agent,model vs hand SQL", ratio, "<= 1.5", ratio <= 1.5,
                   f"report {ours * 1000:.0f} ms, SQL {raw * 1000:.0f} ms, {len(rows)} groups, "
                   f"built in {build_s:.1f} s")]


def _jsonl_result(n: int, tmp: Path, repeats: int) -> list[Result]:
    path = tmp / "report.jsonl"
    at = {name: i for i, name in enumerate(COLUMNS)}
    with open(path, "w") as fh:
        for row in _rows(n):
            obj = {name: row[i] for name, i in at.items()}
            for name in ("token_details", "raw_usage", "metadata"):
                obj[name] = json.loads(obj[name]) if isinstance(obj[name], str) else obj[name]
            obj["stream"] = bool(obj["stream"])
            fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
    ours, raw = _alternate(lambda: summarize(path, by=("agent_id", "model")), lambda: _hand_jsonl(path), repeats)
    ratio = ours / raw
    return [Result(f"report JSONL {n:,} events vs hand json.loads loop (info)", ratio, "<= 1.5", ratio <= 1.5,
                   f"report {ours * 1000:.0f} ms, loop {raw * 1000:.0f} ms")]


def _pg_result(n: int, repeats: int) -> list[Result]:
    try:
        import psycopg

        from a2a_llm_tracker.sinks.postgres import ensure_schema
        conn = psycopg.connect(PG_DSN, connect_timeout=2, autocommit=True)
    except Exception as exc:  # noqa: BLE001
        print(f"  (PostgreSQL report benchmark skipped: {type(exc).__name__})")
        return []
    schema = "a2a_bench_report"
    try:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.autocommit = False
        ensure_schema(conn, schema=schema)
        conn.commit()
        with conn.cursor() as cur, cur.copy(f"COPY {schema}.usage_events ({', '.join(COLUMNS)}) FROM STDIN") as cp:
            for row in _rows(n, native=True):
                cp.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute(f"ANALYZE {schema}.usage_events")
        table = f"{schema}.usage_events"
        rows = summarize(PG_DSN, by=("agent_id", "model"), table=table)
        assert sum(r.calls for r in rows) == n

        def hand() -> list:
            with psycopg.connect(PG_DSN) as c:
                return c.execute(HAND_PG).fetchall()

        ours, raw = _alternate(lambda: summarize(PG_DSN, by=("agent_id", "model"), table=table), hand, repeats)
        ratio = ours / raw
        return [Result(f"report PostgreSQL {n:,} events vs hand SQL", ratio, "<= 1.5", ratio <= 1.5,
                       f"report {ours * 1000:.0f} ms, SQL {raw * 1000:.0f} ms")]
    finally:
        conn.autocommit = True
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()


def run(quick: bool) -> list[Result]:
    """The report benchmarks (1,000,000 SQLite events; 100,000 with *quick*)."""
    n = 100_000 if quick else 1_000_000
    repeats = 5 if quick else 7
    with tempfile.TemporaryDirectory(prefix="a2a-bench-report-") as tmp:
        results = _sqlite_result(n, Path(tmp), repeats)
        results += _jsonl_result(100_000, Path(tmp), 3)
    results += _pg_result(min(n, 200_000), 3 if quick else 5)
    return results


if __name__ == "__main__":
    from _harness import print_results

    print_results(run(quick="--quick" in sys.argv))
