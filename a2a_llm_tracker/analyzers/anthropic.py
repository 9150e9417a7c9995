"""Anthropic Messages API (also the body of Bedrock InvokeModel and Vertex rawPredict).

Anthropic reports ``input_tokens`` as the *uncached* part only; cache reads and writes come
separately. Normalised input = ``input_tokens + cache_read_input_tokens +
cache_creation_input_tokens``. ``output_tokens`` already includes thinking. There is no total.
"""

from __future__ import annotations as _annotations

from typing import Any

from .._events import Usage
from ._common import Analysis, Payload, as_count, as_str, finalize_usage, get, is_mapping

__all__ = ["anthropic_usage", "parse_anthropic", "parse_anthropic_message"]

PROVIDER = "anthropic"
_METADATA_KEYS = ("service_tier", "inference_geo", "speed")


def anthropic_usage(usage: Any, warnings: list[str]) -> Usage:
    """Normalise an Anthropic ``usage`` object to the inclusive convention."""
    if not is_mapping(usage):
        return Usage()
    uncached = as_count(get(usage, "input_tokens"), "input_tokens", warnings)
    read = as_count(get(usage, "cache_read_input_tokens"), "cache_read_input_tokens", warnings)
    write = as_count(get(usage, "cache_creation_input_tokens"), "cache_creation_input_tokens", warnings)
    out = as_count(get(usage, "output_tokens"), "output_tokens", warnings)
    parts = [v for v in (uncached, read, write) if v is not None]
    inp = sum(parts) if parts else None
    details: dict[str, int] = {}
    split = get(usage, "cache_creation")
    if is_mapping(split):
        for key, name in (("ephemeral_5m_input_tokens", "cache_write_5m"),
                          ("ephemeral_1h_input_tokens", "cache_write_1h")):
            value = as_count(get(split, key), key, warnings)
            if value is not None:
                details[name] = value
    tools = get(usage, "server_tool_use")
    if is_mapping(tools):
        for key, raw in tools.items():
            if str(key).endswith("_requests"):
                value = as_count(raw, f"server_tool_use.{key}", warnings)
                if value is not None:
                    details[str(key)] = value
    thinking = get(usage, "output_tokens_details")
    reasoning = as_count(get(thinking, "thinking_tokens"), "thinking_tokens", warnings) if is_mapping(thinking) else None
    return finalize_usage(input_tokens=inp, output_tokens=out, cached_input_tokens=read, cache_write_tokens=write,
                          reasoning_tokens=reasoning, token_details=details, raw_usage=dict(usage),
                          warnings=warnings)


def parse_anthropic_message(data: Any, *, provider: str = PROVIDER, request_id: str | None = None,
                            stream: bool = False) -> Analysis:
    """Analyse an Anthropic Messages body (or error body)."""
    if not is_mapping(data):
        return Analysis(provider=provider, readable=False, stream=stream,
                        warnings=(f"expected a JSON object, got {type(data).__name__}",))
    if get(data, "type") == "error" or (is_mapping(get(data, "error")) and get(data, "usage") is None):
        error = get(data, "error")
        return Analysis(provider=provider, status="error", stream=stream,
                        error_type=as_str(get(error, "type")) or "api_error",
                        error_message=as_str(get(error, "message"), 2000),
                        request_id=request_id or as_str(get(data, "request_id")))
    warnings: list[str] = []
    usage_obj = get(data, "usage")
    if usage_obj is None:
        warnings.append("the message has no usage object")
    usage = anthropic_usage(usage_obj, warnings)
    model = as_str(get(data, "model"))
    metadata: dict[str, Any] = {}
    if is_mapping(usage_obj):
        for key in _METADATA_KEYS:
            value = as_str(get(usage_obj, key))
            if value:
                metadata[key] = value
    return Analysis(provider=provider, usage=usage, model=model, response_model=model,
                    finish_reason=as_str(get(data, "stop_reason")),
                    request_id=request_id or as_str(get(data, "id")), metadata=metadata, stream=stream,
                    warnings=tuple(warnings))


def parse_anthropic(p: Payload, *, provider: str = PROVIDER) -> Analysis:
    """Analyse an Anthropic response given as a :class:`Payload`."""
    return parse_anthropic_message(p.data, provider=provider, request_id=p.request_id)
