"""Tests for the shared local mock provider (real openai/anthropic SDKs, raw httpx for the rest)."""

from __future__ import annotations as _annotations

import base64
import json
import struct
import time

import httpx
import pytest

from a2a_llm_tracker.mock_provider import MockProvider

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hello to me"}]
# 2 + 4 words + prompt_overhead 3
VISIBLE_PROMPT = 9


@pytest.fixture(name="server")
def _server():
    with MockProvider(reply="one two three four", cached_tokens=5, reasoning_tokens=2) as server:
        yield server


def _sse(text: str) -> list[tuple[str | None, dict | str]]:
    """Parse an SSE body into (event, data) pairs."""
    out: list[tuple[str | None, dict | str]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None:
            out.append((event, data if data == "[DONE]" else json.loads(data)))
    return out


class TestOpenAIChat:
    def test_sync_sdk_usage_and_secrets(self, server):
        """The real openai SDK gets deterministic usage with cached and reasoning details; the key is not recorded."""
        openai = pytest.importorskip("openai")
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-secret-123", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES)
        resp = raw.parse()
        assert raw.headers["x-request-id"].startswith("req_mock_")
        assert resp.choices[0].message.content == "one two three four"
        assert resp.choices[0].finish_reason == "stop"
        u = resp.usage
        assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (VISIBLE_PROMPT + 5, 6, VISIBLE_PROMPT + 11)
        assert u.prompt_tokens_details.cached_tokens == 5
        assert u.completion_tokens_details.reasoning_tokens == 2
        assert server.usages[-1] == u.model_dump(exclude_none=True)
        billed = server.billed[-1]
        assert billed["input_tokens"] == 14 and billed["output_tokens"] == 6
        assert billed["cached_input_tokens"] == 5 and billed["reasoning_tokens"] == 2
        assert billed["cache_write_tokens"] is None and billed["usage_reported"] is True
        req = server.requests[-1]
        assert req.path == "/v1/chat/completions" and req["method"] == "POST"
        assert req.json["model"] == "gpt-4.1"
        assert "authorization" not in req.headers
        assert "sk-secret-123" not in repr(server.requests)

    def test_stream_with_include_usage(self, server):
        """A final chunk with empty choices carries usage only when include_usage is set."""
        openai = pytest.importorskip("openai")
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        chunks = list(
            client.chat.completions.create(
                model="gpt-4.1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "one two three four"
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 14
        assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 2
        assert all(c.usage is None for c in chunks[:-1])
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert server.billed[-1]["stream"] is True and server.billed[-1]["usage_reported"] is True

    def test_stream_without_include_usage(self, server):
        """Without stream_options no chunk has usage, but the call is still billed (usage_reported False)."""
        openai = pytest.importorskip("openai")
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        chunks = list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
        assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
        raw = httpx.post(server.base_url + "/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True})
        assert all("usage" not in d for _, d in _sse(raw.text) if isinstance(d, dict))
        assert server.billed[-1]["usage_reported"] is False
        assert len(server.usages) == len(server.billed) == 2

    async def test_async_sdk(self, server):
        """The async client works and concurrent calls are all recorded."""
        openai = pytest.importorskip("openai")
        import asyncio

        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        results = await asyncio.gather(*(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES) for _ in range(5)))
        assert [r.usage.prompt_tokens for r in results] == [14] * 5
        assert len(server.billed) == 5 and len({b["request_id"] for b in server.billed}) == 5

    def test_max_tokens_truncates(self, server):
        """max_tokens cuts the reply and sets finish_reason length (reasoning counts against the limit)."""
        r = httpx.post(server.base_url + "/chat/completions", json={"model": "m", "messages": MESSAGES, "max_tokens": 3}).json()
        assert r["choices"][0]["message"]["content"] == "one"
        assert r["choices"][0]["finish_reason"] == "length"
        assert r["usage"]["completion_tokens"] == 3

    def test_per_model_config_and_validation(self):
        """Per-model overrides win; prefixes are stripped; bad keys are rejected clearly."""
        with MockProvider(models={"gpt-x": {"prompt_tokens": 100, "completion_tokens": 40, "cached_tokens": 60,
                                            "reasoning_tokens": 30, "response_model": "gpt-x-2025", "reply": "hey"}}) as s:
            r = httpx.post(s.base_url + "/chat/completions", json={"model": "openai/gpt-x", "messages": MESSAGES}).json()
            assert r["model"] == "gpt-x-2025" and r["choices"][0]["message"]["content"] == "hey"
            assert r["usage"]["prompt_tokens"] == 100 and r["usage"]["completion_tokens"] == 40
            other = httpx.post(s.base_url + "/chat/completions", json={"model": "gpt-y", "messages": MESSAGES}).json()
            assert other["usage"]["prompt_tokens"] == VISIBLE_PROMPT
            assert other["choices"][0]["message"]["content"] == "Hello from the mock provider."
        with pytest.raises(ValueError, match="unknown model config key"):
            MockProvider(models={"m": {"cached": 1}})
        with pytest.raises(ValueError, match="cached_tokens"):
            MockProvider(cached_tokens=-1)

    def test_report_usage_false_and_reject_stream_options(self):
        """A provider that sends no usage, and one that rejects stream_options."""
        with MockProvider(models={"nouse": {"report_usage": False}, "strict": {"reject_stream_options": True}}) as s:
            r = httpx.post(s.base_url + "/chat/completions", json={"model": "nouse", "messages": MESSAGES}).json()
            assert "usage" not in r
            body = {"model": "strict", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
            bad = httpx.post(s.base_url + "/chat/completions", json=body)
            assert bad.status_code == 400 and "stream_options" in bad.json()["error"]["message"]
            assert s.requests[-1].status == 400
            assert [b["usage_reported"] for b in s.billed] == [False]


class TestFailuresAndLatency:
    def test_fail_next_openai_shape(self, server):
        """fail_next answers the provider's error shape and does not bill; the next call succeeds."""
        openai = pytest.importorskip("openai")
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        server.fail_next(1, status=500)
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        assert info.value.status_code == 500
        assert info.value.body["type"] == "server_error"
        assert server.billed == [] and server.requests[-1].status == 500
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        assert len(server.billed) == 1

    def test_fail_next_shapes_and_custom_body(self, server):
        """Anthropic and Gemini error bodies; a custom body; 429 status."""
        server.fail_next(3, status=429)
        server.fail_next(1, status=503, body={"custom": True})
        a = httpx.post(server.url + "/v1/messages", json={"model": "claude", "messages": MESSAGES, "max_tokens": 5})
        assert a.status_code == 429 and a.json()["type"] == "error" and a.json()["error"]["type"] == "rate_limit_error"
        assert a.json()["request_id"] == a.headers["request-id"]
        g = httpx.post(server.url + "/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": []})
        assert g.json()["error"]["status"] == "RESOURCE_EXHAUSTED" and g.json()["error"]["code"] == 429
        o = httpx.post(server.base_url + "/chat/completions", json={"model": "m", "messages": []})
        assert o.json()["error"]["type"] == "rate_limit_exceeded"
        c = httpx.post(server.base_url + "/chat/completions", json={"model": "m", "messages": []})
        assert c.status_code == 503 and c.json() == {"custom": True}
        ok = httpx.post(server.base_url + "/chat/completions", json={"model": "m", "messages": []})
        assert ok.status_code == 200
        with pytest.raises(ValueError):
            server.fail_next(1, status=42)

    def test_delay_and_reset(self):
        """delay slows each response; reset forgets everything."""
        with MockProvider(delay=0.05) as s:
            t0 = time.perf_counter()
            httpx.post(s.base_url + "/chat/completions", json={"model": "m", "messages": []})
            assert time.perf_counter() - t0 >= 0.05
            s.fail_next(2)
            s.reset()
            assert s.requests == [] and s.usages == [] and s.billed == []
            assert httpx.post(s.base_url + "/chat/completions", json={"model": "m", "messages": []}).status_code == 200

    def test_unknown_path_and_not_started(self):
        """Unknown paths answer 404; url before start says what to do."""
        s = MockProvider()
        with pytest.raises(RuntimeError, match="not started"):
            _ = s.url
        with s:
            assert httpx.post(s.url + "/nope", json={}).status_code == 404
            assert httpx.get(s.base_url + "/models").json()["object"] == "list"
        s.stop()  # idempotent


class TestEmbeddingsAndCompletions:
    def test_embeddings_sdk_base64(self, server):
        """The openai SDK (base64 by default) decodes deterministic vectors; usage counts words."""
        openai = pytest.importorskip("openai")
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        resp = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "a b c"])
        assert len(resp.data) == 2 and len(resp.data[0].embedding) == 8
        again = client.embeddings.create(model="text-embedding-3-small", input="hello world", encoding_format="float")
        assert again.data[0].embedding == pytest.approx(resp.data[0].embedding, abs=1e-6)
        assert resp.usage.prompt_tokens == 5 + 3 and resp.usage.total_tokens == 8
        assert server.billed[0]["output_tokens"] == 0 and server.billed[0]["endpoint"] == "embeddings"
        raw = httpx.post(server.base_url + "/embeddings", json={"model": "e", "input": "x", "encoding_format": "base64"}).json()
        assert len(struct.unpack("<8f", base64.b64decode(raw["data"][0]["embedding"]))) == 8

    def test_text_completions(self, server):
        """Legacy completions, non-stream and stream."""
        r = httpx.post(server.base_url + "/completions", json={"model": "m", "prompt": "a b"}).json()
        assert r["object"] == "text_completion" and r["choices"][0]["text"] == "one two three four"
        assert r["usage"]["prompt_tokens"] == 2 + 3 + 5
        s = httpx.post(server.base_url + "/completions",
                       json={"model": "m", "prompt": "a b", "stream": True, "stream_options": {"include_usage": True}})
        events = [d for _, d in _sse(s.text)]
        assert events[-1] == "[DONE]" and events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 6


class TestResponses:
    def test_sdk_non_stream(self, server):
        """The openai Responses API parses the mock's response object."""
        openai = pytest.importorskip("openai")
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        resp = client.responses.create(model="gpt-4.1", input="tell me a joke", instructions="be funny")
        assert resp.output_text == "one two three four"
        assert resp.usage.input_tokens == 4 + 2 + 3 + 5 and resp.usage.output_tokens == 6
        assert resp.usage.input_tokens_details.cached_tokens == 5
        assert resp.usage.output_tokens_details.reasoning_tokens == 2

    def test_sdk_stream(self, server):
        """Streaming ends with response.completed carrying usage; earlier events have none."""
        openai = pytest.importorskip("openai")
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        events = list(client.responses.create(model="gpt-4.1", input="hi", stream=True))
        assert events[0].type == "response.created" and events[0].response.usage is None
        assert events[-1].type == "response.completed"
        assert events[-1].response.usage.total_tokens == server.billed[-1]["total_tokens"]
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == "one two three four"
        assert [e.sequence_number for e in events] == list(range(len(events)))


class TestAnthropic:
    def test_raw_non_stream(self, server):
        """input_tokens excludes cache reads and writes, which are reported separately."""
        server.cache_write_tokens = 7
        body = {"model": "claude-sonnet-4-5", "system": "be brief", "messages": MESSAGES[1:], "max_tokens": 100}
        r = httpx.post(server.url + "/v1/messages", json=body, headers={"x-api-key": "sk-ant-secret"})
        data = r.json()
        assert r.headers["request-id"] == r.headers["x-request-id"]
        assert data["usage"] == {"input_tokens": VISIBLE_PROMPT, "cache_creation_input_tokens": 7,
                                 "cache_read_input_tokens": 5, "output_tokens": 4}
        assert data["stop_reason"] == "end_turn" and data["content"][0]["text"] == "one two three four"
        billed = server.billed[-1]
        assert billed["input_tokens"] == VISIBLE_PROMPT + 12 and billed["cache_write_tokens"] == 7
        assert billed["reasoning_tokens"] is None
        assert "x-api-key" not in server.requests[-1].headers

    def test_sdk_stream(self, server):
        """The anthropic SDK assembles the stream; message_start has placeholder output, message_delta the final."""
        anthropic = pytest.importorskip("anthropic")
        client = anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0)
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES[1:]) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "one two three four"
        assert final.usage.output_tokens == 4 and final.usage.cache_read_input_tokens == 5
        raw = httpx.post(server.url + "/v1/messages", json={"model": "c", "messages": MESSAGES, "max_tokens": 2, "stream": True})
        events = _sse(raw.text)
        kinds = [e for e, _ in events]
        assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"] and "ping" in kinds
        assert events[0][1]["message"]["usage"]["output_tokens"] == 1
        assert events[-2][1]["usage"] == {"output_tokens": 2}
        assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"


class TestGemini:
    def test_raw_non_stream(self, server):
        """thoughtsTokenCount sits beside candidatesTokenCount; the key in the query is not recorded."""
        body = {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
                "systemInstruction": {"parts": [{"text": "be nice"}]}}
        r = httpx.post(server.url + "/v1beta/models/gemini-2.5-flash:generateContent?key=AIza-secret", json=body).json()
        u = r["usageMetadata"]
        assert u["promptTokenCount"] == 4 + 3 + 5 and u["cachedContentTokenCount"] == 5
        assert u["candidatesTokenCount"] == 4 and u["thoughtsTokenCount"] == 2 and u["totalTokenCount"] == 12 + 6
        assert r["modelVersion"] == "gemini-2.5-flash" and r["candidates"][0]["finishReason"] == "STOP"
        assert server.billed[-1]["output_tokens"] == 6 and server.billed[-1]["reasoning_tokens"] == 2
        assert "key" not in server.requests[-1].query
        assert "AIza-secret" not in repr(server.requests)

    def test_stream_sse_cumulative(self, server):
        """Every SSE chunk carries cumulative usageMetadata; finishReason only on the last."""
        r = httpx.post(server.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                       json={"contents": [{"parts": [{"text": "hi"}]}]})
        chunks = [d for _, d in _sse(r.text)]
        assert len(chunks) == 4
        counts = [c["usageMetadata"]["candidatesTokenCount"] for c in chunks]
        assert counts == sorted(counts) and counts[-1] == 4
        assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
        assert chunks[-1]["usageMetadata"] == server.usages[-1]
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        assert text == "one two three four"
        arr = httpx.post(server.url + "/v1beta/models/g:streamGenerateContent", json={"contents": []}).json()
        assert isinstance(arr, list) and len(arr) == 4

    def test_google_genai_sdk(self, server):
        """The google-genai SDK reads usage_metadata from the mock."""
        genai = pytest.importorskip("google.genai")
        from google.genai import types

        client = genai.Client(api_key="AIza-x", http_options=types.HttpOptions(base_url=server.url))
        resp = client.models.generate_content(model="gemini-2.5-flash", contents="hello")
        assert resp.text == "one two three four"
        assert resp.usage_metadata.thoughts_token_count == 2
        last = None
        for last in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello"):
            pass
        assert last.usage_metadata.candidates_token_count == 4
