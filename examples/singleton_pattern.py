"""The singleton module pattern: one meter, initialised on first use, shared by every module.

``examples/singleton/tracking.py`` holds ``get_meter()``; ``examples/singleton/llm_calls.py`` is any
module making direct SDK calls and tracking them with ``analyze_response``. Here two threads of
"agents" call through it at once; the meter is created exactly once and every call lands in
``./usage.db``. (With CLIENT_ID and CLIENT_SECRET set, tracking.py would use CCS instead.)

Run: python examples/singleton_pattern.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.analyzers, openai

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "singleton"))

import llm_calls  # noqa: E402  (the application's modules)
import openai  # noqa: E402
import tracking  # noqa: E402

import a2a_llm_tracker  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.sqlite import read_sqlite  # noqa: E402


def main() -> None:
    with MockProvider() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="mock-key", max_retries=0)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda i: llm_calls.call_openai(client, f"Question {i}", agent_id=f"agent-{i % 2}"),
                          range(8)))
        meter = tracking.get_meter()
        assert meter is not None and tracking.get_meter() is meter  # one meter ...
        assert a2a_llm_tracker.get_meter() is meter  # ... which is also the library's global meter
        meter.flush()
        billed = list(server.billed)

    events = list(read_sqlite("usage.db"))
    assert len(events) == 8 == len(billed), events
    assert sorted(e.input_tokens for e in events) == sorted(b["input_tokens"] for b in billed)
    assert {e.agent_id for e in events} == {"agent-0", "agent-1"} and {e.project for e in events} == {"my-app"}
    # init_sync(pricing="catalog"): list prices from the bundled catalog, labelled as such
    assert all(e.cost_source == "catalog" and e.cost_usd > 0 for e in events), [e.cost_source for e in events]
    print(f"{len(events)} calls from 2 agents in {Path('usage.db').resolve()}, "
          f"${sum(e.cost_usd for e in events):.6f} at catalog prices")
    a2a_llm_tracker.reset()
    print("OK")


if __name__ == "__main__":
    main()
