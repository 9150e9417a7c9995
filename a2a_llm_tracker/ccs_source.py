"""CCSSource: read usage back from CCS (totals per model, per agent) over the freeschema query API.

The query walks the graph the :class:`~a2a_llm_tracker.sinks.ccs.CCSSink` writes: entity →
``the_entity_s_llm_tracker`` → tracker(s) → ``the_llm_tracker_s_usage`` → usage concepts, asking
for ids only (``outputFormat=ALLID``), then fetches the concepts in bulk and parses each usage's
JSON. Events are deduplicated by ``event_id`` (delivery is at-least-once). The client reports
every read error as an empty result; this class turns that into a :class:`SinkError` instead
of answering "zero usage".

Example::

    await init(client_id=..., client_secret=..., application_name="my-app")
    source = CCSSource()                  # same server and credentials as the global meter's CCS sink
    print(await source.total_cost(), await source.total_tokens())
    print(await source.by_model())
"""

from __future__ import annotations as _annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._ccs_runtime import CCSSettings, Connection, get_runtime, import_ccs, reset_client_state
from .exceptions import ConfigurationError, SinkError

__all__ = ["CCSSource", "UsageTotals"]

_BIG_PAGE = 1_000_000


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Totals over a group of events."""

    events: int  #: events in the group
    cost_usd: float  #: sum of known costs (unpriced events excluded, counted in ``unpriced``)
    total_tokens: int  #: sum of reported total tokens
    input_tokens: int  #: sum of reported input tokens
    output_tokens: int  #: sum of reported output tokens
    unpriced: int  #: events without a cost


def _totals(events: list[dict[str, Any]]) -> UsageTotals:
    def tokens(e: dict[str, Any], key: str) -> int:
        value = e.get(key)
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    costs = [e.get("cost_usd") for e in events]
    return UsageTotals(
        events=len(events),
        cost_usd=float(sum(c for c in costs if isinstance(c, int | float))),
        total_tokens=sum(tokens(e, "total_tokens") for e in events),
        input_tokens=sum(tokens(e, "input_tokens") for e in events),
        output_tokens=sum(tokens(e, "output_tokens") for e in events),
        unpriced=sum(1 for c in costs if not isinstance(c, int | float)))


class CCSSource:
    """Usage recorded in CCS by :class:`~a2a_llm_tracker.sinks.ccs.CCSSink`.

    Args:
        entity_id: the CCS entity whose trackers to read (default: the sink's / ``client_id``).
        application_name: only events of this application (default: every tracker of the entity).
        client_id, client_secret, server_url, node_url, storage_path, allow_insecure: as for
            ``CCSSink``; when all are omitted and the global meter has a CCS sink, its settings are used.
        timeout: seconds each query request may take.

    Raises:
        ConfigurationError: no entity id could be determined, or bad settings.
        AdapterUnavailable: mftsccs is not installed.
    """

    def __init__(self, entity_id: int | str | None = None, *, application_name: str | None = None,
                 client_id: str | None = None, client_secret: str | None = None, server_url: str | None = None,
                 node_url: str | None = None, storage_path: str | Path | None = None,
                 allow_insecure: bool = False, timeout: float = 30.0) -> None:
        import_ccs()
        sink = None
        if client_id is None and client_secret is None and server_url is None:
            sink = _global_ccs_sink()
        if sink is not None:
            self.settings: CCSSettings = sink.settings
            default_entity = sink.entity_id
        else:
            from .sinks.ccs import resolve_ccs_settings

            self.settings = resolve_ccs_settings(
                client_id=client_id, client_secret=client_secret, application_name=application_name,
                server_url=server_url, node_url=node_url, storage_path=storage_path,
                allow_insecure=allow_insecure, request_timeout=min(float(timeout), 600.0), auth_timeout=10.0)
            default_entity = int(self.settings.client_id) if self.settings.client_id.isdigit() else None
        raw = entity_id if entity_id is not None else default_entity
        try:
            self.entity_id = int(raw) if raw is not None else None
        except (TypeError, ValueError):
            raise ConfigurationError(f"entity_id must be an integer CCS concept id, got {raw!r}") from None
        if self.entity_id is None:
            raise ConfigurationError("CCSSource needs entity_id= (the client id is not numeric)")
        self.application_name = application_name
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self._runtime = get_runtime()
        # a connection of its own: a sink's connection carries its write cache into the client
        self._conn = Connection(self.settings)

    # -- raw events ------------------------------------------------------------------------------------
    async def events(self) -> list[dict[str, Any]]:
        """Every usage event stored in CCS for this entity (dicts, deduplicated by ``event_id``).

        Raises:
            SinkError: the query failed or returned incomplete data.
        """
        future = self._runtime.submit(self._fetch())
        return await asyncio.wrap_future(future)

    def events_sync(self) -> list[dict[str, Any]]:
        """:meth:`events` for synchronous code (do not call it on a running event loop)."""
        return self._runtime.run(self._fetch(), timeout=self.timeout * 4 + 30)

    async def _fetch(self) -> list[dict[str, Any]]:
        from ccs.api.get_concept import GetConceptBulk
        from ccs.api.search import freeschema_query_api
        from ccs.constants import ALLID
        from ccs.models.search import FreeschemaQuery

        from .sinks.ccs import ENTITY_LINK, USAGE_LINK

        usage_q = FreeschemaQuery(typeConnection=USAGE_LINK, inpage=_BIG_PAGE, name="usage")
        tracker_q = FreeschemaQuery(typeConnection=ENTITY_LINK, inpage=_BIG_PAGE, name="tracker",
                                    freeschemaQueries=[usage_q])
        query = FreeschemaQuery(conceptIds=[self.entity_id], inpage=_BIG_PAGE, outputFormat=ALLID,
                                freeschemaQueries=[tracker_q])
        async with self._runtime.exclusive(self._conn) as ccs:
            # GetConceptBulk answers from the client's cache first: read the server's concepts, not
            # whatever the cache holds under those ids
            reset_client_state(ccs, ())
            try:
                result = await asyncio.wait_for(freeschema_query_api(query), self.timeout)
            except TimeoutError:
                raise SinkError(f"CCS query to {self.settings.server_url} timed out after "
                                f"{self.timeout:g} s") from None
            if not isinstance(result, dict) or not isinstance(result.get("conceptIds"), list):
                # the client turns every HTTP or network error into [] - never report that as "no usage"
                raise SinkError(f"CCS query to {self.settings.server_url} failed (see the a2a_llm_tracker.ccs "
                                "debug log); no usage data was read")
            ids = list(dict.fromkeys(i for i in result["conceptIds"]
                                     if isinstance(i, int) and i > 0 and i != self.entity_id))
            concepts: dict[int, Any] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                try:
                    got = await asyncio.wait_for(GetConceptBulk(chunk), self.timeout)
                except TimeoutError:
                    raise SinkError(f"CCS concept fetch timed out after {self.timeout:g} s") from None
                concepts.update((c.id, c) for c in got if c.id in set(chunk))
            missing = [i for i in ids if i not in concepts]
            if missing:
                raise SinkError(f"CCS returned {len(ids) - len(missing)} of {len(ids)} concepts; "
                                "the totals would be incomplete")
        events: dict[str, dict[str, Any]] = {}
        for concept_id in ids:
            data = _usage_data(concepts[concept_id])
            if data is None:
                continue
            if self.application_name is not None and data.get("application") != self.application_name:
                continue
            events.setdefault(str(data["event_id"]), data)
        return list(events.values())

    # -- aggregates ------------------------------------------------------------------------------------
    async def totals(self) -> UsageTotals:
        """Totals over every event."""
        return _totals(await self.events())

    async def total_cost(self) -> float:
        """Sum of known costs in USD (unpriced events are not counted; see :meth:`totals`)."""
        return (await self.totals()).cost_usd

    async def total_tokens(self) -> int:
        """Sum of reported total tokens."""
        return (await self.totals()).total_tokens

    async def by(self, key: str | Callable[[dict[str, Any]], Any]) -> dict[Any, UsageTotals]:
        """Totals grouped by an event field (``"model"``, ``"agent_id"``, ``"session_id"`` ...) or a function."""
        getter = key if callable(key) else (lambda e: e.get(key))
        groups: dict[Any, list[dict[str, Any]]] = {}
        for event in await self.events():
            groups.setdefault(getter(event), []).append(event)
        return {k: _totals(v) for k, v in groups.items()}

    async def by_model(self) -> dict[str | None, UsageTotals]:
        """Totals per model (as requested)."""
        return await self.by("model")

    async def by_agent(self) -> dict[str | None, UsageTotals]:
        """Totals per ``agent_id`` (None: events without an agent)."""
        return await self.by("agent_id")

    async def cost_by_model(self) -> dict[str | None, float]:
        """Known cost per model."""
        return {k: v.cost_usd for k, v in (await self.by_model()).items()}

    async def tokens_by_model(self) -> dict[str | None, int]:
        """Total tokens per model."""
        return {k: v.total_tokens for k, v in (await self.by_model()).items()}

    async def cost_by_agent(self) -> dict[str | None, float]:
        """Known cost per agent."""
        return {k: v.cost_usd for k, v in (await self.by_agent()).items()}

    async def tokens_by_agent(self) -> dict[str | None, int]:
        """Total tokens per agent."""
        return {k: v.total_tokens for k, v in (await self.by_agent()).items()}

    # names used by earlier releases' docs
    count_cost = total_cost
    count_total_tokens = total_tokens

    def __repr__(self) -> str:
        return f"<CCSSource entity {self.entity_id} at {self.settings.server_url}>"


def _usage_data(concept: Any) -> dict[str, Any] | None:
    text = getattr(concept, "characterValue", "")
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "event_id" not in data:
        return None
    return data


def _global_ccs_sink() -> Any:
    from ._setup import is_initialized
    from .sinks.ccs import CCSSink

    if not is_initialized():
        return None
    from ._setup import get_meter

    for sink in get_meter().sinks:
        if isinstance(sink, CCSSink):
            return sink
    return None
