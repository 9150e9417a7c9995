"""Together AI (OpenAI-compatible). Stream usage may carry ``cached_tokens`` at the top level of
``usage`` (not under ``prompt_tokens_details``); finish_reason can be ``eos``.
"""

from __future__ import annotations as _annotations

from dataclasses import replace

from ._common import Analysis, Payload, as_count, get, is_mapping
from .openai import parse_openai

__all__ = ["parse_together"]

PROVIDER = "together"


def parse_together(p: Payload) -> Analysis:
    """Analyse a Together chat/completion response (dict or together object), or an error body."""
    analysis = parse_openai(p, provider=PROVIDER)
    usage_obj = get(p.data, "usage")
    if analysis.status != "ok" or not is_mapping(usage_obj) or analysis.usage.cached_input_tokens is not None:
        return analysis
    warnings = list(analysis.warnings)
    cached = as_count(get(usage_obj, "cached_tokens"), "cached_tokens", warnings)
    inp = analysis.usage.input_tokens
    if cached is not None and inp is not None and cached <= inp:
        analysis = analysis.with_(usage=replace(analysis.usage, cached_input_tokens=cached))
    elif cached is not None:
        warnings.append(f"cached_tokens {cached} exceed prompt_tokens {inp}; dropped it")
    return analysis.with_(warnings=tuple(warnings))
