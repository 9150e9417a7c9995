"""Process-level guarantees: a killed process's pending events are delivered on restart; ccs is optional."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from a2a_llm_tracker.exceptions import ConfigurationError

from .conftest import CLIENT_ID, FAST, SECRET

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json, sys, time
    from a2a_llm_tracker import UsageEvent
    from a2a_llm_tracker.sinks.ccs import CCSSink
    url, storage, secret = sys.argv[1:4]
    sink = CCSSink("demo-app", client_id="4242", client_secret=secret, server_url=url, storage_path=storage,
                   request_timeout=30, poll_interval=0.05)
    events = [UsageEvent(provider="openai", model="gpt-4o", input_tokens=10 + i, output_tokens=1) for i in range(5)]
    sink.write_many(events)
    print(json.dumps([e.event_id for e in events]), flush=True)
    time.sleep(120)
""")


def test_killed_with_events_in_flight_then_delivered_on_restart(fake, tmp_path, make_sink):
    """SIGKILL while a sync request is in flight (rows claimed): the next start releases and sends them."""
    fake.set_mode("sync", "hang:20", times=1)
    storage = tmp_path / "ccs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, fake.url, str(storage), SECRET], stdout=subprocess.PIPE,
                             env=env, text=True)
    try:
        ids = json.loads(child.stdout.readline())
        deadline = time.monotonic() + 20
        while not fake.requests_to("sync") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.requests_to("sync"), "the child never tried to deliver"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert fake.usage_events() == []  # the hung request has not been processed
    fake.clear_modes()
    sink = make_sink()  # same storage_path and application: same outbox and sink name
    assert sink.pending() == 5
    assert sink.flush(10)
    assert sorted(e["event_id"] for e in fake.usage_events()) == sorted(ids)


def test_mftsccs_missing_gives_install_hint_and_import_stays_light():
    code = textwrap.dedent("""
        import asyncio, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "ccs" or name.startswith("ccs."):
                    raise ImportError("blocked for the test")
        sys.meta_path.insert(0, Block())
        import a2a_llm_tracker
        from a2a_llm_tracker import init, get_meter, is_initialized
        from a2a_llm_tracker.sinks import ccs as ccs_sink_module
        assert "ccs" not in sys.modules
        for attempt in (
            lambda: ccs_sink_module.CCSSink("x", client_id="1", client_secret="s", server_url="https://e.com"),
            lambda: asyncio.run(init("1", "s", "x", server_url="https://e.com")),
        ):
            try:
                attempt()
            except a2a_llm_tracker.AdapterUnavailable as exc:
                print("HINT:", exc)
        print("initialized:", is_initialized())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    hints = [line for line in out.stdout.splitlines() if line.startswith("HINT:")]
    assert len(hints) == 2 and all("pip install a2a-llm-tracker[ccs]" in h for h in hints)
    assert "initialized: False" in out.stdout


class TestUrls:
    @pytest.mark.parametrize("url", ["http://ccs.example.com", "ftp://ccs.example.com", "ccs.example.com",
                                     "https://user:pw@ccs.example.com", "https://ccs.example.com/?x=1"])
    def test_bad_urls_are_refused_with_a_clear_message(self, url, make_sink):
        with pytest.raises(ConfigurationError, match="server_url"):
            make_sink(server_url=url)

    def test_insecure_node_url_refused_too(self, make_sink):
        with pytest.raises(ConfigurationError, match="node_url"):
            make_sink(server_url="https://ccs.example.com", node_url="http://10.0.0.5:5001")

    @pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"])
    def test_loopback_http_is_allowed(self, url, make_sink):
        assert make_sink(server_url=url + "//").settings.server_url == url

    def test_opt_in_for_insecure(self, make_sink):
        sink = make_sink(server_url="http://ccs.internal:8080", allow_insecure=True)
        assert sink.settings.node_url == "http://ccs.internal:8080"

    def test_numbers_are_checked(self, make_sink):
        for bad in ({"batch_size": 0}, {"request_timeout": 0}, {"max_backoff": -1}, {"entity_id": "abc"}):
            with pytest.raises(ConfigurationError):
                make_sink(**bad)


def test_fast_settings_are_sane():
    assert FAST["request_timeout"] < 300 and CLIENT_ID.isdigit()
