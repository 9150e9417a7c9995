"""``UsageEvent(...)`` checks plain input inline; it must give exactly what pydantic-core gives.

The reference is ``UsageEvent.model_validate(data)``, which never takes the fast path. For any
input both succeed with the same fields (and the same ``model_fields_set``) or both raise.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from a2a_llm_tracker import UsageEvent
from a2a_llm_tracker._events import Accuracy, CostSource, Status, _plain_fields

TS = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

_anything = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["exact", "ok", "error", "pricing", "chat", ""]),
    st.sampled_from([Accuracy.EXACT, CostSource.PRICING, Status.ERROR]),
    st.sampled_from([TS, TS.replace(tzinfo=None), TS.astimezone(timezone(timedelta(hours=2)))]),
    st.lists(st.integers(0, 3), max_size=2),
)
_counts = st.one_of(st.none(), st.integers(-3, 5000), st.floats(-1, 5000), st.booleans(), st.text(max_size=3))
_dicts = st.one_of(
    st.none(), st.text(max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=12), st.integers(0, 3)),
                    st.one_of(st.integers(-2, 50), st.floats(), st.text(max_size=20), st.none(),
                              st.sampled_from(["Bearer abcdefghijklmnop", "sk-proj-abcdefghijkl"]),
                              st.dictionaries(st.text(max_size=5), st.integers(0, 9), max_size=2)),
                    max_size=4),
    st.fixed_dictionaries({"api_key": st.just("sk-abcdefghijklmnop"), "team": st.just("blue")}),
)

_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: _counts for name in ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens",
                                  "cache_write_tokens", "reasoning_tokens")},
    **{name: st.one_of(st.none(), st.floats(-1, 1e6), st.integers(-1, 9),
                       st.just(float("inf")), st.just(math.nan), st.text(max_size=2))
       for name in ("input_cost_usd", "output_cost_usd", "cost_usd", "latency_ms", "time_to_first_token_ms")},
    **{name: _anything for name in ("provider", "model", "response_model", "price_id", "error_type", "request_id",
                                    "finish_reason", "framework", "project", "agent_id", "user_id", "session_id",
                                    "trace_id", "call_id", "parent_call_id", "operation", "stream", "accuracy",
                                    "cost_source", "status", "ts", "price_effective_from", "event_id")},
    "token_details": _dicts, "raw_usage": _dicts, "metadata": _dicts,
    "error_message": st.one_of(st.none(), st.text(max_size=30), st.just("failed: Authorization: Bearer abcdefghijkl"),
                               st.integers()),
    "not_a_field": st.integers(),
}


def test_the_reference_path_is_pydantics_own() -> None:
    """model_validate() must not run the fast path, or the tests below would compare it with itself."""
    assert UsageEvent.__pydantic_custom_init__ is False


def _outcome(build: Any) -> tuple[str, Any]:
    try:
        event = build()
    except ValidationError as exc:
        return "error", sorted(str(err["loc"]) for err in exc.errors())[:1]
    dump = event.model_dump()
    return "ok", (dump, event.model_fields_set)


@settings(max_examples=600, deadline=None)
@given(st.fixed_dictionaries({}, optional=_FIELD_VALUES))
def test_fast_path_equals_pydantic(data: dict[str, Any]) -> None:
    data.setdefault("event_id", "e-1")
    data.setdefault("ts", TS)
    fast = _outcome(lambda: UsageEvent(**data))
    reference = _outcome(lambda: UsageEvent.model_validate(data))
    assert fast[0] == reference[0], (fast, reference)
    if fast[0] == "ok":
        assert fast[1][0] == reference[1][0]
        assert fast[1][1] == reference[1][1]


def test_an_adapter_shaped_event_takes_the_fast_path() -> None:
    data = {"provider": "openai", "model": "gpt-4.1", "input_tokens": 1000, "output_tokens": 200,
            "cached_input_tokens": 300, "reasoning_tokens": 20, "agent_id": "a", "latency_ms": 12.5,
            "raw_usage": {"prompt_tokens": 1000}, "token_details": {"audio": 0}, "metadata": {"k": "v"},
            "accuracy": Accuracy.EXACT, "stream": False, "ts": TS}
    fields = _plain_fields(data)
    assert fields is not None
    assert fields["total_tokens"] == 1200 and fields["accuracy"] == "exact"
    data["event_id"] = "e-1"
    assert UsageEvent(**data).model_dump() == UsageEvent.model_validate(data).model_dump()


@pytest.mark.parametrize("data", [
    {"input_tokens": -1}, {"input_tokens": True}, {"input_tokens": 10, "cached_input_tokens": 11},
    {"output_tokens": 5, "reasoning_tokens": 6}, {"latency_ms": float("nan")}, {"surprise": 1},
    {"metadata": "x"}, {"token_details": {"a": -1}}, {"ts": None}, {"status": "fine"},
])
def test_bad_input_still_gets_pydantics_error(data: dict[str, Any]) -> None:
    assert _plain_fields(data) is None
    with pytest.raises(ValidationError):
        UsageEvent(**data)


def test_the_fast_path_does_not_alias_the_callers_dicts() -> None:
    details, raw, metadata = {"audio": 1}, {"prompt_tokens": 3}, {"team": "blue"}
    event = UsageEvent(input_tokens=3, token_details=details, raw_usage=raw, metadata=metadata, ts=TS)
    details["audio"] = 99
    raw["prompt_tokens"] = 99
    metadata["team"] = "red"
    assert event.token_details == {"audio": 1} and event.raw_usage == {"prompt_tokens": 3}
    assert event.metadata == {"team": "blue"}


_PLAIN_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: st.one_of(st.none(), st.integers(0, 3000)) for name in (
        "input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens",
        "reasoning_tokens")},
    **{name: st.one_of(st.none(), st.floats(0, 1e6)) for name in (
        "input_cost_usd", "output_cost_usd", "cost_usd", "latency_ms", "time_to_first_token_ms")},
    **{name: st.one_of(st.none(), st.text(max_size=6)) for name in (
        "provider", "model", "agent_id", "session_id", "error_type", "finish_reason")},
    "accuracy": st.sampled_from([None, "exact", "estimated", Accuracy.UNKNOWN]),
    "cost_source": st.sampled_from([None, "provider", CostSource.CATALOG]),
    "status": st.sampled_from(["ok", Status.ERROR]),
    "stream": st.booleans(),
    "token_details": st.dictionaries(st.text(max_size=6), st.integers(0, 9), max_size=3),
    "raw_usage": st.one_of(st.none(), st.dictionaries(st.text(max_size=6), st.integers(0, 9), max_size=3)),
    "metadata": st.dictionaries(st.sampled_from(["team", "api_key", "note"]),
                                st.sampled_from(["blue", "Bearer abcdefghijklmnop", "x"]), max_size=3),
    "error_message": st.one_of(st.none(), st.sampled_from(["boom", "bad key sk-proj-abcdefghijklmnop"])),
}


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional=_PLAIN_VALUES))
def test_plain_inputs_match_pydantic(data: dict[str, Any]) -> None:
    """Inputs an adapter produces: mostly valid, so the fast path decides (and must agree)."""
    data.update(event_id="e-2", ts=TS)
    fast = _outcome(lambda: UsageEvent(**data))
    reference = _outcome(lambda: UsageEvent.model_validate(data))
    assert fast == reference
