"""Fixtures for the CCS tests: a fake CCS server on 127.0.0.1 and fast-retrying sinks pointed at it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("ccs")  # mftsccs, the real client

sys.path.insert(0, str(Path(__file__).parent))
from fake_ccs import FakeCCS  # noqa: E402

CLIENT_ID = "4242"
SECRET = "s3cret-XYZ-0123456789"

#: settings that make the tests fast: short timeouts and backoff
FAST = {"request_timeout": 2.0, "auth_timeout": 2.0, "max_backoff": 0.2, "poll_interval": 0.05}


@pytest.fixture(name="fake")
def _fake():
    srv = FakeCCS(client_id=CLIENT_ID, client_secret=SECRET).start()
    yield srv
    srv.stop()


@pytest.fixture(name="make_sink")
def _make_sink(fake, tmp_path):
    from a2a_llm_tracker.sinks.ccs import CCSSink

    made = []

    def make(**kw):
        options = {"application_name": "demo-app", "client_id": CLIENT_ID, "client_secret": SECRET,
                   "server_url": fake.url, "storage_path": tmp_path / "ccs", **FAST}
        options.update(kw)
        sink = CCSSink(**options)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


@pytest.fixture(name="ccs_env")
def _ccs_env(fake, monkeypatch, tmp_path):
    """Environment as the README expects it, with the server pointed at the fake."""
    monkeypatch.setenv("CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CLIENT_SECRET", SECRET)
    monkeypatch.setenv("CCS_SERVER_URL", fake.url)
    monkeypatch.chdir(tmp_path)
    return fake
