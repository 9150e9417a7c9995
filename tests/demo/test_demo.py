"""The offline demo runs end to end in a subprocess: it prints the cost tables and fills ./usage.db."""

from __future__ import annotations as _annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# find_spec, not importorskip: importing litellm here would cost seconds the subprocesses pay anyway
pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("litellm") is None,
                       reason="the demo drives the LiteLLM wrapper: pip install a2a-llm-tracker[litellm]"),
    pytest.mark.skipif(not (ROOT / "a2a_llm_tracker" / "integrations" / "litellm.py").exists(),
                       reason="the LiteLLM wrapper (integrations/litellm.py) is not there yet"),
]


def _run(cwd: Path, *args: str, via_cli: bool = False, extra_env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE")}
    env.update(extra_env or {})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["A2A_TRACKER_OUTBOX_DIR"] = str(cwd / "outbox")
    env["NO_COLOR"] = "1"
    command = ["-m", "a2a_llm_tracker", "demo"] if via_cli else ["-m", "a2a_llm_tracker._demo"]
    return subprocess.run([sys.executable, *command, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=90)


@pytest.fixture(scope="module", name="demo")
def _demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    cwd = tmp_path_factory.mktemp("demo")
    return cwd, _run(cwd)


class TestDemo:
    def test_exits_zero_and_prints_the_db_path(self, demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
        """The demo succeeds and says where it recorded."""
        cwd, proc = demo
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert str((cwd / "usage.db").resolve()) in proc.stdout
        assert "0 lost" in proc.stdout

    def test_prints_cost_by_agent_and_by_model(self, demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
        """Both tables are printed, with every agent and model, and the unpriced model is not $0."""
        _, proc = demo
        out = proc.stdout
        assert "Cost by agent" in out and "Cost by model" in out
        by_agent = out.split("Cost by agent", 1)[1].split("Cost by model", 1)[0]
        for agent in ("planner", "researcher", "writer", "fact-checker"):
            assert agent in by_agent
        by_model = out.split("Cost by model", 1)[1]
        for model in ("gpt-4.1", "gpt-4.1-mini", "o4-mini", "newsroom-checker-7b"):
            assert model in by_model
        checker_line = next(line for line in by_agent.splitlines() if "fact-checker" in line)
        assert "unpriced" in checker_line and "$0.000000" not in checker_line
        planner_line = next(line for line in by_agent.splitlines() if line.lstrip().startswith("planner"))
        assert "$" in planner_line

    def test_db_holds_every_call_attributed_and_priced(self, demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
        """usage.db has one row per call: 4 sessions x 6 calls, with users, sessions, cache and reasoning."""
        cwd, _ = demo
        con = sqlite3.connect(cwd / "usage.db")
        con.row_factory = sqlite3.Row
        first_trace = con.execute("SELECT trace_id FROM usage_events ORDER BY ts LIMIT 1").fetchone()[0]
        rows = [dict(r) for r in con.execute("SELECT * FROM usage_events WHERE trace_id = ?", (first_trace,))]
        con.close()
        assert len(rows) == 4 * 6
        assert {r["user_id"] for r in rows} == {"alice", "bob", "carol"}
        assert len({r["session_id"] for r in rows}) == 4
        assert len({r["trace_id"] for r in rows}) == 1
        assert {r["framework"] for r in rows} == {"litellm"}
        by_agent: dict[str, list[dict]] = {}
        for r in rows:
            by_agent.setdefault(r["agent_id"], []).append(r)
        assert sorted(by_agent) == ["fact-checker", "planner", "researcher", "writer"]
        assert len(by_agent["researcher"]) == 12 and len(by_agent["planner"]) == 4
        assert all(r["cached_input_tokens"] == 1024 for r in by_agent["planner"])
        assert all(r["reasoning_tokens"] == 384 for r in by_agent["writer"])
        assert all(r["stream"] for r in by_agent["writer"])
        assert sum(bool(r["stream"]) for r in by_agent["researcher"]) == 4
        for r in rows:
            assert r["accuracy"] == "exact" and r["status"] == "ok"
            assert r["input_tokens"] > 0 and r["output_tokens"] > 0
        for agent in ("planner", "researcher", "writer"):
            assert all(r["cost_usd"] > 0 and r["cost_source"] == "pricing" for r in by_agent[agent])
        assert all(r["cost_usd"] is None and r["cost_source"] is None for r in by_agent["fact-checker"])
        # the planner's price: uncached input at $2/M, cache reads at $0.50/M, output at $8/M
        p = by_agent["planner"][0]
        expected = ((p["input_tokens"] - 1024) * 2.0 + 1024 * 0.5 + p["output_tokens"] * 8.0) / 1e6
        assert p["cost_usd"] == pytest.approx(expected)

    def test_second_run_reports_only_itself(self, demo: tuple[Path, subprocess.CompletedProcess[str]],
                                            tmp_path: Path) -> None:
        """The CLI's demo --db names the file; a second run into the same file keeps both runs, and reports only its own."""
        cwd, first = demo
        db = cwd / "usage.db"
        second = _run(tmp_path, "--db", str(db), via_cli=True)  # python -m a2a_llm_tracker demo --db ...
        assert second.returncode == 0, second.stdout + second.stderr
        con = sqlite3.connect(db)
        assert con.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0] == 48
        assert con.execute("SELECT COUNT(DISTINCT trace_id) FROM usage_events").fetchone()[0] == 2
        con.close()
        assert first.stdout.split("Cost by agent", 1)[1] == second.stdout.split("Cost by agent", 1)[1]
        assert not (tmp_path / "usage.db").exists()

    def test_live_without_key_fails_clearly(self, tmp_path: Path) -> None:
        """--live without OPENAI_API_KEY exits 2 with a message naming the variable."""
        proc = _run(tmp_path, "--live")
        assert proc.returncode == 2
        assert "OPENAI_API_KEY" in proc.stderr


def test_live_mode_runs_one_session_against_the_configured_openai_endpoint(tmp_path: Path) -> None:
    """--live takes its endpoint from the environment like any OpenAI client; pointed at the mock it runs
    one session of the same agents on gpt-4.1-nano, with max_tokens set, priced at the list price."""
    from a2a_llm_tracker.mock_provider import MockProvider

    with MockProvider() as server:
        proc = _run(tmp_path, "--live", extra_env={"OPENAI_API_KEY": "mock-key", "OPENAI_BASE_URL": server.base_url})
        requests = [r.json for r in server.requests if r.path.endswith("/chat/completions")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Cost by agent" in proc.stdout and "gpt-4.1-nano" in proc.stdout
    assert len(requests) == 6 and {r["model"] for r in requests} == {"gpt-4.1-nano"}
    assert all(r["max_tokens"] == 200 for r in requests)
    con = sqlite3.connect(tmp_path / "usage.db")
    rows = con.execute("SELECT agent_id, cost_usd, cost_source FROM usage_events").fetchall()
    con.close()
    assert len(rows) == 6 and all(cost is not None and source == "pricing" for _, cost, source in rows)
