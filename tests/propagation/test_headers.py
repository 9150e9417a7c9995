"""inject_context / extract_context: W3C traceparent + baggage, round trips, and hostile input."""

from __future__ import annotations

import contextvars

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a2a_llm_tracker import extract_context, get_context, inject_context, meter_context
from a2a_llm_tracker._propagation import (
    context_fields,
    new_span_id,
    new_trace_id,
    parse_baggage,
    parse_traceparent,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # the W3C Trace Context spec's example ids
SPAN = "00f067aa0ba902b7"


def _fresh(fn, *args, **kwargs):
    """Run *fn* in an empty tracker context (as a new request in another process would)."""
    return contextvars.Context().run(fn, *args, **kwargs)


def _extracted(headers, **kw):
    def run():
        with extract_context(headers, **kw):
            return get_context()
    return _fresh(run)


class TestInject:
    def test_w3c_ids_and_baggage(self):
        with meter_context(trace_id=TRACE, call_id=SPAN, session_id="sess 1,ü;x=y", user_id="u-1", project="demo",
                           agent_id="planner"):
            headers = inject_context({"accept": "application/json"})
        assert headers["traceparent"] == f"00-{TRACE}-{SPAN}-01"
        assert headers["accept"] == "application/json"
        bag = parse_baggage(headers["baggage"])
        assert bag["a2a.session_id"] == "sess 1,ü;x=y"  # percent-encoded on the wire, decoded back
        assert bag["a2a.user_id"] == "u-1" and bag["a2a.project"] == "demo" and bag["a2a.call_id"] == SPAN
        assert "a2a.trace_id" not in bag  # the traceparent carries it
        assert " " not in headers["baggage"] and "ü" not in headers["baggage"]
        headers["baggage"].encode("ascii")

    def test_non_w3c_trace_id_travels_in_baggage(self):
        with meter_context(trace_id="run-42", call_id="lc-run-7", session_id="s"):
            headers = inject_context()
        trace_id, parent, flags = parse_traceparent(headers["traceparent"])
        assert trace_id != "run-42" and len(trace_id) == 32 and len(parent) == 16 and flags == "01"
        ctx = _extracted(headers)
        assert ctx.trace_id == "run-42" and ctx.parent_call_id == "lc-run-7"

    def test_nothing_to_carry_adds_nothing(self):
        assert _fresh(inject_context, {"x": "1"}) == {"x": "1"}

    def test_existing_traceparent_and_foreign_baggage_are_kept(self):
        otel_tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        headers = {"Traceparent": otel_tp, "baggage": "vendor=abc,a2a.session_id=stale"}
        with meter_context(session_id="fresh", trace_id=TRACE, call_id=SPAN):
            inject_context(headers)
        assert headers["Traceparent"] == otel_tp and "traceparent" not in headers
        bag = parse_baggage(headers["baggage"])
        assert bag["vendor"] == "abc" and bag["a2a.session_id"] == "fresh"
        assert bag["a2a.trace_id"] == TRACE  # differs from the kept traceparent: carried explicitly
        assert headers["baggage"].count("a2a.session_id") == 1

    def test_httpx_headers(self):
        headers = httpx.Headers({"baggage": "k=v"})
        with meter_context(session_id="s-9", trace_id=TRACE):
            assert inject_context(headers) is headers
        assert parse_traceparent(headers["traceparent"])[0] == TRACE
        assert parse_baggage(headers["baggage"]) == {"k": "v", "a2a.session_id": "s-9"}

    def test_fresh_ids_are_w3c(self):
        assert parse_traceparent(f"00-{new_trace_id()}-{new_span_id()}-01") is not None


class TestExtract:
    def test_round_trip_opens_the_callers_context(self):
        with meter_context(trace_id=TRACE, call_id=SPAN, session_id="s-1", user_id="u-1", project="p",
                           agent_id="planner"):
            headers = inject_context({})
        ctx = _extracted(headers, agent_id="researcher")
        assert (ctx.trace_id, ctx.session_id, ctx.user_id, ctx.project) == (TRACE, "s-1", "u-1", "p")
        assert ctx.parent_call_id == SPAN
        assert ctx.agent_id == "researcher"
        assert ctx.call_id and ctx.call_id != SPAN and len(ctx.call_id) == 16
        assert ctx.metadata["agent_chain"] == ["planner"]

    def test_agent_chain_grows_hop_by_hop(self):
        with meter_context(session_id="s", agent_id="a,1"):
            h1 = inject_context({})

        def hop_b():
            with extract_context(h1, agent_id="b"):
                return inject_context({})
        h2 = _fresh(hop_b)
        ctx = _extracted(h2, agent_id="c")
        assert ctx.metadata["agent_chain"] == ["a,1", "b"]  # a comma inside an id survives
        assert ctx.session_id == "s"

    def test_context_is_restored_after_the_block(self):
        def run():
            with extract_context({"traceparent": f"00-{TRACE}-{SPAN}-01"}):
                assert get_context().trace_id == TRACE
            return get_context().trace_id
        assert _fresh(run) is None

    def test_overrides_and_defaults(self):
        headers = {"baggage": "a2a.project=from-caller,a2a.user_id=u"}
        ctx = _extracted(headers, user_id="explicit", defaults={"project": "mine", "session_id": "dflt"})
        assert ctx.project == "from-caller" and ctx.user_id == "explicit" and ctx.session_id == "dflt"

    def test_w3c_spec_examples(self):
        """Examples from the W3C Trace Context and Baggage specs (w3.org/TR/trace-context, w3.org/TR/baggage)."""
        assert parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == (TRACE, SPAN, "01")
        assert parse_baggage("key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue") \
            == {"key1": "value1", "key2": "value2", "key3": "value3"}
        assert parse_baggage("userId=alice,serverNode=DF%2028,isProduction=false") == \
            {"userId": "alice", "serverNode": "DF 28", "isProduction": "false"}
        # a higher version may append fields
        assert parse_traceparent(f"01-{TRACE}-{SPAN}-01-what-the-future-holds") == (TRACE, SPAN, "01")

    def test_asgi_raw_header_pairs(self):
        raw = [(b"host", b"x"), (b"traceparent", f"00-{TRACE}-{SPAN}-01".encode()),
               (b"baggage", b"a2a.session_id=s%201"), (b"Baggage", b"a2a.user_id=u")]
        assert context_fields(raw) == {"trace_id": TRACE, "parent_call_id": SPAN, "session_id": "s 1",
                                       "user_id": "u"}


BAD_TRACEPARENTS = [
    "", "garbage", "00-" + TRACE.upper() + "-" + SPAN + "-01", f"00-{'0' * 32}-{SPAN}-01", f"00-{TRACE}-{'0' * 16}-01",
    f"ff-{TRACE}-{SPAN}-01", f"00-{TRACE}-{SPAN}-01-extra", f"00-{TRACE[:-1]}-{SPAN}-01", f"00-{TRACE}-{SPAN}-1",
    f"0-{TRACE}-{SPAN}-01", f"00_{TRACE}_{SPAN}_01", f"00-{TRACE}-{SPAN}-01," + f"00-{TRACE}-{SPAN}-01",
    "00-" + "g" * 32 + "-" + SPAN + "-01", "x" * 100_000,
]


class TestMalformed:
    @pytest.mark.parametrize("value", BAD_TRACEPARENTS)
    def test_bad_traceparent_is_ignored(self, value):
        assert parse_traceparent(value) is None
        ctx = _extracted({"traceparent": value})
        assert ctx.trace_id is None and ctx.parent_call_id is None and len(ctx.call_id) == 16

    @pytest.mark.parametrize("value, expected", [
        ("a2a.session_id", {}),  # no '='
        ("a2a.session_id=%FF%FE", {}),  # not UTF-8
        ("a2a.session_id=line%0Abreak", {}),  # control character
        ("a2a.session_id=" + "x" * 300, {}),  # too long for an id
        ("bad key=v,a2a.user_id=ok", {"user_id": "ok"}),
        ("=v,,;,a2a.project=p", {"project": "p"}),
        ("a2a.agent_chain=%ZZ%2C%FF", {}),  # not UTF-8 as a whole
        ("a2a.agent_chain=ok%2C%25FF%2C%25ZZ%2C", {"agent_chain": ["ok", "%ZZ"]}),  # one bad agent id skipped
        ("a2a.session_id=s" + ",x=y" * 20_000, {}),  # over any sane size: ignored whole
    ])
    def test_bad_baggage_entries_are_skipped(self, value, expected):
        assert context_fields({"baggage": value}) == expected

    @pytest.mark.parametrize("headers", [None, 42, "traceparent", [("only-one",)], [(1, 2)], {"traceparent": 7},
                                         {b"traceparent": b"\xff\xfe"}, [(b"baggage", b"\xff=\xfe")]])
    def test_odd_header_containers_never_raise(self, headers):
        ctx = _extracted(headers)
        assert ctx.session_id is None and ctx.trace_id is None

    @settings(max_examples=150, deadline=None)
    @given(tp=st.text(max_size=80), bag=st.text(max_size=200))
    def test_any_text_is_safe(self, tp, bag):
        fields = context_fields({"traceparent": tp, "baggage": bag})
        for key, value in fields.items():
            values = value if key == "agent_chain" else [value]
            for v in values:
                assert isinstance(v, str) and v and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in v)
        with extract_context({"traceparent": tp, "baggage": bag}):
            pass
