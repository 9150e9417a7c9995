"""The bundled list-price catalog: genai-prices behind a small adapter (imported lazily)."""

from __future__ import annotations as _annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ._pricing import Cost, canonical_model

__all__ = ["GenaiPricesCatalog"]

logger = logging.getLogger("a2a_llm_tracker")

# our provider names -> genai-prices provider ids
_PROVIDER_IDS = {"google": "google", "google-vertex": "google", "azure": "azure", "bedrock": "aws",
                 "together": "together", "mistral": "mistral", "groq": "groq", "cohere": "cohere",
                 "openai": "openai", "anthropic": "anthropic", "deepseek": "deepseek", "xai": "x-ai",
                 "openrouter": "openrouter", "fireworks": "fireworks"}
# token_details keys we pass on to genai-prices units
_DETAIL_UNITS = {"input_audio_tokens": "input_audio_tokens", "output_audio_tokens": "output_audio_tokens",
                 "input_image_tokens": "input_image_tokens", "web_search_requests": "web_searches",
                 "cache_write_1h": "cache_write_1h_tokens", "cache_write_5m": "cache_write_5m_tokens"}


class GenaiPricesCatalog:
    """Prices from genai-prices' bundled snapshot (offline; no auto-update is started)."""

    def __init__(self) -> None:
        import genai_prices  # noqa: F401  (fail here, clearly, if the dependency is missing)

        self._misses: set[tuple[str | None, str]] = set()
        self._lock = threading.Lock()

    def cost(self, *, provider: str | None, model: str, ts: datetime, input_tokens: int | None,
             output_tokens: int | None, cached_input_tokens: int | None, cache_write_tokens: int | None,
             reasoning_tokens: int | None, token_details: Mapping[str, int | float]) -> Cost | None:
        """Cost from the catalog, or None when it does not know the model."""
        from genai_prices import Usage, calc_price

        prov, name = canonical_model(provider, model)
        key = (prov, name)
        if key in self._misses:
            return None
        values: dict[str, Any] = {"input_tokens": input_tokens or 0, "output_tokens": output_tokens or 0}
        if cached_input_tokens:
            values["cache_read_tokens"] = cached_input_tokens
        if cache_write_tokens:
            values["cache_write_tokens"] = cache_write_tokens
        for detail, unit in _DETAIL_UNITS.items():
            if token_details.get(detail):
                values[unit] = int(token_details[detail])
        provider_id = _PROVIDER_IDS.get(prov) if prov else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    result = calc_price(Usage(**values), name, provider_id=provider_id, genai_request_timestamp=ts)
                except LookupError:
                    if provider_id is None:
                        raise
                    result = calc_price(Usage(**values), name, genai_request_timestamp=ts)
        except LookupError:
            with self._lock:
                self._misses.add(key)
            return None
        except Exception:  # a catalog bug must not break recording
            logger.warning("catalog pricing failed for %s/%s", prov, name, exc_info=True)
            return None
        total = Decimal(result.total_price)
        return Cost(Decimal(result.input_price), Decimal(result.output_price), total, "catalog",
                    f"genai-prices:{result.provider.id}/{result.model.id}", None)
