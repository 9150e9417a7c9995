"""Budgets: stop a session's LLM calls once it has spent its limit; warn about an agent; survive a restart.

* ``Budget(limit, scope="session")`` raises ``BudgetExceededError`` *before* the call once the
  session's recorded spend reached the limit: the provider never sees that request.
* Other sessions are not affected; each has its own total.
* ``on_exceed="warn"`` lets calls through and emits one ``BudgetWarning``.
* ``seed_from="usage.db"`` reads what was already spent, so a restarted process keeps the limit.

Calls go through the LiteLLM wrapper to the built-in mock provider on 127.0.0.1.

Run: python examples/budgets.py   (offline; exits non-zero if a check fails)
"""
# requires: a2a_llm_tracker.integrations.litellm, litellm

from __future__ import annotations

import os
import warnings

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: LiteLLM's bundled model map

from a2a_llm_tracker import Budget, BudgetExceededError, Meter, PricingRegistry, meter_context  # noqa: E402
from a2a_llm_tracker.integrations.litellm import LiteLLM  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.sqlite import SQLiteSink  # noqa: E402

MESSAGES = [{"role": "user", "content": "Draft the next paragraph."}]
COST_PER_CALL = (1000 * 2.0 + 100 * 8.0) / 1e6  # the mock bills 1,000 in / 100 out at $2 / $8 per million


def pricing() -> PricingRegistry:
    registry = PricingRegistry()
    registry.set_price("openai", "gpt-4.1", 2.0, 8.0)
    return registry


def main() -> None:
    with MockProvider(models={"gpt-4.1": {"prompt_tokens": 1000, "completion_tokens": 100}}) as server:
        mock = {"api_base": server.base_url, "api_key": "mock-key"}
        session_budget = Budget(2.5 * COST_PER_CALL, scope="session")   # room for 3 calls
        agent_budget = Budget(COST_PER_CALL, scope="agent", on_exceed="warn")
        meter = Meter(pricing=pricing(), sinks=[SQLiteSink("usage.db")], budgets=[session_budget, agent_budget])
        llm = LiteLLM(meter=meter)

        # a session that keeps calling: the 4th call is refused before it is sent
        made = 0
        with meter_context(session_id="s-greedy", agent_id="writer"), warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                for _ in range(10):
                    llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **mock)
                    made += 1
            except BudgetExceededError as exc:
                blocked = exc
        assert made == 3 and len(server.billed) == 3, (made, len(server.billed))
        assert blocked.scope == "session" and blocked.key == "s-greedy"
        assert blocked.spent_usd >= blocked.limit_usd
        print(f"s-greedy: {made} calls, then refused: {blocked}")
        # the agent budget only warned, once, and let the calls through
        budget_warnings = [w for w in seen if w.category.__name__ == "BudgetWarning"]
        assert len(budget_warnings) == 1, [str(w.message) for w in seen]

        # another session has its own budget
        with meter_context(session_id="s-other", agent_id="editor"):
            llm.completion(model="openai/gpt-4.1", messages=MESSAGES, **mock)
        assert len(server.billed) == 4
        assert abs(session_budget.spent("s-greedy") - 3 * COST_PER_CALL) < 1e-12
        assert abs(session_budget.remaining("s-other") - 1.5 * COST_PER_CALL) < 1e-12
        meter.close()

        # a restart: a new process seeds its budget from the store and keeps refusing s-greedy
        restarted = Meter(pricing=pricing(), sinks=[SQLiteSink("usage.db")],
                          budgets=[Budget(2.5 * COST_PER_CALL, scope="session", seed_from="usage.db")])
        llm2 = LiteLLM(meter=restarted)
        try:
            with meter_context(session_id="s-greedy"):
                llm2.completion(model="openai/gpt-4.1", messages=MESSAGES, **mock)
        except BudgetExceededError:
            pass
        else:
            raise AssertionError("the seeded budget must refuse s-greedy after a restart")
        assert len(server.billed) == 4  # nothing was sent
        restarted.close()
        print("after a restart (seed_from='usage.db'): s-greedy still refused")
    print("OK")


if __name__ == "__main__":
    main()
