"""Budgets end to end through the real LiteLLM wrapper (litellm's mock_response, and a local HTTP mock)."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("litellm")
if importlib.util.find_spec("a2a_llm_tracker.integrations.litellm") is None:  # pragma: no cover
    pytest.skip("a2a_llm_tracker.integrations.litellm is not written yet", allow_module_level=True)

from a2a_llm_tracker import Budget, BudgetExceededError, Meter, PricingRegistry, meter_context  # noqa: E402
from a2a_llm_tracker.integrations.litellm import LiteLLM  # noqa: E402
from a2a_llm_tracker.mock_provider import MockProvider  # noqa: E402
from a2a_llm_tracker.sinks.memory import MemorySink  # noqa: E402
from a2a_llm_tracker.sinks.sqlite import SQLiteSink  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]


def _pricing() -> PricingRegistry:
    p = PricingRegistry()
    # litellm's mock_response reports 10 prompt + 20 completion tokens: 30 * $100/M = $0.003 a call
    p.set_price("openai", "gpt-4.1", 100.0, 100.0)
    return p


def test_wrapper_refuses_calls_over_budget_mock_response():
    sink = MemorySink()
    budget = Budget(0.01, scope="session")
    meter = Meter(pricing=_pricing(), sinks=[sink], budgets=[budget], background=False)
    llm = LiteLLM(meter=meter)
    replies = []
    with meter_context(session_id="s1", agent_id="planner"):
        with pytest.raises(BudgetExceededError) as info:
            for _ in range(10):
                replies.append(llm.completion(model="openai/gpt-4.1", messages=MESSAGES, mock_response="hi"))
    assert len(replies) == 4 and len(sink.events) == 4  # the 5th call was refused before litellm ran
    assert info.value.spent_usd == pytest.approx(0.012) and info.value.key == "s1"
    with meter_context(session_id="s2"):
        llm.completion(model="openai/gpt-4.1", messages=MESSAGES, mock_response="hi")  # another session


async def test_async_wrapper_refuses_too():
    meter = Meter(pricing=_pricing(), budgets=[Budget(0.005, scope="agent")], background=False)
    llm = LiteLLM(meter=meter)
    with meter_context(agent_id="a"):
        await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, mock_response="hi")
        await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, mock_response="hi")
        with pytest.raises(BudgetExceededError):
            await llm.acompletion(model="openai/gpt-4.1", messages=MESSAGES, mock_response="hi")


def test_refused_call_never_reaches_the_provider(tmp_path):
    """Over HTTP to a local mock provider: the refused call sends no request; a restart keeps the budget."""
    db = tmp_path / "usage.db"
    with MockProvider(models={"gpt-4.1": {"prompt_tokens": 1000, "completion_tokens": 250}}) as server:
        pricing = PricingRegistry()
        pricing.set_price("openai", "gpt-4.1", 2.0, 8.0)  # 0.002 + 0.002 = $0.004 a call
        kwargs = dict(model="openai/gpt-4.1", messages=MESSAGES, api_base=server.base_url, api_key="sk-test")
        with Meter(pricing=pricing, sinks=[SQLiteSink(db)], budgets=[Budget(0.01, scope="user")]) as meter:
            llm = LiteLLM(meter=meter)
            with meter_context(user_id="u1"):
                for _ in range(3):
                    llm.completion(**kwargs)
                with pytest.raises(BudgetExceededError):
                    llm.completion(**kwargs)
        assert len(server.requests) == 3
        # restart: the new process seeds from the SQLite store and refuses at once
        with Meter(pricing=pricing, budgets=[Budget(0.01, scope="user", seed_from=db)]) as meter2:
            with meter_context(user_id="u1"), pytest.raises(BudgetExceededError) as info:
                LiteLLM(meter=meter2).completion(**kwargs)
        assert len(server.requests) == 3 and info.value.spent_usd == pytest.approx(0.012)
