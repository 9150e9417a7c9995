"""init() and the README's "CCS Integration" and "Singleton Pattern" code, run unchanged against the fake CCS."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import textwrap
import time

import pytest

import a2a_llm_tracker
from a2a_llm_tracker import ConfigurationError, Meter, UsageEvent

from .conftest import CLIENT_ID, SECRET

# Verbatim from the seed README, section "CCS Integration" → "Setup" step 2 (public a2a-llm-tracker README).
README_CCS_EXAMPLE = '''
import os
import asyncio
from a2a_llm_tracker import init, get_llm

async def setup_ccs_meter():
    """Setup meter with CCS sink for mftsccs integration."""

    client_id = os.getenv("CLIENT_ID")
    client_secret = os.getenv("CLIENT_SECRET")

    if not client_id or not client_secret:
        raise ValueError(
            "CLIENT_ID and CLIENT_SECRET environment variables are required.\\n"
            "Set them in your .env file or export them."
        )

    # Initialize meter with CCS sink
    meter = await init(
        client_id=client_id,
        client_secret=client_secret,
        application_name="my-app-name",
    )

    # Get the LiteLLM wrapper
    return get_llm(meter)

# Run the async setup
async def main():
    llm = await setup_ccs_meter()

    # Now use llm for completions
    response = await llm.acompletion(
        model="openai/gpt-4.1",
        messages=[{"role": "user", "content": "Hello!"}],
    )
    print(response)

asyncio.run(main())
'''

# Verbatim from the seed README, "Singleton Pattern (Recommended)" step 1 and step 2.
README_TRACKING_PY = '''
# tracking.py
import os
import asyncio
import concurrent.futures
from a2a_llm_tracker import init

_meter = None

def get_meter():
    """Get or initialize the global meter singleton."""
    global _meter
    if _meter is None:
        try:
            client_id = os.getenv("CLIENT_ID", "")
            client_secret = os.getenv("CLIENT_SECRET", "")

            # Run async init synchronously using a thread pool
            with concurrent.futures.ThreadPoolExecutor() as executor:
                future = executor.submit(
                    asyncio.run,
                    init(client_id, client_secret, "my-app")
                )
                _meter = future.result(timeout=5)

        except Exception as e:
            print(f"LLM tracking initialization failed: {e}")
            return None
    return _meter
'''

README_ANY_MODULE_PY = '''
# any_module.py
from openai import OpenAI
from a2a_llm_tracker import analyze_response, ResponseType
from tracking import get_meter

def call_openai(prompt: str):
    client = OpenAI()
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
    )

    # Track LLM usage (fails silently if tracking not available)
    try:
        meter = get_meter()
        if meter:
            analyze_response(response, ResponseType.OPENAI, meter)
    except Exception as e:
        print(f"LLM tracking skipped: {e}")

    return response
'''

FAST_OPTIONS = {"request_timeout": 2.0, "auth_timeout": 2.0, "max_backoff": 0.2, "poll_interval": 0.05}


def _clear_env(monkeypatch, *names):
    # set-then-delete so monkeypatch restores "absent" at teardown even if a .env load sets them meanwhile
    for name in names:
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)


class TestInit:
    async def test_returns_at_once_when_the_server_is_down_and_delivers_later(self, ccs_env):
        fake = ccs_env
        fake.stop()
        start = time.monotonic()
        meter = await a2a_llm_tracker.init(CLIENT_ID, SECRET, "my-app", sink_options=FAST_OPTIONS)
        assert time.monotonic() - start < 1.0
        assert a2a_llm_tracker.get_meter() is meter and meter.project == "my-app"
        event = meter.record(UsageEvent(provider="openai", model="gpt-4o", input_tokens=3, output_tokens=2))
        assert not await meter.aflush(1.0)
        fake.start()
        assert await meter.aflush(10)
        assert [e["event_id"] for e in fake.usage_events()] == [event.event_id]

    async def test_returns_at_once_when_oauth_hangs(self, ccs_env):
        ccs_env.set_mode("oauth_token", "hang:3", times=1)
        start = time.monotonic()
        await a2a_llm_tracker.init(CLIENT_ID, SECRET, "my-app", sink_options=FAST_OPTIONS)
        assert time.monotonic() - start < 1.0

    async def test_missing_credentials_name_what_is_missing(self, monkeypatch, tmp_path):
        monkeypatch.chdir(tmp_path)
        _clear_env(monkeypatch, "CLIENT_ID", "CLIENT_SECRET")
        with pytest.raises(ConfigurationError, match="CLIENT_ID"):
            await a2a_llm_tracker.init(application_name="x", server_url="https://ccs.example.com")
        with pytest.raises(ConfigurationError, match="CLIENT_SECRET"):
            await a2a_llm_tracker.init("123", "", "x", server_url="https://ccs.example.com")
        assert not a2a_llm_tracker.is_initialized()

    async def test_insecure_server_url_is_refused(self, monkeypatch):
        with pytest.raises(ConfigurationError, match="plain HTTP"):
            await a2a_llm_tracker.init(CLIENT_ID, SECRET, "x", server_url="http://ccs.example.com")
        meter = await a2a_llm_tracker.init(CLIENT_ID, SECRET, "x", server_url="http://ccs.example.com/",
                                           allow_insecure=True)
        assert meter.sinks[0].settings.node_url == "http://ccs.example.com"

    async def test_server_url_as_fourth_positional_argument(self, fake):
        """Earlier releases' docs call init(client_id, client_secret, app, server_url)."""
        meter = await a2a_llm_tracker.init(CLIENT_ID, SECRET, "my-app", fake.url, sink_options=FAST_OPTIONS)
        meter.record(UsageEvent(provider="openai", model="gpt-4o", input_tokens=3, output_tokens=2))
        assert await meter.aflush(10)
        assert len(fake.usage_events()) == 1

    async def test_local_sink_and_extra_sinks(self, ccs_env, tmp_path):
        from a2a_llm_tracker.sinks.memory import MemorySink

        memory = MemorySink()
        meter = await a2a_llm_tracker.init(CLIENT_ID, SECRET, "my-app", local_sink=f"jsonl:{tmp_path / 'u.jsonl'}",
                                           sinks=[memory], sink_options=FAST_OPTIONS)
        meter.record(UsageEvent(provider="openai", model="gpt-4o", input_tokens=3, output_tokens=2))
        assert await meter.aflush(10)
        assert len(memory.events) == 1 and (tmp_path / "u.jsonl").read_text().count("\n") == 1
        assert len(ccs_env.usage_events()) == 1

    def test_dotenv_supplies_credentials_without_overriding_the_environment(self, fake, monkeypatch, tmp_path):
        monkeypatch.chdir(tmp_path)
        _clear_env(monkeypatch, "CLIENT_ID", "CLIENT_SECRET", "CCS_SERVER_URL")
        (tmp_path / ".env").write_text(textwrap.dedent(f"""\
            # CCS credentials
            export CLIENT_ID="{CLIENT_ID}"
            CLIENT_SECRET='{SECRET}'
            CCS_SERVER_URL={fake.url}  # the fake
            OPENAI_API_KEY=not-read-by-the-tracker
            """))
        meter = asyncio.run(a2a_llm_tracker.init(application_name="dotenv-app", sink_options=FAST_OPTIONS))
        sink = meter.sinks[0]
        assert sink.settings.client_id == CLIENT_ID and sink.settings.server_url == fake.url
        assert "OPENAI_API_KEY" not in os.environ or os.environ["OPENAI_API_KEY"] != "not-read-by-the-tracker"
        meter.record(UsageEvent(provider="openai", model="gpt-4o", input_tokens=1, output_tokens=1))
        assert meter.flush(10)
        assert len(fake.usage_events()) == 1
        # a real environment variable wins over the file
        monkeypatch.setenv("CLIENT_ID", "777")
        meter = asyncio.run(a2a_llm_tracker.init(application_name="dotenv-app", sink_options=FAST_OPTIONS))
        assert meter.sinks[0].settings.client_id == "777"


class TestReadme:
    def test_ccs_integration_example_runs_unchanged(self, ccs_env, monkeypatch, capsys):
        monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network
        pytest.importorskip("litellm")
        pytest.importorskip("a2a_llm_tracker.integrations.litellm")
        from a2a_llm_tracker.mock_provider import MockProvider

        with MockProvider(reply="Hello from the mock") as provider:
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-for-the-mock-0000")
            monkeypatch.setenv("OPENAI_BASE_URL", provider.base_url)
            monkeypatch.setenv("OPENAI_API_BASE", provider.base_url)
            exec(compile(README_CCS_EXAMPLE, "readme_ccs_example.py", "exec"), {"__name__": "__main__"})
            billed = provider.usages[-1]
        assert "Hello from the mock" in capsys.readouterr().out
        meter = a2a_llm_tracker.get_meter()
        assert meter.flush(10)
        event = [e for e in ccs_env.usage_events()][-1]
        assert event["application"] == "my-app-name" and event["project"] == "my-app-name"
        assert event["input_tokens"] == billed["prompt_tokens"] and event["output_tokens"] == billed["completion_tokens"]

    def test_singleton_pattern_runs_unchanged(self, ccs_env, monkeypatch, tmp_path, capsys):
        pytest.importorskip("openai")
        from a2a_llm_tracker.mock_provider import MockProvider

        (tmp_path / "tracking.py").write_text(README_TRACKING_PY)
        (tmp_path / "any_module.py").write_text(README_ANY_MODULE_PY)
        monkeypatch.syspath_prepend(str(tmp_path))
        for name in ("tracking", "any_module"):
            sys.modules.pop(name, None)
        with MockProvider(reply="Hi there friend") as provider:
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-for-the-mock-0000")
            monkeypatch.setenv("OPENAI_BASE_URL", provider.base_url)
            any_module = importlib.import_module("any_module")
            tracking = importlib.import_module("tracking")
            start = time.monotonic()
            any_module.call_openai("Say hello")
            any_module.call_openai("Say hello again")
            assert time.monotonic() - start < 5
            billed = provider.usages[-2:]
        meter = tracking.get_meter()
        assert isinstance(meter, Meter) and meter is tracking.get_meter()  # initialised once
        out = capsys.readouterr().out
        assert "initialization failed" not in out and "tracking skipped" not in out, out
        assert meter.flush(10)
        events = ccs_env.usage_events()
        assert [e["input_tokens"] for e in events] == [b["prompt_tokens"] for b in billed]
        assert all(e["application"] == "my-app" for e in events)
        assert len(ccs_env.requests_to("oauth_token")) == 1

    def test_singleton_pattern_fails_gracefully_without_credentials(self, monkeypatch, tmp_path, capsys):
        monkeypatch.chdir(tmp_path)
        _clear_env(monkeypatch, "CLIENT_ID", "CLIENT_SECRET")
        (tmp_path / "tracking.py").write_text(README_TRACKING_PY)
        monkeypatch.syspath_prepend(str(tmp_path))
        sys.modules.pop("tracking", None)
        tracking = importlib.import_module("tracking")
        assert tracking.get_meter() is None
        assert "LLM tracking initialization failed" in capsys.readouterr().out
