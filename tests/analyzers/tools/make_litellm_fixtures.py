"""Regenerate the LiteLLM fixtures: real recorded provider bodies passed through LiteLLM's own
response transformation (the code litellm.completion runs), dumped with ModelResponse.model_dump().

Run: LITELLM_LOCAL_MODEL_COST_MAP=True /work/venv/bin/python tests/analyzers/tools/make_litellm_fixtures.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class _Log:
    model_call_details: dict = {}
    optional_params: dict = {}
    litellm_params: dict = {}

    def post_call(self, *args, **kwargs):
        pass


def litellm_response(provider: str, model: str, body: dict):
    """Run LiteLLM's transform_response for *provider* on a recorded *body* (real ModelResponse)."""
    from litellm.types.utils import ModelResponse

    if provider == "anthropic":
        from litellm.llms.anthropic.chat.transformation import AnthropicConfig as Config
        url = "https://api.anthropic.com/v1/messages"
    else:
        from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import (
            VertexGeminiConfig as Config,
        )
        url = f"https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent"
    raw = httpx.Response(200, json=body, request=httpx.Request("POST", url))
    return Config().transform_response(model=model, raw_response=raw, model_response=ModelResponse(), logging_obj=_Log(),
                                       request_data={}, messages=[{"role": "user", "content": "hi"}], optional_params={},
                                       litellm_params={}, encoding=None, api_key=None, json_mode=None)


def _message_from_stream(chunks: list[dict]) -> dict:
    """The non-stream Messages body a recorded Anthropic stream adds up to."""
    message = dict(chunks[0]["message"])
    delta = next(c for c in chunks if c["type"] == "message_delta")
    message["usage"] = {**message["usage"], **delta["usage"]}
    message["stop_reason"] = delta["delta"]["stop_reason"]
    text = "".join(c["delta"].get("text", "") for c in chunks if c["type"] == "content_block_delta")
    message["content"] = [{"type": "text", "text": text}]
    return message


def main() -> None:
    sources = {
        "litellm_anthropic_cache": ("anthropic", "claude-sonnet-4-5", "anthropic_cache_read"),
        "litellm_gemini_thinking": ("gemini", "gemini-2.5-flash", "gemini_thinking"),
    }
    sources["litellm_anthropic_cache_write_1h"] = ("anthropic", "claude-sonnet-4-6", "anthropic_stream_cache_1h")
    for name, (provider, model, source) in sources.items():
        original = json.loads((FIXTURES / f"{source}.json").read_text())
        body = original.get("response") or _message_from_stream(original["chunks"])
        response = litellm_response(provider, model, body)
        path = FIXTURES / f"{name}.json"
        fixture = json.loads(path.read_text()) if path.exists() else {}
        fixture["response"] = response.model_dump(mode="json")
        path.write_text(json.dumps(fixture, indent=1))
        sys.stdout.write(f"{name}: {json.dumps(fixture['response']['usage'])}\n")


if __name__ == "__main__":
    main()
