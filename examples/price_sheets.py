"""Price sheets with effective dates, aliases, an unpriced model, and re-pricing history.

A contract price sheet (TOML) sets two prices for gpt-4.1: one until 2026-01-01 and a cheaper one
after. Calls made on either side of that date are priced with the price in force *at the call*, an
Azure deployment name is priced through an alias, and a model nobody priced stays unpriced (never $0).
Then an amended sheet re-prices the stored history: first a dry run showing the difference, then
the update.

Calls go to the built-in mock provider through the openai SDK; each call's usage is recorded with
``meter.record`` and the date the call is replayed at (``ts``).

Run: python examples/price_sheets.py   (offline; exits non-zero if a check fails)
"""
# requires: openai

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import openai

from a2a_llm_tracker import Meter, PricingRegistry
from a2a_llm_tracker.mock_provider import MockProvider
from a2a_llm_tracker.repricing import plan_reprice
from a2a_llm_tracker.sinks.jsonl import JSONLSink, read_jsonl

SHEET = """
# Our negotiated rates, USD per million tokens.
[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = 2.00
cached_input_per_million = 0.50
output_per_million = 8.00
effective_until = "2026-01-01"

[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = 1.60
cached_input_per_million = 0.40
output_per_million = 6.40
effective_from = "2026-01-01"
price_id = "contract-2026"

[aliases]
"prod-gpt41-eastus" = "openai/gpt-4.1"
"""

AMENDED = """
# Amendment signed in March: the 2026 rate is lower still, backdated to 2026-01-01.
[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = 1.20
cached_input_per_million = 0.30
output_per_million = 4.80
effective_from = "2026-01-01"
price_id = "contract-2026-amended"
"""


def close(cost_usd: float | None, micro_usd: float) -> bool:
    """*cost_usd* equals *micro_usd* millionths of a dollar (to float precision)."""
    return cost_usd is not None and abs(cost_usd - micro_usd / 1e6) < 1e-12


def call(client: openai.OpenAI, meter: Meter, model: str, when: datetime, *, provider: str = "openai"):
    """One chat call to the mock, recorded as if made at *when*."""
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Summarise Q4."}])
    usage = resp.usage
    return meter.record(provider=provider, model=model, response_model=resp.model, ts=when,
                        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                        cached_input_tokens=usage.prompt_tokens_details.cached_tokens,
                        request_id=resp.id, agent_id="analyst")


def main() -> None:
    Path("prices.toml").write_text(SHEET, encoding="utf-8")
    Path("amended.toml").write_text(AMENDED, encoding="utf-8")
    pricing = PricingRegistry.from_file("prices.toml")
    assert len(pricing) == 2, pricing

    december, february = datetime(2025, 12, 15, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    fixed = {"prompt_tokens": 5000, "completion_tokens": 500}  # the mock bills these counts
    with MockProvider(cached_tokens=1000, models={"gpt-4.1": fixed, "prod-gpt41-eastus": fixed}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="mock-key", max_retries=0)
        with Meter(pricing=pricing, sinks=[JSONLSink("usage.jsonl")], project="finance") as meter:
            old = call(client, meter, "gpt-4.1", december)
            new = call(client, meter, "gpt-4.1", february)
            azure = call(client, meter, "prod-gpt41-eastus", february, provider="azure")
            unpriced = call(client, meter, "local-mixtral", february)

    # 4,000 uncached + 1,000 cached input tokens, 500 output tokens
    assert (old.input_tokens, old.cached_input_tokens, old.output_tokens) == (5000, 1000, 500)
    assert old.price_id == "openai/gpt-4.1@always" and close(old.cost_usd, 4000 * 2.0 + 1000 * 0.5 + 500 * 8.0)
    assert new.price_id == "contract-2026" and close(new.cost_usd, 4000 * 1.6 + 1000 * 0.4 + 500 * 6.4)
    assert azure.price_id == "contract-2026" and azure.cost_usd == new.cost_usd  # priced through the alias
    assert unpriced.cost_usd is None and unpriced.cost_source is None  # unpriced, never $0
    print(f"Dec 2025 call: ${old.cost_usd:.6f} ({old.price_id})")
    print(f"Feb 2026 call: ${new.cost_usd:.6f} ({new.price_id}); Azure deployment: ${azure.cost_usd:.6f}")
    print(f"local-mixtral: {unpriced.cost_usd} (unpriced)")

    # Re-price the stored history with the amendment: dry run first, then apply.
    plan = plan_reprice("usage.jsonl", "amended.toml")
    diff = next(d for d in plan.diffs if d.model == "gpt-4.1")
    assert diff.events == 2 and diff.repriced == 1 and diff.changed == 1, diff  # only the 2026 call is covered
    print(f"dry run: gpt-4.1 {diff.old_cost_usd:.6f} -> {diff.new_cost_usd:.6f} (delta {diff.delta_usd:+.6f})")
    assert plan.apply() == 1
    stored = {e.event_id: e for e in read_jsonl("usage.jsonl")}
    assert stored[new.event_id].price_id == "contract-2026-amended"
    assert close(stored[new.event_id].cost_usd, 4000 * 1.2 + 1000 * 0.3 + 500 * 4.8)
    assert stored[old.event_id].cost_usd == old.cost_usd  # the 2025 call keeps its price
    print("OK")


if __name__ == "__main__":
    main()
