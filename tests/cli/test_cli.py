"""The a2a-llm-tracker command line, run in-process through main([...]) and once as a subprocess."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sqlite3
import subprocess
import sys

import pytest

from a2a_llm_tracker.cli import main
from a2a_llm_tracker.report import summarize
from tests.report.sheets import ALL_MODELS, BAD_SHEET


class _TTY(io.StringIO):
    """A text stream that says it is a terminal (to exercise the rich paths)."""

    def isatty(self) -> bool:
        return True


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _no_zero_dollars(text: str) -> None:
    assert "$0.000000" not in text and "$0 " not in text and "$0\n" not in text


class TestReportFormats:
    def test_table(self, capsys, db):
        code, out, err = run(capsys, "report", db, "--by", "agent_id,model")
        assert code == 0 and err == ""
        lines = out.splitlines()
        assert lines[0].split() == ["agent_id", "model", "calls", "errors", "input", "output", "cached",
                                    "reasoning", "cost", "(USD)", "unpriced"]
        writer = next(line for line in lines if line.startswith("writer"))
        assert writer.split()[-2:] == ["unpriced", "1"]
        planner = next(line for line in lines if line.startswith("planner"))
        assert "$0.007800" in planner and planner.split()[2:6] == ["2", "0", "3,000", "300"]
        assert lines[-1].split()[:3] == ["TOTAL", "7", "1"] and "$0.013680" in lines[-1]
        _no_zero_dollars(out)

    def test_json(self, capsys, jsonl):
        code, out, _ = run(capsys, "report", jsonl, "--by", "model", "--format", "json", "--since", "2026-03-01")
        doc = json.loads(out)
        assert code == 0 and doc["by"] == ["model"]
        rows = {r["model"]: r for r in doc["rows"]}
        assert rows["mystery-model"]["cost_usd"] is None and rows["mystery-model"]["unpriced_calls"] == 2
        assert rows["gpt-4.1-mini"]["cost_usd"] == pytest.approx(0.0056)
        assert doc["total"]["calls"] == 7 and doc["total"]["cost_usd"] == pytest.approx(0.01368)

    def test_csv(self, capsys, db):
        code, out, _ = run(capsys, "report", db, "--by", "agent_id", "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(out)))
        assert code == 0 and [r["agent_id"] for r in rows] == ["planner", "researcher", "writer", ""]
        writer = rows[2]
        assert writer["cost_usd"] == "" and writer["unpriced_calls"] == "1"  # empty, never 0
        assert float(rows[0]["cost_usd"]) == pytest.approx(0.0078)

    def test_markdown(self, capsys, db):
        code, out, _ = run(capsys, "report", db, "--by", "model", "--format", "markdown")
        lines = out.splitlines()
        assert code == 0 and lines[0].startswith("| model | calls |") and lines[1].startswith("|:---|---:")
        mystery = next(line for line in lines if line.startswith("| mystery-model"))
        assert "| unpriced | 2 |" in mystery
        assert lines[-1].startswith("| **TOTAL** |")
        _no_zero_dollars(out)

    def test_where_and_until(self, capsys, db):
        code, out, _ = run(capsys, "report", db, "--by", "day", "--where", "status=error", "--format", "json")
        assert code == 0 and [(r["day"], r["calls"]) for r in json.loads(out)["rows"]] == [("2026-03-02", 1)]
        code, out, _ = run(capsys, "report", db, "--by", "agent_id", "--where", "agent_id=", "--format", "json")
        assert [r["agent_id"] for r in json.loads(out)["rows"]] == [None]
        code, out, _ = run(capsys, "report", db, "--until", "2026-03-01", "--format", "json")
        assert json.loads(out)["total"]["calls"] == 3

    def test_rich_table_in_a_terminal(self, capsys, db, monkeypatch):
        pytest.importorskip("rich")
        tty = _TTY()
        monkeypatch.setattr(sys, "stdout", tty)
        assert main(["report", str(db), "--by", "agent_id"]) == 0
        text = tty.getvalue()
        assert "\x1b[" in text and "─" in text  # rich styling and rules, not the plain table
        assert "unpriced" in text and "planner" in text and "researcher" in text and "TOTAL" in text
        _no_zero_dollars(text)

    def test_plain_table_when_rich_is_missing(self, capsys, db, monkeypatch):
        monkeypatch.setitem(sys.modules, "rich", None)  # import rich -> ImportError
        monkeypatch.setitem(sys.modules, "rich.console", None)
        tty = _TTY()
        monkeypatch.setattr(sys, "stdout", tty)
        assert main(["report", str(db)]) == 0
        assert tty.getvalue().splitlines()[0].split()[:2] == ["agent_id", "calls"]

    def test_progress_bar_only_on_a_terminal(self, capsys, jsonl, monkeypatch):
        code, out, err = run(capsys, "report", jsonl)
        assert code == 0 and err == ""  # not a TTY: no progress output at all
        tty = _TTY()
        monkeypatch.setattr(sys, "stderr", tty)
        assert main(["report", str(jsonl), "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["total"]["calls"] == 7  # stdout stays clean JSON


class TestBadInput:
    @pytest.mark.parametrize("argv, message", [
        (["report", "{tmp}/missing.db"], "does not exist"),
        (["report", "{db}", "--by", "agent_id,colour"], "unknown group field 'colour'"),
        (["report", "{db}", "--since", "yesterday-ish"], "since: cannot read 'yesterday-ish'"),
        (["report", "{db}", "--until", "2026-02-30"], "until: cannot read"),
        (["report", "{db}", "--where", "nonsense"], "--where takes FIELD=VALUE"),
        (["report", "{db}", "--format", "xml"], "invalid choice: 'xml'"),
        (["reprice", "{db}", "--prices", "{tmp}/bad.toml"], "input_per_million must not be negative"),
        (["reprice", "{db}", "--prices", "{tmp}/none.toml"], "cannot read price sheet"),
        (["reprice", "{db}"], "the following arguments are required: --prices"),
        (["prices", "check", "{tmp}/foreign.db"], "has no table 'usage_events'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["report", "postgresql://tracker:s3cret@127.0.0.1:1/test"], "cannot connect to postgresql://tracker:***@"),
    ])
    def test_one_line_error_exit_2(self, capsys, tmp_path, db, argv, message):
        (tmp_path / "bad.toml").write_text(BAD_SHEET)
        sqlite3.connect(tmp_path / "foreign.db").execute("CREATE TABLE x (y)")
        code, out, err = run(capsys, *(a.format(tmp=tmp_path, db=db) for a in argv))
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and message in err and "Traceback" not in err
        assert err.startswith("a2a-llm-tracker") and "s3cret" not in err


class TestReprice:
    def test_dry_run_prints_diff_and_writes_nothing(self, capsys, db, sheet):
        before = db.read_bytes()
        code, out, err = run(capsys, "reprice", db, "--prices", sheet, "--dry-run")
        assert code == 0 and db.read_bytes() == before
        assert "dry run: 5 event(s) would change; nothing written" in err
        gpt = next(line for line in out.splitlines() if line.split()[:2] == ["openai", "gpt-4.1"])
        assert "$0.008080" in gpt and "$0.007940" in gpt and "-$0.000140" in gpt
        mystery = next(line for line in out.splitlines() if "mystery-model" in line)
        assert "unpriced" in mystery and "$0.007200" in mystery and "+$0.007200" in mystery
        mini = next(line for line in out.splitlines() if "gpt-4.1-mini" in line)
        assert "(not covered)" in mini

    def test_writes_after_printing(self, capsys, jsonl, sheet):
        code, out, err = run(capsys, "reprice", jsonl, "--prices", sheet, "--format", "json")
        assert code == 0 and "updated 5 event(s)" in err
        doc = json.loads(out)
        assert doc["dry_run"] is False and doc["changed"] == 5
        assert {m["model"]: m["new_cost_usd"] for m in doc["models"]}["mystery-model"] == pytest.approx(0.0072)
        rows = {r.group["model"]: r for r in summarize(jsonl, by="model")}
        assert rows["gpt-4.1"].cost_usd == pytest.approx(0.00794)


class TestPricesCheck:
    def test_exit_1_with_uncovered(self, capsys, db):
        code, out, err = run(capsys, "prices", "check", db)
        assert code == 1
        assert out.splitlines()[2].split()[:3] == ["acme", "mystery-model", "2"]
        assert "1 model(s) not covered by the stored costs" in err

    def test_against_a_sheet(self, capsys, db, tmp_path, sheet):
        code, out, _ = run(capsys, "prices", "check", db, "--prices", sheet, "--format", "json")
        assert code == 1 and [m["model"] for m in json.loads(out)["uncovered"]] == ["gpt-4.1-mini"]
        full = tmp_path / "all.toml"
        full.write_text(ALL_MODELS)
        code, out, _ = run(capsys, "prices", "check", db, "--prices", full)
        assert code == 0 and "is covered by" in out

    def test_catalog_prices_known_models(self, capsys, db):
        code, out, _ = run(capsys, "prices", "check", db, "--catalog", "--format", "json")
        models = [m["model"] for m in json.loads(out)["uncovered"]]
        assert code == 1 and models == ["mystery-model"]  # the catalog knows gpt-4.1 and gpt-4.1-mini


class TestDemo:
    def test_missing_demo_module_is_a_clear_error(self, capsys, monkeypatch):
        monkeypatch.setitem(sys.modules, "a2a_llm_tracker._demo", None)  # as if the module were not shipped
        code, out, err = run(capsys, "demo")
        assert code == 2 and "a2a_llm_tracker._demo is missing" in err and err.count("\n") == 1

    def test_arguments_reach_the_demo(self, capsys):
        if importlib.util.find_spec("a2a_llm_tracker._demo") is None:
            pytest.skip("a2a_llm_tracker._demo is not written yet")
        code, out, _ = run(capsys, "demo", "--help")
        assert code == 0 and "--db" in out


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "report" in out and "reprice" in out and "exit codes" in out
    code, out, _ = run(capsys, "prices", "check", "--help")
    assert code == 0 and "exit code 1" in out


def test_python_dash_m_subprocess(db):
    """`python -m a2a_llm_tracker` is the same CLI; errors stay one line without a traceback."""
    proc = subprocess.run([sys.executable, "-m", "a2a_llm_tracker", "report", str(db), "--by", "model",
                           "--format", "json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar outside a terminal
    rows = {r["model"]: r for r in json.loads(proc.stdout)["rows"]}
    assert rows["mystery-model"]["cost_usd"] is None and rows["gpt-4.1"]["errors"] == 1
    proc = subprocess.run([sys.executable, "-m", "a2a_llm_tracker", "report", str(db), "--by", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
