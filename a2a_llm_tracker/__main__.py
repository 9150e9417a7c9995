"""``python -m a2a_llm_tracker``: the same command line as ``a2a-llm-tracker``."""

from __future__ import annotations as _annotations

from .cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
