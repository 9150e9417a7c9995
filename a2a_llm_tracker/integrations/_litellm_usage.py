"""LiteLLM usage → :class:`~a2a_llm_tracker._events.Usage` (no litellm import here).

LiteLLM normalises every provider to an OpenAI-shaped ``Usage``: ``prompt_tokens`` **already
includes** cache reads and writes (for Anthropic LiteLLM adds them back), and
``completion_tokens`` includes reasoning (for Gemini LiteLLM adds ``thoughtsTokenCount``). The
cache counts appear both in ``prompt_tokens_details`` (``cached_tokens``, ``cache_write_tokens``
/ ``cache_creation_tokens``) and as top-level Anthropic-style ``cache_read_input_tokens`` /
``cache_creation_input_tokens``: they are read once, as subsets, never added on top.

Responses-API and image usage (``input_tokens`` / ``output_tokens``) is read the same way.
Works on a ``litellm.Usage`` / ``ResponseAPIUsage`` object or on its dict form (the
``usage_object`` of LiteLLM's standard logging payload), so the LiteLLM analyzer can reuse it.
"""

from __future__ import annotations as _annotations

from collections.abc import Mapping
from typing import Any

from .._events import Usage

__all__ = ["litellm_usage", "litellm_usage_cost", "usage_is_zero"]


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _first(*values: Any) -> int | None:
    for value in values:
        count = _count(value)
        if count is not None:
            return count
    return None


def _raw(usage: Any) -> dict[str, Any] | None:
    if isinstance(usage, Mapping):
        return dict(usage)
    dump = getattr(usage, "model_dump", None)
    if callable(dump):
        try:
            out = dump(exclude_none=True)
        except Exception:  # noqa: BLE001 - a broken object must not break tracking
            return None
        return out if isinstance(out, dict) else None
    return None


def usage_is_zero(usage: Any) -> bool:
    """True when every headline count is 0 or absent.

    LiteLLM returns ``Usage(0, 0, 0)`` when the provider sent no usage at all; a real call always
    has at least one prompt token, so such a usage means "not reported".
    """
    return not any(
        _count(_get(usage, name))
        for name in ("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens")
    )


def litellm_usage_cost(usage: Any) -> float | None:
    """The cost LiteLLM attached to a usage object (stream usage chunks carry ``usage.cost``)."""
    cost = _get(usage, "cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        return float(cost)
    return None


def litellm_usage(usage: Any, *, keep_raw: bool = True) -> Usage | None:
    """Normalise a LiteLLM usage (object or dict) to the inclusive usage contract.

    Args:
        usage: ``response.usage`` of a LiteLLM ``ModelResponse`` / ``EmbeddingResponse`` /
            ``ResponsesAPIResponse`` / ``ImageResponse``, a stream's final usage chunk, or the
            ``usage_object`` dict of the standard logging payload.
        keep_raw: store the usage as a dict in ``raw_usage`` (for audit).

    Returns:
        The usage, or None when *usage* is missing or all-zero (not reported).
    """
    if usage is None or usage_is_zero(usage):
        return None
    details: dict[str, int | float] = {}
    if _get(usage, "prompt_tokens") is not None or _get(usage, "completion_tokens") is not None:
        inp, out = _count(_get(usage, "prompt_tokens")), _count(_get(usage, "completion_tokens"))
        pd, cd = _get(usage, "prompt_tokens_details"), _get(usage, "completion_tokens_details")
    else:
        inp, out = _count(_get(usage, "input_tokens")), _count(_get(usage, "output_tokens"))
        pd, cd = _get(usage, "input_tokens_details"), _get(usage, "output_tokens_details")
    cached = _first(_get(pd, "cached_tokens"), _get(usage, "cache_read_input_tokens"))
    write = _first(_get(pd, "cache_write_tokens"), _get(pd, "cache_creation_tokens"),
                   _get(usage, "cache_creation_input_tokens"))
    reasoning = _count(_get(cd, "reasoning_tokens"))
    ttl = _get(pd, "cache_creation_token_details") or _get(usage, "cache_creation")
    for key, name in (("ephemeral_5m_input_tokens", "cache_write_5m"), ("ephemeral_1h_input_tokens", "cache_write_1h")):
        value = _count(_get(ttl, key))
        if value:
            details[name] = value
    for src, key, name in ((pd, "audio_tokens", "audio_input_tokens"), (pd, "image_tokens", "image_input_tokens"),
                           (cd, "audio_tokens", "audio_output_tokens"), (cd, "image_tokens", "image_output_tokens"),
                           (cd, "accepted_prediction_tokens", "accepted_prediction_tokens"),
                           (cd, "rejected_prediction_tokens", "rejected_prediction_tokens")):
        value = _count(_get(src, key))
        if value:
            details[name] = value
    web = _count(_get(_get(usage, "server_tool_use"), "web_search_requests"))
    if web:
        details["web_search_requests"] = web
    # Subsets that a provider quirk made larger than their totals are dropped, not trusted.
    if inp is not None and (cached or 0) + (write or 0) > inp:
        cached = write = None
    if out is not None and reasoning is not None and reasoning > out:
        reasoning = None
    return Usage(input_tokens=inp, output_tokens=out, total_tokens=_count(_get(usage, "total_tokens")),
                 cached_input_tokens=cached, cache_write_tokens=write, reasoning_tokens=reasoning,
                 token_details=details, raw_usage=_raw(usage) if keep_raw else None)
