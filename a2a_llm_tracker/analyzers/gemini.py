"""Google Gemini (Developer API and Vertex AI): ``usageMetadata`` in REST camelCase, snake_case in
google-genai objects and in legacy google-generativeai ``to_dict()`` output.

Gemini reports thinking *beside* the visible output: output = candidates + thoughts, and
built-in tool results beside the prompt: input = prompt + toolUsePrompt (cached content is
already inside the prompt). The legacy google-generativeai proto drops ``thoughts_token_count``
and ``tool_use_prompt_token_count``; when the total exceeds the visible parts and neither is
reported, the gap is billed output we cannot see, so output is derived as total - prompt and
labelled (``metadata["output_derivation"] = "total_minus_prompt"``).
"""

from __future__ import annotations as _annotations

from typing import Any

from .._events import Usage
from ._common import Analysis, Payload, as_count, as_str, dig, finalize_usage, first, get, is_mapping

__all__ = ["gemini_usage", "parse_gemini", "parse_gemini_response"]

PROVIDER = "gemini"

#: google.ai.generativelanguage Candidate.FinishReason numbers (legacy to_dict gives ints).
FINISH_REASONS = ("FINISH_REASON_UNSPECIFIED", "STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER",
                  "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MALFORMED_FUNCTION_CALL", "IMAGE_SAFETY")
_HARM_PROBABILITY = ("HARM_PROBABILITY_UNSPECIFIED", "NEGLIGIBLE", "LOW", "MEDIUM", "HIGH")
_HARM_CATEGORY = {7: "HARM_CATEGORY_HARASSMENT", 8: "HARM_CATEGORY_HATE_SPEECH",
                  9: "HARM_CATEGORY_SEXUALLY_EXPLICIT", 10: "HARM_CATEGORY_DANGEROUS_CONTENT",
                  11: "HARM_CATEGORY_CIVIC_INTEGRITY"}


def g(obj: Any, camel: str, snake: str) -> Any:
    """A Gemini field under its REST (camelCase) or SDK (snake_case) name."""
    return first(obj, camel, snake)


def _modalities(items: Any, prefix: str, details: dict[str, int], warnings: list[str]) -> None:
    if not isinstance(items, list):
        return
    for item in items:
        modality = as_str(g(item, "modality", "modality"))
        count = as_count(g(item, "tokenCount", "token_count"), f"{prefix} tokenCount", warnings)
        if modality and count is not None:
            name = f"{prefix}_{modality.lower()}_tokens"
            details[name] = details.get(name, 0) + count


def gemini_usage(meta: Any, warnings: list[str], metadata: dict[str, Any] | None = None) -> Usage:
    """Normalise a Gemini ``usageMetadata``; labels a derived output count in *metadata*."""
    if not is_mapping(meta):
        return Usage()
    prompt = as_count(g(meta, "promptTokenCount", "prompt_token_count"), "promptTokenCount", warnings)
    candidates = as_count(g(meta, "candidatesTokenCount", "candidates_token_count"), "candidatesTokenCount",
                          warnings)
    thoughts = as_count(g(meta, "thoughtsTokenCount", "thoughts_token_count"), "thoughtsTokenCount", warnings)
    tool_prompt = as_count(g(meta, "toolUsePromptTokenCount", "tool_use_prompt_token_count"),
                           "toolUsePromptTokenCount", warnings)
    cached = as_count(g(meta, "cachedContentTokenCount", "cached_content_token_count"),
                      "cachedContentTokenCount", warnings)
    total = as_count(g(meta, "totalTokenCount", "total_token_count"), "totalTokenCount", warnings)
    details: dict[str, int] = {}
    if tool_prompt is not None:
        details["tool_use_prompt_tokens"] = tool_prompt
    _modalities(g(meta, "promptTokensDetails", "prompt_tokens_details"), "input", details, warnings)
    _modalities(g(meta, "candidatesTokensDetails", "candidates_tokens_details"), "output", details, warnings)
    _modalities(g(meta, "cacheTokensDetails", "cache_tokens_details"), "cached", details, warnings)
    _modalities(g(meta, "toolUsePromptTokensDetails", "tool_use_prompt_tokens_details"), "tool_use", details,
                warnings)
    in_parts = [v for v in (prompt, tool_prompt) if v is not None]
    inp = sum(in_parts) if in_parts else None
    out_parts = [v for v in (candidates, thoughts) if v is not None]
    out = sum(out_parts) if out_parts else None
    if (total is not None and prompt is not None and thoughts is None and tool_prompt is None
            and total > prompt + (candidates or 0)):
        # Hidden tokens (legacy proto, or a server that omits thoughtsTokenCount): billed as output.
        out = total - prompt
        details["candidates_tokens"] = candidates or 0
        details["hidden_output_tokens"] = total - prompt - (candidates or 0)
        if metadata is not None:
            metadata["output_derivation"] = "total_minus_prompt"
    if cached is not None and inp is not None and cached > inp:
        warnings.append(f"cachedContentTokenCount {cached} exceeds the prompt {inp}; dropped it")
        cached = None
    return finalize_usage(input_tokens=inp, output_tokens=out, total_tokens=total, cached_input_tokens=cached,
                          reasoning_tokens=thoughts, token_details=details, raw_usage=dict(meta), warnings=warnings)


def _enum_name(value: Any, names: tuple[str, ...]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else str(value)
    return as_str(value)


def _safety(ratings: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not isinstance(ratings, list):
        return out
    for rating in ratings[:20]:
        if not is_mapping(rating):
            continue
        category = get(rating, "category")
        if isinstance(category, int) and not isinstance(category, bool):
            category = _HARM_CATEGORY.get(category, str(category))
        entry: dict[str, Any] = {"category": as_str(category),
                                 "probability": _enum_name(get(rating, "probability"), _HARM_PROBABILITY)}
        if get(rating, "blocked") is True:
            entry["blocked"] = True
        out.append(entry)
    return out


def parse_gemini_response(data: Any, *, provider: str = PROVIDER, stream: bool = False) -> Analysis:
    """Analyse a Gemini ``GenerateContentResponse`` body (or error body)."""
    if isinstance(data, list):  # a non-SSE streamGenerateContent answer is a JSON array of chunks
        data = next((c for c in reversed(data) if is_mapping(c)), None)
        stream = True
    if not is_mapping(data):
        return Analysis(provider=provider, readable=False, stream=stream,
                        warnings=(f"expected a JSON object, got {type(data).__name__}",))
    error = get(data, "error")
    if is_mapping(error) and error:
        metadata: dict[str, Any] = {}
        code = get(error, "code")
        if isinstance(code, int) and not isinstance(code, bool):
            metadata["http_status"] = code
        return Analysis(provider=provider, status="error", stream=stream,
                        error_type=as_str(get(error, "status")) or as_str(code) or "api_error",
                        error_message=as_str(get(error, "message"), 2000), metadata=metadata)
    warnings: list[str] = []
    metadata = {}
    meta = g(data, "usageMetadata", "usage_metadata")
    if meta is None:
        warnings.append("the response has no usageMetadata")
    usage = gemini_usage(meta, warnings, metadata)
    candidate = dig(data, "candidates", 0)
    finish = _enum_name(g(candidate, "finishReason", "finish_reason"), FINISH_REASONS)
    ratings = _safety(g(candidate, "safetyRatings", "safety_ratings"))
    if ratings:
        metadata["safety_ratings"] = ratings
    feedback = g(data, "promptFeedback", "prompt_feedback")
    block = as_str(g(feedback, "blockReason", "block_reason"))
    if block:
        metadata["block_reason"] = block
        finish = finish or block
        prompt_ratings = _safety(g(feedback, "safetyRatings", "safety_ratings"))
        if prompt_ratings:
            metadata["prompt_safety_ratings"] = prompt_ratings
    for camel, snake, key in (("trafficType", "traffic_type", "traffic_type"),
                              ("serviceTier", "service_tier", "service_tier")):
        value = as_str(g(meta, camel, snake)) if is_mapping(meta) else None
        value = value or as_str(g(data, camel, snake))
        if value:
            metadata[key] = value
    model = as_str(g(data, "modelVersion", "model_version"))
    return Analysis(provider=provider, usage=usage, model=model, response_model=model, finish_reason=finish,
                    request_id=as_str(g(data, "responseId", "response_id")), metadata=metadata, stream=stream,
                    warnings=tuple(warnings))


def parse_gemini(p: Payload, *, provider: str = PROVIDER) -> Analysis:
    """Analyse a Gemini response given as a :class:`Payload` (google-genai, legacy, or a dict)."""
    analysis = parse_gemini_response(p.data, provider=provider)
    if p.sdk == "google.generativeai" and analysis.status == "ok":
        analysis = analysis.with_(metadata={**analysis.metadata, "sdk": "google-generativeai"})
    return analysis
