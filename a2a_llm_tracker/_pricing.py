"""Prices and cost: the user's prices first, effective dates honoured, a catalog only if enabled.

Lookup order for an event's ``(provider, model)`` at its timestamp:

1. the user's prices for the canonical name (``openai/gpt-4.1`` under ``openai`` is ``gpt-4.1``);
2. the same with a dated snapshot suffix removed (``gpt-4.1-2025-04-14`` → ``gpt-4.1``);
3. the user's aliases (Azure deployments, Bedrock ARNs, fine-tunes), then 1–2 for the target;
4. the bundled catalog (genai-prices), only when enabled, labelled ``cost_source="catalog"``;
5. unpriced: ``cost_usd=None`` and ``cost_source=None``, never a silent $0.

All arithmetic is in :class:`~decimal.Decimal`; events store float USD.
"""

from __future__ import annotations as _annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ._forksafe import renew_locks_after_fork
from .exceptions import PricingError

__all__ = ["Cost", "ModelPrice", "PricingRegistry", "canonical_model", "strip_date_suffix"]

_PRICE_KEYS = ("input_per_million", "output_per_million", "cached_input_per_million", "cache_write_per_million",
               "cache_write_1h_per_million", "reasoning_per_million")
_SHEET_ENTRY_KEYS = {"provider", "model", "effective_from", "effective_until", "price_id", *_PRICE_KEYS}
# Dated snapshots: -2025-04-14, -20250929, @20240620 (Vertex), -v1:0 (Bedrock) after a date.
_DATE_SUFFIX = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}))(?:-v\d+(?::\d+)?)?$")
_PROVIDER_SYNONYMS = {"google": "google", "gemini": "google", "google_genai": "google", "vertex_ai": "google-vertex",
                      "vertex": "google-vertex", "azure_openai": "azure", "together_ai": "together",
                      "mistralai": "mistral", "bedrock_converse": "bedrock", "aws": "bedrock"}


def _canonical_provider(provider: str | None) -> str | None:
    if provider is None:
        return None
    p = provider.strip().lower()
    return _PROVIDER_SYNONYMS.get(p, p) or None


def canonical_model(provider: str | None, model: str) -> tuple[str | None, str]:
    """Normalise a ``(provider, model)`` pair the way price keys are stored.

    ``("openai", "openai/gpt-4.1")`` and ``("openai", "gpt-4.1")`` give the same key; a model
    with a ``provider/`` prefix and no provider gives that provider.
    """
    prov = _canonical_provider(provider)
    name = model.strip()
    if "/" in name:
        head, rest = name.split("/", 1)
        head_c = _canonical_provider(head)
        if prov is None:
            prov, name = head_c, rest
        elif head_c == prov or head.lower() == (provider or "").lower():
            name = rest
    return prov, name.lower()


def strip_date_suffix(model: str) -> str | None:
    """``gpt-4.1-2025-04-14`` → ``gpt-4.1``; None when there is no dated suffix."""
    stripped = _DATE_SUFFIX.sub("", model)
    return stripped if stripped != model and stripped else None


def _to_decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise PricingError(f"{what} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise PricingError(f"{what} must be a finite number, got {value!r}")
    try:
        dec = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError) as exc:
        raise PricingError(f"{what} must be a number, got {value!r}") from exc
    if not dec.is_finite():
        raise PricingError(f"{what} must be a finite number, got {value!r}")
    if dec < 0:
        raise PricingError(f"{what} must not be negative, got {value!r}")
    return dec


def _to_datetime(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise PricingError(f"{what} must be an ISO date or datetime, got {value!r}") from exc
    else:
        raise PricingError(f"{what} must be a date, datetime or ISO string, got {type(value).__name__}")
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One price for one model over one period, in USD per million tokens."""

    provider: str | None
    model: str
    input_per_million: Decimal
    output_per_million: Decimal
    cached_input_per_million: Decimal
    cache_write_per_million: Decimal
    cache_write_1h_per_million: Decimal
    reasoning_per_million: Decimal
    effective_from: datetime | None = None
    effective_until: datetime | None = None
    price_id: str = ""
    # The six per-token rates as integers in units of 10**_exponent dollars (exact), computed once:
    # pricing an event is then a few integer multiplications.
    _rates: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _exponent: int = field(init=False, repr=False, compare=False)
    _scale: int = field(init=False, repr=False, compare=False)  # 10 ** -_exponent

    def __post_init__(self) -> None:
        per_token = [rate.scaleb(-6) for rate in (
            self.input_per_million, self.cached_input_per_million, self.cache_write_per_million,
            self.cache_write_1h_per_million, self.output_per_million, self.reasoning_per_million)]
        exponent = min(0, *(int(rate.as_tuple().exponent) for rate in per_token))
        object.__setattr__(self, "_exponent", exponent)
        object.__setattr__(self, "_scale", 10 ** -exponent)
        object.__setattr__(self, "_rates", tuple(int(rate.scaleb(-exponent)) for rate in per_token))

    def active_at(self, ts: datetime) -> bool:
        """True when this price applies to a call made at *ts*."""
        if self.effective_from is not None and ts < self.effective_from:
            return False
        return self.effective_until is None or ts < self.effective_until

    def cost(self, *, input_tokens: int | None, output_tokens: int | None, cached_input_tokens: int | None = None,
             cache_write_tokens: int | None = None, reasoning_tokens: int | None = None,
             cache_write_1h_tokens: int | None = None) -> Cost:
        """Cost of the given usage (inclusive convention) at this price."""
        input_units, output_units = self._units(input_tokens, output_tokens, cached_input_tokens,
                                                cache_write_tokens, reasoning_tokens, cache_write_1h_tokens)
        return Cost.exact(input_units, output_units, self._exponent, "pricing", self.price_id, self.effective_from)

    def _units(self, input_tokens: int | None, output_tokens: int | None, cached_input_tokens: int | None,
               cache_write_tokens: int | None, reasoning_tokens: int | None,
               cache_write_1h_tokens: int | None) -> tuple[int, int]:
        """Input and output cost in units of ``10**_exponent`` USD."""
        input_rate, cached_rate, write_rate, write_1h_rate, output_rate, reasoning_rate = self._rates
        inp = input_tokens or 0
        cached = cached_input_tokens or 0
        write = cache_write_tokens or 0
        uncached = inp - cached - write
        input_units = (uncached if uncached > 0 else 0) * input_rate
        if cached:
            input_units += cached * cached_rate
        if write:
            write_1h = min(cache_write_1h_tokens or 0, write)
            input_units += (write - write_1h) * write_rate
            if write_1h:
                input_units += write_1h * write_1h_rate
        out = output_tokens or 0
        reasoning = reasoning_tokens or 0
        if reasoning > out:
            reasoning = out
        output_units = (out - reasoning) * output_rate
        if reasoning:
            output_units += reasoning * reasoning_rate
        return input_units, output_units

    def event_fields(self, input_tokens: int | None, output_tokens: int | None, cached_input_tokens: int | None,
                     cache_write_tokens: int | None, reasoning_tokens: int | None,
                     cache_write_1h_tokens: int | None) -> dict[str, Any]:
        """The UsageEvent cost fields for this usage (what ``cost(...).event_fields()`` gives, faster)."""
        input_units, output_units = self._units(input_tokens, output_tokens, cached_input_tokens,
                                                cache_write_tokens, reasoning_tokens, cache_write_1h_tokens)
        scale = self._scale
        return {"input_cost_usd": input_units / scale, "output_cost_usd": output_units / scale,
                "cost_usd": (input_units + output_units) / scale, "cost_source": "pricing",
                "price_id": self.price_id, "price_effective_from": self.effective_from}


class Cost:
    """A computed cost with its provenance. Amounts are exact: :class:`~decimal.Decimal` USD."""

    __slots__ = ("_exponent", "_input", "_output", "_total", "effective_from", "price_id", "source")

    def __init__(self, input_usd: Decimal, output_usd: Decimal, total_usd: Decimal, source: str,
                 price_id: str | None, effective_from: datetime | None) -> None:
        amounts = (Decimal(input_usd), Decimal(output_usd), Decimal(total_usd))
        exponent = min(0, *(int(amount.as_tuple().exponent) for amount in amounts))
        self._input, self._output, self._total = (int(amount.scaleb(-exponent)) for amount in amounts)
        self._exponent = exponent
        self.source = source  #: ``pricing``, ``catalog`` or ``provider``
        self.price_id = price_id
        self.effective_from = effective_from

    @classmethod
    def exact(cls, input_units: int, output_units: int, exponent: int, source: str, price_id: str | None,
              effective_from: datetime | None) -> Cost:
        """A cost of ``input_units`` and ``output_units`` times ``10**exponent`` USD (no rounding)."""
        cost = object.__new__(cls)
        cost._input, cost._output, cost._total = input_units, output_units, input_units + output_units
        cost._exponent = exponent
        cost.source, cost.price_id, cost.effective_from = source, price_id, effective_from
        return cost

    @property
    def input_usd(self) -> Decimal:
        """Cost of the input (cached reads and cache writes included)."""
        return Decimal(self._input).scaleb(self._exponent)

    @property
    def output_usd(self) -> Decimal:
        """Cost of the output (reasoning included)."""
        return Decimal(self._output).scaleb(self._exponent)

    @property
    def total_usd(self) -> Decimal:
        """Input plus output."""
        return Decimal(self._total).scaleb(self._exponent)

    def event_fields(self) -> dict[str, Any]:
        """The UsageEvent fields this cost fills (floats correctly rounded from the exact amounts)."""
        scale = 10 ** -self._exponent
        return {"input_cost_usd": self._input / scale, "output_cost_usd": self._output / scale,
                "cost_usd": self._total / scale, "cost_source": self.source, "price_id": self.price_id,
                "price_effective_from": self.effective_from}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cost):
            return NotImplemented
        return (self.input_usd, self.output_usd, self.total_usd, self.source, self.price_id,
                self.effective_from) == (other.input_usd, other.output_usd, other.total_usd, other.source,
                                         other.price_id, other.effective_from)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return (f"Cost(input_usd={self.input_usd!r}, output_usd={self.output_usd!r}, total_usd={self.total_usd!r}, "
                f"source={self.source!r}, price_id={self.price_id!r}, effective_from={self.effective_from!r})")


class PricingRegistry:
    """The user's prices, with effective dates, aliases and an optional catalog fallback.

    Args:
        catalog: also price models the user did not price from the bundled genai-prices
            catalog (offline). Such costs are labelled ``cost_source="catalog"``.

    Example::

        pricing = PricingRegistry()
        pricing.set_price(provider="openai", model="openai/gpt-4.1",
                          input_per_million=2.0, output_per_million=8.0)

    .. versionadded:: 0.1
    """

    def __init__(self, *, catalog: bool = False) -> None:
        self._prices: dict[tuple[str | None, str], list[ModelPrice]] = {}
        self._aliases: dict[tuple[str | None, str], tuple[str | None, str]] = {}
        self._lock = threading.Lock()
        renew_locks_after_fork(self, "_lock")
        self._resolved: dict[tuple[str | None, str], list[ModelPrice] | None] = {}
        self.catalog_enabled = catalog
        self._catalog: Any = None

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    def with_catalog(cls) -> PricingRegistry:
        """A registry that falls back to the bundled catalog for models you did not price."""
        return cls(catalog=True)

    @classmethod
    def from_file(cls, path: str | Path, *, catalog: bool = False) -> PricingRegistry:
        """A registry loaded from a TOML or JSON price sheet (see :meth:`load`)."""
        registry = cls(catalog=catalog)
        registry.load(path)
        return registry

    def set_price(self, provider: str | None, model: str, input_per_million: float | Decimal | str,
                  output_per_million: float | Decimal | str, *,
                  cached_input_per_million: float | Decimal | str | None = None,
                  cache_write_per_million: float | Decimal | str | None = None,
                  cache_write_1h_per_million: float | Decimal | str | None = None,
                  reasoning_per_million: float | Decimal | str | None = None,
                  effective_from: datetime | date | str | None = None,
                  effective_until: datetime | date | str | None = None,
                  price_id: str | None = None) -> ModelPrice:
        """Set a price in USD per million tokens.

        Unset rates default conservatively: cached reads and cache writes at the input rate,
        one-hour cache writes at the cache-write rate, reasoning at the output rate. Several
        prices per model may coexist with different effective periods; an event is priced
        with the one in force at its timestamp (the latest-starting one where periods overlap).

        Raises:
            PricingError: a rate is negative, NaN or not a number, or the period is empty.
        """
        if not isinstance(model, str) or not model.strip():
            raise PricingError(f"model must be a non-empty string, got {model!r}")
        label = f"price for {provider}/{model}" if provider else f"price for {model}"
        inp = _to_decimal(input_per_million, f"{label}: input_per_million")
        out = _to_decimal(output_per_million, f"{label}: output_per_million")
        cached = inp if cached_input_per_million is None else _to_decimal(
            cached_input_per_million, f"{label}: cached_input_per_million")
        write = inp if cache_write_per_million is None else _to_decimal(
            cache_write_per_million, f"{label}: cache_write_per_million")
        write_1h = write if cache_write_1h_per_million is None else _to_decimal(
            cache_write_1h_per_million, f"{label}: cache_write_1h_per_million")
        reasoning = out if reasoning_per_million is None else _to_decimal(
            reasoning_per_million, f"{label}: reasoning_per_million")
        start = _to_datetime(effective_from, f"{label}: effective_from")
        end = _to_datetime(effective_until, f"{label}: effective_until")
        if start is not None and end is not None and end <= start:
            raise PricingError(f"{label}: effective_until ({end.isoformat()}) must be after "
                               f"effective_from ({start.isoformat()})")
        prov, name = canonical_model(provider, model)
        pid = price_id or f"{prov or '*'}/{name}@{start.date().isoformat() if start else 'always'}"
        price = ModelPrice(prov, name, inp, out, cached, write, write_1h, reasoning, start, end, pid)
        with self._lock:
            entries = [p for p in self._prices.get((prov, name), []) if p.effective_from != start]
            entries.append(price)
            # latest start first, so the first active one wins where periods overlap
            entries.sort(key=lambda p: p.effective_from or datetime.min.replace(tzinfo=UTC), reverse=True)
            self._prices[(prov, name)] = entries
            self._resolved.clear()
        return price

    def set_alias(self, alias: str, target: str, *, provider: str | None = None,
                  target_provider: str | None = None) -> None:
        """Price *alias* (a deployment name, ARN, fine-tune id) as *target*.

        ``set_alias("my-gpt4-deployment", "openai/gpt-4.1", provider="azure")``.
        """
        if not alias or not target:
            raise PricingError(f"alias and target must be non-empty, got {alias!r} -> {target!r}")
        key = canonical_model(provider, alias)
        value = canonical_model(target_provider, target)
        with self._lock:
            self._aliases[key] = value
            if key[0] is not None:
                self._aliases.setdefault((None, key[1]), value)
            self._resolved.clear()

    def load(self, path: str | Path) -> int:
        """Load a TOML or JSON price sheet; returns how many prices it set.

        The sheet has a ``prices`` list (each entry: ``provider``, ``model``, the ``*_per_million``
        rates, optional ``effective_from``/``effective_until``/``price_id``) and an optional
        ``aliases`` table (``alias = "provider/model"``). The whole sheet is checked before any
        price is set, so a bad sheet changes nothing.

        Raises:
            PricingError: the file cannot be read, or an entry is invalid (the message names it).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise PricingError(f"cannot read price sheet {p}: {exc.strerror or exc}") from exc
        try:
            if p.suffix.lower() == ".toml":
                import tomllib

                data = tomllib.loads(text)
            else:
                data = json.loads(text)
        except ValueError as exc:
            raise PricingError(f"price sheet {p} is not valid {p.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from exc
        return self.load_dict(data, source=str(p))

    def load_dict(self, data: Any, *, source: str = "price sheet") -> int:
        """Load prices from an already parsed sheet (same shape as :meth:`load`)."""
        if not isinstance(data, Mapping):
            raise PricingError(f"{source}: expected a table with a 'prices' list")
        unknown_top = set(data) - {"prices", "aliases"}
        if unknown_top:
            raise PricingError(f"{source}: unknown top-level key(s) {sorted(unknown_top)}; expected 'prices', 'aliases'")
        entries = data.get("prices", [])
        if not isinstance(entries, list):
            raise PricingError(f"{source}: 'prices' must be a list of tables")
        aliases = data.get("aliases", {})
        if not isinstance(aliases, Mapping):
            raise PricingError(f"{source}: 'aliases' must be a table of alias = \"provider/model\"")
        staged = PricingRegistry()
        for index, entry in enumerate(entries):
            where = f"{source}: prices[{index}]"
            if not isinstance(entry, Mapping):
                raise PricingError(f"{where} must be a table")
            if "model" in entry:
                where += f" ({entry.get('provider') or '*'}/{entry['model']})"
            unknown = set(entry) - _SHEET_ENTRY_KEYS
            if unknown:
                raise PricingError(f"{where}: unknown key(s) {sorted(unknown)}")
            for required in ("model", "input_per_million", "output_per_million"):
                if required not in entry:
                    raise PricingError(f"{where}: missing '{required}'")
            try:
                staged.set_price(entry.get("provider"), entry["model"], **{
                    k: v for k, v in entry.items() if k not in ("provider", "model")})
            except PricingError as exc:
                raise PricingError(f"{where}: {exc}") from None
        for alias, target in aliases.items():
            if not isinstance(target, str):
                raise PricingError(f"{source}: aliases[{alias!r}] must be a string 'provider/model'")
        with self._lock:
            for key, prices in staged._prices.items():
                existing = {p.effective_from: p for p in self._prices.get(key, [])}
                existing.update({p.effective_from: p for p in prices})
                self._prices[key] = sorted(existing.values(), reverse=True,
                                           key=lambda p: p.effective_from or datetime.min.replace(tzinfo=UTC))
            self._resolved.clear()
        for alias, target in aliases.items():
            self.set_alias(alias, target)
        return sum(len(v) for v in staged._prices.values())

    # -- lookup ----------------------------------------------------------------------------------------
    def prices(self) -> list[ModelPrice]:
        """Every price set, in no particular order."""
        with self._lock:
            return [p for entries in self._prices.values() for p in entries]

    def _candidates(self, provider: str | None, model: str) -> list[ModelPrice] | None:
        key = (provider, model)
        try:
            return self._resolved[key]
        except KeyError:
            pass
        with self._lock:
            found = self._resolve(provider, model, depth=0)
            self._resolved[key] = found
        return found

    def _resolve(self, provider: str | None, model: str, depth: int) -> list[ModelPrice] | None:
        prov, name = canonical_model(provider, model)
        names = [name]
        stripped = strip_date_suffix(name)
        if stripped:
            names.append(stripped)
        for candidate in names:
            if (prov, candidate) in self._prices:
                return self._prices[(prov, candidate)]
            if prov is None:  # provider unknown: a model priced under exactly one provider
                matches = [v for (p, m), v in self._prices.items() if m == candidate]
                if len(matches) == 1:
                    return matches[0]
            elif (None, candidate) in self._prices:  # a price set without a provider applies to all
                return self._prices[(None, candidate)]
        if depth < 3:
            for candidate in names:
                target = self._aliases.get((prov, candidate)) or self._aliases.get((None, candidate))
                if target is not None:
                    return self._resolve(target[0] or prov, target[1], depth + 1)
        return None

    def lookup(self, provider: str | None, model: str, at: datetime | None = None) -> ModelPrice | None:
        """The user's price for *model* in force at *at* (default now), or None."""
        ts = at or datetime.now(UTC)
        return self._price_at(provider, model, ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC))

    def _price_at(self, provider: str | None, model: str, ts: datetime) -> ModelPrice | None:
        """:meth:`lookup` for an aware *ts* (this runs for every recorded event)."""
        candidates = self._resolved.get((provider, model)) or self._candidates(provider, model)
        for price in candidates or ():
            if price.active_at(ts):
                return price
        return None

    def cost(self, *, provider: str | None, model: str | None, ts: datetime, input_tokens: int | None,
             output_tokens: int | None, cached_input_tokens: int | None = None,
             cache_write_tokens: int | None = None, reasoning_tokens: int | None = None,
             token_details: Mapping[str, int | float] | None = None) -> Cost | None:
        """Cost of a call, or None when no price covers it (or no usage is known)."""
        return self._cost(provider, model, ts, input_tokens, output_tokens, cached_input_tokens,
                          cache_write_tokens, reasoning_tokens, token_details)

    def _event_cost_fields(self, provider: str | None, model: str, ts: datetime, input_tokens: int | None,
                           output_tokens: int | None, cached_input_tokens: int | None,
                           cache_write_tokens: int | None, reasoning_tokens: int | None,
                           token_details: Mapping[str, int | float]) -> dict[str, Any] | None:
        """The cost fields from the user's own price, or None (the Meter's per-event fast path)."""
        price = self._price_at(provider, model, ts)
        if price is None:
            return None
        write_1h = token_details.get("cache_write_1h") if token_details else None
        return price.event_fields(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens,
                                  reasoning_tokens, int(write_1h) if write_1h is not None else None)

    def _cost(self, provider: str | None, model: str | None, ts: datetime, input_tokens: int | None,
              output_tokens: int | None, cached_input_tokens: int | None, cache_write_tokens: int | None,
              reasoning_tokens: int | None, token_details: Mapping[str, int | float] | None) -> Cost | None:
        if not model or (input_tokens is None and output_tokens is None):
            return None
        price = self.lookup(provider, model, ts)
        details = token_details or {}
        if price is not None:
            write_1h = details.get("cache_write_1h")
            return price.cost(input_tokens=input_tokens, output_tokens=output_tokens,
                              cached_input_tokens=cached_input_tokens, cache_write_tokens=cache_write_tokens,
                              reasoning_tokens=reasoning_tokens,
                              cache_write_1h_tokens=int(write_1h) if write_1h is not None else None)
        if self.catalog_enabled:
            if self._catalog is None:
                from ._catalog import GenaiPricesCatalog

                self._catalog = GenaiPricesCatalog()
            return self._catalog.cost(provider=provider, model=model, ts=ts, input_tokens=input_tokens,
                                      output_tokens=output_tokens, cached_input_tokens=cached_input_tokens,
                                      cache_write_tokens=cache_write_tokens, reasoning_tokens=reasoning_tokens,
                                      token_details=details)
        return None

    def covers(self, provider: str | None, model: str, at: datetime | None = None) -> bool:
        """True when a user price (or, if enabled, the catalog) prices *model* at *at*."""
        if self.lookup(provider, model, at) is not None:
            return True
        if self.catalog_enabled:
            cost = self.cost(provider=provider, model=model, ts=at or datetime.now(UTC), input_tokens=1,
                             output_tokens=1)
            return cost is not None
        return False

    def __len__(self) -> int:
        return sum(len(v) for v in self._prices.values())

    def __repr__(self) -> str:
        return f"PricingRegistry(prices={len(self)}, aliases={len(self._aliases)}, catalog={self.catalog_enabled})"
