"""The same recorded payloads, given as each SDK's own objects, give the same normalised fields."""

from __future__ import annotations

import io
import json

import pytest

from a2a_llm_tracker import analyze_response, track_stream
from a2a_llm_tracker.analyzers import parse

from .conftest import load_fixture

COMPARED = ("provider", "model", "response_model", "operation", "stream", "input_tokens", "output_tokens",
            "total_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "token_details",
            "accuracy", "status", "error_type", "finish_reason", "request_id")


def _check(event, fixture, *, dropped=()):
    for field in COMPARED:
        assert getattr(event, field) == fixture["expected"][field], f"{field}: {getattr(event, field)!r}"
    for key, value in fixture["expected"]["metadata"].items():
        if key not in dropped:
            assert event.metadata.get(key) == value, key


def _analyze(obj, fixture, meter):
    return analyze_response(obj, fixture["response_type"], meter, model_override=fixture.get("model_override"),
                            metadata=fixture.get("metadata"))


def _stream(chunks, fixture, meter):
    stream = track_stream(iter(chunks), fixture["response_type"], meter, model_override=fixture.get("model_override"))
    assert list(stream) == chunks
    return stream.usage_event


class TestOpenAI:
    """openai-python objects (ChatCompletion, Response, chunks, errors)."""

    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("openai")

    @pytest.mark.parametrize("name", ["openai_chat_basic", "openai_chat_reasoning", "openai_chat_cached_prompt"])
    def test_chat_completion(self, name, meter):
        """A ChatCompletion object reads like its JSON."""
        from openai.types.chat import ChatCompletion

        fixture = load_fixture(name)
        _check(_analyze(ChatCompletion.model_validate(fixture["response"]), fixture, meter), fixture)

    def test_request_id_header_wins(self, meter):
        """The SDK's ``_request_id`` (the x-request-id header) becomes request_id."""
        from openai.types.chat import ChatCompletion

        fixture = load_fixture("openai_chat_basic")
        obj = ChatCompletion.model_validate(fixture["response"])
        obj._request_id = "req_6b2d0f41a7c1"
        event = _analyze(obj, fixture, meter)
        assert event.request_id == "req_6b2d0f41a7c1"

    def test_responses_object(self, meter):
        """A Response built the SDK's lenient way (construct_type) reads like its JSON."""
        from openai._models import construct_type
        from openai.types.responses import Response

        fixture = load_fixture("openai_responses_basic")
        _check(_analyze(construct_type(type_=Response, value=fixture["response"]), fixture, meter), fixture)

    def test_embeddings_object(self, meter):
        from openai.types import CreateEmbeddingResponse

        fixture = load_fixture("openai_embeddings")
        _check(_analyze(CreateEmbeddingResponse.model_validate(fixture["response"]), fixture, meter), fixture)

    @pytest.mark.parametrize("name", ["openai_chat_stream_usage", "openai_chat_stream_no_usage"])
    def test_chat_chunks(self, name, meter):
        from openai._models import construct_type
        from openai.types.chat import ChatCompletionChunk

        fixture = load_fixture(name)
        chunks = [construct_type(type_=ChatCompletionChunk, value=c) for c in fixture["chunks"]]
        _check(_stream(chunks, fixture, meter), fixture)

    def test_responses_stream_events(self, meter):
        from openai._models import construct_type
        from openai.types.responses import ResponseStreamEvent

        fixture = load_fixture("openai_responses_stream_reasoning")
        events = [construct_type(type_=ResponseStreamEvent, value=c) for c in fixture["chunks"]]
        _check(_stream(events, fixture, meter), fixture)

    def test_api_status_error(self, meter):
        """An openai.BadRequestError passed as the response becomes an error event."""
        import httpx
        import openai

        fixture = load_fixture("openai_error_invalid_request")
        response = httpx.Response(400, json=fixture["response"], headers={"x-request-id": "req_err_1"},
                                  request=httpx.Request("POST", "https://api.openai.com/v1/responses"))
        error = openai.BadRequestError("Error code: 400", response=response, body=fixture["response"]["error"])
        event = _analyze(error, fixture, meter)
        assert (event.status, event.error_type, event.request_id) == ("error", "invalid_request_error", "req_err_1")
        assert event.error_message == fixture["response"]["error"]["message"]
        assert event.metadata["http_status"] == 400
        assert event.input_tokens is None and event.accuracy == "unknown"


class TestAnthropic:
    """anthropic-sdk-python objects (Message, raw stream events, errors)."""

    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("anthropic")

    def test_message(self, meter):
        from anthropic.types import Message

        fixture = load_fixture("anthropic_cache_read")
        obj = Message.model_validate(fixture["response"])
        _check(_analyze(obj, fixture, meter), fixture)
        obj._request_id = "req_011CZ"
        assert _analyze(obj, fixture, meter).request_id == "req_011CZ"

    @pytest.mark.parametrize("name", ["anthropic_stream_cache_1h", "anthropic_stream_web_search"])
    def test_raw_stream_events(self, name, meter):
        from anthropic._models import construct_type
        from anthropic.types import RawMessageStreamEvent

        fixture = load_fixture(name)
        events = [construct_type(type_=RawMessageStreamEvent, value=c) for c in fixture["chunks"]]
        _check(_stream(events, fixture, meter), fixture)

    def test_api_error(self, meter):
        import anthropic
        import httpx

        fixture = load_fixture("anthropic_error_not_found")
        response = httpx.Response(404, json=fixture["response"],
                                  request=httpx.Request("POST", "https://api.anthropic.com/v1/messages"))
        error = anthropic.NotFoundError("Error code: 404", response=response, body=fixture["response"])
        event = _analyze(error, fixture, meter)
        assert (event.status, event.error_type) == ("error", "not_found_error")
        assert event.request_id == "req_011CVEA3SF7rnb3DuBZytqQa"
        assert event.metadata["http_status"] == 404


class TestGoogleGenAI:
    """google-genai GenerateContentResponse objects (built the SDK's own way, _from_response)."""

    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("google.genai")

    @pytest.mark.parametrize("name", ["gemini_thinking", "gemini_safety_blocked", "gemini_max_tokens_no_candidates_count"])
    def test_response(self, name, meter):
        from google.genai import types

        fixture = load_fixture(name)
        obj = types.GenerateContentResponse._from_response(response=json.loads(json.dumps(fixture["response"])),
                                                           kwargs={})
        # google-genai strips keys its types do not know (serviceTier) while parsing
        _check(_analyze(obj, fixture, meter), fixture, dropped=("service_tier",))

    def test_stream_chunks(self, meter):
        from google.genai import types

        fixture = load_fixture("gemini_stream_cumulative")
        chunks = [types.GenerateContentResponse._from_response(response=json.loads(json.dumps(c)), kwargs={})
                  for c in fixture["chunks"]]
        _check(_stream(chunks, fixture, meter), fixture, dropped=("service_tier",))

    def test_api_error(self, meter):
        from google.genai import errors

        fixture = load_fixture("gemini_error_quota")
        error = errors.ClientError(429, fixture["response"], None)
        event = _analyze(error, fixture, meter)
        assert (event.status, event.error_type) == ("error", "RESOURCE_EXHAUSTED")
        assert event.metadata["http_status"] == 429


class TestGoogleGenerativeAI:
    """Legacy google-generativeai objects: the proto hides thinking tokens; output = total - prompt."""

    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("google.generativeai")

    def _legacy(self, raw):
        from google.ai import generativelanguage as glm
        from google.generativeai.types import generation_types

        pb = glm.GenerateContentResponse.from_json(json.dumps(raw), ignore_unknown_fields=True)
        return generation_types.GenerateContentResponse.from_response(pb)

    def test_response_object(self, meter):
        """The SDK object gives what its to_dict() fixture gives, labelled as derived."""
        fixture = load_fixture("gemini_legacy_to_dict")
        raw = load_fixture("gemini_thinking")["response"]
        obj = self._legacy(raw)
        assert obj.to_dict() == fixture["response"]  # the fixture is exactly this SDK's to_dict()
        event = _analyze(obj, fixture, meter)
        _check(event, fixture)
        assert event.metadata["sdk"] == "google-generativeai"

    def test_legacy_stream_objects(self, meter):
        """Legacy stream chunks (also proto-backed) follow the cumulative last-chunk rule."""
        fixture = load_fixture("gemini_stream_cumulative")
        chunks = [self._legacy(c) for c in fixture["chunks"]]
        event = track_stream(iter(chunks), "gemini", meter)
        list(event)
        recorded = event.usage_event
        # the proto keeps prompt 18, candidates 80, total 133 but drops thoughts (35): derived output 115
        assert (recorded.input_tokens, recorded.output_tokens, recorded.total_tokens) == (18, 115, 133)
        assert recorded.reasoning_tokens is None
        assert recorded.token_details["hidden_output_tokens"] == 35
        assert recorded.finish_reason == "STOP"


class TestCohere:
    """cohere v1 and v2 objects (counts typed as floats)."""

    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("cohere")

    @pytest.mark.parametrize("name", ["cohere_v2_cached", "cohere_v2_basic"])
    def test_v2_response(self, name, meter):
        from cohere.v2.types import V2ChatResponse

        fixture = load_fixture(name)
        obj = V2ChatResponse.model_validate(fixture["response"])
        assert isinstance(obj.usage.billed_units.input_tokens, float)  # the trap: floats, not ints
        event = _analyze(obj, fixture, meter)
        _check(event, fixture)
        assert isinstance(event.input_tokens, int)

    def test_v1_response(self, meter):
        from cohere.types import NonStreamedChatResponse

        fixture = load_fixture("cohere_v1_chat")
        _check(_analyze(NonStreamedChatResponse.model_validate(fixture["response"]), fixture, meter), fixture)

    def test_v1_stream_objects(self, meter):
        from cohere.core.unchecked_base_model import construct_type
        from cohere.types import StreamedChatResponse

        fixture = load_fixture("cohere_v1_stream_tool_call")
        chunks = [construct_type(type_=StreamedChatResponse, object_=c) for c in fixture["chunks"]]
        _check(_stream(chunks, fixture, meter), fixture)


class TestMistral:
    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("mistralai")

    def test_response(self, meter):
        """mistralai keeps prompt_tokens_details only in additional_properties; it still counts."""
        from mistralai.client.models import ChatCompletionResponse

        fixture = load_fixture("mistral_basic")
        obj = ChatCompletionResponse.model_validate(fixture["response"])
        _check(_analyze(obj, fixture, meter), fixture)

    def test_stream_events(self, meter):
        from mistralai.client.models import CompletionChunk

        fixture = load_fixture("mistral_stream_magistral")
        chunks = [CompletionChunk.model_validate(c) for c in fixture["chunks"]]
        _check(_stream(chunks, fixture, meter), fixture)


class TestGroq:
    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("groq")

    @pytest.mark.parametrize("name", ["groq_basic", "groq_reasoning"])
    def test_response(self, name, meter):
        from groq._models import construct_type
        from groq.types.chat import ChatCompletion

        fixture = load_fixture(name)
        _check(_analyze(construct_type(type_=ChatCompletion, value=fixture["response"]), fixture, meter), fixture)

    def test_stream_chunks(self, meter):
        from groq._models import construct_type
        from groq.types.chat import ChatCompletionChunk

        fixture = load_fixture("groq_stream_reasoning")
        chunks = [construct_type(type_=ChatCompletionChunk, value=c) for c in fixture["chunks"]]
        _check(_stream(chunks, fixture, meter), fixture)


class TestTogether:
    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("together")

    @pytest.mark.parametrize("name", ["together_basic_eos", "together_tool_calls"])
    def test_response(self, name, meter):
        from together._models import construct_type
        from together.types.chat import ChatCompletion

        fixture = load_fixture(name)
        _check(_analyze(construct_type(type_=ChatCompletion, value=fixture["response"]), fixture, meter), fixture)

    def test_stream_chunks(self, meter):
        from together._models import construct_type
        from together.types.chat import ChatCompletionChunk

        fixture = load_fixture("together_stream_eos")
        chunks = [construct_type(type_=ChatCompletionChunk, value=c) for c in fixture["chunks"]]
        _check(_stream(chunks, fixture, meter), fixture)


class TestLiteLLM:
    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("litellm")

    @pytest.mark.parametrize("name", ["litellm_anthropic_cache", "litellm_anthropic_cache_write_1h",
                                      "litellm_gemini_thinking"])
    def test_model_response(self, name, meter):
        """A real ModelResponse (LiteLLM's own transformation of a recorded body): no double counting."""
        from litellm.types.utils import ModelResponse

        fixture = load_fixture(name)
        obj = ModelResponse(**fixture["response"])
        obj._hidden_params = {"custom_llm_provider": "anthropic" if "anthropic" in name else "gemini",
                              "response_cost": 0.0123}
        event = _analyze(obj, fixture, meter)
        for field in ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens",
                      "reasoning_tokens", "token_details", "finish_reason", "response_model"):
            assert getattr(event, field) == fixture["expected"][field], field
        assert event.provider == ("anthropic" if "anthropic" in name else "gemini")
        # the cost LiteLLM reported is passed on, but the Meter only keeps it with use_provider_cost
        assert event.cost_usd is None


    def test_model_response_stream_chunks(self, meter):
        """Real ModelResponseStream chunks (the final one carries a litellm Usage)."""
        from litellm.types.utils import ModelResponseStream

        fixture = load_fixture("openai_chat_stream_usage")
        chunks = [ModelResponseStream(**{k: v for k, v in c.items() if k != "obfuscation"}) for c in fixture["chunks"]]
        stream = track_stream(iter(chunks), "litellm", meter, model_override="gpt-4o-mini")
        assert list(stream) == chunks
        event = stream.usage_event
        assert (event.input_tokens, event.output_tokens, event.total_tokens) == (53, 15, 68)
        assert (event.cached_input_tokens, event.reasoning_tokens, event.finish_reason) == (0, 0, "tool_calls")
        assert event.stream and event.model == "gpt-4o-mini"


class TestBoto3:
    """boto3 invoke_model dicts with a real StreamingBody, and botocore ClientError."""

    @pytest.fixture(autouse=True)
    def _sdk(self):
        pytest.importorskip("botocore")

    def test_streaming_body_is_read_and_put_back(self, meter):
        from botocore.response import StreamingBody

        fixture = load_fixture("bedrock_invoke_anthropic_body")
        data = fixture["response"]["body"].encode()
        response = {**fixture["response"], "body": StreamingBody(io.BytesIO(data), len(data))}
        _check(_analyze(response, fixture, meter), fixture)
        # the caller can still read the body (a StreamingBody can be read only once)
        assert isinstance(response["body"], StreamingBody)
        assert json.loads(response["body"].read()) == json.loads(data)

    def test_client_error(self, meter):
        from botocore.exceptions import ClientError

        fixture = load_fixture("bedrock_error_clienterror_shape")
        error = ClientError(fixture["response"], "Converse")
        _check(_analyze(error, fixture, meter), fixture)

    def test_invoke_stream_bytes(self, meter):
        """boto3 yields the chunk payload as bytes."""
        fixture = load_fixture("bedrock_invoke_stream_anthropic")
        chunks = [{"chunk": {"bytes": c["chunk"]["bytes"].encode()}} for c in fixture["chunks"]]
        _check(_stream(chunks, fixture, meter), fixture)


def test_parse_reads_sdk_object_without_meter():
    """parse() is usable by other adapters without a meter."""
    pytest.importorskip("anthropic")
    from anthropic.types import Message

    analysis = parse(Message.model_validate(load_fixture("anthropic_cache_read")["response"]), "anthropic")
    assert (analysis.usage.input_tokens, analysis.usage.cached_input_tokens) == (1114, 1111)
    assert analysis.model == "claude-sonnet-4-5-20250929"
