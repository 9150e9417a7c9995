"""JSONL and SQLite sinks: many threads and many processes writing one file."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading

import pytest

from a2a_llm_tracker import Meter, UsageEvent
from a2a_llm_tracker.sinks._columns import COLUMNS, SCHEMA_VERSION
from a2a_llm_tracker.sinks.console import ConsoleSink
from a2a_llm_tracker.sinks.jsonl import JSONLSink, read_jsonl
from a2a_llm_tracker.sinks.sqlite import SQLiteSink, read_sqlite

PROCESSES = 4
PER_PROCESS = 400


def _writer_process(kind: str, path: str, worker: int) -> None:
    sink = JSONLSink(path) if kind == "jsonl" else SQLiteSink(path)
    meter = Meter(sinks=[sink], project=f"p{worker}")
    # a long metadata value makes torn lines likely if writes were not atomic
    for i in range(PER_PROCESS):
        meter.record(UsageEvent(input_tokens=i, output_tokens=1, agent_id=f"w{worker}",
                                metadata={"pad": "x" * 3000, "i": i}))
    meter.close()


@pytest.mark.parametrize("kind", ["jsonl", "sqlite"])
def test_many_processes_one_file(tmp_path, kind):
    path = tmp_path / ("u.jsonl" if kind == "jsonl" else "u.db")
    ctx = multiprocessing.get_context("fork")  # also exercises the dispatcher's fork handling
    procs = [ctx.Process(target=_writer_process, args=(kind, str(path), w)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    if kind == "jsonl":
        lines = path.read_text().splitlines()
        assert len(lines) == PROCESSES * PER_PROCESS
        parsed = [json.loads(line) for line in lines]  # a torn line would not parse
    else:
        parsed = [e.model_dump() for e in read_sqlite(path)]
    assert len(parsed) == PROCESSES * PER_PROCESS
    assert len({e["event_id"] for e in parsed}) == len(parsed)
    for w in range(PROCESSES):
        mine = sorted(e["metadata"]["i"] for e in parsed if e["agent_id"] == f"w{w}")
        assert mine == list(range(PER_PROCESS))


@pytest.mark.parametrize("kind", ["jsonl", "sqlite"])
def test_many_threads_one_sink_and_inline_writers(tmp_path, kind):
    """Threads recording through one meter plus direct write() calls from other threads."""
    path = tmp_path / ("u.jsonl" if kind == "jsonl" else "u.db")
    sink = JSONLSink(path) if kind == "jsonl" else SQLiteSink(path)
    meter = Meter(sinks=[sink])
    other = JSONLSink(path) if kind == "jsonl" else SQLiteSink(path)

    def through_meter(t):
        for i in range(300):
            meter.record(input_tokens=i, agent_id=f"t{t}")

    def direct(t):
        for i in range(100):
            other.write(UsageEvent(input_tokens=i, agent_id=f"d{t}"))

    threads = [threading.Thread(target=through_meter, args=(t,)) for t in range(4)]
    threads += [threading.Thread(target=direct, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meter.close()
    other.close()
    events = list(read_jsonl(path)) if kind == "jsonl" else list(read_sqlite(path))
    assert len(events) == 4 * 300 + 2 * 100
    assert meter.stats().sink_errors == {}


class TestSQLiteSink:
    def test_table_columns_indexes_wal_and_version(self, tmp_path):
        path = tmp_path / "u.db"
        sink = SQLiteSink(path)
        sink.write(UsageEvent(model="gpt-4.1", input_tokens=3, token_details={"cache_write_1h": 2},
                              metadata={"a": 1}))
        assert sink.schema_version() == SCHEMA_VERSION
        sink.close()
        conn = sqlite3.connect(path)
        cols = [r[1] for r in conn.execute("PRAGMA table_info(usage_events)")]
        assert cols == list(COLUMNS)
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(usage_events)")}
        assert {"idx_usage_events_ts", "idx_usage_events_agent_id", "idx_usage_events_session_id",
                "idx_usage_events_model"} <= indexes
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = conn.execute("SELECT token_details, metadata, ts FROM usage_events").fetchone()
        assert json.loads(row[0]) == {"cache_write_1h": 2} and json.loads(row[1]) == {"a": 1}
        assert row[2].endswith("Z")

    def test_redelivery_is_idempotent(self, tmp_path):
        sink = SQLiteSink(tmp_path / "u.db")
        event = UsageEvent(input_tokens=1)
        sink.write_many([event, event])
        sink.write(event)
        assert len(list(read_sqlite(tmp_path / "u.db"))) == 1

    def test_round_trip_preserves_event(self, tmp_path):
        sink = SQLiteSink(tmp_path / "u.db")
        event = UsageEvent(provider="openai", model="gpt-4.1", input_tokens=120, output_tokens=30,
                           cached_input_tokens=64, reasoning_tokens=12, stream=True, cost_usd=0.1,
                           cost_source="pricing", metadata={"nested": {"k": [1, 2]}}, status="error",
                           error_type="RateLimitError", error_message="slow down")
        sink.write(event)
        (back,) = read_sqlite(tmp_path / "u.db")
        assert back == event

    def test_older_table_is_migrated(self, tmp_path):
        path = tmp_path / "old.db"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE usage_events (event_id TEXT PRIMARY KEY, ts TEXT, model TEXT)")
        conn.execute("INSERT INTO usage_events VALUES ('old-1', '2025-01-01T00:00:00.000000Z', 'gpt-4')")
        conn.commit()
        conn.close()
        sink = SQLiteSink(path)
        sink.write(UsageEvent(model="gpt-4.1", input_tokens=5))
        events = {e.event_id: e for e in read_sqlite(path)}
        assert events["old-1"].model == "gpt-4" and len(events) == 2

    def test_bad_synchronous_setting(self, tmp_path):
        with pytest.raises(ValueError, match="synchronous"):
            SQLiteSink(tmp_path / "u.db", synchronous="sometimes")


def test_jsonl_reader_names_the_bad_line(tmp_path):
    path = tmp_path / "u.jsonl"
    JSONLSink(path).write(UsageEvent(input_tokens=1))
    with open(path, "a") as fh:
        fh.write('{"input_tokens": -1}\n')
    with pytest.raises(ValueError, match=r"u.jsonl:2"):
        list(read_jsonl(path))


def test_console_sink_line(tmp_path):
    import io

    stream = io.StringIO()
    meter = Meter(sinks=[ConsoleSink(stream)], background=False)
    meter.record(provider="openai", model="gpt-4.1", input_tokens=5, output_tokens=2, agent_id="a1")
    text = stream.getvalue()
    assert "openai/gpt-4.1" in text and "in=5 out=2" in text and "cost=unpriced" in text and "agent=a1" in text
