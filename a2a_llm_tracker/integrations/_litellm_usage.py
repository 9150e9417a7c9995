"""LiteLLM usage → :class:`~a2a_llm_tracker._events.Usage` (no litellm import here).

LiteLLM normalises every provider to an OpenAI-shaped ``Usage``: ``prompt_tokens`` **already
includes** cache reads and writes (for Anthropic LiteLLM adds them back), and
``completion_tokens`` includes reasoning (for Gemini LiteLLM adds ``thoughtsTokenCount``). The
cache counts appear both in ``prompt_tokens_details`` (``cached_tokens``, ``cache_write_tokens``
/ ``cache_creation_tokens``) and as top-level Anthropic-style ``cache_read_input_tokens`` /
``cache_creation_input_tokens``: they are read once, as subsets, never added on top.

Responses-API and image usage (``input_tokens`` / ``output_tokens``) is read the same way.
Works on a ``litellm.Usage`` / ``ResponseAPIUsage`` object or on its dict form (the
``usage_object`` of LiteLLM's standard logging payload). The reading itself is the analyzer's
(:func:`a2a_llm_tracker.analyzers.litellm.litellm_usage`); this module adds the wrapper's hot-path
parts: a cheap mapping view of the pydantic objects, the all-zero "not reported" check and the
raw-usage copy.
"""

from __future__ import annotations as _annotations

import logging
from collections.abc import Mapping
from typing import Any

from .._events import Usage
from ..analyzers.litellm import litellm_usage as _analyzer_usage

logger = logging.getLogger("a2a_llm_tracker")

__all__ = ["as_map", "field", "litellm_usage", "litellm_usage_cost", "usage_is_zero"]


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``, None when absent; fast on pydantic models.

    A missing attribute on a pydantic model costs ~13 µs (its ``__getattr__`` builds an
    AttributeError); reading ``__dict__`` / ``__pydantic_extra__`` first avoids that.
    """
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    d = getattr(obj, "__dict__", None)
    if d is not None:
        if name in d:
            return d[name]
        extra = getattr(obj, "__pydantic_extra__", None)
        if extra and name in extra:
            return extra[name]
        cls = type(obj)
        key = (cls, name)
        absent = _ABSENT.get(key)
        if absent is None:
            # Nothing on the class (no property, no method) defines it: the instance dicts were enough.
            absent = hasattr(cls, "__pydantic_fields__") and not any(name in vars(k) for k in cls.__mro__)
            if len(_ABSENT) < 10_000:
                _ABSENT[key] = absent
        if absent:
            return None
    return getattr(obj, name, None)


_ABSENT: dict[tuple[type, str], bool] = {}



def _count(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _plain(value: Any, depth: int = 0) -> Any:
    # Plain JSON-ready data from dicts and pydantic objects (their __dict__ + extras); None dropped.
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if depth > 6:
        return None
    m = as_map(value) if not isinstance(value, list | tuple) else None
    if m is None:
        return [_plain(v, depth + 1) for v in value]
    if not m and not isinstance(value, Mapping):
        return None
    return {str(k): p for k, v in m.items() if not str(k).startswith("_") and (p := _plain(v, depth + 1)) is not None}


def _raw(usage: Any) -> dict[str, Any] | None:
    out = _plain(usage)
    return out if isinstance(out, dict) and out else None


def as_map(obj: Any) -> Mapping[str, Any]:
    """A read-only mapping view of a dict or a pydantic object (fields + extras), {} otherwise."""
    if obj is None:
        return _EMPTY
    if type(obj) is dict or isinstance(obj, Mapping):
        return obj
    d = getattr(obj, "__dict__", None)
    if d is None:
        return _EMPTY
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**d, **extra} if extra else d


_EMPTY: Mapping[str, Any] = {}


def usage_is_zero(usage: Any) -> bool:
    """True when every headline count is 0 or absent.

    LiteLLM returns ``Usage(0, 0, 0)`` when the provider sent no usage at all; a real call always
    has at least one prompt token, so such a usage means "not reported".
    """
    u = as_map(usage)
    return not any(
        _count(u.get(name))
        for name in ("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens")
    )


def litellm_usage_cost(usage: Any) -> float | None:
    """The cost LiteLLM attached to a usage object (stream usage chunks carry ``usage.cost``)."""
    cost = as_map(usage).get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        return float(cost)
    return None


# The nested objects the analyzer reads (the TTL split sits inside the prompt details).
_NESTED = ("prompt_tokens_details", "completion_tokens_details", "input_tokens_details", "output_tokens_details",
           "server_tool_use", "cache_creation")


def _view(u: Mapping[str, Any]) -> Mapping[str, Any]:
    """*u* with the nested detail objects the analyzer reads as mappings (plain dicts are not copied).

    The analyzer reads mappings; the pydantic objects LiteLLM returns are viewed through their
    ``__dict__`` (far cheaper than ``model_dump``) so the wrapper's hot path stays fast.
    """
    nested: dict[str, Any] = {}
    for key in _NESTED:
        value = u.get(key)
        if value is not None and not isinstance(value, dict):
            nested[key] = as_map(value)
    pd = nested.get("prompt_tokens_details") or u.get("prompt_tokens_details")
    if isinstance(pd, Mapping):
        split = pd.get("cache_creation_token_details")
        if split is not None and not isinstance(split, dict):
            nested["prompt_tokens_details"] = {**pd, "cache_creation_token_details": as_map(split)}
    return {**u, **nested} if nested else u


def litellm_usage(usage: Any, *, keep_raw: bool = True) -> Usage | None:
    """Normalise a LiteLLM usage (object or dict) to the inclusive usage contract.

    The reading is :func:`a2a_llm_tracker.analyzers.litellm.litellm_usage` (one convention for
    the wrapper, the callback and :func:`~a2a_llm_tracker.analyze_response`).

    Args:
        usage: ``response.usage`` of a LiteLLM ``ModelResponse`` / ``EmbeddingResponse`` /
            ``ResponsesAPIResponse`` / ``ImageResponse``, a stream's final usage chunk, or the
            ``usage_object`` dict of the standard logging payload.
        keep_raw: store the usage as a dict in ``raw_usage`` (for audit).

    Returns:
        The usage, or None when *usage* is missing or all-zero (not reported).
    """
    u = as_map(usage)
    if not u or usage_is_zero(u):
        return None
    warnings: list[str] = []
    result = _analyzer_usage(_view(u), warnings, raw_usage=_raw(usage) if keep_raw else None)
    if warnings:
        logger.debug("a2a_llm_tracker: LiteLLM usage warnings: %s", "; ".join(warnings))
    return result
