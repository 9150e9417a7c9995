"""The distributions build offline, pass ``twine check``, and the wheel ships the package only, no secrets."""

from __future__ import annotations as _annotations

import importlib.util
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# things that look like credentials (the mock provider and tests use obviously fake keys)
SECRET_PATTERNS = [
    re.compile(rb"sk-(?:proj-)?[A-Za-z0-9_-]{32,}"),          # OpenAI
    re.compile(rb"sk-ant-[A-Za-z0-9_-]{32,}"),               # Anthropic
    re.compile(rb"AKIA[0-9A-Z]{16}"),                        # AWS access key id
    re.compile(rb"AIza[0-9A-Za-z_-]{35}"),                   # Google API key
    re.compile(rb"gh[pousr]_[A-Za-z0-9]{36}"),               # GitHub token
    re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]
FORBIDDEN_NAMES = re.compile(r"(^|/)(tests?|examples|benchmarks|docs)/|(^|/)\.env|\.db$|\.sqlite$|\.jsonl$|"
                             r"__pycache__|\.pyc$|(^|/)\.venv/")


def _version() -> str:
    text = (ROOT / "a2a_llm_tracker" / "_version.py").read_text(encoding="utf-8")
    match = re.fullmatch(r'__version__ = "([^"]+)"\n', text)
    assert match, "a2a_llm_tracker/_version.py must hold exactly one line: __version__ = \"X.Y.Z\""
    return match.group(1)


@pytest.fixture(scope="module", name="dists")
def _dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for module in ("build", "hatchling", "twine"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("dist")
    # no build isolation: the backend (hatchling) comes from the dev extra, so no network is needed
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


class TestPackage:
    def test_twine_check_passes(self, dists: dict[str, Path]) -> None:
        """``twine check`` accepts both distributions (metadata and README render)."""
        proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dists.values())],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("PASSED") == 2, proc.stdout

    def test_version_from_one_place(self, dists: dict[str, Path]) -> None:
        """The wheel's version is a2a_llm_tracker/_version.py's, and the changelog's latest entry."""
        version = _version()
        assert dists["wheel"].name == f"a2a_llm_tracker-{version}-py3-none-any.whl"
        with zipfile.ZipFile(dists["wheel"]) as zf:
            metadata = zf.read(f"a2a_llm_tracker-{version}.dist-info/METADATA").decode()
        assert f"\nVersion: {version}\n" in metadata
        changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        first = re.search(r"^## \[?([0-9][^\]\s]*)", changelog, re.MULTILINE)
        assert first and first.group(1) == version, "CHANGELOG.md's first release heading must be the version"

    def test_wheel_holds_the_package_only(self, dists: dict[str, Path]) -> None:
        """Only a2a_llm_tracker/ and its dist-info: no tests, examples, docs, databases or caches."""
        with zipfile.ZipFile(dists["wheel"]) as zf:
            names = zf.namelist()
            entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        tops = {n.split("/", 1)[0] for n in names}
        assert tops == {"a2a_llm_tracker", f"a2a_llm_tracker-{_version()}.dist-info"}, tops
        bad = [n for n in names if FORBIDDEN_NAMES.search(n)]
        assert bad == [], bad
        for needed in ("a2a_llm_tracker/__init__.py", "a2a_llm_tracker/py.typed", "a2a_llm_tracker/_demo.py",
                       "a2a_llm_tracker/mock_provider.py", "a2a_llm_tracker/cli.py"):
            assert needed in names
        assert "a2a-llm-tracker = a2a_llm_tracker.cli:main" in entry_points

    def test_no_secrets_in_the_distributions(self, dists: dict[str, Path]) -> None:
        """No file of the wheel, nor of the sdist outside tests/, holds something shaped like a real credential."""
        found: list[str] = []
        with zipfile.ZipFile(dists["wheel"]) as zf:
            for name in zf.namelist():
                data = zf.read(name)
                found += [f"{name}: {p.pattern!r}" for p in SECRET_PATTERNS if p.search(data)]
        with tarfile.open(dists["sdist"]) as tf:
            for member in tf.getmembers():
                if not member.isfile():
                    continue
                assert not re.search(r"(^|/)\.env$|\.db$|\.sqlite$", member.name), member.name
                if "/tests/" in member.name:
                    continue  # tests plant key-shaped fakes on purpose, to check they are redacted
                data = tf.extractfile(member).read()  # type: ignore[union-attr]
                found += [f"{member.name}: {p.pattern!r}" for p in SECRET_PATTERNS if p.search(data)]
        assert found == []

    def test_patterns_catch_a_planted_key(self) -> None:
        """The secret scan is not vacuous: it finds a key-shaped string."""
        planted = b'api_key = "sk-' + b"A1b2C3d4" * 5 + b'"'
        assert any(p.search(planted) for p in SECRET_PATTERNS)
