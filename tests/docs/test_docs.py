"""The documentation builds without a warning, lists every page, and its generated schema is current."""

from __future__ import annotations as _annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
NOT_PAGES: set[str] = set()


def _nav_files(nav: object) -> list[str]:
    files: list[str] = []
    if isinstance(nav, str):
        files.append(nav)
    elif isinstance(nav, list):
        for item in nav:
            files += _nav_files(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            files += _nav_files(value)
    return files


def _load_nav() -> list[str]:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with mkdocs: pip install a2a-llm-tracker[docs]")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return _nav_files(config["nav"])


class TestDocs:
    def test_event_schema_is_current(self) -> None:
        """docs/event-schema.json is what docs/gen_schema.py generates from UsageEvent now."""
        sys.path.insert(0, str(DOCS))
        try:
            import gen_schema
        finally:
            sys.path.remove(str(DOCS))
        committed = gen_schema.SCHEMA_PATH.read_text(encoding="utf-8")
        assert committed == gen_schema.render_schema(), "run: python docs/gen_schema.py"
        assert '"input_tokens"' in committed and '"cost_source"' in committed

    def test_schema_page_names_every_field(self) -> None:
        """docs/schema.md documents every UsageEvent field."""
        from a2a_llm_tracker import UsageEvent

        page = (DOCS / "schema.md").read_text(encoding="utf-8")
        missing = [name for name in UsageEvent.model_fields if f"| `{name}` |" not in page]
        assert missing == []

    def test_recorded_event_validates_against_schema(self) -> None:
        """An attributed, priced event as a sink stores it validates against the published schema."""
        jsonschema = pytest.importorskip("jsonschema")
        from a2a_llm_tracker import Meter, PricingRegistry
        from a2a_llm_tracker.sinks.memory import MemorySink

        pricing = PricingRegistry()
        pricing.set_price("openai", "gpt-4.1", 2.0, 8.0, cached_input_per_million=0.5)
        with Meter(pricing=pricing, sinks=[MemorySink()], background=False) as meter:
            event = meter.record(provider="openai", model="gpt-4.1", input_tokens=1000, cached_input_tokens=400,
                                 output_tokens=50, reasoning_tokens=10, agent_id="planner",
                                 token_details={"cache_write_5m": 0}, metadata={"step": 1})
        schema = json.loads((DOCS / "event-schema.json").read_text(encoding="utf-8"))
        jsonschema.validate(event.to_record(), schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**event.to_record(), "input_tokens": "many"}, schema)

    def test_nav_lists_exactly_the_pages(self) -> None:
        """Every Markdown page under docs/ is in mkdocs.yml's nav, and every nav entry exists."""
        nav = _load_nav()
        pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")} - NOT_PAGES
        assert sorted(set(nav) - pages) == [], "nav names pages that do not exist"
        assert sorted(pages - set(nav)) == [], "pages missing from mkdocs.yml nav"
        assert len(nav) == len(set(nav)), "a page is listed twice in nav"

    def test_mkdocs_build_strict(self, tmp_path: Path) -> None:
        """``mkdocs build --strict`` succeeds with no warning (API reference included)."""
        if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
            pytest.skip("mkdocs is not installed: pip install a2a-llm-tracker[docs]")
        site = tmp_path / "site"
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output
        assert "WARNING" not in output, output
        assert (site / "index.html").exists()
        api = (site / "api" / "index.html").read_text(encoding="utf-8")
        assert "PricingRegistry" in api and "set_price" in api  # generated from docstrings
        assert (site / "event-schema.json").exists()
