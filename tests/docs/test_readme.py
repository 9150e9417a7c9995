"""The Python snippets of the README run as written, in order, against the local mock provider."""

from __future__ import annotations as _annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NEEDED = ("litellm", "openai", "anthropic", "google.genai", "langchain_openai")

pytestmark = [
    pytest.mark.skipif(any(importlib.util.find_spec(m.split(".")[0]) is None for m in NEEDED),
                       reason=f"the README snippets need {', '.join(NEEDED)}: pip install -e '.[dev]'"),
    pytest.mark.timeout(300),
]


@pytest.fixture(scope="module", name="run")
def _run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    cwd = tmp_path_factory.mktemp("readme")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["A2A_TRACKER_OUTBOX_DIR"] = str(cwd / "outbox")
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("_run_readme.py")), str(README)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return cwd, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


class TestReadme:
    def test_every_snippet_ran(self, run: tuple[Path, dict, str]) -> None:
        """All Python blocks not marked "not run" executed (about twenty)."""
        _, result, out = run
        assert len(result["ran"]) >= 15
        assert "Tracked: " in out and "tokens, $" in out  # the OpenAI direct-analysis print

    def test_every_call_was_recorded_once(self, run: tuple[Path, dict, str]) -> None:
        """usage.jsonl holds one event per model call the snippets made, with what the provider billed."""
        from a2a_llm_tracker.sinks.jsonl import read_jsonl

        cwd, result, _ = run
        events = list(read_jsonl(cwd / "usage.jsonl"))
        billed = result["billed"]
        assert len(events) == len(billed) == 10, [e.model for e in events]
        assert sorted(e.input_tokens for e in events) == sorted(b["input_tokens"] for b in billed)
        assert {e.framework for e in events} >= {"litellm", "langchain"}
        assert all(e.project == "my-a2a-system" and e.accuracy == "exact" for e in events)

    def test_attribution_and_prices(self, run: tuple[Path, dict, str]) -> None:
        """The context snippet attributes its call; priced models are priced, unpriced ones stay None."""
        from a2a_llm_tracker.sinks.jsonl import read_jsonl

        cwd, _, _ = run
        events = list(read_jsonl(cwd / "usage.jsonl"))
        planned = [e for e in events if e.agent_id == "planner-agent"]
        assert len(planned) == 1 and (planned[0].session_id, planned[0].user_id) == ("session-123", "user-456")
        for event in events:
            model = (event.model or "").split("/")[-1]
            if model in ("gpt-4.1", "gpt-4o-mini"):
                assert event.cost_source == "pricing" and event.cost_usd > 0, event
            else:  # the README never prices the Gemini and Claude models: unpriced, not $0
                assert event.cost_usd is None, event
        assert sum(e.stream for e in events) == 2
