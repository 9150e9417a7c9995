"""The AutoGen adapter imports only autogen-core, and says how to install it when it is missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("autogen_core")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_missing_autogen_raises_adapter_unavailable_with_hint() -> None:
    """Without autogen-core the import fails with AdapterUnavailable naming the extra."""
    proc = _run("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("autogen_core", "autogen_agentchat", "autogen_ext"):
                    raise ImportError(f"blocked {name}")
                return None
        sys.meta_path.insert(0, Block())
        import a2a_llm_tracker
        from a2a_llm_tracker.exceptions import AdapterUnavailable
        try:
            import a2a_llm_tracker.integrations.autogen
        except AdapterUnavailable as exc:
            assert isinstance(exc, ImportError)
            print("HINT:", exc)
        """)
    assert proc.returncode == 0, proc.stderr
    assert "pip install a2a-llm-tracker[autogen]" in proc.stdout


def test_adapter_import_is_light() -> None:
    """Importing the adapter loads autogen-core but no autogen-ext, openai or anthropic."""
    proc = _run("""
        import sys
        import a2a_llm_tracker
        assert not any(m.startswith("autogen") for m in sys.modules), "import a2a_llm_tracker loaded autogen"
        import a2a_llm_tracker.integrations.autogen
        heavy = sorted({m.split(".")[0] for m in sys.modules} & {"autogen_ext", "openai", "anthropic", "litellm"})
        print("HEAVY:", heavy)
        """)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY: []" in proc.stdout
