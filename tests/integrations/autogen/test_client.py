"""TrackedChatCompletionClient around a REAL autogen-ext OpenAI / Anthropic client and a local mock server."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest

pytest.importorskip("autogen_ext.models.openai")

from autogen_core import EVENT_LOGGER_NAME, CancellationToken  # noqa: E402
from autogen_core.models import ChatCompletionClient, CreateResult, UserMessage  # noqa: E402

import a2a_llm_tracker  # noqa: E402
from a2a_llm_tracker import Meter  # noqa: E402
from a2a_llm_tracker.exceptions import BudgetExceededError  # noqa: E402
from a2a_llm_tracker.integrations.autogen import TrackedChatCompletionClient  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402

from .conftest import CACHED, REASONING, SERVED_MODEL  # noqa: E402

MESSAGES = [UserMessage(content="What is the capital of France?", source="user")]


def assert_billed(event: Any, billed: dict[str, Any], *, details: bool = True) -> None:
    """The event's tokens are exactly what the server billed for that request."""
    assert event.input_tokens == billed["input_tokens"]
    assert event.output_tokens == billed["output_tokens"]
    assert event.total_tokens == billed["total_tokens"]
    if details:
        assert event.cached_input_tokens == billed["cached_input_tokens"]
        assert event.reasoning_tokens == billed["reasoning_tokens"]


class TestCreate:
    async def test_records_exact_usage_with_details(self, server, meter, sink, openai_client) -> None:
        """A non-stream create is one event with the server's tokens, cache/reasoning details and served model."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        result = await client.create(MESSAGES)
        assert isinstance(result, CreateResult) and result.content
        assert len(server.requests) == 1 and len(sink.events) == 1
        event = sink.events[0]
        assert_billed(event, server.billed[0])
        assert event.cached_input_tokens == CACHED and event.reasoning_tokens == REASONING
        assert event.provider == "openai" and event.model == "gpt-4o-mini"
        assert event.response_model == SERVED_MODEL
        assert event.framework == "autogen" and event.stream is False and event.accuracy == "exact"
        assert event.request_id and event.finish_reason == "stop"
        assert event.raw_usage == server.usages[0]
        assert event.cost_source == "pricing" and event.cost_usd is not None and event.cost_usd > 0
        assert event.latency_ms is not None and event.latency_ms > 0
        # what AutoGen itself reports is unchanged
        assert result.usage.prompt_tokens == event.input_tokens

    async def test_usage_events_off_keeps_prompt_and_completion_only(self, server, meter, sink, openai_client):
        """Without the LLMCallEvent route only AutoGen's RequestUsage is known (no details)."""
        client = TrackedChatCompletionClient(openai_client(), meter, usage_events=False)
        await client.create(MESSAGES)
        event = sink.events[0]
        assert_billed(event, server.billed[0], details=False)
        assert event.cached_input_tokens is None and event.reasoning_tokens is None
        assert event.response_model is None

    async def test_provider_error_records_error_event(self, server, meter, sink, openai_client) -> None:
        """A failing call is recorded once as an error (no tokens) and the exception reaches the caller."""
        client = TrackedChatCompletionClient(openai_client(max_retries=0), meter)
        server.fail_next(1, status=500)
        with pytest.raises(Exception) as info:
            await client.create(MESSAGES)
        assert type(info.value).__name__ == "InternalServerError"
        assert len(server.requests) == 1 and len(sink.events) == 1
        event = sink.events[0]
        assert event.status == "error" and event.error_type == "InternalServerError"
        assert event.input_tokens is None and event.accuracy == "unknown" and event.cost_usd is None

    async def test_no_usage_reported_is_unknown_not_zero(self, server, meter, sink, openai_client) -> None:
        """A provider that sends no usage gives accuracy=unknown and None tokens, never 0."""
        server.set_model("gpt-4o-mini", report_usage=False, response_model=SERVED_MODEL)
        client = TrackedChatCompletionClient(openai_client(), meter)
        await client.create(MESSAGES)
        event = sink.events[0]
        assert event.accuracy == "unknown" and event.input_tokens is None and event.cost_usd is None


class TestStream:
    async def test_stream_requests_usage_and_records_once(self, server, meter, sink, openai_client) -> None:
        """create_stream asks for the usage chunk per call and records one event from the final result."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        items = [item async for item in client.create_stream(MESSAGES)]
        assert isinstance(items[-1], CreateResult) and all(isinstance(i, str) for i in items[:-1])
        body = server.requests[0].json
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        assert len(sink.events) == 1
        event = sink.events[0]
        assert event.stream is True and event.accuracy == "exact"
        assert_billed(event, server.billed[0], details=False)
        assert event.time_to_first_token_ms is not None and event.time_to_first_token_ms <= event.latency_ms

    async def test_non_stream_request_gets_no_stream_options(self, server, meter, openai_client) -> None:
        """The injection is per stream call: create() requests carry no stream_options."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        async for _ in client.create_stream(MESSAGES):
            pass
        await client.create(MESSAGES)
        assert "stream_options" not in server.requests[1].json

    async def test_caller_choice_is_kept(self, server, meter, sink, openai_client) -> None:
        """A caller's own stream_options.include_usage=False is not overridden (usage then unknown)."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        async for _ in client.create_stream(MESSAGES, extra_create_args={"stream_options": {"include_usage": False}}):
            pass
        assert server.requests[0].json["stream_options"] == {"include_usage": False}
        assert server.billed[0]["usage_reported"] is False
        event = sink.events[0]
        assert event.accuracy == "unknown" and event.input_tokens is None

    async def test_include_usage_kwarg_forwarded(self, server, meter, sink, openai_client) -> None:
        """create_stream accepts the OpenAI client's own include_usage keyword and forwards it."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        async for _ in client.create_stream(MESSAGES, include_usage=True):
            pass
        assert server.requests[0].json["stream_options"] == {"include_usage": True}
        assert_billed(sink.events[0], server.billed[0], details=False)

    async def test_request_stream_usage_off(self, server, meter, sink, openai_client) -> None:
        """request_stream_usage=False sends the stream as AutoGen would (no usage: unknown)."""
        client = TrackedChatCompletionClient(openai_client(), meter, request_stream_usage=False)
        async for _ in client.create_stream(MESSAGES):
            pass
        assert "stream_options" not in server.requests[0].json
        assert sink.events[0].accuracy == "unknown"

    async def test_usage_tap_gives_stream_details(self, server, meter, sink, openai_client) -> None:
        """usage_tap=True reads cached/reasoning tokens and the served model from the usage chunk."""
        client = TrackedChatCompletionClient(openai_client(), meter, usage_tap=True)
        async for _ in client.create_stream(MESSAGES):
            pass
        await client.create(MESSAGES)
        assert len(sink.events) == 2 == len(server.requests)
        for event, billed in zip(sink.events, server.billed, strict=True):
            assert_billed(event, billed)
            assert event.response_model == SERVED_MODEL
        assert sink.events[0].raw_usage == server.usages[0]

    async def test_abandoned_stream_records_once(self, server, meter, sink, openai_client) -> None:
        """A consumer that stops after the first chunk still yields exactly one (unknown-usage) event."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        stream = client.create_stream(MESSAGES)
        first = await stream.__anext__()
        assert isinstance(first, str)
        await stream.aclose()
        await stream.aclose()  # closing twice does not record twice
        assert len(server.requests) == 1 and len(sink.events) == 1
        event = sink.events[0]
        assert event.metadata["stream_incomplete"] is True and event.accuracy == "unknown"
        assert event.status == "ok" and event.input_tokens is None

    async def test_abandoned_by_break_records_once(self, server, meter, sink, openai_client) -> None:
        """`break` out of `async for` (the generator closed by the loop later) records once."""
        client = TrackedChatCompletionClient(openai_client(), meter)

        async def consume() -> None:
            async for _ in client.create_stream(MESSAGES):
                break

        await consume()
        for _ in range(20):  # the event loop's async-generator finaliser closes it soon after
            if sink.events:
                break
            await asyncio.sleep(0.01)
        assert len(sink.events) == 1 and sink.events[0].metadata["stream_incomplete"] is True

    async def test_cancelled_stream_records_once(self, server, meter, sink, openai_client) -> None:
        """A stream cancelled through its CancellationToken records one error event."""
        server.chunk_delay = 0.05
        client = TrackedChatCompletionClient(openai_client(), meter)
        token = CancellationToken()
        seen: list[Any] = []

        async def consume() -> None:
            async for item in client.create_stream(MESSAGES, cancellation_token=token):
                seen.append(item)
                token.cancel()

        with pytest.raises(asyncio.CancelledError):
            await consume()
        assert seen and len(sink.events) == 1
        event = sink.events[0]
        assert event.status == "error" and event.error_type == "CancelledError"
        assert event.metadata["stream_incomplete"] is True


class _AnthropicLikeClient(ChatCompletionClient):
    """What autogen-ext's AnthropicChatCompletionClient.create does (0.7.5, ``_anthropic_client.py``
    lines 684-697): POST ``/v1/messages``, log an ``LLMCallEvent`` with the raw message and return
    ``prompt_tokens=usage.input_tokens`` (the uncached part). The real client cannot be driven here:
    autogen-ext 0.7.5 always passes ``temperature``, which the installed anthropic SDK (2.17) rejects
    with a TypeError before any request. httpx (already loaded by openai) keeps the test fast."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self._http = httpx.AsyncClient(base_url=base_url)
        self._model_info = {"vision": False, "function_calling": False, "json_output": False,
                            "family": "claude-3-5-haiku", "structured_output": False}

    async def create(self, messages: Any, **kwargs: Any) -> CreateResult:
        from autogen_core.logging import LLMCallEvent
        from autogen_core.models import RequestUsage

        body = [{"role": "user", "content": m.content} for m in messages]
        response = await self._http.post("/v1/messages", headers={"x-api-key": "test", "anthropic-version": "2023-06-01"},
                                         json={"model": "claude-3-5-haiku-20241022", "max_tokens": 256,
                                               "messages": body})
        result = response.json()
        usage = RequestUsage(prompt_tokens=result["usage"]["input_tokens"],
                             completion_tokens=result["usage"]["output_tokens"])
        logging.getLogger(EVENT_LOGGER_NAME).info(LLMCallEvent(
            messages=body, response=result, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens))
        return CreateResult(finish_reason="stop", content=result["content"][0]["text"], usage=usage, cached=False)

    def create_stream(self, messages: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        await self._http.aclose()

    def actual_usage(self) -> Any:
        raise NotImplementedError

    total_usage = actual_usage

    def count_tokens(self, messages: Any, **kwargs: Any) -> int:
        return 0

    remaining_tokens = count_tokens

    @property
    def capabilities(self) -> Any:  # type: ignore[override]
        return self._model_info

    @property
    def model_info(self) -> Any:
        return self._model_info


class TestAnthropic:
    async def test_input_normalised_to_inclusive(self, server, meter, sink) -> None:
        """Anthropic's input_tokens excludes cache reads/writes; the event counts them in (raw response)."""
        server.cache_write_tokens = 5
        client = TrackedChatCompletionClient(_AnthropicLikeClient(server.url), meter, provider="anthropic",
                                             model="claude-3-5-haiku-20241022")
        result = await client.create(MESSAGES)
        await client.close()
        event, billed = sink.events[0], server.billed[0]
        assert event.provider == "anthropic" and event.model == "claude-3-5-haiku-20241022"
        assert event.input_tokens == billed["input_tokens"]  # inclusive
        assert event.cached_input_tokens == CACHED and event.cache_write_tokens == 5
        assert event.output_tokens == billed["output_tokens"]
        assert event.raw_usage["input_tokens"] == server.usages[0]["input_tokens"]
        # AutoGen's own count is the uncached part only
        assert result.usage.prompt_tokens == billed["input_tokens"] - CACHED - 5

    async def test_non_openai_stream_not_injected(self, meter, sink) -> None:
        """No stream_options is added for clients outside the OpenAI family."""
        from autogen_ext.models.replay import ReplayChatCompletionClient

        class RecordingReplay(ReplayChatCompletionClient):
            stream_kwargs: list[dict[str, Any]] = []

            def create_stream(self, messages: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                self.stream_kwargs.append(kwargs)
                return super().create_stream(messages, **kwargs)

        inner = RecordingReplay(["hello world"])
        inner.set_cached_bool_value(False)
        client = TrackedChatCompletionClient(inner, meter)
        async for _ in client.create_stream(MESSAGES):
            pass
        assert "stream_options" not in inner.stream_kwargs[0]["extra_create_args"]
        assert sink.events[0].provider == "replay" and sink.events[0].stream is True


class TestForwarding:
    async def test_all_abstract_members_forwarded(self, meter, openai_client) -> None:
        """Every abstract ChatCompletionClient member answers what the inner client answers."""
        inner = openai_client()
        client = TrackedChatCompletionClient(inner, meter)
        assert set(ChatCompletionClient.__abstractmethods__) <= set(dir(client))
        assert client.model_info == inner.model_info
        with pytest.warns(DeprecationWarning):
            assert client.capabilities == inner.model_info
        replay = _replay()  # count_tokens of the OpenAI client needs tiktoken files (network)
        wrapped = TrackedChatCompletionClient(replay, meter)
        assert wrapped.count_tokens(MESSAGES) == replay.count_tokens(MESSAGES) > 0
        assert wrapped.remaining_tokens(MESSAGES) == replay.remaining_tokens(MESSAGES)
        await client.create(MESSAGES)
        assert client.total_usage() == inner.total_usage() and client.total_usage().prompt_tokens > 0
        assert client.actual_usage() == inner.actual_usage()
        await client.close()

    def test_rejects_non_client(self, meter) -> None:
        """A clear error names what was wrong."""
        with pytest.raises(TypeError, match="ChatCompletionClient"):
            TrackedChatCompletionClient(object(), meter)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="meter"):
            TrackedChatCompletionClient(_replay(), meter="nope")

    async def test_nested_wrappers_record_once(self, server, meter, sink, openai_client) -> None:
        """Two tracked layers (or another adapter outside) count a call once."""
        client = TrackedChatCompletionClient(TrackedChatCompletionClient(openai_client(), meter), meter)
        await client.create(MESSAGES)
        async for _ in client.create_stream(MESSAGES):
            pass
        assert len(server.requests) == 2 and len(sink.events) == 2
        assert sink.events[0].cached_input_tokens == CACHED  # the outer layer still saw the raw response


class TestMeterResolution:
    async def test_meter_none_uses_global_meter(self, server, openai_client, pricing) -> None:
        """meter=None records into the global meter that exists at call time."""
        client = TrackedChatCompletionClient(openai_client())
        sink = MemorySink()
        a2a_llm_tracker.init_sync("demo", local_sink=sink, pricing=pricing, background=False)
        await client.create(MESSAGES)
        assert len(sink.events) == 1 and sink.events[0].project == "demo"

    async def test_no_meter_passes_through_with_one_warning(self, server, openai_client, caplog) -> None:
        """Without any meter the call still works; one warning says why nothing is recorded."""
        client = TrackedChatCompletionClient(openai_client())
        with caplog.at_level(logging.WARNING, logger="a2a_llm_tracker"):
            await client.create(MESSAGES)
            await client.create(MESSAGES)
        assert len(server.requests) == 2
        assert sum("no global meter" in r.getMessage() for r in caplog.records) == 1

    async def test_budget_checked_before_the_call(self, server, meter, sink, openai_client) -> None:
        """A budget that is over its limit stops the call before any HTTP request."""
        seen: list[dict[str, Any]] = []

        class OverBudget:
            def check(self, attribution: dict[str, Any]) -> None:
                seen.append(attribution)
                raise BudgetExceededError("over", scope="agent", key=attribution.get("agent_id"))

        meter.add_budget(OverBudget())
        client = TrackedChatCompletionClient(openai_client(), meter, agent_id="researcher")
        with pytest.raises(BudgetExceededError):
            await client.create(MESSAGES)
        with pytest.raises(BudgetExceededError):
            async for _ in client.create_stream(MESSAGES):
                pass
        assert server.requests == [] and sink.events == []
        assert seen[0]["agent_id"] == "researcher"

    async def test_real_budget_per_agent(self, server, meter, sink, openai_client) -> None:
        """With a real per-agent Budget, an agent over its limit is stopped; another agent is not."""
        from a2a_llm_tracker import Budget

        meter.add_budget(Budget(0.000001, scope="agent"))
        alice = TrackedChatCompletionClient(openai_client(), meter, agent_id="alice")
        bob = TrackedChatCompletionClient(openai_client(), meter, agent_id="bob")
        await alice.create(MESSAGES)  # spend 0 < limit: allowed; its cost is now recorded
        with pytest.raises(BudgetExceededError) as info:
            await alice.create(MESSAGES)
        assert info.value.scope == "agent" and info.value.key == "alice"
        await bob.create(MESSAGES)
        assert len(server.requests) == 2 and [e.agent_id for e in sink.events] == ["alice", "bob"]

    async def test_tracking_failure_never_breaks_the_call(self, server, openai_client, caplog) -> None:
        """A meter that fails to record (non-strict) logs a warning; the result is returned unchanged."""

        class BrokenMeter(Meter):
            def record(self, *args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("disk on fire")

        meter = BrokenMeter(background=False)
        client = TrackedChatCompletionClient(openai_client(), meter)
        with caplog.at_level(logging.WARNING, logger="a2a_llm_tracker"):
            result = await client.create(MESSAGES)
        assert result.content and any("could not record" in r.getMessage() for r in caplog.records)
        meter.close()


class TestLoggingSideEffects:
    async def test_events_logger_prints_nothing_new(self, server, meter, sink, openai_client) -> None:
        """With a root handler (basicConfig style, level NOTSET) the tap makes AutoGen print nothing new."""
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            client = TrackedChatCompletionClient(openai_client(), meter)
            await client.create(MESSAGES)
        finally:
            root.removeHandler(handler)
        assert sink.events[0].cached_input_tokens == CACHED  # the tap worked ...
        assert "LLMCall" not in stream.getvalue()  # ... and nothing was printed

    async def test_user_enabled_events_still_flow(self, server, meter, openai_client) -> None:
        """A user who asked for AutoGen's INFO events keeps getting them."""
        records: list[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record)

        events_logger = logging.getLogger(EVENT_LOGGER_NAME)
        handler = Keep()
        events_logger.addHandler(handler)
        events_logger.setLevel(logging.INFO)
        try:
            client = TrackedChatCompletionClient(openai_client(), meter)
            await client.create(MESSAGES)
        finally:
            events_logger.removeHandler(handler)
            events_logger.setLevel(logging.NOTSET)
        assert any(type(r.msg).__name__ == "LLMCallEvent" for r in records)

    async def test_uninstall_restores_level(self, meter, openai_client) -> None:
        """The tap sets the events logger to INFO only while installed."""
        from a2a_llm_tracker.integrations.autogen import _EventTap

        events_logger = logging.getLogger(EVENT_LOGGER_NAME)
        assert events_logger.level == logging.NOTSET
        TrackedChatCompletionClient(openai_client(), meter)
        assert events_logger.level == logging.INFO
        _EventTap.uninstall()
        assert events_logger.level == logging.NOTSET and not events_logger.filters


def _replay() -> Any:
    from autogen_ext.models.replay import ReplayChatCompletionClient

    return ReplayChatCompletionClient(["hi"])
