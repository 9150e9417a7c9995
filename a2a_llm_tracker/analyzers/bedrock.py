"""AWS Bedrock: Converse / ConverseStream (camelCase ``usage``) and InvokeModel (provider body).

Converse ``inputTokens`` **excludes** cache reads and writes (Anthropic style), so normalised
input = ``inputTokens + cacheReadInputTokens + cacheWriteInputTokens``; ``totalTokens`` already
includes them. The response names no model: the event's model comes from ``model_override`` or
``metadata["model_id"]`` (the request's ``modelId``). InvokeModel bodies are read per model
family: the Anthropic Messages schema (the common case), Nova (Converse-like ``usage``), Llama
and Titan; otherwise the ``X-Amzn-Bedrock-*-Token-Count`` headers are used.

A boto3 ``invoke_model`` response holds a ``StreamingBody`` that can be read only once: the
analyzer reads it and puts a fresh, readable body back into the dict, so the caller can still
``json.loads(resp["body"].read())`` afterwards.
"""

from __future__ import annotations as _annotations

import io
import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from .._events import Usage
from ._common import (
    Analysis,
    Payload,
    as_count,
    as_number,
    as_str,
    dig,
    finalize_usage,
    first_count,
    get,
    is_mapping,
    payload,
)
from .anthropic import parse_anthropic_message

__all__ = ["bedrock_usage", "converse_analysis", "parse_bedrock", "parse_bedrock_raw", "read_body"]

PROVIDER = "bedrock"
_HEADER_PREFIX = "x-amzn-bedrock-"


def bedrock_usage(usage: Any, warnings: list[str]) -> Usage:
    """Normalise a Converse ``usage`` (or the same shape inside a Nova InvokeModel body)."""
    if not is_mapping(usage):
        return Usage()
    uncached = first_count(usage, ("inputTokens",), warnings)
    read = first_count(usage, ("cacheReadInputTokens", "cacheReadInputTokenCount"), warnings)
    write = first_count(usage, ("cacheWriteInputTokens", "cacheWriteInputTokenCount"), warnings)
    out = first_count(usage, ("outputTokens",), warnings)
    total = first_count(usage, ("totalTokens",), warnings)
    parts = [v for v in (uncached, read, write) if v is not None]
    details: dict[str, int] = {}
    cache_details = get(usage, "cacheDetails")
    if isinstance(cache_details, list):
        for item in cache_details:
            ttl = as_str(get(item, "ttl"))
            count = as_count(get(item, "inputTokens"), "cacheDetails.inputTokens", warnings)
            if ttl and count is not None:
                name = f"cache_write_{ttl.lower()}"
                details[name] = details.get(name, 0) + count
    tools = get(usage, "serverToolUsage")
    if is_mapping(tools):
        for key, raw in tools.items():
            value = as_count(raw, f"serverToolUsage.{key}", warnings)
            if value is not None:
                details[_snake(str(key))] = value
    return finalize_usage(input_tokens=sum(parts) if parts else None, output_tokens=out, total_tokens=total,
                          cached_input_tokens=read, cache_write_tokens=write, token_details=details,
                          raw_usage=dict(usage), warnings=warnings)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _headers(data: Any) -> Mapping[str, Any]:
    headers = dig(data, "ResponseMetadata", "HTTPHeaders")
    if not is_mapping(headers):
        return {}
    return {str(k).lower(): v for k, v in headers.items()}


def _request_id(data: Any) -> str | None:
    return as_str(dig(data, "ResponseMetadata", "RequestId")) or as_str(_headers(data).get("x-amzn-requestid"))


def read_body(response: Any) -> Any:
    """The decoded JSON body of an InvokeModel response; a consumed stream is replaced by a fresh one."""
    body = get(response, "body")
    if body is None:
        return None
    raw: Any = body
    if hasattr(body, "read") and callable(body.read):
        data = body.read()
        if isinstance(response, MutableMapping):
            response["body"] = _fresh_body(body, data)
        raw = data
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw if is_mapping(raw) else None


def _fresh_body(original: Any, data: bytes) -> Any:
    if type(original).__module__.startswith("botocore"):
        try:
            return type(original)(io.BytesIO(data), len(data))  # botocore.response.StreamingBody(raw, length)
        except Exception:
            pass
    return io.BytesIO(data)


def _error(data: Any, request_id: str | None) -> Analysis | None:
    inner = get(data, "response")
    if is_mapping(inner) and is_mapping(get(inner, "Error")):  # a botocore ClientError passed as is
        data = inner
        request_id = request_id or _request_id(inner)
    error = get(data, "Error")
    if is_mapping(error):
        status = dig(data, "ResponseMetadata", "HTTPStatusCode")
        metadata = {"http_status": status} if isinstance(status, int) and not isinstance(status, bool) else {}
        return Analysis(provider=PROVIDER, status="error", error_type=as_str(get(error, "Code")) or "ClientError",
                        error_message=as_str(get(error, "Message"), 2000), request_id=request_id,
                        metadata=metadata)
    kind = as_str(get(data, "__type"))
    if kind or (isinstance(get(data, "message"), str) and not any(k in data for k in ("output", "usage", "body"))):
        return Analysis(provider=PROVIDER, status="error", error_type=(kind or "BedrockError").rsplit("#", 1)[-1],
                        error_message=as_str(get(data, "message"), 2000), request_id=request_id)
    for key, value in data.items():  # stream exception events: {"throttlingException": {"message"}}
        if str(key).endswith("Exception") and is_mapping(value):
            return Analysis(provider=PROVIDER, status="error", error_type=str(key)[0].upper() + str(key)[1:],
                            error_message=as_str(get(value, "message"), 2000), request_id=request_id)
    return None


def converse_analysis(data: Mapping[str, Any], request_id: str | None) -> Analysis:
    warnings: list[str] = []
    if get(data, "usage") is None:
        warnings.append("the response has no usage object")
    usage = bedrock_usage(get(data, "usage"), warnings)
    metadata: dict[str, Any] = {}
    tier = as_str(dig(data, "serviceTier", "type")) or as_str(get(data, "serviceTier"))
    if tier:
        metadata["service_tier"] = tier
    latency = as_number(dig(data, "metrics", "latencyMs"))
    return Analysis(provider=PROVIDER, usage=usage, finish_reason=as_str(get(data, "stopReason")),
                    request_id=request_id, latency_ms=latency, metadata=metadata, warnings=tuple(warnings))


def _from_headers(headers: Mapping[str, Any], warnings: list[str]) -> Usage:
    def count(name: str) -> int | None:
        return as_count(headers.get(f"{_HEADER_PREFIX}{name}"), name, warnings)

    uncached, out = count("input-token-count"), count("output-token-count")
    read, write = count("cache-read-input-token-count"), count("cache-write-input-token-count")
    parts = [v for v in (uncached, read, write) if v is not None]
    return finalize_usage(input_tokens=sum(parts) if parts else None, output_tokens=out, cached_input_tokens=read,
                          cache_write_tokens=write, warnings=warnings)


def _invoke_body(body: Any, headers: Mapping[str, Any], request_id: str | None) -> Analysis:
    warnings: list[str] = []
    if is_mapping(body) and (get(body, "type") == "message" or "stop_reason" in body and "content" in body
                             or is_mapping(get(body, "usage")) and "input_tokens" in get(body, "usage")):
        analysis = parse_anthropic_message(body, provider=PROVIDER)
        return analysis.with_(request_id=request_id or analysis.request_id,
                              metadata={**analysis.metadata, "response_id": as_str(get(body, "id"))}
                              if request_id and get(body, "id") else analysis.metadata)
    if is_mapping(body) and get(body, "type") == "error":
        return parse_anthropic_message(body, provider=PROVIDER).with_(request_id=request_id)
    usage = Usage()
    finish = None
    if is_mapping(body) and is_mapping(get(body, "usage")):  # Nova and other Converse-shaped bodies
        usage = bedrock_usage(get(body, "usage"), warnings)
        finish = as_str(get(body, "stopReason"))
    elif is_mapping(body) and ("prompt_token_count" in body or "generation_token_count" in body):  # Llama
        usage = finalize_usage(input_tokens=as_count(get(body, "prompt_token_count"), "prompt_token_count", warnings),
                               output_tokens=as_count(get(body, "generation_token_count"), "generation_token_count",
                                                      warnings), raw_usage=None, warnings=warnings)
        finish = as_str(get(body, "stop_reason"))
    elif is_mapping(body) and "inputTextTokenCount" in body:  # Titan text
        results = get(body, "results") if isinstance(get(body, "results"), list) else []
        outs = [as_count(get(r, "tokenCount"), "tokenCount", warnings) for r in results]
        known = [o for o in outs if o is not None]
        usage = finalize_usage(input_tokens=as_count(get(body, "inputTextTokenCount"), "inputTextTokenCount",
                                                     warnings), output_tokens=sum(known) if known else None,
                               warnings=warnings)
        finish = as_str(dig(body, "results", 0, "completionReason"))
    if usage.is_empty:
        usage = _from_headers(headers, warnings)
    if usage.is_empty:
        warnings.append("no usage in the InvokeModel body or headers")
    return Analysis(provider=PROVIDER, usage=usage, finish_reason=finish, request_id=request_id,
                    warnings=tuple(warnings))


def parse_bedrock(p: Payload) -> Analysis:
    """Analyse a Bedrock response already converted to plain data (body decoded if any)."""
    data = p.data
    if not is_mapping(data):
        return Analysis(provider=PROVIDER, readable=False,
                        warnings=(f"expected a JSON object, got {type(data).__name__}",))
    request_id = _request_id(data) or p.request_id
    error = _error(data, request_id)
    if error is not None:
        return error
    if "body" in data:
        return _invoke_body(get(data, "body"), _headers(data), request_id)
    if get(data, "type") in ("message", "error") or ("content" in data and "stop_reason" in data):
        return _invoke_body(data, {}, request_id)  # an InvokeModel body passed directly
    return converse_analysis(data, request_id)


def parse_bedrock_raw(response: Any) -> Analysis:
    """Analyse a boto3 response (dict with a ``StreamingBody``), a decoded body, or a ClientError."""
    if is_mapping(response) and get(response, "body") is not None and not is_mapping(get(response, "body")):
        body = read_body(response)
        plain = payload({k: v for k, v in response.items() if k != "body"}).data
        plain["body"] = body
        return parse_bedrock(Payload(plain))
    if isinstance(response, BaseException):
        inner = getattr(response, "response", None)
        if is_mapping(inner):
            return parse_bedrock(payload(inner))
        return Analysis(provider=PROVIDER, status="error", error_type=type(response).__name__,
                        error_message=as_str(str(response), 2000))
    return parse_bedrock(payload(response))

