"""The seed README's "Direct Response Analysis" examples run as written, against MockProvider.

The example code below is copied verbatim from the README. Only the environment is set up
(API keys, SDK base URLs pointing at the local MockProvider, a loopback CCS URL so nothing leaves
the machine). The Gemini example needs one substitution: google-generativeai speaks gRPC to
Google by default, so its ``genai.configure(...)`` line also selects the REST transport and the
local endpoint.
"""

from __future__ import annotations

import textwrap

import pytest

from a2a_llm_tracker import PricingRegistry, ResponseType, analyze_response_async, capture_events
from a2a_llm_tracker.mock_provider import MockProvider

OPENAI_EXAMPLE = '''
import asyncio
from openai import OpenAI
from a2a_llm_tracker import init, get_meter, analyze_response, ResponseType

async def main():
    # Initialize the tracker with CCS
    meter = await init(
        client_id="your_client_id",
        client_secret="your_client_secret",
        application_name="my-app",
    )

    # Make a direct OpenAI call (not through LiteLLM wrapper)
    openai_client = OpenAI()
    response = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello!"},
        ],
    )

    # Analyze and record the response to CCS
    event = analyze_response(
        response=response,
        response_type=ResponseType.OPENAI,
        meter=meter,
        agent_id="my-agent",
    )

    print(f"Tracked: {event.total_tokens} tokens, ${event.cost_usd:.6f}")

asyncio.run(main())
'''

GEMINI_EXAMPLE = '''
import google.generativeai as genai
from a2a_llm_tracker import get_meter, analyze_response, ResponseType

genai.configure(api_key="your_gemini_api_key")
model = genai.GenerativeModel("gemini-1.5-flash")

response = model.generate_content("Hello!")

event = analyze_response(
    response=response,
    response_type=ResponseType.GEMINI,
    meter=get_meter(),
)
'''

ANTHROPIC_EXAMPLE = '''
from anthropic import Anthropic
from a2a_llm_tracker import get_meter, analyze_response, ResponseType

client = Anthropic()
response = client.messages.create(
    model="claude-3-5-sonnet-latest",
    max_tokens=1024,
    messages=[{"role": "user", "content": "Hello!"}],
)

event = analyze_response(
    response=response,
    response_type=ResponseType.ANTHROPIC,
    meter=get_meter(),
)
'''


def _run(code: str, printed: list[str] | None = None) -> dict:
    namespace: dict = {}
    if printed is not None:
        namespace["print"] = lambda *args, **kw: printed.append(" ".join(map(str, args)))
    exec(compile(textwrap.dedent(code), "<README example>", "exec"), namespace)  # noqa: S102 - the README's code
    return namespace


@pytest.fixture(name="server")
def _server():
    with MockProvider(reply="Hello there friend", cached_tokens=4) as server:
        yield server


def test_openai_example(server, monkeypatch):
    """README: Track OpenAI Direct Calls (init with CCS, OpenAI(), analyze_response, print)."""
    pytest.importorskip("openai")
    pytest.importorskip("ccs")  # mftsccs installs the ccs package
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000000")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("CCS_SERVER_URL", "http://127.0.0.1:9")  # loopback: the CCS sink queues, sends nothing out
    printed: list[str] = []
    _run(OPENAI_EXAMPLE, printed)
    billed = server.billed[-1]
    assert printed == [printed[0]] and printed[0].startswith(f"Tracked: {billed['total_tokens']} tokens, $")
    assert float(printed[0].rsplit("$", 1)[1]) > 0  # priced from the bundled catalog, not a silent $0


def test_gemini_example(server, monkeypatch):
    """README: Track Gemini Direct Calls (legacy google-generativeai object, global meter)."""
    pytest.importorskip("google.generativeai")
    code = GEMINI_EXAMPLE.replace(
        'genai.configure(api_key="your_gemini_api_key")',
        f'genai.configure(api_key="your_gemini_api_key", transport="rest", client_options={{"api_endpoint": "{server.url}"}})')
    with capture_events() as events:
        namespace = _run(code)
    event = namespace["event"]
    billed = server.billed[-1]
    assert (event.input_tokens, event.output_tokens, event.total_tokens) == (
        billed["input_tokens"], billed["output_tokens"], billed["total_tokens"])
    assert event.provider == "gemini" and event.model == "gemini-1.5-flash"
    assert event.finish_reason == "STOP" and event.cached_input_tokens == billed["cached_input_tokens"]
    assert [e.event_id for e in events] == [event.event_id]


def test_anthropic_example(server, monkeypatch):
    """README: Track Anthropic Direct Calls (Anthropic(), global meter)."""
    pytest.importorskip("anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key-0000")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    with capture_events() as events:
        namespace = _run(ANTHROPIC_EXAMPLE)
    event = namespace["event"]
    billed = server.billed[-1]
    assert (event.input_tokens, event.output_tokens, event.cached_input_tokens) == (
        billed["input_tokens"], billed["output_tokens"], billed["cached_input_tokens"])
    assert event.model == namespace["response"].model and event.provider == "anthropic"
    assert event.finish_reason == "end_turn"
    assert len(events) == 1


async def test_async_version(server, monkeypatch):
    """README: Async Version (analyze_response_async)."""
    openai = pytest.importorskip("openai")
    pricing = PricingRegistry()
    pricing.set_price(provider="openai", model="gpt-4o-mini", input_per_million=0.15, output_per_million=0.6)
    with capture_events(pricing=pricing) as events:
        meter = events.meter
        response = await openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-0000000000").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello!"}])
        event = await analyze_response_async(
            response=response,
            response_type=ResponseType.OPENAI,
            meter=meter,
            agent_id="my-agent",
        )
    billed = server.billed[-1]
    assert event.agent_id == "my-agent" and event.input_tokens == billed["input_tokens"]
    price = pricing.lookup("openai", "gpt-4o-mini")
    expected = price.cost(input_tokens=billed["input_tokens"], output_tokens=billed["output_tokens"],
                          cached_input_tokens=billed["cached_input_tokens"],
                          reasoning_tokens=billed["reasoning_tokens"])
    assert event.cost_usd == pytest.approx(float(expected.total_usd)) and event.cost_source == "pricing"
    assert len(events) == 1
