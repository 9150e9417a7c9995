"""PostgresSink against the real PostgreSQL server at 127.0.0.1:5432 (skipped when none answers)."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from a2a_llm_tracker import Meter, UsageEvent
from a2a_llm_tracker.exceptions import AdapterUnavailable, ConfigurationError, ExportError
from a2a_llm_tracker.sinks._columns import COLUMNS, SCHEMA_VERSION, event_row
from a2a_llm_tracker.sinks.postgres import PostgresSink, mask_dsn, pg_row, read_postgres
from a2a_llm_tracker.sinks.sqlite import SQLiteSink

from ._worker import writer


def _event(i: int = 0, **fields) -> UsageEvent:
    base = dict(provider="openai", model="gpt-4.1", response_model="gpt-4.1-2025-04-14", input_tokens=100 + i,
                output_tokens=20, cached_input_tokens=40, reasoning_tokens=5, token_details={"audio_input_tokens": 3},
                raw_usage={"prompt_tokens": 100 + i, "completion_tokens": 20}, cost_usd=0.00036, cost_source="pricing",
                agent_id="planner", session_id="s-1", user_id="u-1", project="p", latency_ms=812.5, stream=True,
                metadata={"node": "plan", "n": i})
    base.update(fields)
    return UsageEvent(**base)


def _count(pg: psycopg.Connection, schema: str, table: str = "usage_events") -> int:
    return pg.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]


@pytest.fixture(name="outbox_path")
def _outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "pg-outbox.db"


class TestStore:
    def test_round_trip_keeps_every_field(self, pg_dsn, pg_schema, outbox_path):
        """What is written reads back equal, field for field (JSON, times, bools, floats)."""
        events = [_event(i) for i in range(5)] + [
            UsageEvent(provider="anthropic", model="claude", accuracy="unknown", status="error",
                       error_type="RateLimitError", metadata={"q": "it's \"quoted\" ünïcode\n\t\\"}),
            _event(9, price_effective_from=datetime(2025, 1, 1, tzinfo=UTC), stream=False,
                   metadata={"nested": {"a": [1, 2.5, None, True]}}),
        ]
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        sink.write_many(events)
        sink.close()
        back = {e.event_id: e for e in read_postgres(pg_dsn, schema=pg_schema)}
        assert len(back) == len(events)
        for e in events:
            assert back[e.event_id].model_dump() == e.model_dump()

    def test_schema_version_recorded(self, pg_dsn, pg_schema, pg, outbox_path):
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        assert sink.schema_version() == SCHEMA_VERSION
        sink.close()
        row = pg.execute(f'SELECT version FROM "{pg_schema}".a2a_schema WHERE component = %s',
                         ("usage_events",)).fetchone()
        assert row == (SCHEMA_VERSION,)

    def test_same_columns_as_sqlite(self, pg_dsn, pg_schema, pg, tmp_path, outbox_path):
        """The PostgreSQL table and the SQLite table have the same columns, in the same order."""
        sqlite_sink = SQLiteSink(tmp_path / "u.db")
        sqlite_sink.write(_event())
        sqlite_sink.close()
        with sqlite3.connect(tmp_path / "u.db") as conn:
            sqlite_cols = [r[1] for r in conn.execute("PRAGMA table_info(usage_events)")]
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        sink.write(_event())
        sink.close()
        pg_cols = [r[0] for r in pg.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position", (pg_schema, "usage_events"))]
        assert pg_cols == sqlite_cols == list(COLUMNS)

    def test_migrates_an_older_table(self, pg_dsn, pg_schema, pg, outbox_path):
        """A table from an older version gets its missing columns and the version row."""
        pg.execute(f'CREATE SCHEMA "{pg_schema}"')
        pg.execute(f'CREATE TABLE "{pg_schema}".usage_events (event_id TEXT PRIMARY KEY, ts TIMESTAMPTZ, model TEXT)')
        pg.execute(f"INSERT INTO \"{pg_schema}\".usage_events VALUES ('old-1', now(), 'gpt-3.5')")
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        sink.write(_event())
        assert sink.schema_version() == SCHEMA_VERSION
        sink.close()
        assert _count(pg, pg_schema) == 2
        old = [e for e in read_postgres(pg_dsn, schema=pg_schema) if e.event_id == "old-1"]
        assert old[0].model == "gpt-3.5" and old[0].input_tokens is None

    def test_custom_table_name(self, pg_dsn, pg_schema, pg, outbox_path):
        sink = PostgresSink(pg_dsn, table="llm_usage", schema=pg_schema, outbox_path=outbox_path)
        sink.write_many([_event(i) for i in range(3)])
        sink.close()
        assert _count(pg, pg_schema, "llm_usage") == 3
        assert sink.name.endswith(f"/{pg_schema}.llm_usage")

    def test_through_a_meter(self, pg_dsn, pg_schema, pg, outbox_path):
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        with Meter(sinks=[sink]) as meter:
            for i in range(300):
                meter.record(_event(i))
            assert meter.flush(10)
        assert _count(pg, pg_schema) == 300
        assert sink.remote is True

    def test_fast_rows_match_event_row(self):
        """The sink's row builder gives exactly what _columns.event_row gives."""
        events = [_event(i) for i in range(3)] + [
            UsageEvent(metadata={}, token_details={}),
            UsageEvent(metadata={"f": 1.5, "big": 10**30, "s": "é\"\\\u2028", "b": True, "none": None}),
            UsageEvent(metadata={"inf": float("inf"), "nan": float("nan")}),
            UsageEvent(token_details={"x": 0.1, "y": 3}, raw_usage={"deep": {"k": [1]}}),
        ]
        for e in events:
            assert pg_row(e) == event_row(e, native_time=True, native_bool=True)


class TestIdempotence:
    def test_redelivered_batch_is_stored_once(self, pg_dsn, pg_schema, pg, outbox_path):
        events = [_event(i) for i in range(50)]
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        sink.write_many(events)
        sink.write_many(events[10:20] + [_event(100), _event(101)])  # a partial redelivery plus new ones
        sink.write_many(events)
        sink.close()
        assert _count(pg, pg_schema) == 52
        assert pg.execute(f'SELECT count(DISTINCT event_id) FROM "{pg_schema}".usage_events').fetchone()[0] == 52

    def test_duplicates_within_one_batch(self, pg_dsn, pg_schema, pg, outbox_path):
        e = _event()
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        sink.write_many([e, e, _event(1), e])
        sink.close()
        assert _count(pg, pg_schema) == 2

    @pytest.mark.parametrize("method", ["copy", "insert"])
    def test_both_methods_are_idempotent(self, pg_dsn, pg_schema, pg, outbox_path, method):
        events = [_event(i) for i in range(20)]
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path, method=method)
        sink.write_many(events)
        sink.write_many(events)
        sink.close()
        assert _count(pg, pg_schema) == 20


class TestManyProcesses:
    def test_concurrent_writers_exact_count_no_duplicates(self, pg_dsn, pg_schema, pg, tmp_path):
        """Six processes migrate and write one table at once: every event once, nothing more."""
        workers, n, shared = 6, 2000, 400
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(workers)
        procs = [ctx.Process(target=writer, args=(pg_dsn, pg_schema, str(tmp_path / f"ob{w}.db"), w, n, shared,
                                                   barrier)) for w in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * workers
        assert _count(pg, pg_schema) == workers * n + shared
        assert pg.execute(f'SELECT count(DISTINCT event_id) FROM "{pg_schema}".usage_events').fetchone()[0] == \
            workers * n + shared
        per_agent = dict(pg.execute(f'SELECT agent_id, count(*) FROM "{pg_schema}".usage_events '
                                    "WHERE agent_id IS NOT NULL GROUP BY agent_id").fetchall())
        assert per_agent == {f"w{w}": n for w in range(workers)}


class TestOutage:
    def test_closed_port_parks_then_delivers_after_recovery(self, pg_user, pg_schema, pg, proxy, outbox_path):
        """The server goes away: batches are parked fast; when it is back, they are all delivered."""
        dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user={pg_user}"
        sink = PostgresSink(dsn, schema=pg_schema, outbox_path=outbox_path, retry_interval=0.2)
        sink.write_many([_event(i) for i in range(10)])  # connected and healthy
        proxy.stop()
        parked = [_event(i) for i in range(10, 40)]
        t0 = time.monotonic()
        for i in range(0, 30, 10):
            sink.write_many(parked[i:i + 10])
        assert time.monotonic() - t0 < 5.0  # the writer thread is not stalled
        assert sink.pending() == 30 and sink.counts["parked"] == 30
        assert _count(pg, pg_schema) == 10
        proxy.start()  # the server is back, on the same port
        deadline = time.monotonic() + 10
        while sink.pending() and time.monotonic() < deadline:  # the background retry drains it
            time.sleep(0.05)
        assert sink.pending() == 0
        assert _count(pg, pg_schema) == 40
        sink.write_many([_event(i) for i in range(40, 45)])
        sink.close()
        assert _count(pg, pg_schema) == 45

    def test_never_reachable_at_start(self, pg_user, pg_schema, pg, proxy, outbox_path):
        """A sink that starts during an outage parks everything, and a later sink delivers it."""
        dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user={pg_user}"
        proxy.stop()
        sink = PostgresSink(dsn, schema=pg_schema, outbox_path=outbox_path, retry_interval=30)
        events = [_event(i) for i in range(25)]
        sink.write_many(events)
        assert sink.flush(1) is False  # honest: not delivered
        sink.close()
        proxy.start()
        again = PostgresSink(dsn, schema=pg_schema, outbox_path=outbox_path)  # e.g. after a restart
        assert again.pending() == 25
        assert again.flush(10) is True
        again.close()
        assert _count(pg, pg_schema) == 25

    def test_terminated_backend_reconnects(self, pg_dsn, pg_schema, pg, outbox_path):
        """pg_terminate_backend (what a server restart does to clients): the next write reconnects."""
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        sink.write_many([_event(i) for i in range(5)])
        backend = sink._conn.info.backend_pid
        assert pg.execute("SELECT pg_terminate_backend(%s)", (backend,)).fetchone() == (True,)
        time.sleep(0.1)
        sink.write_many([_event(i) for i in range(5, 10)])
        assert sink.counts["reconnects"] == 1 and sink.counts["parked"] == 0
        assert sink._conn.info.backend_pid != backend
        sink.close()
        assert _count(pg, pg_schema) == 10

    def test_outage_through_a_meter_loses_nothing(self, pg_user, pg_schema, pg, proxy, outbox_path):
        """Terminated connections and a closed port under a running Meter: every event arrives once."""
        dsn = f"host=127.0.0.1 port={proxy.port} dbname=test user={pg_user}"
        sink = PostgresSink(dsn, schema=pg_schema, outbox_path=outbox_path, retry_interval=0.2)
        meter = Meter(sinks=[sink])
        for i in range(100):
            meter.record(_event(i))
        assert meter.flush(10)
        proxy.stop()
        for i in range(100, 200):
            meter.record(_event(i))
        meter.flush(10)
        assert sink.pending() > 0
        proxy.start()
        for i in range(200, 250):
            meter.record(_event(i))
        deadline = time.monotonic() + 10
        while not meter.flush(1) and time.monotonic() < deadline:
            time.sleep(0.05)
        meter.close()
        assert _count(pg, pg_schema) == 250
        assert meter.stats().lost == 0


class TestSecretsAndErrors:
    def test_password_never_in_name_logs_or_outbox(self, pg_schema, tmp_path, caplog):
        secret = "s3cr3t-pg-pw-value"
        dsn = f"postgresql://postgres:{secret}@127.0.0.1:1/test"
        sink = PostgresSink(dsn, schema=pg_schema, outbox_path=tmp_path / "ob.db", retry_interval=60)
        name = sink.name
        with caplog.at_level(logging.DEBUG, logger="a2a_llm_tracker"):
            sink.write_many([_event()])
            sink.write_many([_event(1)])
        sink.close()
        assert secret not in name and name == "postgres:postgres@127.0.0.1:1/test/" + pg_schema + ".usage_events"
        assert PostgresSink(dsn.replace(secret, "rotated"), schema=pg_schema, outbox_path=tmp_path / "o2.db").name \
            == name  # stable: the password is not part of it
        assert caplog.records and all(secret not in r.getMessage() for r in caplog.records)
        dump = (tmp_path / "ob.db").read_bytes()
        assert secret.encode() not in dump
        assert mask_dsn(dsn) == "postgresql://postgres:***@127.0.0.1:1/test"
        assert mask_dsn(f"host=h password={secret} user=u") == "host=h password=*** user=u"
        assert mask_dsn(f"host=h password='{secret} x' user=u") == "host=h password=*** user=u"

    def test_bad_arguments(self, tmp_path):
        with pytest.raises(ConfigurationError, match="table"):
            PostgresSink("host=127.0.0.1 dbname=test", table="usage; DROP TABLE x")
        with pytest.raises(ConfigurationError, match="schema"):
            PostgresSink("host=127.0.0.1 dbname=test", schema="1bad")
        with pytest.raises(ConfigurationError, match="method"):
            PostgresSink("host=127.0.0.1 dbname=test", method="upsert")
        with pytest.raises(ConfigurationError, match="DSN"):
            PostgresSink("")
        with pytest.raises(ConfigurationError, match="not a valid PostgreSQL DSN"):
            PostgresSink("postgresql://u:pw@h:notaport/db?bogus_option=1")

    def test_missing_psycopg_says_how_to_install(self):
        code = textwrap.dedent("""
            import sys
            class Block:
                def find_spec(self, name, path=None, target=None):
                    if name == "psycopg" or name.startswith("psycopg."):
                        raise ImportError("blocked for the test")
            sys.meta_path.insert(0, Block())
            import a2a_llm_tracker.sinks.postgres as pg   # importing the module needs no psycopg
            from a2a_llm_tracker import AdapterUnavailable
            try:
                pg.PostgresSink("host=127.0.0.1 dbname=test")
            except AdapterUnavailable as exc:
                print("HINT:", exc)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "pip install a2a-llm-tracker[postgres]" in out.stdout
        assert issubclass(AdapterUnavailable, ImportError)


class TestRefusedRows:
    def test_a_refused_event_is_isolated_and_kept_by_the_dispatcher(self, pg_dsn, pg_schema, pg, outbox_path,
                                                                    tmp_path):
        """A row the database refuses (not an outage) raises ExportError; the good rows still land."""
        sink = PostgresSink(pg_dsn, schema=pg_schema, outbox_path=outbox_path)
        sink.write(_event(0))
        pg.execute(f'ALTER TABLE "{pg_schema}".usage_events ADD CONSTRAINT small CHECK (input_tokens < 1000)')
        with pytest.raises(ExportError, match="insert failed") as info:
            sink.write_many([_event(1), _event(5000)])
        assert "CheckViolation" in str(info.value)
        from a2a_llm_tracker import DispatchConfig
        meter = Meter(sinks=[sink], dispatch=DispatchConfig(outbox_path=tmp_path / "dispatch.db", retry_backoff=0.0))
        for i in (2, 7000, 3):
            meter.record(_event(i))
        meter.flush(10)
        stats = meter.stats()
        meter.close()
        assert _count(pg, pg_schema) == 3  # events 0, 2 and 3
        assert stats.export_failed == 1 and stats.lost == 0 and stats.in_outbox == 1
