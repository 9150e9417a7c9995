"""Every script in examples/ runs offline and checks itself (exit code 0, "OK" as its last line).

Each example names what it needs in a ``# requires: module, module`` line near its top; an example
whose adapter module or framework is not installed is skipped with that reason. The scripts are
started together (a few at a time) in one fixture, since most of their time is spent importing
frameworks; each test then checks one script's result.
"""

from __future__ import annotations as _annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT = 180  # seconds per script (they take a few seconds on an idle machine)
_REQUIRES = re.compile(r"^# requires:(.*)$", re.MULTILINE)
# the fixture runs every script before the first test; pytest-timeout counts it against that test
pytestmark = pytest.mark.timeout(900)


@dataclass
class Outcome:
    """How one example ended."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    skipped: str | None = None


def _missing(script: Path) -> list[str]:
    match = _REQUIRES.search(script.read_text(encoding="utf-8"))
    needed = [m.strip() for m in match.group(1).split(",") if m.strip()] if match else []
    missing = []
    for module in needed:
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:  # a parent package is missing
            spec = None
        # no origin: a folder without __init__.py (a namespace package, or a module not written yet)
        if spec is None or spec.origin is None:
            missing.append(module)
    return missing


def _run(script: Path, workdir: Path) -> Outcome:
    missing = _missing(script)
    if missing:
        return Outcome(None, "", "", 0.0, skipped=f"{script.name} needs {', '.join(missing)}")
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and k not in ("CLIENT_ID", "CLIENT_SECRET")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["A2A_TRACKER_OUTBOX_DIR"] = str(workdir / "outbox")
    env["NO_COLOR"] = "1"
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, str(exc.stdout or ""), f"timed out after {TIMEOUT} s", time.monotonic() - start)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


@pytest.fixture(scope="module", name="outcomes")
def _outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    base = tmp_path_factory.mktemp("examples")
    workers = max(2, min(4, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {p.stem: pool.submit(_run, p, base / p.stem) for p in EXAMPLES}
    return {name: future.result() for name, future in futures.items()}


def test_there_are_examples() -> None:
    """The examples folder is not empty (a glob that finds nothing would skip everything silently)."""
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_example_runs(name: str, outcomes: dict[str, Outcome]) -> None:
    """The example exits 0 and prints OK; it ran in an empty folder with no API key and no network."""
    outcome = outcomes[name]
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    output = f"--- stdout\n{outcome.stdout}\n--- stderr\n{outcome.stderr}"
    assert outcome.returncode == 0, output
    assert outcome.stdout.strip().splitlines()[-1] == "OK", output
