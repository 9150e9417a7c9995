"""PricingRegistry: user prices, effective dates, aliases, sheets, catalog, Decimal math."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from a2a_llm_tracker import Meter, PricingError, PricingRegistry, UsageEvent

T2025 = datetime(2025, 6, 1, tzinfo=UTC)
T2026 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(name="pricing")
def _pricing() -> PricingRegistry:
    pricing = PricingRegistry()
    pricing.set_price(provider="openai", model="openai/gpt-4.1", input_per_million=2.0, output_per_million=8.0)
    return pricing


def cost(pricing: PricingRegistry, model: str, provider: str | None = "openai", ts=T2026, **tokens):
    tokens.setdefault("input_tokens", 1_000_000)
    tokens.setdefault("output_tokens", 1_000_000)
    return pricing.cost(provider=provider, model=model, ts=ts, **tokens)


class TestLookup:
    def test_seed_call_prices_gpt_41(self, pricing):
        result = cost(pricing, "openai/gpt-4.1")
        assert (result.input_usd, result.output_usd, result.total_usd) == (Decimal(2), Decimal(8), Decimal(10))
        assert result.source == "pricing"

    @pytest.mark.parametrize("provider,model", [("openai", "gpt-4.1"), ("openai", "openai/gpt-4.1"),
                                                (None, "openai/gpt-4.1"), ("OpenAI", "GPT-4.1"),
                                                (None, "gpt-4.1")])
    def test_canonical_names_are_the_same(self, pricing, provider, model):
        assert cost(pricing, model, provider=provider).total_usd == Decimal(10)

    def test_dated_snapshot_falls_back(self, pricing):
        assert cost(pricing, "gpt-4.1-2025-04-14").total_usd == Decimal(10)

    def test_exact_dated_price_wins_over_fallback(self, pricing):
        pricing.set_price("openai", "gpt-4.1-2025-04-14", 1.0, 1.0)
        assert cost(pricing, "gpt-4.1-2025-04-14").total_usd == Decimal(2)

    def test_anthropic_compact_date_falls_back(self):
        pricing = PricingRegistry()
        pricing.set_price("anthropic", "claude-sonnet-4-5", 3.0, 15.0)
        assert cost(pricing, "claude-sonnet-4-5-20250929", provider="anthropic").total_usd == Decimal(18)

    def test_other_provider_is_not_priced(self, pricing):
        assert cost(pricing, "gpt-4.1", provider="azure") is None

    def test_unpriced_is_none(self, pricing):
        assert cost(pricing, "mystery-model") is None

    def test_no_usage_is_not_priced(self, pricing):
        assert cost(pricing, "gpt-4.1", input_tokens=None, output_tokens=None) is None

    def test_alias(self, pricing):
        pricing.set_alias("my-gpt4-deployment", "openai/gpt-4.1", provider="azure")
        assert cost(pricing, "my-gpt4-deployment", provider="azure").total_usd == Decimal(10)
        assert cost(pricing, "azure/my-gpt4-deployment", provider=None).total_usd == Decimal(10)


class TestEffectiveDates:
    def test_price_in_force_at_event_time(self):
        pricing = PricingRegistry()
        pricing.set_price("openai", "gpt-4.1", 3.0, 12.0, effective_until="2026-01-01")
        pricing.set_price("openai", "gpt-4.1", 2.0, 8.0, effective_from="2026-01-01")
        assert cost(pricing, "gpt-4.1", ts=T2025).total_usd == Decimal(15)
        assert cost(pricing, "gpt-4.1", ts=T2026).total_usd == Decimal(10)

    def test_gap_is_unpriced(self):
        pricing = PricingRegistry()
        pricing.set_price("openai", "gpt-4.1", 2.0, 8.0, effective_from="2026-01-01")
        assert cost(pricing, "gpt-4.1", ts=T2025) is None

    def test_overlap_latest_start_wins(self):
        pricing = PricingRegistry()
        pricing.set_price("openai", "gpt-4.1", 3.0, 12.0)
        pricing.set_price("openai", "gpt-4.1", 1.0, 1.0, effective_from="2026-03-01", price_id="contract-2026")
        result = cost(pricing, "gpt-4.1", ts=T2026)
        assert result.total_usd == Decimal(2) and result.price_id == "contract-2026"
        assert result.effective_from == datetime(2026, 3, 1, tzinfo=UTC)
        assert cost(pricing, "gpt-4.1", ts=T2025).total_usd == Decimal(15)

    def test_empty_period_rejected(self):
        with pytest.raises(PricingError, match="effective_until"):
            PricingRegistry().set_price("openai", "x", 1, 1, effective_from="2026-02-01", effective_until="2026-01-01")


class TestCostMath:
    def test_cache_and_reasoning_rates(self):
        pricing = PricingRegistry()
        pricing.set_price("anthropic", "claude-sonnet-4-5", 3.0, 15.0, cached_input_per_million=0.30,
                          cache_write_per_million=3.75, cache_write_1h_per_million=6.0, reasoning_per_million=20.0)
        result = pricing.cost(provider="anthropic", model="claude-sonnet-4-5", ts=T2026,
                              input_tokens=1532, cached_input_tokens=1111, cache_write_tokens=418,
                              output_tokens=100, reasoning_tokens=40, token_details={"cache_write_1h": 18})
        expected_in = (Decimal(3) * 3 + Decimal("0.30") * 1111 + Decimal("3.75") * 400 + Decimal(6) * 18) / 10**6
        expected_out = (Decimal(15) * 60 + Decimal(20) * 40) / 10**6
        assert result.input_usd == expected_in
        assert result.output_usd == expected_out
        assert result.total_usd == expected_in + expected_out

    def test_defaults_are_conservative(self):
        """Unset cache/reasoning rates bill at the input/output rate (never silently cheaper)."""
        pricing = PricingRegistry()
        price = pricing.set_price("openai", "gpt-x", 2.0, 8.0)
        assert price.cached_input_per_million == price.cache_write_per_million == Decimal(2)
        assert price.reasoning_per_million == Decimal(8)

    def test_decimal_exactness(self):
        pricing = PricingRegistry()
        pricing.set_price("openai", "m", "0.1", "0.2")
        total = sum((pricing.cost(provider="openai", model="m", ts=T2026, input_tokens=1, output_tokens=1).total_usd
                     for _ in range(10)), Decimal(0))
        assert total == Decimal("0.0000030")


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "abc", None, True])
def test_bad_prices_raise_naming_the_entry(bad):
    with pytest.raises(PricingError) as info:
        PricingRegistry().set_price("openai", "gpt-4.1", bad, 8.0)
    assert "openai/gpt-4.1" in str(info.value) and "input_per_million" in str(info.value)
    assert isinstance(info.value, ValueError)


class TestSheets:
    def test_toml_sheet(self, tmp_path):
        sheet = tmp_path / "prices.toml"
        sheet.write_text('''
[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = 3.0
output_per_million = 12.0
effective_until = "2026-01-01"

[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = 2.0
output_per_million = 8.0
cached_input_per_million = 0.5
effective_from = "2026-01-01"

[aliases]
"azure/prod-gpt41" = "openai/gpt-4.1"
''')
        pricing = PricingRegistry.from_file(sheet)
        assert len(pricing) == 2
        assert cost(pricing, "gpt-4.1", ts=T2025).total_usd == Decimal(15)
        assert cost(pricing, "prod-gpt41", provider="azure", ts=T2026).total_usd == Decimal(10)

    def test_json_sheet(self, tmp_path):
        sheet = tmp_path / "prices.json"
        sheet.write_text(json.dumps({"prices": [{"provider": "mistral", "model": "mistral-large-latest",
                                                 "input_per_million": 2, "output_per_million": 6}]}))
        assert cost(PricingRegistry.from_file(sheet), "mistral-large-latest", provider="mistral").total_usd == 8

    @pytest.mark.parametrize("entry,message", [
        ({"provider": "openai", "model": "gpt-4.1", "input_per_million": 1, "output_per_million": 1, "inptu": 2},
         "unknown key(s) ['inptu']"),
        ({"provider": "openai", "model": "gpt-4.1", "input_per_million": -1, "output_per_million": 1},
         "must not be negative"),
        ({"provider": "openai", "model": "gpt-4.1", "output_per_million": 1}, "missing 'input_per_million'"),
    ])
    def test_bad_entry_named_and_nothing_loaded(self, tmp_path, entry, message):
        good = {"provider": "openai", "model": "good", "input_per_million": 1, "output_per_million": 1}
        sheet = tmp_path / "bad.json"
        sheet.write_text(json.dumps({"prices": [good, entry]}))
        pricing = PricingRegistry()
        with pytest.raises(PricingError) as info:
            pricing.load(sheet)
        assert "prices[1]" in str(info.value) and message in str(info.value)
        assert len(pricing) == 0  # the good entry before it was not half-applied

    def test_malformed_file(self, tmp_path):
        sheet = tmp_path / "bad.toml"
        sheet.write_text("[[prices]\nmodel=")
        with pytest.raises(PricingError, match="not valid TOML"):
            PricingRegistry.from_file(sheet)

    def test_missing_file(self, tmp_path):
        with pytest.raises(PricingError, match="cannot read price sheet"):
            PricingRegistry.from_file(tmp_path / "nope.toml")


class TestCatalog:
    def test_catalog_only_when_enabled(self):
        assert cost(PricingRegistry(), "gpt-4.1", input_tokens=1000, output_tokens=100) is None
        result = cost(PricingRegistry.with_catalog(), "gpt-4.1", input_tokens=1000, output_tokens=100)
        assert result is not None and result.source == "catalog" and result.total_usd > 0
        assert result.price_id.startswith("genai-prices:")

    def test_user_price_beats_catalog(self):
        pricing = PricingRegistry(catalog=True)
        pricing.set_price("openai", "gpt-4.1", 100, 100)
        assert cost(pricing, "gpt-4.1").source == "pricing"

    def test_catalog_unknown_model_is_unpriced(self):
        assert cost(PricingRegistry.with_catalog(), "totally-unknown-model-xyz") is None

    def test_meter_labels_catalog_cost(self):
        meter = Meter(pricing=PricingRegistry.with_catalog(), background=False)
        event = meter.record(UsageEvent(provider="anthropic", model="claude-sonnet-4-5", input_tokens=1000,
                                        output_tokens=100))
        assert event.cost_source == "catalog" and event.cost_usd and event.cost_usd > 0


rates = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=10**9)


@given(inp_rate=rates, out_rate=rates, cached_rate=rates, inp=tokens, cached_share=st.floats(0, 1),
       out=tokens, reasoning_share=st.floats(0, 1))
def test_price_math_properties(inp_rate, out_rate, cached_rate, inp, cached_share, out, reasoning_share):
    """Property: cost is additive, non-negative, and equals the hand-computed Decimal formula."""
    pricing = PricingRegistry()
    pricing.set_price("p", "m", inp_rate, out_rate, cached_input_per_million=cached_rate)
    cached = int(inp * cached_share)
    reasoning = int(out * reasoning_share)
    result = pricing.cost(provider="p", model="m", ts=T2026, input_tokens=inp, output_tokens=out,
                          cached_input_tokens=cached, reasoning_tokens=reasoning)
    assert result.input_usd == ((inp - cached) * inp_rate + cached * cached_rate) / 10**6
    assert result.output_usd == out * out_rate / 10**6
    assert result.total_usd == result.input_usd + result.output_usd >= 0
