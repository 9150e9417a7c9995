"""Run the Python blocks of a Markdown file in order, in one namespace, against the local mock provider.

Used by test_readme.py in a subprocess: ``python _run_readme.py FILE``. Blocks preceded by an
``<!-- not run ... -->`` comment are skipped. Top-level ``await`` works (as in a notebook).
The SDKs and LiteLLM reach the mock through their standard base-URL environment variables, so the
snippets run exactly as written. Prints one JSON line: the blocks run and what the mock billed.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import re
import sys
from pathlib import Path

FENCE = re.compile(r"(<!--[^\n]*-->\s*\n)?```python\n(.*?)```", re.DOTALL)


def blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of each Python block to run."""
    out = []
    for match in FENCE.finditer(text):
        comment = match.group(1) or ""
        if comment.startswith("<!-- not run"):
            continue
        out.append((text.count("\n", 0, match.start(2)) + 1, match.group(2)))
    return out


def main() -> None:
    source = Path(sys.argv[1])
    from a2a_llm_tracker.mock_provider import MockProvider

    with MockProvider(reply="Hello there, nice to meet you.") as server:
        os.environ.update({
            "OPENAI_API_KEY": "mock-key", "OPENAI_BASE_URL": server.base_url, "OPENAI_API_BASE": server.base_url,
            "ANTHROPIC_API_KEY": "mock-key", "ANTHROPIC_BASE_URL": server.url,
            "GEMINI_API_KEY": "mock-key", "GOOGLE_API_KEY": "mock-key", "GOOGLE_GEMINI_BASE_URL": server.url,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        })
        namespace: dict = {"__name__": "__readme__"}
        loop = asyncio.new_event_loop()
        ran = []
        for line, code in blocks(source.read_text(encoding="utf-8")):
            compiled = compile(code, f"{source.name}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(compiled, namespace)  # noqa: S307 - our own documentation
            if inspect.iscoroutine(result):
                loop.run_until_complete(result)
            ran.append(line)
        meter = namespace.get("meter")
        if meter is not None:
            meter.close()
        loop.close()
        billed = list(server.billed)
    sys.stdout.write("\n" + json.dumps({"ran": ran, "billed": billed}) + "\n")


if __name__ == "__main__":
    main()
