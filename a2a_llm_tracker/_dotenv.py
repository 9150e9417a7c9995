"""A tiny ``.env`` reader for the CCS credentials (python-dotenv is not a dependency).

Only a fixed set of keys is read, and a variable already set in the environment always wins.
"""

from __future__ import annotations as _annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CCS_ENV_KEYS", "load_env_file", "parse_env_file"]

logger = logging.getLogger("a2a_llm_tracker")

#: The variables the CCS integration reads (from the environment, or a ``.env`` file).
CCS_ENV_KEYS = ("CLIENT_ID", "CLIENT_SECRET", "CCS_SERVER_URL", "CCS_NODE_URL", "CLIENT_SERVER",
                "CCS_APPLICATION_NAME", "CCS_ENTITY_ID")


def parse_env_file(path: str | Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (``export`` prefix, quotes and ``#`` comments allowed)."""
    values: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:  # an unquoted value may carry a trailing comment
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def load_env_file(path: str | Path = ".env", keys: Iterable[str] = CCS_ENV_KEYS) -> dict[str, str]:
    """Copy *keys* found in the ``.env`` file at *path* into ``os.environ`` unless already set.

    Set ``A2A_TRACKER_NO_DOTENV=1`` to skip it. Returns what was copied (names only are logged).
    """
    if os.environ.get("A2A_TRACKER_NO_DOTENV"):
        return {}
    wanted = set(keys)
    found = {k: v for k, v in parse_env_file(path).items() if k in wanted}
    copied = {k: v for k, v in found.items() if k not in os.environ}
    os.environ.update(copied)
    if copied:
        logger.debug("a2a_llm_tracker: read %s from %s", ", ".join(sorted(copied)), path)
    return copied
