"""Hypothesis fuzz: analyze_response never raises on odd input and never breaks the usage contract."""

from __future__ import annotations

import copy
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2a_llm_tracker import Meter, ResponseType, UsageEvent, accumulate, analyze_response
from a2a_llm_tracker.sinks.memory import MemorySink

from .conftest import all_fixtures, load_fixture

# numbers that hurt: negative, huge, fractional, NaN/inf, bools, numeric strings
WEIRD_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.sampled_from(["12", "-3", "1e9", "", "many", "0x10", " 7 "]), st.none())
KEYS = st.sampled_from([
    "usage", "usageMetadata", "usage_metadata", "meta", "billed_units", "tokens", "prompt_tokens", "completion_tokens",
    "total_tokens", "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    "cached_tokens", "reasoning_tokens", "prompt_tokens_details", "completion_tokens_details", "promptTokenCount",
    "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount", "cachedContentTokenCount",
    "toolUsePromptTokenCount", "inputTokens", "outputTokens", "totalTokens", "cacheReadInputTokens",
    "cacheWriteInputTokens", "choices", "candidates", "finish_reason", "finishReason", "model", "id", "error",
    "type", "message", "cache_creation", "server_tool_use", "x_groq", "body", "Error", "output", "status",
    "object", "data", "response", "delta", "stopReason", "metadata", "chunk", "bytes"])
LEAF = st.one_of(WEIRD_NUMBERS, st.text(max_size=8))
NESTED = st.recursive(LEAF, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.one_of(KEYS, st.text(max_size=5)), children, max_size=6)),
    max_leaves=25)
PAYLOADS = st.dictionaries(KEYS, NESTED, max_size=8)
CORPUS = [load_fixture(n) for n in all_fixtures()]


def _assert_contract(event: UsageEvent) -> None:
    """The invariants every recorded event keeps."""
    UsageEvent.model_validate(event.model_dump())  # round-trips through validation
    for name in ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens",
                 "reasoning_tokens"):
        value = getattr(event, name)
        assert value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    if event.input_tokens is not None:
        assert (event.cached_input_tokens or 0) + (event.cache_write_tokens or 0) <= event.input_tokens
    if event.output_tokens is not None and event.reasoning_tokens is not None:
        assert event.reasoning_tokens <= event.output_tokens
    assert event.accuracy in ("exact", "unknown")
    if event.accuracy == "unknown":
        assert event.input_tokens is None and event.output_tokens is None and event.total_tokens is None
    assert event.status in ("ok", "error")


@pytest.fixture(scope="module", name="fuzz_meter")
def _fuzz_meter():
    meter = Meter(sinks=[MemorySink()], background=False, strict=False)
    logging.getLogger("a2a_llm_tracker").disabled = True  # thousands of expected warnings
    yield meter
    logging.getLogger("a2a_llm_tracker").disabled = False
    meter.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(payload=PAYLOADS, rtype=st.sampled_from(list(ResponseType)))
def test_random_nested_dicts(payload, rtype, fuzz_meter):
    """Random nested dicts with provider-ish keys and hostile values."""
    _assert_contract(analyze_response(payload, rtype, fuzz_meter))


@st.composite
def _mutated_fixture(draw):
    """A real recorded payload with one value somewhere replaced by something hostile."""
    fixture = copy.deepcopy(draw(st.sampled_from(CORPUS)))
    body = fixture.get("response", fixture.get("chunks"))
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append((*path, key))
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node[:6]):
                paths.append((*path, index))
                walk(value, (*path, index))

    walk(body, ())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        replacement = draw(st.one_of(WEIRD_NUMBERS, NESTED))
        try:  # an earlier replacement may have removed part of this path
            target = body
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = replacement
        except (TypeError, IndexError, KeyError):
            pass
    return fixture["response_type"], fixture["kind"], body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(case=_mutated_fixture())
def test_mutated_real_payloads(case, fuzz_meter):
    """Real payloads with wrong types, negative/huge numbers, strings where ints belong."""
    rtype, kind, body = case
    _assert_contract(analyze_response(body, rtype, fuzz_meter))
    if kind == "stream" and isinstance(body, list):
        usage = accumulate(body, rtype)
        _assert_contract(UsageEvent.from_usage(usage))


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.one_of(NESTED, PAYLOADS), max_size=6), rtype=st.sampled_from(list(ResponseType)))
def test_random_streams(chunks, rtype):
    """accumulate() over random chunk lists keeps the contract too."""
    _assert_contract(UsageEvent.from_usage(accumulate(chunks, rtype)))
