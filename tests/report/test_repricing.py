"""Re-pricing stored events with a price sheet (effective dates honoured) and finding uncovered models."""

from __future__ import annotations

import os

import pytest

from a2a_llm_tracker import ConfigurationError, PricingError
from a2a_llm_tracker.report import summarize
from a2a_llm_tracker.repricing import plan_reprice, uncovered_models
from a2a_llm_tracker.sinks.jsonl import read_jsonl
from a2a_llm_tracker.sinks.sqlite import read_sqlite
from tests.report import _data
from tests.report.sheets import ALL_MODELS, BAD_SHEET, NEW_PRICE_ONLY, REPRICE_SHEET


@pytest.fixture
def sheet(tmp_path):
    path = tmp_path / "sheet.toml"
    path.write_text(REPRICE_SHEET)
    return path


def _diffs(plan):
    return {d.model: d for d in plan.diffs}


class TestPlan:
    def test_difference_per_model(self, store, sheet):
        source, table = store
        plan = plan_reprice(source, sheet, table=table)
        d = _diffs(plan)
        assert list(d) == ["mystery-model", "gpt-4.1", "gpt-4.1-mini"]  # sorted by provider (acme, openai)
        g = d["gpt-4.1"]
        assert (g.events, g.repriced, g.no_usage, g.uncovered, g.newly_priced) == (4, 3, 1, 0, 0)
        assert g.old_cost_usd == pytest.approx(0.003 + 0.0048 + 0.00028)
        # e1, e2 keep the old price (before 2026-03-02); e7 gets the new one: 100*1 + 10*4 per million
        assert g.new_cost_usd == pytest.approx(0.003 + 0.0048 + 0.00014)
        assert g.delta_usd == pytest.approx(-0.00014)
        assert g.changed == 3  # price ids change even where the amount does not
        m = d["mystery-model"]
        assert (m.repriced, m.newly_priced, m.old_cost_usd) == (2, 2, None)
        assert m.new_cost_usd == pytest.approx(0.006 + 0.0012)
        mini = d["gpt-4.1-mini"]
        assert (mini.uncovered, mini.repriced, mini.new_cost_usd, mini.delta_usd) == (1, 0, None, None)
        assert plan.changed == 5

    def test_plan_writes_nothing(self, tmp_path, sheet):
        db, js = _data.sqlite_store(tmp_path), _data.jsonl_store(tmp_path)
        before = (db.read_bytes(), js.read_bytes())
        plan_reprice(db, sheet)
        plan_reprice(js, sheet)
        assert (db.read_bytes(), js.read_bytes()) == before

    def test_since_limits_the_events(self, store, sheet):
        source, table = store
        d = _diffs(plan_reprice(source, sheet, since="2026-03-02", table=table))
        assert d["gpt-4.1"].events == 2 and d["mystery-model"].events == 1

    def test_bad_sheet(self, tmp_path):
        bad = tmp_path / "bad.toml"
        bad.write_text(BAD_SHEET)
        with pytest.raises(PricingError, match="input_per_million must not be negative"):
            plan_reprice(_data.sqlite_store(tmp_path), bad)
        with pytest.raises(PricingError, match="cannot read price sheet"):
            plan_reprice(_data.sqlite_store(tmp_path), tmp_path / "missing.toml")


class TestApply:
    def test_apply_updates_costs(self, store, sheet):
        source, table = store
        plan = plan_reprice(source, sheet, table=table)
        assert plan.apply() == 5
        rows = {r.group["model"]: r for r in summarize(source, by="model", table=table)}
        assert rows["gpt-4.1"].cost_usd == pytest.approx(0.00794)
        assert rows["mystery-model"].cost_usd == pytest.approx(0.0072) and rows["mystery-model"].unpriced_calls == 0
        assert rows["gpt-4.1-mini"].cost_usd == pytest.approx(0.0056)  # not in the sheet: unchanged
        with pytest.raises(ConfigurationError, match="applied already"):
            plan.apply()
        again = plan_reprice(source, sheet, table=table)
        assert again.changed == 0 and again.apply() == 0  # idempotent

    def test_sqlite_fields_written(self, tmp_path, sheet):
        db = _data.sqlite_store(tmp_path)
        plan_reprice(db, sheet).apply()
        by_id = {e.event_id: e for e in read_sqlite(db)}
        assert by_id["e7"].price_id == "gpt-4.1-new" and by_id["e7"].cost_source == "pricing"
        assert by_id["e7"].price_effective_from.isoformat() == "2026-03-02T00:00:00+00:00"
        assert by_id["e7"].input_cost_usd == pytest.approx(0.0001)
        assert by_id["e1"].price_id == "gpt-4.1-old"
        assert by_id["e4"].price_id == "openai/gpt-4.1-mini@always"  # untouched

    def test_jsonl_rewrite_is_atomic_and_keeps_other_lines(self, tmp_path, sheet):
        js = _data.jsonl_store(tmp_path)
        os.chmod(js, 0o640)
        lines_before = js.read_bytes().splitlines(keepends=True)
        inode = os.stat(js).st_ino
        plan_reprice(js, sheet).apply()
        assert os.stat(js).st_ino != inode  # a new file renamed over the old one
        assert os.stat(js).st_mode & 0o777 == 0o640
        lines_after = js.read_bytes().splitlines(keepends=True)
        assert len(lines_after) == len(lines_before)
        assert lines_after[3] == lines_before[3]  # e4 (gpt-4.1-mini) byte for byte
        assert lines_after[4] == lines_before[4]  # e5 (no usage)
        by_id = {e.event_id: e for e in read_jsonl(js)}
        assert by_id["e3"].cost_usd == pytest.approx(0.006) and by_id["e3"].price_id == "mystery-contract"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.toml", "usage.jsonl"]  # no temp left


class TestUncovered:
    def test_from_stored_costs(self, store):
        source, table = store
        (m,) = uncovered_models(source, table=table)
        assert (m.provider, m.model, m.events) == ("acme", "mystery-model", 2)
        assert m.first_seen.isoformat() == "2026-03-01T11:00:00+00:00"
        assert m.last_seen.isoformat() == "2026-03-02T11:00:00+00:00"

    def test_against_a_sheet(self, store, tmp_path):
        source, table = store
        sheet = tmp_path / "s.toml"
        sheet.write_text(REPRICE_SHEET)
        assert [(m.model, m.events) for m in uncovered_models(source, sheet, table=table)] == [("gpt-4.1-mini", 1)]
        sheet.write_text(ALL_MODELS)
        assert uncovered_models(source, sheet, table=table) == []

    def test_effective_dates_split_a_model(self, store, tmp_path):
        """A price that starts mid-range covers the later events only (checked per event)."""
        source, table = store
        sheet = tmp_path / "s.toml"
        sheet.write_text(NEW_PRICE_ONLY)
        found = {m.model: m for m in uncovered_models(source, sheet, table=table)}
        assert found["gpt-4.1"].events == 2  # e1, e2 (day 1); e5 and e7 are covered
        assert found["gpt-4.1"].last_seen.isoformat() == "2026-03-01T10:00:00+00:00"
        assert found["mystery-model"].events == 2 and found["gpt-4.1-mini"].events == 1
