"""Small helpers shared by the LangChain and LlamaIndex adapters (no framework imports here).

* :func:`usage_from_raw` reads a provider's raw usage object (OpenAI chat / Responses, Anthropic,
  Gemini shapes, as a dict or an SDK object) into a :class:`Usage` under the inclusive contract.
  It defers to :mod:`a2a_llm_tracker.analyzers` when that package offers a usage reader.
* :func:`build_event` / :func:`event_from` build a validated :class:`UsageEvent` and never lose the call: if the reported
  counts break the usage contract, the subsets are dropped (the raw usage is kept) and it logs why.
"""

from __future__ import annotations as _annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .._events import Usage, UsageEvent

__all__ = ["as_dict", "build_event", "endpoint_host", "event_from", "usage_from_raw"]

logger = logging.getLogger("a2a_llm_tracker")

_SUBSET_FIELDS = ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens")


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


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _numeric_details(prefix: str, details: Any, skip: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    if isinstance(details, Mapping):
        for key, value in details.items():
            count = _count(value)
            if count is not None and key not in skip:
                out[f"{prefix}{key}"] = count
    return out


def usage_from_raw(raw: Any) -> Usage | None:
    """Normalise a provider usage object (dict or SDK object) to the inclusive contract.

    Recognises OpenAI chat completions (``prompt_tokens``), OpenAI Responses and Anthropic
    (``input_tokens``; Anthropic's cache counts are *outside* its ``input_tokens`` and are added
    back), and Gemini (``prompt_token_count`` / ``promptTokenCount``). Returns None when *raw*
    holds no token count.
    """
    data = as_dict(raw)
    if not data:
        return None
    shared = _analyzer_usage(data)
    if shared is not None:
        return shared
    if "prompt_tokens" in data or "completion_tokens" in data:
        return _openai_chat(data)
    if "input_tokens" in data or "output_tokens" in data:
        if "cache_read_input_tokens" in data or "cache_creation_input_tokens" in data or "cache_creation" in data:
            return _anthropic(data)
        return _responses(data)
    if any(k in data for k in ("prompt_token_count", "promptTokenCount", "candidates_token_count",
                               "candidatesTokenCount")):
        return _gemini(data)
    return None


def _analyzer_usage(data: dict[str, Any]) -> Usage | None:
    """The shared analyzers' reading of *data* (one convention for every adapter), None if unavailable."""
    try:
        from ..analyzers.anthropic import anthropic_usage
        from ..analyzers.gemini import gemini_usage
        from ..analyzers.openai import chat_usage
    except ImportError:  # pragma: no cover - analyzers are part of the package; local readers as a fallback
        return None
    warnings: list[str] = []
    try:
        if "cache_read_input_tokens" in data or "cache_creation_input_tokens" in data or (
                "input_tokens" in data and isinstance(data.get("cache_creation"), Mapping)):
            usage = anthropic_usage(data, warnings)
        elif any(k in data for k in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")):
            usage = chat_usage(data, warnings)
        elif any(k in data for k in ("prompt_token_count", "promptTokenCount", "candidates_token_count",
                                     "candidatesTokenCount")):
            usage = gemini_usage(data, warnings)
        else:
            return None
    except Exception:  # noqa: BLE001 - fall back to the local readers
        logger.debug("a2a_llm_tracker: analyzer could not read usage", exc_info=True)
        return None
    if warnings:
        logger.debug("a2a_llm_tracker: usage warnings: %s", "; ".join(warnings))
    return None if usage.is_empty else usage


def _sub(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = d.get(key)
    return value if isinstance(value, Mapping) else {}


def _openai_chat(d: dict[str, Any]) -> Usage:
    inp, out = _count(d.get("prompt_tokens")), _count(d.get("completion_tokens"))
    pd = _sub(d, "prompt_tokens_details")
    cd = _sub(d, "completion_tokens_details")
    details: dict[str, int | float] = {**_numeric_details("input_", pd, ("cached_tokens", "cache_write_tokens", "audio_tokens")),
               **_numeric_details("output_", cd, ("reasoning_tokens", "audio_tokens"))}
    if _count(pd.get("audio_tokens")) is not None:
        details["input_audio_tokens"] = _count(pd.get("audio_tokens"))  # type: ignore[assignment]
    if _count(cd.get("audio_tokens")) is not None:
        details["output_audio_tokens"] = _count(cd.get("audio_tokens"))  # type: ignore[assignment]
    return Usage(input_tokens=inp, output_tokens=out, total_tokens=_count(d.get("total_tokens")),
                 cached_input_tokens=_count(pd.get("cached_tokens")),
                 cache_write_tokens=_count(pd.get("cache_write_tokens")),
                 reasoning_tokens=_count(cd.get("reasoning_tokens")), token_details=details, raw_usage=d)


def _responses(d: dict[str, Any]) -> Usage:
    idt = _sub(d, "input_tokens_details")
    odt = _sub(d, "output_tokens_details")
    details: dict[str, int | float] = {**_numeric_details("input_", idt, ("cached_tokens",)),
               **_numeric_details("output_", odt, ("reasoning_tokens",))}
    return Usage(input_tokens=_count(d.get("input_tokens")), output_tokens=_count(d.get("output_tokens")),
                 total_tokens=_count(d.get("total_tokens")), cached_input_tokens=_count(idt.get("cached_tokens")),
                 reasoning_tokens=_count(odt.get("reasoning_tokens")), token_details=details, raw_usage=d)


def _anthropic(d: dict[str, Any]) -> Usage:
    uncached, out = _count(d.get("input_tokens")), _count(d.get("output_tokens"))
    read, write = _count(d.get("cache_read_input_tokens")), _count(d.get("cache_creation_input_tokens"))
    details: dict[str, int | float] = {}
    ttl = d.get("cache_creation")
    if isinstance(ttl, Mapping):
        w5, w1 = _count(ttl.get("ephemeral_5m_input_tokens")), _count(ttl.get("ephemeral_1h_input_tokens"))
        if w5 is not None:
            details["cache_write_5m"] = w5
        if w1 is not None:
            details["cache_write_1h"] = w1
        if write is None and (w5 is not None or w1 is not None):
            write = (w5 or 0) + (w1 or 0)
    inp = None if uncached is None else uncached + (read or 0) + (write or 0)
    return Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=read, cache_write_tokens=write,
                 token_details=details, raw_usage=d)


def _gemini(d: dict[str, Any]) -> Usage:
    def get(snake: str, camel: str) -> int | None:
        return _count(d.get(snake, d.get(camel)))

    prompt = get("prompt_token_count", "promptTokenCount")
    tool = get("tool_use_prompt_token_count", "toolUsePromptTokenCount")
    cand = get("candidates_token_count", "candidatesTokenCount")
    thoughts = get("thoughts_token_count", "thoughtsTokenCount")
    inp = None if prompt is None else prompt + (tool or 0)
    out = None if cand is None and thoughts is None else (cand or 0) + (thoughts or 0)
    details: dict[str, int | float] = {"tool_use_prompt_tokens": tool} if tool is not None else {}
    return Usage(input_tokens=inp, output_tokens=out, total_tokens=get("total_token_count", "totalTokenCount"),
                 cached_input_tokens=get("cached_content_token_count", "cachedContentTokenCount"),
                 reasoning_tokens=thoughts, token_details=details, raw_usage=d)


def build_event(**fields: Any) -> UsageEvent:
    """A validated :class:`UsageEvent` from *fields*; counts that break the contract do not lose the event.

    When the subsets exceed their totals (a provider quirk), they are dropped, the raw usage is
    kept for audit and ``metadata["usage_warning"]`` says what was wrong.
    """
    return event_from(fields)


def event_from(fields: dict[str, Any]) -> UsageEvent:
    """:func:`build_event` taking the fields as one dict (the adapters' hot path: no re-packing).

    Pass only the fields that have a value: an omitted field takes its default without running
    its validator, which is what keeps this cheap.
    """
    try:
        return UsageEvent.model_validate(fields)
    except ValueError as exc:
        if not any(fields.get(name) is not None for name in _SUBSET_FIELDS):
            raise
        logger.warning("a2a_llm_tracker: inconsistent usage reported for %s (%s); recording totals only",
                       fields.get("model"), exc.__class__.__name__)
        fixed = {**fields, **dict.fromkeys(_SUBSET_FIELDS)}
        fixed["metadata"] = {**(fields.get("metadata") or {}), "usage_warning": "subset counts exceeded totals"}
        return UsageEvent.model_validate(fixed)


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
