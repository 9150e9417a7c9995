"""Cohere chat: v1 (``meta.billed_units``) and v2 (``usage.billed_units``), plus embed/rerank units.

The tracker records what is **billed**: ``billed_units.input_tokens`` / ``output_tokens``. The
tokens the model processed (template and system tokens Cohere adds) go to ``token_details`` as
``input_tokens_processed`` / ``output_tokens_processed``. ``cached_tokens`` is kept as
``token_details["cache_hit_tokens"]`` and NOT as ``cached_input_tokens``: Cohere does not document
how it relates to the billed input (a recorded payload has 2928 cached for 2406 billed).
Cohere responses carry no model name: pass ``model_override``. The SDK types counts as floats.
"""

from __future__ import annotations as _annotations

from typing import Any

from .._events import Usage
from ._common import Analysis, Payload, as_count, as_str, finalize_usage, first, get, is_mapping

__all__ = ["cohere_usage", "parse_cohere", "parse_cohere_response"]

PROVIDER = "cohere"
_UNIT_KEYS = ("search_units", "classifications", "images", "image_tokens")


def cohere_usage(usage: Any, warnings: list[str]) -> Usage:
    """Normalise a Cohere ``usage`` (v2) or ``meta`` (v1) object."""
    if not is_mapping(usage):
        return Usage()
    billed = get(usage, "billed_units")
    processed = get(usage, "tokens")
    inp = out = None
    details: dict[str, int] = {}
    if is_mapping(billed):
        inp = as_count(get(billed, "input_tokens"), "billed_units.input_tokens", warnings)
        out = as_count(get(billed, "output_tokens"), "billed_units.output_tokens", warnings)
        for key in _UNIT_KEYS:
            value = as_count(get(billed, key), f"billed_units.{key}", warnings)
            if value is not None:
                details[key] = value
    if is_mapping(processed):
        for key in ("input_tokens", "output_tokens"):
            value = as_count(get(processed, key), f"tokens.{key}", warnings)
            if value is not None:
                details[f"{key}_processed"] = value
    cache_hits = as_count(get(usage, "cached_tokens"), "cached_tokens", warnings)
    if cache_hits is not None:
        details["cache_hit_tokens"] = cache_hits
    return finalize_usage(input_tokens=inp, output_tokens=out, token_details=details, raw_usage=dict(usage),
                          warnings=warnings)


def parse_cohere_response(data: Any, *, request_id: str | None = None, stream: bool = False) -> Analysis:
    """Analyse a Cohere v1 or v2 response body (chat or embed), or an error body."""
    if not is_mapping(data):
        return Analysis(provider=PROVIDER, readable=False, stream=stream,
                        warnings=(f"expected a JSON object, got {type(data).__name__}",))
    usage_obj = get(data, "usage") if is_mapping(get(data, "usage")) else get(data, "meta")
    finish = as_str(get(data, "finish_reason"))
    message = get(data, "message")
    if usage_obj is None and finish is None and isinstance(message, str) and not get(data, "text"):
        # error bodies: {"message": "..."} (v1 and v2), sometimes with an id
        return Analysis(provider=PROVIDER, status="error", stream=stream,
                        error_type=as_str(get(data, "type")) or "api_error", error_message=as_str(message, 2000),
                        request_id=request_id or as_str(get(data, "id")))
    warnings: list[str] = []
    if usage_obj is None:
        warnings.append("the response has no usage/meta object")
    usage = cohere_usage(usage_obj, warnings)
    operation = "embedding" if get(data, "embeddings") is not None else "chat"
    if get(data, "results") is not None and get(data, "embeddings") is None:
        operation = "rerank"
    metadata: dict[str, Any] = {}
    api_version = as_str(first(get(usage_obj, "api_version"), "version")) if is_mapping(usage_obj) else None
    if api_version:
        metadata["api_version"] = api_version
    if finish == "ERROR":
        return Analysis(provider=PROVIDER, operation=operation, usage=usage, status="error",
                        error_type="generation_error", error_message=as_str(get(data, "error_message"), 2000),
                        finish_reason=finish, stream=stream,
                        request_id=request_id or as_str(first(data, "response_id", "id")), metadata=metadata)
    return Analysis(provider=PROVIDER, operation=operation, usage=usage, finish_reason=finish,
                    request_id=request_id or as_str(first(data, "response_id", "id", "generation_id")),
                    metadata=metadata, stream=stream, warnings=tuple(warnings))


def parse_cohere(p: Payload) -> Analysis:
    """Analyse a Cohere response given as a :class:`Payload`."""
    return parse_cohere_response(p.data, request_id=p.request_id)
