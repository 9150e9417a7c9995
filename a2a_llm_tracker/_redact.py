"""Keep secrets out of everything the tracker writes (events, logs, exceptions, files)."""

from __future__ import annotations as _annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SECRET_KEYS", "redact_mapping", "scrub_secrets"]

#: Keys whose values are never written anywhere (matched case-insensitively, as substrings).
SECRET_KEYS = ("api_key", "apikey", "api-key", "authorization", "secret", "password", "token", "x-api-key",
               "access_key", "session_key", "credential", "cookie")

_PATTERNS = [
    # "Bearer xyz" / "Basic xyz" in headers or messages
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    # provider key shapes: sk-..., sk-ant-..., gsk_..., AIza..., xai-..., pk-lf-...
    re.compile(r"\b(sk|pk|rk|gsk|xai|sk-ant|sk-proj|pk-lf|sk-lf)[-_][A-Za-z0-9_-]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    # key=value / "key": "value" pairs whose key looks secret
    re.compile(
        r"(?i)([\"']?(?:api[_-]?key|client[_-]?secret|secret|password|access[_-]?token|refresh[_-]?token|token|authorization)"
        r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&})]{4,})"
    ),
]


# Every pattern above needs one of these (lower-cased) substrings: a cheap test that lets the
# common string (no secret at all) skip the regular expressions.
_MARKERS = ("bearer", "basic", "sk-", "sk_", "pk-", "pk_", "rk-", "rk_", "xai-", "xai_", "aiza", "akia",
            "key", "secret", "password", "token", "authorization")


def _may_hold_secret(text: str) -> bool:
    lowered = text.lower()
    for marker in _MARKERS:
        if marker in lowered:
            return True
    return False


def scrub_secrets(text: str) -> str:
    """Replace anything that looks like a credential in *text* with ``[REDACTED]``."""
    if not text or not _may_hold_secret(text):
        return text
    for pattern in _PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + "[REDACTED]", text)
        else:
            text = pattern.sub("[REDACTED]", text)
    return text


@functools.lru_cache(maxsize=4096)  # keys repeat (metadata and usage blocks have few distinct keys)
def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered.endswith(("_tokens", "_token_count", "_token_details", "_tokens_details")) or lowered in {
            "tokens", "max_tokens", "token_usage", "token_details"}:
        return False  # token *counts* (and usage blocks holding them) are not secrets
    return any(marker in lowered for marker in SECRET_KEYS)


_SCALARS = (int, float, bool, type(None))


def redact_mapping(value: Any, _depth: int = 0) -> Any:
    """Return a copy of *value* with secret-looking keys masked and secret-looking strings scrubbed."""
    if _depth > 20:
        return "[TRUNCATED]"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if type(key) is str else str(key)
            if _is_secret_key(name):
                out[name] = "[REDACTED]"
            elif type(item) is str:
                out[name] = scrub_secrets(item)
            elif type(item) in _SCALARS:
                out[name] = item
            else:
                out[name] = redact_mapping(item, _depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact_mapping(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_secrets(value)
    return value
