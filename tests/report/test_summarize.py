"""summarize(): grouping, totals, unpriced handling and filters, the same on SQLite, JSONL and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest

from a2a_llm_tracker import ConfigurationError, Meter, PricingRegistry, UsageEvent
from a2a_llm_tracker.report import GROUP_FIELDS, ReportRow, grand_total, parse_when, parse_window, summarize
from a2a_llm_tracker.sinks.sqlite import SQLiteSink
from tests.report import _data


def _by(rows: list[ReportRow], field: str = "agent_id") -> dict:
    return {r.group[field]: r for r in rows}


class TestTotals:
    def test_by_agent_exact_values(self, store):
        """Per-agent totals match the hand-worked figures in every kind of store."""
        source, table = store
        rows = _by(summarize(source, by=("agent_id",), table=table))
        assert list(rows) == ["planner", "researcher", "writer", None]  # sorted, unset last
        planner = rows["planner"]
        assert (planner.calls, planner.errors, planner.input_tokens, planner.output_tokens) == (2, 0, 3000, 300)
        assert (planner.cached_input_tokens, planner.reasoning_tokens, planner.total_tokens) == (400, 50, 3300)
        assert planner.cost_usd == pytest.approx(0.0078)
        assert (planner.priced_calls, planner.unpriced_calls, planner.no_usage_calls) == (2, 0, 0)
        researcher = rows["researcher"]
        assert (researcher.calls, researcher.errors, researcher.priced_calls) == (3, 1, 1)
        assert (researcher.unpriced_calls, researcher.no_usage_calls) == (1, 1)
        assert researcher.cost_usd == pytest.approx(0.0056)  # the priced part only; unpriced counted apart
        assert researcher.input_tokens == 10500 and researcher.cached_input_tokens is None
        writer = rows["writer"]
        assert writer.cost_usd is None, "an all-unpriced group has no cost, never $0"
        assert (writer.calls, writer.unpriced_calls, writer.input_tokens) == (1, 1, 100)
        assert rows[None].cost_usd == pytest.approx(0.00028)

    def test_grand_total(self, store):
        source, table = store
        total = grand_total(summarize(source, by="model", table=table))
        assert (total.calls, total.errors, total.priced_calls, total.unpriced_calls, total.no_usage_calls) == \
            (7, 1, 4, 2, 1)
        assert total.cost_usd == pytest.approx(0.003 + 0.0048 + 0.0056 + 0.00028)
        assert total.input_tokens == 13700 and total.group == {}

    def test_group_of_only_failed_calls_has_no_cost_and_no_tokens(self, store):
        source, table = store
        rows = summarize(source, by="model", where={"status": "error"}, table=table)
        assert len(rows) == 1
        row = rows[0]
        assert row.group == {"model": "gpt-4.1"} and row.calls == 1 and row.errors == 1
        assert row.cost_usd is None and row.input_tokens is None and row.no_usage_calls == 1

    def test_by_two_fields_and_day(self, store):
        source, table = store
        rows = summarize(source, by=("day", "model"), table=table)
        keys = [(r.group["day"], r.group["model"]) for r in rows]
        assert keys == [("2026-03-01", "gpt-4.1"), ("2026-03-01", "mystery-model"),
                        ("2026-03-02", "gpt-4.1"), ("2026-03-02", "gpt-4.1-mini"), ("2026-03-02", "mystery-model")]
        assert rows[0].calls == 2 and rows[2].calls == 2 and rows[2].errors == 1

    @pytest.mark.parametrize("field", GROUP_FIELDS)
    def test_every_group_field_sql_equals_jsonl(self, field, tmp_path):
        """SQLite (aggregated in SQL) and JSONL (aggregated in Python) agree for every group field."""
        sql = summarize(_data.sqlite_store(tmp_path), by=(field, "provider") if field != "provider" else (field,))
        js = summarize(_data.jsonl_store(tmp_path), by=(field, "provider") if field != "provider" else (field,))
        assert [r.group for r in sql] == [r.group for r in js]
        for a, b in zip(sql, js):
            da, db = a.as_dict(), b.as_dict()
            assert da.pop("cost_usd") == pytest.approx(db.pop("cost_usd"))
            assert da == db

    def test_as_dict_is_flat(self, store):
        source, table = store
        d = summarize(source, by="user_id", table=table)[0].as_dict()
        assert d["user_id"] == "u1" and d["calls"] == 3 and list(d)[:2] == ["user_id", "calls"]


class TestFilters:
    def test_since_date_and_until_date_inclusive(self, store):
        source, table = store
        day1 = grand_total(summarize(source, until="2026-03-01", table=table))
        day2 = grand_total(summarize(source, since=date(2026, 3, 2), table=table))
        assert (day1.calls, day2.calls) == (3, 4)

    def test_datetime_bounds(self, store):
        source, table = store
        rows = summarize(source, by="model", since=datetime(2026, 3, 1, 10, tzinfo=UTC),
                         until="2026-03-02T10:00:00Z", table=table)
        assert grand_total(rows).calls == 3  # e2, e3, e4 (until is exclusive for datetimes)

    def test_relative_since(self, tmp_path):
        """``7d`` counts back from now: the March events are older, a fresh one is inside."""
        path = tmp_path / "u.db"
        _data.record_all([SQLiteSink(path)])
        with Meter(pricing=_data.pricing(), sinks=[SQLiteSink(path)], background=False) as meter:
            meter.record(provider="openai", model="gpt-4.1", input_tokens=10, output_tokens=1, agent_id="now")
        rows = summarize(path, since="7d")
        assert [r.group["agent_id"] for r in rows] == ["now"]
        assert summarize(path, since="24h", until="1h") == []

    def test_where_values_and_unset(self, store):
        source, table = store
        rows = summarize(source, by="agent_id", where={"agent_id": ["writer", None]}, table=table)
        assert [r.group["agent_id"] for r in rows] == ["writer", None]
        rows = summarize(source, by="project", where={"day": "2026-03-02", "provider": "openai"}, table=table)
        assert {r.group["project"]: r.calls for r in rows} == {"p1": 2, "p2": 1}


class TestErrors:
    @pytest.mark.parametrize("kwargs, message", [
        ({"by": ("agent",)}, "unknown group field 'agent'"),
        ({"by": ()}, "at least one field"),
        ({"by": "model,model"}, "twice"),
        ({"since": "last tuesday"}, "since: cannot read 'last tuesday'"),
        ({"until": "2026-13-45"}, "until: cannot read"),
        ({"since": "2026-03-02", "until": "2026-03-01T00:00:00Z"}, "must be after since"),
        ({"where": {"cost_usd": "1"}}, "cannot filter on 'cost_usd'"),
        ({"where": {"agent_id": 3}}, "must be strings"),
    ])
    def test_bad_arguments(self, tmp_path, kwargs, message):
        with pytest.raises(ConfigurationError, match=message):
            summarize(_data.sqlite_store(tmp_path), **kwargs)

    def test_missing_and_foreign_files(self, tmp_path):
        with pytest.raises(ConfigurationError, match="does not exist"):
            summarize(tmp_path / "nope.db")
        other = tmp_path / "other.db"
        sqlite3.connect(other).execute("CREATE TABLE t (x)")
        with pytest.raises(ConfigurationError, match="has no table 'usage_events'"):
            summarize(other)
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"model": "m", "ts": "2026-03-01T00:00:00Z"}\nnot json\n')
        with pytest.raises(ConfigurationError, match=r"bad.jsonl:2: not a JSON line"):
            summarize(bad)
        with pytest.raises(ConfigurationError, match="unsupported SOURCE"):
            summarize("mysql://x/y")

    def test_bad_table_name(self, tmp_path):
        with pytest.raises(ConfigurationError, match="table must be a name"):
            summarize(_data.sqlite_store(tmp_path), table="x; DROP TABLE usage_events")


class TestTimeParsing:
    def test_parse_when_forms(self):
        now = datetime(2026, 3, 10, 12, tzinfo=UTC)
        assert parse_when("7d", now=now) == now - timedelta(days=7)
        assert parse_when("90m", now=now) == now - timedelta(minutes=90)
        assert parse_when("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
        assert parse_when("2026-03-01", end=True) == datetime(2026, 3, 2, tzinfo=UTC)
        assert parse_when("2026-03-01T05:00:00+02:00") == datetime(2026, 3, 1, 3, tzinfo=UTC)
        assert parse_when(datetime(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=UTC)
        assert parse_when("today", now=now) == datetime(2026, 3, 10, tzinfo=UTC)
        assert parse_window("1h") == timedelta(hours=1)
        with pytest.raises(ConfigurationError):
            parse_window("0h")


def test_jsonl_progress_hook_reports_bytes(tmp_path):
    path = tmp_path / "big.jsonl"
    lines = [UsageEvent(provider="openai", model="gpt-4.1", input_tokens=1, output_tokens=1,
                        agent_id=f"a{i}").model_dump_json() for i in range(3)]
    path.write_text("\n".join(lines * 23334) + "\n")  # > 65,536 lines: the hook fires mid-read
    seen: list[tuple[int, int | None]] = []
    rows = summarize(path, progress=lambda done, total: seen.append((done, total)))
    assert sum(r.calls for r in rows) == 70002
    assert seen[-1] == (path.stat().st_size, path.stat().st_size) and len(seen) >= 2


def test_report_reads_unpriced_provider_zero_as_unpriced(tmp_path):
    """A provider-reported $0 with tokens is stored as unpriced by the Meter, and reported so."""
    path = tmp_path / "u.db"
    with Meter(pricing=PricingRegistry(), sinks=[SQLiteSink(path)], background=False, use_provider_cost=True) as m:
        m.record(provider="x", model="free?", input_tokens=10, output_tokens=5, cost_usd=0.0, cost_source="provider")
    (row,) = summarize(path, by="model")
    assert row.cost_usd is None and row.unpriced_calls == 1
