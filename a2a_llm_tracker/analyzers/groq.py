"""Groq (OpenAI-compatible): usage, plus ``x_groq.id`` (the ``req_...`` request id) and, in older
stream chunks, ``x_groq.usage``. The timing floats (``queue_time``, ``prompt_time`` ...) are
seconds, not tokens: they stay in ``raw_usage`` only.
"""

from __future__ import annotations as _annotations

from ._common import Analysis, Payload, as_str, dig, get, is_mapping
from .openai import chat_usage, parse_openai

__all__ = ["parse_groq"]

PROVIDER = "groq"


def parse_groq(p: Payload) -> Analysis:
    """Analyse a Groq chat response (dict or groq object), or an error body / stream error frame."""
    data = p.data
    request_id = as_str(dig(data, "x_groq", "id")) or p.request_id
    analysis = parse_openai(Payload(data, sdk=p.sdk, request_id=request_id), provider=PROVIDER)
    if analysis.status != "ok" or not is_mapping(data):
        return analysis
    if get(data, "usage") is None and is_mapping(dig(data, "x_groq", "usage")):
        warnings = [w for w in analysis.warnings if "no usage" not in w]
        analysis = analysis.with_(usage=chat_usage(dig(data, "x_groq", "usage"), warnings),
                                  warnings=tuple(warnings))
    return analysis
