"""Direct SDK calls, no wrapper: hand each provider's raw response to ``analyze_response``.

Calls the built-in mock provider with the real ``openai``, ``anthropic`` and ``google-genai`` SDKs
(each answering in its own wire format, with its own way of reporting cached and reasoning tokens)
and records the responses. Every event follows one usage contract: ``input_tokens`` includes
cache reads and writes, ``output_tokens`` includes reasoning. Also shows ``record=False`` (analyse
only) and the async form.

Run: python examples/analyze_response.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.analyzers, openai, anthropic, google.genai

from __future__ import annotations

import asyncio

import anthropic
import openai
from google import genai
from google.genai import types

from a2a_llm_tracker import Meter, PricingRegistry, ResponseType, analyze_response, analyze_response_async
from a2a_llm_tracker.mock_provider import MockProvider
from a2a_llm_tracker.sinks.memory import MemorySink

MODELS = {
    "gpt-4.1-mini": {"cached_tokens": 256, "reasoning_tokens": 0},
    "claude-sonnet-4-5": {"cached_tokens": 2048, "cache_write_tokens": 512},
    "gemini-2.5-flash": {"cached_tokens": 128, "reasoning_tokens": 64},
}


def main() -> None:
    pricing = PricingRegistry()
    pricing.set_price("openai", "gpt-4.1-mini", 0.40, 1.60, cached_input_per_million=0.10)
    pricing.set_price("anthropic", "claude-sonnet-4-5", 3.00, 15.00, cached_input_per_million=0.30,
                      cache_write_per_million=3.75)
    pricing.set_price("google", "gemini-2.5-flash", 0.30, 2.50, cached_input_per_million=0.03)
    sink = MemorySink()
    meter = Meter(pricing=pricing, sinks=[sink], project="direct-calls")

    with MockProvider(models=MODELS) as server:
        # OpenAI: prompt_tokens already includes the cached tokens
        oai = openai.OpenAI(base_url=server.base_url, api_key="mock-key", max_retries=0)
        resp = oai.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "Say hello!"}])
        ev_openai = analyze_response(response=resp, response_type=ResponseType.OPENAI, meter=meter,
                                     agent_id="my-agent")
        billed = server.billed[-1]
        assert ev_openai.provider == "openai" and ev_openai.model == "gpt-4.1-mini"
        assert ev_openai.input_tokens == billed["input_tokens"] == resp.usage.prompt_tokens
        assert ev_openai.cached_input_tokens == 256 and ev_openai.output_tokens == resp.usage.completion_tokens
        assert ev_openai.request_id and ev_openai.agent_id == "my-agent" and ev_openai.cost_source == "pricing"
        print(f"Tracked: {ev_openai.total_tokens} tokens, ${ev_openai.cost_usd:.6f}")

        # Anthropic: input_tokens excludes cache reads and writes; the analyzer adds them back
        ant = anthropic.Anthropic(base_url=server.url, api_key="mock-key", max_retries=0)
        msg = ant.messages.create(model="claude-sonnet-4-5", max_tokens=256,
                                  messages=[{"role": "user", "content": "Hello!"}])
        ev_anthropic = analyze_response(msg, ResponseType.ANTHROPIC, meter, session_id="s-1")
        u = msg.usage
        assert ev_anthropic.input_tokens == u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
        assert ev_anthropic.input_tokens == server.billed[-1]["input_tokens"]
        assert (ev_anthropic.cached_input_tokens, ev_anthropic.cache_write_tokens) == (2048, 512)
        uncached = ev_anthropic.input_tokens - 2048 - 512
        expected = (uncached * 3.0 + 2048 * 0.30 + 512 * 3.75 + ev_anthropic.output_tokens * 15.0) / 1e6
        assert abs(ev_anthropic.cost_usd - expected) < 1e-12
        print(f"Anthropic: {ev_anthropic.input_tokens} input (2,048 cache reads, 512 cache writes), "
              f"${ev_anthropic.cost_usd:.6f}")

        # Gemini: thoughts are reported beside the candidates; output_tokens includes them
        gem = genai.Client(api_key="mock-key", http_options=types.HttpOptions(base_url=server.url))
        g = gem.models.generate_content(model="gemini-2.5-flash", contents="Hello!")
        ev_gemini = analyze_response(g, ResponseType.GEMINI, meter, user_id="u-7")
        md = g.usage_metadata
        assert ev_gemini.output_tokens == md.candidates_token_count + md.thoughts_token_count
        assert ev_gemini.reasoning_tokens == 64 and ev_gemini.cached_input_tokens == 128
        assert ev_gemini.input_tokens == md.prompt_token_count == server.billed[-1]["input_tokens"]
        print(f"Gemini: {ev_gemini.output_tokens} output incl. {ev_gemini.reasoning_tokens} thinking, "
              f"${ev_gemini.cost_usd:.6f}")

        # analyse without recording
        preview = analyze_response(resp, "openai", meter, record=False)
        assert preview.total_tokens == ev_openai.total_tokens

        # the async form
        async def direct_async():
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="mock-key", max_retries=0)
            r = await client.chat.completions.create(model="gpt-4.1-mini",
                                                     messages=[{"role": "user", "content": "Async hello!"}])
            return await analyze_response_async(response=r, response_type=ResponseType.OPENAI, meter=meter,
                                                agent_id="my-agent")

        ev_async = asyncio.run(direct_async())
        assert ev_async.input_tokens == server.billed[-1]["input_tokens"]

    meter.close()
    assert [e.event_id for e in sink.events] == [ev_openai.event_id, ev_anthropic.event_id, ev_gemini.event_id,
                                                 ev_async.event_id]  # the preview was not recorded
    assert [e.provider for e in sink.events[:2]] == ["openai", "anthropic"]
    assert ev_gemini.provider in ("gemini", "google")  # priced under "google" either way
    print("OK")


if __name__ == "__main__":
    main()
