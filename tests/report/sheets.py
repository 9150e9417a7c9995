"""Price sheets for the re-pricing tests (TOML, the format PricingRegistry.load reads)."""

# gpt-4.1's price halves on 2026-03-02; the mystery model gets a price; gpt-4.1-mini is not listed.
REPRICE_SHEET = """
[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = 2.0
output_per_million = 8.0
cached_input_per_million = 0.5
effective_until = "2026-03-02T00:00:00Z"
price_id = "gpt-4.1-old"

[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = 1.0
output_per_million = 4.0
cached_input_per_million = 0.25
effective_from = "2026-03-02T00:00:00Z"
price_id = "gpt-4.1-new"

[[prices]]
provider = "acme"
model = "mystery-model"
input_per_million = 10.0
output_per_million = 20.0
price_id = "mystery-contract"
"""

# Only the new gpt-4.1 price: events before 2026-03-02 are not covered.
NEW_PRICE_ONLY = """
[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = 1.0
output_per_million = 4.0
effective_from = "2026-03-02T00:00:00Z"
"""

ALL_MODELS = REPRICE_SHEET + """
[[prices]]
provider = "openai"
model = "gpt-4.1-mini"
input_per_million = 0.4
output_per_million = 1.6
"""

BAD_SHEET = """
[[prices]]
provider = "openai"
model = "gpt-4.1"
input_per_million = -1
output_per_million = 8.0
"""
