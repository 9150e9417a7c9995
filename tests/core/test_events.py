"""UsageEvent: the schema and the usage contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from a2a_llm_tracker import Usage, UsageEvent


class TestValidation:
    def test_total_defaults_to_input_plus_output(self):
        """total_tokens is input + output when the provider gave no total."""
        assert UsageEvent(input_tokens=120, output_tokens=30).total_tokens == 150

    def test_provider_total_is_kept(self):
        """A provider total (Gemini-compat counts thoughts only there) is not recomputed."""
        assert UsageEvent(input_tokens=35, output_tokens=12, total_tokens=109).total_tokens == 109

    def test_no_usage_is_unknown_accuracy_and_none_tokens(self):
        """A call without usage: accuracy unknown, counts None (never 0)."""
        event = UsageEvent(model="gpt-4.1")
        assert event.accuracy == "unknown"
        assert event.input_tokens is None and event.total_tokens is None

    def test_reported_usage_is_exact(self):
        assert UsageEvent(input_tokens=1, output_tokens=0).accuracy == "exact"

    @pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
                                       "cache_write_tokens", "total_tokens"])
    def test_negative_counts_rejected_naming_the_field(self, field):
        with pytest.raises(ValidationError) as info:
            UsageEvent(**{field: -1})
        assert field in str(info.value)
        assert "greater than or equal to 0" in str(info.value)

    @pytest.mark.parametrize("value", [1.5, "12", True, float("nan"), [3]])
    def test_non_integer_counts_rejected(self, value):
        with pytest.raises(ValidationError) as info:
            UsageEvent(input_tokens=value)
        assert "input_tokens" in str(info.value)

    def test_integral_float_accepted(self):
        """Cohere's SDK types counts as floats (58.0): an integral float is a whole count."""
        assert UsageEvent(input_tokens=58.0).input_tokens == 58

    def test_cache_subset_larger_than_input_rejected(self):
        with pytest.raises(ValidationError) as info:
            UsageEvent(input_tokens=10, cached_input_tokens=8, cache_write_tokens=5)
        assert "cached_input_tokens" in str(info.value) and "subset" in str(info.value)

    def test_reasoning_larger_than_output_rejected(self):
        with pytest.raises(ValidationError) as info:
            UsageEvent(output_tokens=5, reasoning_tokens=6)
        assert "reasoning_tokens" in str(info.value)

    def test_unknown_field_rejected(self):
        with pytest.raises(ValidationError) as info:
            UsageEvent(input_tokenz=3)
        assert "input_tokenz" in str(info.value)

    def test_naive_timestamp_taken_as_utc_and_aware_converted(self):
        naive = UsageEvent(ts=datetime(2026, 1, 2, 3, 4, 5))
        assert naive.ts.tzinfo is UTC and naive.ts.hour == 3
        aware = UsageEvent(ts=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))))
        assert aware.ts.hour == 1 and aware.ts.utcoffset() == timedelta(0)

    def test_event_ids_are_unique(self):
        assert len({UsageEvent().event_id for _ in range(1000)}) == 1000

    def test_negative_cost_rejected(self):
        with pytest.raises(ValidationError) as info:
            UsageEvent(cost_usd=-0.01)
        assert "cost_usd" in str(info.value)

    def test_bad_token_details_rejected(self):
        with pytest.raises(ValidationError) as info:
            UsageEvent(token_details={"audio_input_tokens": "many"})
        assert "audio_input_tokens" in str(info.value)


class TestSecrets:
    def test_error_message_scrubbed(self):
        event = UsageEvent(status="error", error_message="401: Incorrect API key provided: sk-proj-abcdefghijklmnop1234")
        assert "sk-proj-abcdefghijklmnop1234" not in event.error_message
        assert "[REDACTED]" in event.error_message

    def test_metadata_secret_keys_masked(self):
        event = UsageEvent(metadata={"api_key": "sk-123456789abc", "headers": {"Authorization": "Bearer abcdefghijk"},
                                     "team": "blue", "max_tokens": 100})
        dumped = json.dumps(event.to_record())
        assert "sk-123456789abc" not in dumped and "abcdefghijk" not in dumped
        assert event.metadata["team"] == "blue" and event.metadata["max_tokens"] == 100


class TestUsage:
    def test_from_usage_fills_token_fields(self):
        usage = Usage(input_tokens=100, output_tokens=20, cached_input_tokens=40, reasoning_tokens=5,
                      token_details={"cache_write_1h": 0}, raw_usage={"prompt_tokens": 100})
        event = UsageEvent.from_usage(usage, provider="openai", model="gpt-4.1")
        assert (event.input_tokens, event.output_tokens, event.cached_input_tokens, event.reasoning_tokens) == (
            100, 20, 40, 5)
        assert event.raw_usage == {"prompt_tokens": 100}
        assert event.accuracy == "exact"

    def test_empty_usage_is_unknown(self):
        assert UsageEvent.from_usage(Usage()).accuracy == "unknown"

    def test_estimated_label_survives(self):
        assert UsageEvent.from_usage(Usage(input_tokens=3, accuracy="estimated")).accuracy == "estimated"


class TestSchema:
    def test_json_schema_has_every_field(self):
        schema = UsageEvent.model_json_schema()
        assert set(schema["properties"]) == set(UsageEvent.model_fields)

    def test_round_trip_through_json(self):
        event = UsageEvent(provider="anthropic", model="claude-sonnet-4-5", input_tokens=1532, output_tokens=10,
                           cached_input_tokens=1111, cache_write_tokens=418,
                           token_details={"cache_write_5m": 418}, metadata={"k": [1, 2]})
        again = UsageEvent.model_validate_json(event.model_dump_json())
        assert again == event


counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10**12))


@given(inp=counts, out=counts, cached=counts, write=counts, reasoning=counts)
def test_invariants_hold_for_every_accepted_event(inp, out, cached, write, reasoning):
    """Property: an event either fails validation or keeps every subset within its total."""
    try:
        event = UsageEvent(input_tokens=inp, output_tokens=out, cached_input_tokens=cached,
                           cache_write_tokens=write, reasoning_tokens=reasoning)
    except ValidationError:
        assert inp is not None and (cached or 0) + (write or 0) > inp or (
            out is not None and reasoning is not None and reasoning > out)
        return
    if event.input_tokens is not None:
        assert (event.cached_input_tokens or 0) + (event.cache_write_tokens or 0) <= event.input_tokens
    if event.output_tokens is not None and event.reasoning_tokens is not None:
        assert event.reasoning_tokens <= event.output_tokens
    if inp is not None or out is not None:
        assert event.total_tokens == (inp or 0) + (out or 0)
        assert event.accuracy == "exact"
