"""TrackedChatCompletionClient under REAL autogen-agentchat agents and teams (local mock server only)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("autogen_agentchat")
pytest.importorskip("autogen_ext.models.openai")

from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.base import TaskResult  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.teams import RoundRobinGroupChat  # noqa: E402
from autogen_core.models import UserMessage  # noqa: E402

import a2a_llm_tracker  # noqa: E402
from a2a_llm_tracker import Meter, meter_context  # noqa: E402
from a2a_llm_tracker.integrations.autogen import TrackedChatCompletionClient  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402

from .conftest import CACHED, REASONING  # noqa: E402


def billed_for(server: Any, event: Any) -> dict[str, Any]:
    """The server's billing record of the request this event came from (matched by request id)."""
    number = event.request_id.rsplit("-", 1)[-1]
    (billed,) = [b for b in server.billed if b["request_id"].rsplit("_", 1)[-1] == number]
    return billed


def assert_one_event_per_request(server: Any, events: list[Any], *, details: bool = True) -> None:
    """Exactly one event per HTTP request, each with the tokens the server billed for it."""
    assert len(events) == len(server.requests) == len(server.billed)
    for event in events:
        assert event.status == "ok" and event.accuracy == "exact"
        if event.request_id is None:  # a stream without the tap: match by order
            continue
        billed = billed_for(server, event)
        assert (event.input_tokens, event.output_tokens) == (billed["input_tokens"], billed["output_tokens"])
        if details:
            assert event.cached_input_tokens == billed["cached_input_tokens"] == CACHED
            assert event.reasoning_tokens == billed["reasoning_tokens"] == REASONING


def team(client: Any, *names: str, turns: int | None = None) -> RoundRobinGroupChat:
    agents = [AssistantAgent(name, model_client=client, system_message=f"You are {name}.") for name in names]
    return RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination((turns or len(names)) + 1))


class TestAssistantAgent:
    async def test_run(self, server, meter, sink, openai_client) -> None:
        """agent.run(): one event per model call, exact tokens with details, constructor agent_id."""
        client = TrackedChatCompletionClient(openai_client(), meter, agent_id="researcher")
        agent = AssistantAgent("researcher", model_client=client)
        result = await agent.run(task="Say hello to the world")
        assert isinstance(result, TaskResult)
        assert_one_event_per_request(server, sink.events)
        assert sink.events[0].agent_id == "researcher"
        assert result.messages[-1].models_usage.prompt_tokens == sink.events[0].input_tokens

    async def test_run_outside_runtime_has_no_agent_unless_told(self, server, meter, sink, openai_client) -> None:
        """A standalone agent has no runtime identity: agent_id comes from meter_context or stays None."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        agent = AssistantAgent("solo", model_client=client)
        await agent.run(task="first")
        with meter_context(agent_id="solo-ctx", session_id="s-solo"):
            await agent.run(task="second")
        assert [e.agent_id for e in sink.events] == [None, "solo-ctx"]
        assert sink.events[1].session_id == "s-solo"

    async def test_run_stream_with_model_client_stream(self, server, meter, sink, openai_client) -> None:
        """run_stream with model_client_stream=True: one event per streamed call, real usage (not 0/0)."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        agent = AssistantAgent("streamer", model_client=client, model_client_stream=True)
        chunks = 0
        result = None
        async for item in agent.run_stream(task="Stream a greeting please"):
            if type(item).__name__ == "ModelClientStreamingChunkEvent":
                chunks += 1
            elif isinstance(item, TaskResult):
                result = item
        assert chunks > 1 and result is not None
        assert server.requests[0].json["stream_options"] == {"include_usage": True}
        assert_one_event_per_request(server, sink.events, details=False)
        event = sink.events[0]
        assert event.stream is True
        assert (event.input_tokens, event.output_tokens) == (server.billed[0]["input_tokens"],
                                                             server.billed[0]["output_tokens"])
        # AutoGen's own counter now shows real usage too, instead of RequestUsage(0, 0)
        assert result.messages[-1].models_usage.prompt_tokens == event.input_tokens

    async def test_run_stream_with_tap_has_details(self, server, meter, sink, openai_client) -> None:
        """With usage_tap=True streamed agent calls carry cached/reasoning tokens too."""
        client = TrackedChatCompletionClient(openai_client(), meter, usage_tap=True)
        agent = AssistantAgent("streamer", model_client=client, model_client_stream=True)
        async for _ in agent.run_stream(task="Stream a greeting please"):
            pass
        assert_one_event_per_request(server, sink.events, details=True)


class TestTeams:
    async def test_round_robin_maps_runtime_agents(self, server, meter, sink, openai_client) -> None:
        """One wrapper shared by alice and bob: each call is attributed to the agent the runtime ran."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        chat = team(client, "alice", "bob", turns=4)
        with meter_context(session_id="sess-42", user_id="u-7"):
            result = await chat.run(task="Discuss the weather")
        assert len(result.messages) == 5
        assert_one_event_per_request(server, sink.events)
        assert [e.agent_id for e in sink.events] == ["alice", "bob", "alice", "bob"]
        assert {e.session_id for e in sink.events} == {"sess-42"} and {e.user_id for e in sink.events} == {"u-7"}
        meta = sink.events[0].metadata
        assert meta["autogen_agent"] == "alice" and meta["autogen_agent_id"].startswith("alice_")
        # each later turn sees a longer conversation, so prompts grow: the counts are per call, not copies
        inputs = [e.input_tokens for e in sink.events]
        assert inputs == sorted(inputs) and len(set(inputs)) == 4

    async def test_round_robin_streaming(self, server, meter, sink, openai_client) -> None:
        """Streaming agents in a team: usage requested and attributed per agent."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        agents = [AssistantAgent(n, model_client=client, model_client_stream=True) for n in ("alice", "bob")]
        chat = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(3))
        async for _ in chat.run_stream(task="Go"):
            pass
        assert len(sink.events) == len(server.requests) == 2
        assert [e.agent_id for e in sink.events] == ["alice", "bob"]
        for event, billed in zip(sink.events, server.billed, strict=True):
            assert (event.input_tokens, event.output_tokens) == (billed["input_tokens"], billed["output_tokens"])

    async def test_gather_keeps_attribution_apart(self, server, meter, sink, openai_client) -> None:
        """Two team runs at once on one shared wrapper, each in its own meter_context, never mix."""
        server.chunk_delay = 0.0
        server.delay = 0.02  # make the two runs interleave
        client = TrackedChatCompletionClient(openai_client(), meter)

        async def run(session: str, names: tuple[str, str], task: str) -> None:
            async with meter_context(session_id=session, trace_id=f"trace-{session}"):
                await team(client, *names, turns=4).run(task=task)

        await asyncio.gather(run("s-1", ("alice", "bob"), "Plan a trip"),
                             run("s-2", ("carol", "dave"), "Write a much longer poem about the sea"))
        assert_one_event_per_request(server, sink.events)
        by_session = {"s-1": {"alice", "bob"}, "s-2": {"carol", "dave"}}
        for event in sink.events:
            assert event.agent_id in by_session[event.session_id]
            assert event.trace_id == f"trace-{event.session_id}"
        assert sum(e.session_id == "s-1" for e in sink.events) == 4 == sum(e.session_id == "s-2" for e in sink.events)
        # the runs did overlap (otherwise the test proves nothing about concurrency)
        order = [e.session_id for e in sorted(sink.events, key=lambda e: e.ts)]
        assert order != sorted(order)


class TestSerialisation:
    async def test_agent_dump_load_round_trip(self, server, pricing, openai_client) -> None:
        """AssistantAgent.dump_component()/load_component() keep the wrapper (agent_id too, not the meter)."""
        client = TrackedChatCompletionClient(openai_client(), Meter(background=False), agent_id="writer",
                                             usage_tap=True)
        agent = AssistantAgent("writer", model_client=client)
        dumped = agent.dump_component()
        assert dumped.config["model_client"]["provider"] == (
            "a2a_llm_tracker.integrations.autogen.TrackedChatCompletionClient")
        assert dumped.config["model_client"]["config"]["agent_id"] == "writer"
        as_json = dumped.model_dump_json()
        assert "meter" not in json.loads(as_json)["config"]["model_client"]["config"]
        assert '"test"' not in as_json  # the inner api_key is masked in JSON

        loaded = AssistantAgent.load_component(json.loads(as_json))
        loaded_client = loaded._model_client
        assert isinstance(loaded_client, TrackedChatCompletionClient)
        assert loaded_client.meter is None and loaded_client.agent_id == "writer"
        sink = MemorySink()
        a2a_llm_tracker.init_sync("roundtrip", local_sink=sink, pricing=pricing, background=False)
        await loaded.run(task="Write one line")
        assert len(sink.events) == len(server.requests) == 1
        event = sink.events[0]
        assert event.agent_id == "writer" and event.project == "roundtrip" and event.model == "gpt-4o-mini"
        assert event.cached_input_tokens == CACHED  # the tap option survived the round trip too

    def test_team_dump_component(self, meter, openai_client) -> None:
        """A team whose agents share the wrapper serialises (no nested component lacks config support)."""
        client = TrackedChatCompletionClient(openai_client(), meter)
        dumped = team(client, "alice", "bob").dump_component()
        participants = dumped.config["participants"]
        assert [p["config"]["model_client"]["provider"].rsplit(".", 1)[-1] for p in participants] == [
            "TrackedChatCompletionClient"] * 2
        RoundRobinGroupChat.load_component(dumped)

    def test_explicit_meter_after_load(self, meter, openai_client) -> None:
        """load_component gives meter=None; a meter can be given by wrapping again explicitly."""
        original = TrackedChatCompletionClient(openai_client(), meter, agent_id="a")
        loaded = TrackedChatCompletionClient.load_component(original.dump_component())
        assert loaded.meter is None and loaded.agent_id == "a"
        assert isinstance(loaded.inner_client, type(original.inner_client))


class TestCaching:
    @pytest.fixture(name="cache_cls")
    def _cache_cls(self) -> Any:
        from autogen_ext.models.cache import ChatCompletionCache

        return ChatCompletionCache

    async def test_tracked_outside_cache_records_hits_unbilled(self, server, meter, sink, openai_client,
                                                               cache_cls) -> None:
        """Tracked(Cache(inner)): a hit is recorded (cached=True, its tokens) but costs $0: never billed twice."""
        client = TrackedChatCompletionClient(cache_cls(openai_client()), meter)
        messages = [UserMessage(content="Cache me", source="user")]
        first = await client.create(messages)
        second = await client.create(messages)
        assert second.cached is True and first.content == second.content  # (the store shares the object)
        assert len(server.requests) == 1 and len(sink.events) == 2
        miss, hit = sink.events
        assert miss.model == "gpt-4o-mini" and miss.provider == "openai"  # seen through the cache
        assert miss.cost_usd > 0 and miss.cached_input_tokens == CACHED and not miss.metadata.get("cached")
        assert hit.metadata["cached"] is True and hit.cost_usd == 0.0 and hit.price_id == "llm-cache-hit"
        assert (hit.input_tokens, hit.output_tokens) == (miss.input_tokens, miss.output_tokens)
        assert sum(e.cost_usd for e in sink.events) == miss.cost_usd

    async def test_tracked_outside_cache_streams(self, server, meter, sink, openai_client, cache_cls) -> None:
        """The same for streams: usage is requested through the cache; the replayed stream is a $0 hit."""
        client = TrackedChatCompletionClient(cache_cls(openai_client()), meter)
        messages = [UserMessage(content="Stream and cache me", source="user")]
        for _ in range(2):
            async for _item in client.create_stream(messages):
                pass
        assert len(server.requests) == 1 and server.requests[0].json["stream_options"] == {"include_usage": True}
        miss, hit = sink.events
        assert miss.input_tokens == server.billed[0]["input_tokens"] and miss.cost_usd > 0
        assert hit.metadata["cached"] is True and hit.cost_usd == 0.0 and hit.stream is True

    async def test_tracked_inside_cache_sees_only_real_calls(self, server, meter, sink, openai_client,
                                                             cache_cls) -> None:
        """Cache(Tracked(inner)): hits never reach the wrapper, so only real calls are recorded."""
        client = cache_cls(TrackedChatCompletionClient(openai_client(), meter))
        messages = [UserMessage(content="Cache me", source="user")]
        await client.create(messages)
        await client.create(messages)
        assert len(server.requests) == 1 == len(sink.events)
        assert sink.events[0].input_tokens == server.billed[0]["input_tokens"]

    def test_cached_wrapper_round_trips(self, meter, openai_client, cache_cls) -> None:
        """Tracked(Cache(inner)) dumps and loads."""
        client = TrackedChatCompletionClient(cache_cls(openai_client()), meter, agent_id="x")
        loaded = TrackedChatCompletionClient.load_component(client.dump_component())
        assert type(loaded.inner_client).__name__ == "ChatCompletionCache" and loaded.agent_id == "x"


class TestPrecedence:
    """explicit (constructor) > framework-derived (AutoGen runtime) > ambient meter_context > Meter defaults,
    except that for ``agent_id`` an ambient ``meter_context(agent_id=...)`` wins over the runtime's agent name
    (the issue's rule for AutoGen; the runtime's name is then kept in metadata["autogen_agent"])."""

    @pytest.fixture(name="dmeter")
    def _dmeter(self, pricing: Any, sink: MemorySink) -> Any:
        meter = Meter(pricing=pricing, sinks=[sink], background=False, strict=True, project="proj-default",
                      defaults={"agent_id": "agent-default", "session_id": "sess-default",
                                "user_id": "user-default"})
        yield meter
        meter.close()

    async def test_meter_defaults_are_last(self, server, dmeter, sink, openai_client) -> None:
        """Outside any runtime or context, the Meter's defaults fill everything."""
        client = TrackedChatCompletionClient(openai_client(), dmeter)
        await client.create([UserMessage(content="hi", source="user")])
        event = sink.events[0]
        assert (event.agent_id, event.session_id, event.user_id, event.project) == (
            "agent-default", "sess-default", "user-default", "proj-default")

    async def test_ambient_beats_defaults_and_runtime_beats_defaults(self, server, dmeter, sink,
                                                                     openai_client) -> None:
        """In a team: runtime name over the default agent; ambient session over the default session."""
        client = TrackedChatCompletionClient(openai_client(), dmeter)
        with meter_context(session_id="sess-ambient"):
            await team(client, "alice", "bob").run(task="go")
        assert [(e.agent_id, e.session_id, e.user_id) for e in sink.events] == [
            ("alice", "sess-ambient", "user-default"), ("bob", "sess-ambient", "user-default")]

    async def test_framework_metadata_beats_ambient_metadata(self, server, dmeter, sink, openai_client) -> None:
        """Metadata the adapter derives from AutoGen wins over the same key in the ambient context."""
        client = TrackedChatCompletionClient(openai_client(), dmeter)
        with meter_context(autogen_agent="spoofed", team="blue"):
            await team(client, "alice").run(task="go")
        meta = sink.events[0].metadata
        assert meta["autogen_agent"] == "alice" and meta["team"] == "blue"

    async def test_ambient_agent_id_beats_runtime(self, server, dmeter, sink, openai_client) -> None:
        """meter_context(agent_id=...) around a team labels its calls; the runtime name stays in metadata."""
        client = TrackedChatCompletionClient(openai_client(), dmeter)
        with meter_context(agent_id="support-team"):
            await team(client, "alice", "bob").run(task="go")
        assert [e.agent_id for e in sink.events] == ["support-team", "support-team"]
        assert [e.metadata["autogen_agent"] for e in sink.events] == ["alice", "bob"]

    async def test_explicit_beats_everything(self, server, dmeter, sink, openai_client) -> None:
        """The constructor's agent_id wins over ambient context, the runtime and the defaults."""
        client = TrackedChatCompletionClient(openai_client(), dmeter, agent_id="explicit")
        with meter_context(agent_id="ambient", session_id="sess-ambient"):
            await team(client, "alice").run(task="go")
            await client.create([UserMessage(content="direct", source="user")])
        assert [e.agent_id for e in sink.events] == ["explicit", "explicit"]
        assert {e.session_id for e in sink.events} == {"sess-ambient"}
