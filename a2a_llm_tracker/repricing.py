"""Re-price stored events with a price sheet, and find the models no price covers.

:func:`plan_reprice` reads a source and computes every event's cost with the given prices
(the price in force at each event's ``ts``), without writing anything; the plan lists the
difference per model. :meth:`RepricePlan.apply` then writes the new costs: a JSONL file is
rewritten atomically (temp file + rename), a SQL table is updated in one transaction.
Events the sheet does not price are left as they are.

:func:`uncovered_models` lists the models in the data that no price covers (``prices check``).

Example::

    from a2a_llm_tracker.repricing import plan_reprice

    plan = plan_reprice("usage.db", "contract-2026.toml")
    for diff in plan.diffs:
        print(diff.model, diff.old_cost_usd, diff.new_cost_usd)
    plan.apply()

.. versionadded:: 0.1
"""

from __future__ import annotations as _annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ._pricing import PricingRegistry
from ._sources import Progress, Source, open_source, parse_ts
from .exceptions import ConfigurationError
from .report import parse_when, where_sql

try:  # the JSONL sink's writers hold this lock while appending
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ModelDiff", "RepricePlan", "UncoveredModel", "plan_reprice", "uncovered_models"]

_COST_FIELDS = ("input_cost_usd", "output_cost_usd", "cost_usd", "cost_source", "price_id", "price_effective_from")
_READ_COLUMNS = ("event_id", "provider", "model", "response_model", "ts", "input_tokens", "output_tokens",
                 "cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "token_details", "input_cost_usd",
                 "output_cost_usd", "cost_usd",
                 "cost_source", "price_id")
_EPS = 1e-12


@dataclass
class ModelDiff:
    """What re-pricing changes for one ``(provider, model)``.

    Attributes:
        provider, model: the model as stored.
        events: events of this model in the range read.
        repriced: events the new prices cover (their cost is recomputed).
        uncovered: events with usage the new prices do not cover (left unchanged).
        no_usage: events that reported no tokens (nothing to price; left unchanged).
        newly_priced: covered events that had no cost before.
        changed: events whose stored cost fields change.
        old_cost_usd: the stored cost of the covered events (None if none of them had one).
        new_cost_usd: their cost at the new prices (None if no event is covered).
    """

    provider: str | None
    model: str | None
    events: int = 0
    repriced: int = 0
    uncovered: int = 0
    no_usage: int = 0
    newly_priced: int = 0
    changed: int = 0
    old_cost_usd: float | None = None
    new_cost_usd: float | None = None

    @property
    def delta_usd(self) -> float | None:
        """``new - old`` over the covered events (old unpriced counts as 0 here); None if none covered."""
        if self.new_cost_usd is None:
            return None
        return self.new_cost_usd - (self.old_cost_usd or 0.0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``delta_usd``."""
        return {"provider": self.provider, "model": self.model, "events": self.events, "repriced": self.repriced,
                "uncovered": self.uncovered, "no_usage": self.no_usage, "newly_priced": self.newly_priced,
                "changed": self.changed,
                "old_cost_usd": self.old_cost_usd, "new_cost_usd": self.new_cost_usd, "delta_usd": self.delta_usd}


@dataclass
class RepricePlan:
    """New costs for a source's events, computed but not written.

    Attributes:
        source: the source read.
        diffs: one :class:`ModelDiff` per ``(provider, model)``, sorted.
        updates: ``event_id`` → the new cost fields, for events whose cost changes.
    """

    source: Source
    diffs: list[ModelDiff]
    updates: dict[str, dict[str, Any]] = field(repr=False)
    applied: bool = False

    @property
    def changed(self) -> int:
        """How many events :meth:`apply` rewrites."""
        return len(self.updates)

    def apply(self) -> int:
        """Write the new costs; returns the number of events updated.

        JSONL: the file is rewritten to a temp file beside it and renamed over it (atomic), holding
        the writers' lock meanwhile; stop processes that keep the file open before re-pricing it.
        SQL: one transaction. Events recorded after the plan was made are not touched.

        Raises:
            ConfigurationError: the plan was applied already, or the source cannot be written.
        """
        if self.applied:
            raise ConfigurationError("this re-pricing plan was applied already; make a new one")
        if not self.updates:
            self.applied = True
            return 0
        count = _apply_jsonl(self.source, self.updates) if self.source.kind == "jsonl" else \
            _apply_sql(self.source, self.updates)
        self.applied = True
        return count


@dataclass
class UncoveredModel:
    """A model seen in the data with events no price covers."""

    provider: str | None
    model: str | None
    response_model: str | None
    events: int
    first_seen: datetime | None
    last_seen: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"provider": self.provider, "model": self.model, "response_model": self.response_model,
                "events": self.events,
                "first_seen": self.first_seen.isoformat() if self.first_seen else None,
                "last_seen": self.last_seen.isoformat() if self.last_seen else None}


def _registry(prices: PricingRegistry | str | os.PathLike[str]) -> PricingRegistry:
    if isinstance(prices, PricingRegistry):
        return prices
    return PricingRegistry.from_file(os.fspath(prices))


def _new_cost(registry: PricingRegistry, rec: Mapping[str, Any], ts: datetime) -> dict[str, Any] | None:
    """The cost fields *registry* gives this event (as the Meter prices: response model, then model)."""
    details = rec.get("token_details") or {}
    if isinstance(details, str):
        details = json.loads(details) if details not in ("", "{}") else {}
    # Any: the counts come from a stored row (the reader already checked their types).
    kwargs: dict[str, Any] = dict(provider=rec.get("provider"), ts=ts, input_tokens=rec.get("input_tokens"),
                                  output_tokens=rec.get("output_tokens"),
                                  cached_input_tokens=rec.get("cached_input_tokens"),
                                  cache_write_tokens=rec.get("cache_write_tokens"),
                                  reasoning_tokens=rec.get("reasoning_tokens"), token_details=details)
    model, response_model = rec.get("model"), rec.get("response_model")
    cost = registry.cost(model=response_model or model, **kwargs)
    if cost is None and response_model and model and response_model != model:
        cost = registry.cost(model=model, **kwargs)
    return None if cost is None else cost.event_fields()


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    for name in ("input_cost_usd", "output_cost_usd", "cost_usd"):
        a, b = old.get(name), new.get(name)
        if (a is None) != (b is None) or (a is not None and abs(a - b) > _EPS):
            return False
    return old.get("cost_source") == new.get("cost_source") and old.get("price_id") == new.get("price_id")


def _iter_sql(src: Source, columns: Sequence[str], where: str, params: list[Any]) -> Iterator[dict[str, Any]]:
    sql = f"SELECT {', '.join(columns)} FROM {src.quoted_table()}{where}"
    conn = src.connect()
    try:
        cursor = conn.cursor()
        rows = cursor.stream(sql, params) if src.kind == "postgres" else cursor.execute(sql, params)
        for row in rows:
            yield dict(zip(columns, row, strict=True))
    except Exception as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"cannot read {src.label}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        conn.close()


def _iter_events(src: Source, start: datetime | None, stop: datetime | None, columns: Sequence[str],
                 progress: Progress | None) -> Iterator[tuple[dict[str, Any], datetime | None]]:
    """(record, ts) for every event of *src* in ``[start, stop)``."""
    if src.is_sql:
        where, params = where_sql(src, start, stop, {})
        for rec in _iter_sql(src, [*columns, "ts"] if "ts" not in columns else columns, where, params):
            yield rec, src.ts_value(rec["ts"])
        return
    for number, obj in enumerate(src.iter_jsonl(progress), 1):
        try:
            ts = parse_ts(obj["ts"])
        except (KeyError, TypeError, ValueError):
            raise ConfigurationError(f"{src.label}: event {number} has no valid ts ({obj.get('ts')!r})") from None
        if (start is not None and ts < start) or (stop is not None and ts >= stop):
            continue
        yield obj, ts


def plan_reprice(source: str | os.PathLike[str] | Source, prices: PricingRegistry | str | os.PathLike[str], *,
                 since: str | date | datetime | None = None, until: str | date | datetime | None = None,
                 table: str | None = None, progress: Progress | None = None) -> RepricePlan:
    """Compute new costs for the events of *source* with *prices*; writes nothing.

    Args:
        source: a ``.jsonl`` file, a SQLite file or a ``postgresql://`` DSN.
        prices: a :class:`PricingRegistry` or a TOML/JSON price sheet path. Each event is priced
            with the price in force at its ``ts`` (effective dates honoured).
        since, until: only re-price events in this range (as in :func:`report.summarize`).
        table: the events table of a SQL source.
        progress: progress hook for JSONL reads.

    Raises:
        PricingError: the price sheet is invalid.
        ConfigurationError: the source or a time bound is invalid.
    """
    registry = _registry(prices)
    src = open_source(source, table=table)
    start, stop = parse_when(since, what="since"), parse_when(until, what="until", end=True)
    diffs: dict[tuple[str | None, str | None], ModelDiff] = {}
    sums: dict[tuple[str | None, str | None], list[float]] = {}  # old, new
    updates: dict[str, dict[str, Any]] = {}
    for rec, ts in _iter_events(src, start, stop, _READ_COLUMNS, progress):
        key = (rec.get("provider"), rec.get("model"))
        diff = diffs.get(key)
        if diff is None:
            diff = diffs[key] = ModelDiff(*key)
            sums[key] = [0.0, 0.0, 0.0]  # old sum, new sum, old priced count
        diff.events += 1
        if rec.get("input_tokens") is None and rec.get("output_tokens") is None:
            diff.no_usage += 1
            continue
        new = _new_cost(registry, rec, ts) if ts is not None else None
        if new is None:
            diff.uncovered += 1
            continue
        diff.repriced += 1
        acc = sums[key]
        old = rec.get("cost_usd")
        if old is None:
            diff.newly_priced += 1
        else:
            acc[0] += old
            acc[2] += 1
        acc[1] += new["cost_usd"]
        if not _same(rec, new):
            diff.changed += 1
            updates[str(rec["event_id"])] = new
    for key, diff in diffs.items():
        old_sum, new_sum, old_count = sums[key]
        if diff.repriced:
            diff.new_cost_usd = new_sum
            diff.old_cost_usd = old_sum if old_count else None
    ordered = sorted(diffs.values(), key=lambda d: (d.provider or "\uffff", d.model or "\uffff"))
    return RepricePlan(src, ordered, updates)


def _apply_sql(src: Source, updates: Mapping[str, Mapping[str, Any]]) -> int:
    p = src.param
    sql = (f"UPDATE {src.quoted_table()} SET " + ", ".join(f"{c} = {p}" for c in _COST_FIELDS)
           + f" WHERE event_id = {p}")
    rows = []
    for event_id, new in updates.items():
        eff = new["price_effective_from"]
        rows.append((new["input_cost_usd"], new["output_cost_usd"], new["cost_usd"], new["cost_source"],
                     new["price_id"], None if eff is None else src.ts_param(eff), event_id))
    conn = src.connect(write=True)
    try:
        if src.kind == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        else:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows)
    except Exception as exc:
        raise ConfigurationError(f"cannot update {src.label}: {str(exc).strip().splitlines()[0]} "
                                 "(nothing was changed)") from None
    finally:
        conn.close()
    return len(rows)


def _json_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _apply_jsonl(src: Source, updates: Mapping[str, Mapping[str, Any]]) -> int:
    path = Path(src.location)
    count = 0
    with open(path, "rb") as original:
        if fcntl is not None:
            fcntl.flock(original.fileno(), fcntl.LOCK_EX)  # JSONLSink writers wait meanwhile
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".reprice", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for line in original:
                    stripped = line.strip()
                    new = None
                    if stripped:
                        obj = json.loads(stripped)
                        new = updates.get(str(obj.get("event_id")))
                    if new is None:
                        out.write(line if line.endswith(b"\n") else line + b"\n")
                        continue
                    obj.update(new)
                    obj["price_effective_from"] = _json_time(new["price_effective_from"])
                    out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
                    count += 1
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, os.stat(path).st_mode & 0o7777)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    return count


# -- prices check --------------------------------------------------------------------------------------
def _covered(registry: PricingRegistry, provider: str | None, names: Sequence[str], ts: datetime) -> bool:
    return any(registry.covers(provider, name, ts) for name in names)


def _boundaries(registry: PricingRegistry, provider: str | None, names: Sequence[str]) -> set[datetime]:
    found: set[datetime] = set()
    for name in names:
        for price in registry._candidates(provider, name) or ():
            found.update(b for b in (price.effective_from, price.effective_until) if b is not None)
    return found


def uncovered_models(source: str | os.PathLike[str] | Source,
                     prices: PricingRegistry | str | os.PathLike[str] | None = None, *,
                     since: str | date | datetime | None = None, until: str | date | datetime | None = None,
                     table: str | None = None, progress: Progress | None = None) -> list[UncoveredModel]:
    """The models in *source* that no price covers.

    With *prices* (a registry or a price sheet; enable its catalog to count catalog prices),
    every event's model is checked against those prices at the event's ``ts``. Without, the
    stored data is read as is: events that reported tokens but have no cost.

    Returns:
        One :class:`UncoveredModel` per ``(provider, model, response_model)`` with uncovered events.
    """
    src = open_source(source, table=table)
    start, stop = parse_when(since, what="since"), parse_when(until, what="until", end=True)
    registry = None if prices is None else _registry(prices)
    if src.is_sql:
        return _uncovered_sql(src, registry, start, stop)
    groups: dict[tuple[str | None, str | None, str | None], list[Any]] = {}
    columns = ("provider", "model", "response_model", "input_tokens", "output_tokens", "cost_usd")
    for rec, ts in _iter_events(src, start, stop, columns, progress):
        key = (rec.get("provider"), rec.get("model"), rec.get("response_model"))
        if registry is None:
            unpriced = rec.get("cost_usd") is None and (rec.get("input_tokens") is not None
                                                        or rec.get("output_tokens") is not None)
        else:
            names = [n for n in (key[2], key[1]) if n]
            unpriced = ts is None or not names or not _covered(registry, key[0], names, ts)
        if unpriced:
            g = groups.setdefault(key, [0, ts, ts])
            g[0] += 1
            if ts is not None:
                g[1] = ts if g[1] is None or ts < g[1] else g[1]
                g[2] = ts if g[2] is None or ts > g[2] else g[2]
    return sorted((UncoveredModel(*k, *v) for k, v in groups.items()), key=_model_sort)


def _model_sort(m: UncoveredModel) -> tuple[str, str, str]:
    return (m.provider or "\uffff", m.model or "\uffff", m.response_model or "")


def _uncovered_sql(src: Source, registry: PricingRegistry | None, start: datetime | None,
                   stop: datetime | None) -> list[UncoveredModel]:
    where, params = where_sql(src, start, stop, {})
    if registry is None:
        cond = "cost_usd IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)"
        where = f"{where} AND {cond}" if where else f" WHERE {cond}"
    sql = (f"SELECT provider, model, response_model, COUNT(*), MIN(ts), MAX(ts) FROM {src.quoted_table()}"
           f"{where} GROUP BY 1, 2, 3")
    conn = src.connect()
    try:
        groups = conn.execute(sql, params).fetchall()
    except Exception as exc:
        raise ConfigurationError(f"cannot read {src.label}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        conn.close()
    found: list[UncoveredModel] = []
    for provider, model, response_model, count, first, last in groups:
        first_ts, last_ts = src.ts_value(first), src.ts_value(last)
        if registry is None:
            found.append(UncoveredModel(provider, model, response_model, int(count), first_ts, last_ts))
            continue
        names = [n for n in (response_model, model) if n]
        if not names or first_ts is None or last_ts is None:
            found.append(UncoveredModel(provider, model, response_model, int(count), first_ts, last_ts))
            continue
        inside = {b for b in _boundaries(registry, provider, names) if first_ts < b <= last_ts}
        if not inside:  # coverage only changes at price boundaries: one check stands for the group
            if not _covered(registry, provider, names, first_ts):
                found.append(UncoveredModel(provider, model, response_model, int(count), first_ts, last_ts))
            continue
        # a price starts or ends inside the range: check each event's ts (rare)
        same = " AND ".join(f"{c} IS NOT DISTINCT FROM {src.param}" if src.kind == "postgres" else f"{c} IS ?"
                            for c in ("provider", "model", "response_model"))
        sub_where = f"{where} AND {same}" if where else f" WHERE {same}"
        miss = [ts for rec in _iter_sql(src, ("ts",), sub_where, [*params, provider, model, response_model])
                if (ts := src.ts_value(rec["ts"])) is not None and not _covered(registry, provider, names, ts)]
        if miss:
            found.append(UncoveredModel(provider, model, response_model, len(miss), min(miss), max(miss)))
    return sorted(found, key=_model_sort)
