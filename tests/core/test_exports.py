"""The public surface: sorted, complete, lazy (importing the package loads no SDK or framework)."""

from __future__ import annotations

import subprocess
import sys

import a2a_llm_tracker

HEAVY = ("litellm", "langchain", "langchain_core", "llama_index", "autogen_core", "autogen_agentchat", "openai",
         "anthropic", "google", "ccs", "genai_prices", "psycopg", "opentelemetry", "rich", "httpx", "starlette")


def test_all_is_sorted_and_unique():
    assert a2a_llm_tracker.__all__ == sorted(set(a2a_llm_tracker.__all__))


def test_every_export_resolves():
    missing = []
    for name in a2a_llm_tracker.__all__:
        try:
            getattr(a2a_llm_tracker, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name}: {exc}")
    assert not missing, missing


def test_unknown_attribute_is_an_attribute_error():
    try:
        a2a_llm_tracker.DoesNotExist  # noqa: B018
    except AttributeError as exc:
        assert "DoesNotExist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_loads_nothing_heavy():
    """Modules the bare interpreter already loads (e.g. a namespace-package .pth) are not ours."""
    code = (
        "import sys\n"
        "baseline = set(sys.modules)\n"
        "import a2a_llm_tracker\n"
        "from a2a_llm_tracker import Meter, PricingRegistry, UsageEvent, meter_context, set_context, get_context\n"
        "from a2a_llm_tracker.sinks.sqlite import SQLiteSink\n"
        "from a2a_llm_tracker.sinks.jsonl import JSONLSink\n"
        f"heavy = {HEAVY!r}\n"
        "print(','.join(sorted(m for m in set(sys.modules) - baseline if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import a2a_llm_tracker loaded: {out}"


def test_every_module_declares_all():
    """Read the sources (importing every adapter would load every framework)."""
    import ast
    from pathlib import Path

    root = Path(a2a_llm_tracker.__file__).parent
    missing = []
    for path in sorted(root.rglob("*.py")):
        if path.name in ("__main__.py", "_version.py"):  # _version.py: one line, read by the build
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {t.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                 if isinstance(t, ast.Name)}
        if "__all__" not in names:
            missing.append(str(path.relative_to(root)))
    assert not missing, f"modules without __all__: {missing}"
