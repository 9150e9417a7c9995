"""LiteLLM ``ModelResponse`` (OpenAI-shaped, already normalised by LiteLLM).

``usage.prompt_tokens`` **already includes** cache reads and writes for every provider, so the
top-level ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` and the
``prompt_tokens_details`` cache counts are subsets and are never added on top. The provider and
LiteLLM's own cost come from ``_hidden_params`` (``custom_llm_provider``, ``response_cost``); the
cost is passed on as ``cost_source="provider"`` (used only when the Meter has
``use_provider_cost=True`` and no user price).
"""

from __future__ import annotations as _annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .._events import Usage
from ._common import Analysis, Payload, as_count, as_number, as_str, dig, finalize_usage, get, is_mapping
from .openai import chat_counts, parse_openai

__all__ = ["litellm_usage", "parse_litellm"]

PROVIDER = None  # the real provider comes from _hidden_params or the model prefix


_TTL_KEYS = (("ephemeral_5m_input_tokens", "cache_write_5m"), ("ephemeral_1h_input_tokens", "cache_write_1h"),
             ("ephemeral_30m_input_tokens", "cache_write_30m"), ("ephemeral_12h_input_tokens", "cache_write_12h"))


def litellm_usage(usage: Any, warnings: list[str], *, raw_usage: Any = ...) -> Usage:
    """Normalise a LiteLLM ``Usage`` (cache already folded into ``prompt_tokens``).

    Args:
        usage: the usage as a mapping (nested details as mappings too).
        warnings: problems met while reading are appended here.
        raw_usage: what to keep as ``raw_usage`` (default: ``dict(usage)``; None keeps nothing).
    """
    if not is_mapping(usage):
        return Usage()
    parts = chat_counts(usage, warnings)
    details_obj = get(usage, "prompt_tokens_details")
    if parts["cached_input_tokens"] is None:
        parts["cached_input_tokens"] = as_count(get(usage, "cache_read_input_tokens"), "cache_read_input_tokens",
                                                warnings)
    if parts["cache_write_tokens"] is None and is_mapping(details_obj):
        parts["cache_write_tokens"] = as_count(get(details_obj, "cache_creation_tokens"), "cache_creation_tokens",
                                               warnings)
    if parts["cache_write_tokens"] is None:
        parts["cache_write_tokens"] = as_count(get(usage, "cache_creation_input_tokens"),
                                               "cache_creation_input_tokens", warnings)
    details = parts["token_details"]
    split = get(details_obj, "cache_creation_token_details") if is_mapping(details_obj) else None
    if not is_mapping(split):
        split = get(usage, "cache_creation")  # the Anthropic-style top-level TTL split
    if is_mapping(split):
        for key, name in _TTL_KEYS:
            value = as_count(get(split, key), key, warnings)
            if value is not None:
                details[name] = value
    tools = get(usage, "server_tool_use")
    if is_mapping(tools):
        value = as_count(get(tools, "web_search_requests"), "web_search_requests", warnings)
        if value is not None:
            details["web_search_requests"] = value
    return finalize_usage(**parts, raw_usage=dict(usage) if raw_usage is ... else raw_usage, warnings=warnings)


def _provider(hidden: Mapping[str, Any] | None, model: str | None) -> str | None:
    provider = as_str(get(hidden, "custom_llm_provider")) if hidden else None
    if provider:
        return provider
    if model and "/" in model:
        return model.split("/", 1)[0]
    return None


def parse_litellm(p: Payload) -> Analysis:
    """Analyse a LiteLLM ``ModelResponse`` (or its ``model_dump()``)."""
    data = p.data
    hidden = p.hidden or (get(data, "_hidden_params") if is_mapping(get(data, "_hidden_params")) else None)
    model = as_str(get(data, "model"))
    provider = _provider(hidden, model)
    request_id = p.request_id
    headers = get(hidden, "additional_headers") if hidden else None
    if is_mapping(headers):
        request_id = request_id or as_str(headers.get("llm_provider-x-request-id")) or as_str(
            headers.get("llm_provider-request-id"))
    analysis = parse_openai(Payload(data, sdk=p.sdk, request_id=request_id), provider=provider or "litellm")
    if analysis.status != "ok" or not is_mapping(data):
        return analysis.with_(provider=provider)
    warnings = list(analysis.warnings)
    usage = litellm_usage(get(data, "usage"), warnings) if analysis.operation == "chat" else analysis.usage
    cost = as_number(get(hidden, "response_cost")) if hidden else None
    if cost is None:
        cost = as_number(dig(data, "usage", "cost"))
    metadata = dict(analysis.metadata)
    usage_obj = get(data, "usage")
    for key in ("service_tier", "inference_geo", "speed"):  # Anthropic pricing modifiers LiteLLM keeps in usage
        value = as_str(get(usage_obj, key)) if is_mapping(usage_obj) else None
        if value and key not in metadata:
            metadata[key] = value
    if hidden and as_str(get(hidden, "model_id")):
        metadata["litellm_model_id"] = as_str(get(hidden, "model_id"))
    return replace(analysis, provider=provider, usage=usage, cost_usd=cost, metadata=metadata,
                   warnings=tuple(warnings))
