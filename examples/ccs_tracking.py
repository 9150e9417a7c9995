"""CCS (mftsccs): ``await init(client_id, client_secret, application_name)`` and the LiteLLM wrapper.

The README's CCS set-up, run against a local stand-in: the fake CCS server of the test suite
(``tests/ccs/fake_ccs.py``, stdlib only) plays CCS on 127.0.0.1, and the built-in mock provider
plays OpenAI. ``init`` returns at once; events go through a durable outbox to CCS, where each call
becomes a ``the_llm_usage`` concept linked to the application's tracker.

Against the real CCS: set CLIENT_ID and CLIENT_SECRET (or a ``.env`` file) and drop ``server_url``.

Run: python examples/ccs_tracking.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.sinks.ccs, ccs, a2a_llm_tracker.integrations.litellm, litellm

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: LiteLLM's bundled model map

FAKE_DIR = Path(__file__).resolve().parent.parent / "tests" / "ccs"
sys.path.insert(0, str(FAKE_DIR))
from fake_ccs import FakeCCS  # noqa: E402  (the test suite's fake CCS server)

from a2a_llm_tracker import get_llm, init, meter_context  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402

CLIENT_ID, CLIENT_SECRET = "4242", "example-secret-not-real"


async def main(ccs: FakeCCS, provider: MockProvider) -> None:
    meter = await init(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        application_name="my-app-name",
        server_url=ccs.url,  # the fake; omit for the real CCS
        storage_path="ccs-state",
    )
    llm = get_llm(meter)
    async with meter_context(agent_id="support-bot", session_id="ticket-981", user_id="grace"):
        response = await llm.acompletion(
            model="openai/gpt-4.1",
            messages=[{"role": "user", "content": "Hello!"}],
            api_base=provider.base_url,
            api_key="mock-key",
        )
    print(response.choices[0].message.content)
    assert await meter.aflush(30), "events did not reach CCS in time"
    meter.close()


if __name__ == "__main__":
    with FakeCCS(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as ccs, MockProvider() as provider:
        asyncio.run(main(ccs, provider))
        stored = ccs.usage_events()
        billed = list(provider.billed)
        trackers = ccs.concepts_of_type("the_llm_tracker")
        requests = list(ccs.records)
    assert len(stored) == 1 == len(billed), stored
    event = stored[0]
    assert (event["agent_id"], event["session_id"], event["user_id"]) == ("support-bot", "ticket-981", "grace")
    assert event["input_tokens"] == billed[0]["input_tokens"] and event["project"] == "my-app-name"
    assert event["cost_source"] == "catalog" and event["cost_usd"] > 0  # init's default pricing: the catalog
    assert any(c.get("characterValue") == "my-app-name" for c in trackers), trackers
    # the secret was sent to the token endpoint only
    assert {r["endpoint"] for r in requests} >= {"oauth_token", "sync"}
    assert all(CLIENT_SECRET not in str(r) for r in requests if r.get("endpoint") != "oauth_token")
    print(f"CCS holds 1 usage concept: {event['total_tokens']} tokens, ${event['cost_usd']:.6f}")
    print("OK")
