"""Mistral chat completions (OpenAI-like ``usage``).

``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``; Magistral reasoning models
report no reasoning count. mistralai 3.x keeps ``prompt_tokens_details`` only in
``usage.additional_properties``, which the object conversion folds back in. ``prompt_audio_seconds``
goes to ``token_details``.
"""

from __future__ import annotations as _annotations

from dataclasses import replace
from typing import Any

from ._common import Analysis, Payload, as_number, get, is_mapping
from .openai import error_analysis, parse_openai

__all__ = ["parse_mistral", "parse_mistral_error"]

PROVIDER = "mistral"


def parse_mistral_error(data: Any, request_id: str | None) -> Analysis | None:
    """Mistral error bodies: ``{"object": "error", "message", "type", "code"}`` or ``{"detail": ...}``."""
    if not is_mapping(data):
        return None
    if get(data, "object") == "error" or (get(data, "choices") is None and isinstance(get(data, "message"), str)
                                          and get(data, "usage") is None):
        return error_analysis(PROVIDER, data, request_id=request_id)
    detail = get(data, "detail")
    if detail is not None and get(data, "choices") is None:
        message = detail if isinstance(detail, str) else str(detail)[:2000]
        return error_analysis(PROVIDER, {"message": message, "type": "invalid_request_error"},
                              request_id=request_id)
    return None


def parse_mistral(p: Payload) -> Analysis:
    """Analyse a Mistral chat response (dict or mistralai object)."""
    error = parse_mistral_error(p.data, p.request_id)
    if error is not None:
        return error
    analysis = parse_openai(p, provider=PROVIDER)
    seconds = as_number(get(get(p.data, "usage"), "prompt_audio_seconds"))
    if seconds is not None and analysis.status == "ok":
        details = {**analysis.usage.token_details, "prompt_audio_seconds": seconds}
        analysis = analysis.with_(usage=replace(analysis.usage, token_details=details))
    return analysis

