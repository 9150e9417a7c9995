"""Small helpers shared by the LangChain and LlamaIndex adapters (no framework imports here).

* :func:`usage_from_raw` reads a provider's raw usage object (OpenAI chat / Responses, Anthropic,
  Gemini shapes, as a dict or an SDK object) into a :class:`Usage` under the inclusive contract.
  It is a dispatcher over the :mod:`a2a_llm_tracker.analyzers` usage readers (no reader of its own).

Adapters build their events with :func:`a2a_llm_tracker._events.event_from` (through the Meter).
"""

from __future__ import annotations as _annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .._events import Usage
from ..analyzers.anthropic import anthropic_usage
from ..analyzers.gemini import gemini_usage
from ..analyzers.openai import chat_usage

__all__ = ["as_dict", "endpoint_host", "usage_from_raw"]

logger = logging.getLogger("a2a_llm_tracker")

def as_dict(obj: Any) -> dict[str, Any] | None:
    """*obj* as a plain dict: a Mapping, a pydantic model (``model_dump``) or an object's ``__dict__``."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            out = dump()
            return out if isinstance(out, dict) else None
        except Exception:  # noqa: BLE001 - a broken SDK object must not break tracking
            return None
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        try:
            out = to_dict()
            return out if isinstance(out, dict) else None
        except Exception:  # noqa: BLE001
            return None
    return None


# Keys only Anthropic's usage has (its Responses-like input_tokens / output_tokens are shared with OpenAI).
_ANTHROPIC_KEYS = ("cache_read_input_tokens", "cache_creation_input_tokens", "server_tool_use")
_GEMINI_KEYS = ("prompt_token_count", "promptTokenCount", "candidates_token_count", "candidatesTokenCount")
_OPENAI_KEYS = ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")


def usage_from_raw(raw: Any) -> Usage | None:
    """Normalise a provider usage object (dict or SDK object) to the inclusive contract.

    The reading is the analyzers' (one convention for every adapter): Anthropic shapes (cache
    counts, which sit *outside* its ``input_tokens``, are added back) go to
    :func:`~a2a_llm_tracker.analyzers.anthropic.anthropic_usage`, OpenAI chat / Responses shapes
    to :func:`~a2a_llm_tracker.analyzers.openai.chat_usage`, Gemini shapes to
    :func:`~a2a_llm_tracker.analyzers.gemini.gemini_usage`. Returns None when *raw* holds no
    token count.
    """
    data = as_dict(raw)
    if not data:
        return None
    warnings: list[str] = []
    if any(k in data for k in _ANTHROPIC_KEYS) or (
            "input_tokens" in data and isinstance(data.get("cache_creation"), Mapping)):
        usage = anthropic_usage(data, warnings)
    elif any(k in data for k in _OPENAI_KEYS):
        usage = chat_usage(data, warnings)
    elif any(k in data for k in _GEMINI_KEYS):
        usage = gemini_usage(data, warnings)
    else:
        return None
    if warnings:
        logger.debug("a2a_llm_tracker: usage warnings: %s", "; ".join(warnings))
    return None if usage.is_empty else usage


@functools.lru_cache(maxsize=256)
def _host(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}" if parts.scheme else f"{parts.hostname}{port}"


def endpoint_host(url: Any) -> str | None:
    """``scheme://host[:port]`` of a base URL (no credentials, path or query), or None."""
    if not isinstance(url, str) or not url:
        return None
    return _host(url)
