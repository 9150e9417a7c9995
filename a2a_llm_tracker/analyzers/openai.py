"""OpenAI wire formats: Chat Completions, Responses API, legacy Completions, embeddings, images.

OpenAI already uses the inclusive convention: ``prompt_tokens`` / ``input_tokens`` include cached
and cache-write tokens, ``completion_tokens`` / ``output_tokens`` include reasoning. The
``*_details`` objects are optional (compatible servers leave them out): absent stays None.
The OpenAI-compatible providers (Mistral, Groq, Together, LiteLLM) reuse :func:`chat_usage`.
"""

from __future__ import annotations as _annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._events import Usage
from ._common import Analysis, Payload, as_count, as_str, dig, finalize_usage, get, is_mapping

__all__ = ["chat_counts", "chat_usage", "error_analysis", "parse_openai", "parse_openai_error", "responses_usage"]

PROVIDER = "openai"

# detail key -> token_details key
_INPUT_DETAILS = {"audio_tokens": "input_audio_tokens", "image_tokens": "input_image_tokens"}
_OUTPUT_DETAILS = {"audio_tokens": "output_audio_tokens", "image_tokens": "output_image_tokens",
                   "accepted_prediction_tokens": "accepted_prediction_tokens",
                   "rejected_prediction_tokens": "rejected_prediction_tokens"}
_TTL_DETAILS = {"ttl_30m_tokens": "cache_write_30m", "ttl_12h_tokens": "cache_write_12h"}


def _reader(obj: Mapping[str, Any]) -> Callable[[str], Any]:
    """``key -> value`` for *obj*: ``dict.get`` for a plain dict (cheap), else the tolerant :func:`get`."""
    if type(obj) is dict:
        return obj.get
    return lambda key: get(obj, key)


def _count(at: Callable[[str], Any], keys: tuple[str, ...], warnings: list[str]) -> int | None:
    """The first valid count among *keys* (what :func:`first_count` does, through a reader)."""
    for key in keys:
        raw = at(key)
        if raw is not None:
            count = as_count(raw, key, warnings)
            if count is not None:
                return count
    return None


def _details_into(details: dict[str, int], at: Callable[[str], Any], names: Mapping[str, str],
                  warnings: list[str]) -> None:
    for key, name in names.items():
        raw = at(key)
        if raw is not None:
            value = as_count(raw, key, warnings)
            if value is not None:
                details[name] = value


def chat_usage(usage: Any, warnings: list[str]) -> Usage:
    """Normalise an OpenAI-shaped usage object (Chat Completions keys, or Responses keys)."""
    if not is_mapping(usage):
        return Usage()
    return finalize_usage(**chat_counts(usage, warnings), raw_usage=dict(usage), warnings=warnings)


def chat_counts(usage: Mapping[str, Any], warnings: list[str]) -> dict[str, Any]:
    """The :func:`finalize_usage` arguments (counts and ``token_details``) of an OpenAI-shaped usage.

    For readers that add to the OpenAI reading (LiteLLM) before the contract is enforced once.
    """
    # Hot path (the LiteLLM wrapper reads every call's usage here): plain dicts are read with dict.get.
    at = _reader(usage)
    inp = _count(at, ("prompt_tokens", "input_tokens"), warnings)
    out = _count(at, ("completion_tokens", "output_tokens"), warnings)
    total = _count(at, ("total_tokens",), warnings)
    in_details = at("prompt_tokens_details") or at("input_tokens_details")
    out_details = at("completion_tokens_details") or at("output_tokens_details")
    cached = write = reasoning = None
    details: dict[str, int] = {}
    if is_mapping(in_details):
        at = _reader(in_details)
        cached = _count(at, ("cached_tokens",), warnings)
        write = _count(at, ("cache_write_tokens",), warnings)
        _details_into(details, at, _INPUT_DETAILS, warnings)
        ttl = at("cache_write_tokens_details")
        if is_mapping(ttl):
            _details_into(details, _reader(ttl), _TTL_DETAILS, warnings)
    if is_mapping(out_details):
        at = _reader(out_details)
        reasoning = _count(at, ("reasoning_tokens",), warnings)
        _details_into(details, at, _OUTPUT_DETAILS, warnings)
    if total is not None and inp is not None and out is not None and total > inp + out:
        # OpenAI-compatible servers (Gemini's) count hidden thinking in the total only: billed output.
        details["hidden_output_tokens"] = total - inp - out
        out = total - inp
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": total, "cached_input_tokens": cached,
            "cache_write_tokens": write, "reasoning_tokens": reasoning, "token_details": details}


def responses_usage(response: Any, warnings: list[str]) -> Usage:
    """Usage of a Responses API object, plus its built-in tool usage (web search, image gen)."""
    usage = chat_usage(get(response, "usage"), warnings)
    tool_usage = get(response, "tool_usage")
    if not is_mapping(tool_usage) or usage.is_empty:
        return usage
    extra = dict(usage.token_details)
    searches = as_count(dig(tool_usage, "web_search", "num_requests"), "web_search.num_requests", warnings)
    if searches is not None:
        extra["web_search_requests"] = searches
    for key in ("input_tokens", "output_tokens"):
        value = as_count(dig(tool_usage, "image_gen", key), f"image_gen.{key}", warnings)
        if value is not None:
            extra[f"image_gen_{key}"] = value
    return finalize_usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                          total_tokens=usage.total_tokens, cached_input_tokens=usage.cached_input_tokens,
                          cache_write_tokens=usage.cache_write_tokens, reasoning_tokens=usage.reasoning_tokens,
                          token_details=extra, raw_usage=usage.raw_usage, warnings=warnings)


def error_analysis(provider: str, error: Any, *, request_id: str | None = None,
                   default_type: str = "api_error") -> Analysis:
    """An error event from an ``{"error": {...}}``-style body (OpenAI and the compatible APIs)."""
    if not is_mapping(error):
        return Analysis(provider=provider, status="error", error_type=default_type,
                        error_message=as_str(error, 2000), request_id=request_id)
    metadata: dict[str, Any] = {}
    code = as_str(get(error, "code"))
    if code:
        metadata["error_code"] = code
    param = as_str(get(error, "param"))
    if param:
        metadata["error_param"] = param
    status_code = get(error, "status_code")
    if isinstance(status_code, int) and not isinstance(status_code, bool):
        metadata["http_status"] = status_code
    error_type = as_str(get(error, "type")) or as_str(get(error, "status")) or code or default_type
    return Analysis(provider=provider, status="error", error_type=error_type,
                    error_message=as_str(get(error, "message"), 2000), request_id=request_id, metadata=metadata)


def parse_openai_error(data: Any, provider: str, request_id: str | None) -> Analysis | None:
    """The error analysis when *data* is an error body, else None."""
    error = get(data, "error")
    if is_mapping(error) and error and get(data, "choices") is None and get(data, "usage") is None:
        return error_analysis(provider, error, request_id=request_id)
    if isinstance(error, str) and error and get(data, "choices") is None:
        return error_analysis(provider, {"message": error, "type": as_str(get(data, "type"))},
                              request_id=request_id)
    return None


def _operation(data: Mapping[str, Any]) -> str:
    obj = get(data, "object")
    if obj == "response":
        return "responses"
    if obj == "text_completion":
        return "completion"
    items = get(data, "data")
    if isinstance(items, list) and items and is_mapping(items[0]):
        if "embedding" in items[0] or get(items[0], "object") == "embedding":
            return "embedding"
        if any(k in items[0] for k in ("b64_json", "url", "revised_prompt")):
            return "image"
    if obj == "list" and get(data, "choices") is None:
        return "embedding"
    if get(data, "choices") is None and is_mapping(get(data, "usage")) and "input_tokens" in get(data, "usage"):
        if "output" in data or "status" in data:
            return "responses"
        return "image" if "data" in data else "responses"
    return "chat"


def parse_openai(p: Payload, *, provider: str = PROVIDER) -> Analysis:
    """Analyse an OpenAI response body (any operation) or error body."""
    data = p.data
    if not is_mapping(data):
        return Analysis(provider=provider, readable=False,
                        warnings=(f"expected a JSON object, got {type(data).__name__}",))
    error = parse_openai_error(data, provider, p.request_id)
    if error is not None:
        return error
    warnings: list[str] = []
    operation = _operation(data)
    model = as_str(get(data, "model"))
    request_id = p.request_id or as_str(get(data, "id"))
    metadata: dict[str, Any] = {}
    for key in ("service_tier", "system_fingerprint"):
        value = as_str(get(data, key))
        if value:
            metadata[key] = value
    if operation == "responses":
        usage = responses_usage(data, warnings)
        status = as_str(get(data, "status"))
        finish = as_str(dig(data, "incomplete_details", "reason")) or status
        if status == "failed":
            err = get(data, "error")
            analysis = error_analysis(provider, err if is_mapping(err) else {"message": "response failed"},
                                      request_id=request_id)
            return analysis.with_(usage=usage, model=model, response_model=model, operation=operation,
                                  metadata={**metadata, **analysis.metadata})
    else:
        usage = chat_usage(get(data, "usage"), warnings)
        finish = as_str(dig(data, "choices", 0, "finish_reason"))
    if "hidden_output_tokens" in usage.token_details:
        metadata["output_derivation"] = "total_minus_prompt"
    if get(data, "usage") is None and operation != "embedding":
        warnings.append("the response has no usage object")
    return Analysis(provider=provider, operation=operation, usage=usage, model=model, response_model=model,
                    finish_reason=finish, request_id=request_id, metadata=metadata, warnings=tuple(warnings))
