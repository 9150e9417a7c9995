"""Google Vertex AI: Gemini (``usageMetadata`` with ``trafficType``) and Anthropic-on-Vertex
(``rawPredict`` returns the Anthropic Messages schema unchanged, ``msg_vrtx_`` ids).
"""

from __future__ import annotations as _annotations

from typing import Any

from ._common import Analysis, Payload, get, is_mapping
from .anthropic import parse_anthropic_message
from .gemini import parse_gemini

__all__ = ["is_anthropic_body", "parse_vertex"]

PROVIDER = "vertex_ai"


def is_anthropic_body(data: Any) -> bool:
    """True when *data* looks like an Anthropic Messages body or error (not a Gemini one)."""
    if not is_mapping(data):
        return False
    if get(data, "type") in ("message", "error", "message_start", "message_delta"):
        return True
    return "stop_reason" in data or (isinstance(get(data, "id"), str) and get(data, "id").startswith("msg_"))


def parse_vertex(p: Payload) -> Analysis:
    """Analyse a Vertex response: Anthropic-shaped bodies as Anthropic, everything else as Gemini."""
    if is_anthropic_body(p.data):
        return parse_anthropic_message(p.data, provider=PROVIDER, request_id=p.request_id)
    return parse_gemini(p, provider=PROVIDER)
