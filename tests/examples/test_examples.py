"""Every script in examples/ runs offline and checks itself (exit code 0, "OK" as its last line).

Each example names what it needs in a ``# requires: module, module`` line near its top; an example
whose adapter module or framework is not installed is skipped with that reason.
"""

from __future__ import annotations as _annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
_REQUIRES = re.compile(r"^# requires:(.*)$", re.MULTILINE)


def _missing(script: Path) -> list[str]:
    match = _REQUIRES.search(script.read_text(encoding="utf-8"))
    needed = [m.strip() for m in match.group(1).split(",") if m.strip()] if match else []
    missing = []
    for module in needed:
        try:
            spec = importlib.util.find_spec(module)
            # a folder without __init__.py yet (a namespace package) is work in progress, not a module
            if spec is None or spec.origin is None:
                missing.append(module)
        except ModuleNotFoundError:  # a parent package is missing
            missing.append(module)
    return missing


def test_there_are_examples() -> None:
    """The examples folder is not empty (a glob that finds nothing would skip everything silently)."""
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script: Path, tmp_path: Path) -> None:
    """The example exits 0 and prints OK; it ran in an empty folder with no API key and no network."""
    missing = _missing(script)
    if missing:
        pytest.skip(f"{script.name} needs {', '.join(missing)}")
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and k not in ("CLIENT_ID", "CLIENT_SECRET")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["A2A_TRACKER_OUTBOX_DIR"] = str(tmp_path / "outbox")
    env["NO_COLOR"] = "1"
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=90)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert proc.stdout.strip().splitlines()[-1] == "OK", output
