"""Every recorded provider response in fixtures/ gives exactly the normalised fields it states."""

from __future__ import annotations

import pytest

from a2a_llm_tracker import ResponseType, analyze_response, track_stream
from a2a_llm_tracker.analyzers import accumulate

from .conftest import NORMALISED_FIELDS, all_fixtures, load_fixture

CORPUS = all_fixtures()


def _event(fixture, meter):
    kwargs = {}
    if fixture.get("model_override"):
        kwargs["model_override"] = fixture["model_override"]
    if fixture.get("metadata"):
        kwargs["metadata"] = fixture["metadata"]
    if fixture["kind"] == "stream":
        stream = track_stream(iter(fixture["chunks"]), fixture["response_type"], meter, **kwargs)
        chunks = list(stream)
        assert chunks == fixture["chunks"]  # yielded unchanged
        return stream.usage_event
    return analyze_response(fixture["response"], fixture["response_type"], meter, **kwargs)


@pytest.mark.parametrize("name", CORPUS)
def test_fixture_is_cited_and_complete(name):
    """Each fixture says where it came from and states every normalised field."""
    fixture = load_fixture(name)
    assert fixture["_source"].strip(), name
    assert fixture["response_type"] in {t.value for t in ResponseType}
    missing = [f for f in NORMALISED_FIELDS if f not in fixture["expected"]]
    assert not missing, f"{name}: expected block lacks {missing}"


@pytest.mark.parametrize("name", CORPUS)
def test_fixture_normalises(name, meter, sink):
    """analyze_response / track_stream give every expected field, and record one event."""
    fixture = load_fixture(name)
    event = _event(fixture, meter)
    meter.flush()
    assert len(sink.events) == 1
    assert sink.events[0].event_id == event.event_id
    for field, expected in fixture["expected"].items():
        actual = getattr(event, field)
        if field == "metadata":
            assert {k: actual.get(k) for k in expected} == expected, f"{name}: metadata {actual}"
        else:
            assert actual == expected, f"{name}: {field} = {actual!r}, expected {expected!r}"
    if event.status == "ok" and event.accuracy == "exact":
        assert event.raw_usage, f"{name}: raw_usage kept"


@pytest.mark.parametrize("name", [n for n in CORPUS if load_fixture(n)["kind"] == "stream"])
def test_accumulate_matches_track_stream(name):
    """accumulate() (no meter) reads the same usage as track_stream."""
    fixture = load_fixture(name)
    usage = accumulate(fixture["chunks"], fixture["response_type"])
    expected = fixture["expected"]
    for field in ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens",
                  "reasoning_tokens", "token_details"):
        assert getattr(usage, field) == expected[field], f"{name}: {field}"
