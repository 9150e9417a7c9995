"""usage_metadata → UsageEvent fields, with payloads LangChain's own provider packages produce.

Sources (reproduced in /work/shared/notes/langchain_llamaindex.md §1.3 by calling the packages'
pure functions): langchain-openai ``_create_usage_metadata`` with ``service_tier`` priority/flex, and
langchain-anthropic ``_create_usage_metadata`` with Anthropic's ``cache_creation`` TTL breakdown.
"""

from __future__ import annotations

import subprocess
import sys

from a2a_llm_tracker.integrations.langchain import TrackerHandler, usage_from_langchain

OPENAI_PLAIN = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
                "input_token_details": {"audio": 0, "cache_read": 100},
                "output_token_details": {"audio": 0, "reasoning": 12}}
OPENAI_PRIORITY = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
                   "input_token_details": {"priority_cache_read": 100, "priority": 20},
                   "output_token_details": {"priority_reasoning": 12, "priority": 18}}
ANTHROPIC_TTL = {"input_tokens": 1020, "output_tokens": 50, "total_tokens": 1070,
                 "input_token_details": {"cache_read": 0, "cache_creation": 0,
                                         "ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400}}


class TestUsageMapping:
    def test_openai_cache_and_reasoning(self):
        f = usage_from_langchain(OPENAI_PLAIN)
        assert (f["input_tokens"], f["output_tokens"], f["cached_input_tokens"], f["reasoning_tokens"]) == \
            (120, 30, 100, 12)
        assert f["token_details"] == {"input_audio_tokens": 0, "output_audio_tokens": 0}

    def test_priority_prefixed_keys(self):
        """Tier-prefixed keys replace the plain ones: they must still count as cache/reasoning."""
        f = usage_from_langchain(OPENAI_PRIORITY)
        assert (f["cached_input_tokens"], f["reasoning_tokens"]) == (100, 12)
        assert f["token_details"] == {"input_priority": 20, "output_priority": 18}
        flex = {k: ({kk.replace("priority", "flex"): vv for kk, vv in v.items()} if isinstance(v, dict) else v)
                for k, v in OPENAI_PRIORITY.items()}
        assert usage_from_langchain(flex)["cached_input_tokens"] == 100

    def test_anthropic_ttl_split_is_a_cache_write(self):
        """langchain-anthropic sets cache_creation=0 and reports the TTL split instead."""
        f = usage_from_langchain(ANTHROPIC_TTL)
        assert f["input_tokens"] == 1020  # already inclusive: nothing added
        assert f["cache_write_tokens"] == 1000 and f["cached_input_tokens"] == 0
        assert f["token_details"] == {"cache_write_5m": 600, "cache_write_1h": 400}


def _fake_model(chunks):
    """A tiny chat model streaming *chunks* (AIMessageChunk usage dicts) and answering with the last."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    class Fake(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "fake-usage"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            msg = AIMessage(content="ok", usage_metadata=chunks[-1],
                            response_metadata={"model_name": "fake-1", "model_provider": "fakeprov"})
            return ChatResult(generations=[ChatGeneration(message=msg)])

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            for i, usage in enumerate(chunks):
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=f"t{i} ", usage_metadata=usage))
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    return Fake()


class TestFakeModel:
    def test_invoke_uses_response_metadata(self, meter, sink):
        model = _fake_model([OPENAI_PLAIN])
        model.invoke("x", config={"callbacks": [TrackerHandler(meter)]})
        [e] = sink.events
        assert (e.provider, e.response_model, e.input_tokens, e.cached_input_tokens) == ("fakeprov", "fake-1", 120, 100)

    def test_cumulative_stream_usage_is_not_summed(self, meter, sink):
        """A server sending running totals on every chunk: LangChain sums them (360/60); we keep 120/30."""
        running = [{"input_tokens": 120, "output_tokens": n, "total_tokens": 120 + n} for n in (10, 20, 30)]
        list(_fake_model(running).stream("x", config={"callbacks": [TrackerHandler(meter)]}))
        [e] = sink.events
        assert (e.input_tokens, e.output_tokens, e.stream) == (120, 30, True)

    def test_split_stream_usage_is_summed(self, meter, sink):
        """Anthropic-style: input on the first chunk, output on the last; the merged sum is right."""
        split = [{"input_tokens": 120, "output_tokens": 0, "total_tokens": 120},
                 {"input_tokens": 0, "output_tokens": 30, "total_tokens": 30}]
        list(_fake_model(split).stream("x", config={"callbacks": [TrackerHandler(meter)]}))
        [e] = sink.events
        assert (e.input_tokens, e.output_tokens) == (120, 30)


def test_missing_langchain_raises_adapter_unavailable():
    """Without langchain-core the import fails with AdapterUnavailable and the pip extra."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('langchain_core', 'langchain'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from a2a_llm_tracker.exceptions import AdapterUnavailable\n"
        "try:\n"
        "    import a2a_llm_tracker.integrations.langchain\n"
        "except AdapterUnavailable as exc:\n"
        "    print('OK', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("OK") and "pip install a2a-llm-tracker[langchain]" in out.stdout, out.stderr


class TestBuildEvent:
    """The adapters' hot-path event builder gives exactly what full validation gives."""

    FIELDS = dict(input_tokens=120, output_tokens=30, cached_input_tokens=100, reasoning_tokens=12,
                  token_details={"input_audio_tokens": 0}, raw_usage=OPENAI_PLAIN, provider="openai",
                  model="gpt-4o-mini", framework="langchain", call_id="c-1", latency_ms=1.5,
                  metadata={"run_name": "uses sk-abcdefghijklmnopqrst", "api_key": "xyz", "langgraph_step": 2})

    def test_same_as_validated(self):
        from a2a_llm_tracker import UsageEvent
        from a2a_llm_tracker._events import event_from

        fast, slow = event_from(dict(self.FIELDS)), UsageEvent(**self.FIELDS)
        assert fast.model_dump(exclude={"event_id", "ts"}) == slow.model_dump(exclude={"event_id", "ts"})
        assert fast.metadata["api_key"] == "[REDACTED]" and "sk-" not in fast.metadata["run_name"]
        assert fast.total_tokens == 150 and fast.accuracy == "exact" and fast.event_id != slow.event_id
        assert UsageEvent.model_validate(fast.to_record()) == UsageEvent.model_validate(fast.to_record())

    def test_contract_breaks_fall_back_and_keep_the_event(self, caplog):
        from a2a_llm_tracker._events import event_from

        event = event_from({**self.FIELDS, "cached_input_tokens": 500})
        assert event.cached_input_tokens is None and event.input_tokens == 120
        assert event.metadata["usage_warning"]
        import pytest

        with pytest.raises(ValueError):
            event_from({"input_tokens": -1})
