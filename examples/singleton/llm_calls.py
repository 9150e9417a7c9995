"""llm_calls.py: any module of the application calls a provider SDK and tracks the response."""

from __future__ import annotations

import logging

from openai import OpenAI
from tracking import get_meter

from a2a_llm_tracker import ResponseType, analyze_response

logger = logging.getLogger(__name__)


def call_openai(client: OpenAI, prompt: str, agent_id: str):
    response = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    try:  # track the usage; never let tracking break the call
        meter = get_meter()
        if meter is not None:
            analyze_response(response, ResponseType.OPENAI, meter, agent_id=agent_id)
    except Exception as exc:
        logger.warning("LLM tracking skipped: %s", exc)
    return response
