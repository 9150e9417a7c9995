"""Direct response analysis: read usage from raw provider responses and streams.

For code that calls provider SDKs directly (no LiteLLM wrapper)::

    from a2a_llm_tracker import analyze_response, ResponseType

    response = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    event = analyze_response(response, ResponseType.OPENAI, meter, agent_id="planner")

One module per wire format (``openai``, ``anthropic``, ``gemini``, ``cohere``, ``mistral``,
``groq``, ``together``, ``bedrock``, ``vertex``, ``litellm``) turns the provider's numbers into the
tracker's usage contract; ``streams`` holds one accumulator per provider stream rule. No SDK is
imported: SDK objects are read through their own ``model_dump()`` / ``to_dict()`` / attributes.
"""

from __future__ import annotations as _annotations

from ._api import (
                   AsyncTrackedStream,
                   ResponseType,
                   TrackedStream,
                   accumulate,
                   analyze_response,
                   analyze_response_async,
                   build_event,
                   parse,
                   parse_stream,
                   track_stream,
)
from ._common import Analysis
from .streams import Accumulator, make_accumulator

__all__ = [
    "Accumulator",
    "Analysis",
    "AsyncTrackedStream",
    "ResponseType",
    "TrackedStream",
    "accumulate",
    "analyze_response",
    "analyze_response_async",
    "build_event",
    "make_accumulator",
    "parse",
    "parse_stream",
    "track_stream",
]
