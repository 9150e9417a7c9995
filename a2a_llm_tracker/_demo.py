"""The offline demo: a small multi-agent system whose LLM calls are tracked, then a cost report.

``a2a-llm-tracker demo`` (or ``python -m a2a_llm_tracker demo``) runs a planner, a researcher, a
writer and a fact-checker for several users and sessions. Every model call goes through the real
LiteLLM wrapper (:class:`a2a_llm_tracker.integrations.litellm.LiteLLM`) to the built-in
:class:`~a2a_llm_tracker.mock_provider.MockProvider` on 127.0.0.1, which answers like OpenAI and
reports realistic usage (prompt-cache reads, reasoning tokens, usage chunks on streams). Some
calls stream, some are async and run concurrently. The events go to a SQLite file (``./usage.db``
by default) and the demo ends with the report by agent and by model.

The fact-checker runs on a self-hosted model nobody priced: its calls show as *unpriced*, never $0.

``--live`` (with ``OPENAI_API_KEY`` set) runs one session of the same agents against a real OpenAI
model instead of the mock.

This is a command-line program: it writes to stdout. The library itself never prints.
"""

from __future__ import annotations as _annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._context import meter_context
from ._meter import Meter
from ._pricing import PricingRegistry
from .exceptions import AdapterUnavailable

__all__ = ["DEMO_MODELS", "DEMO_SESSIONS", "main"]

#: agent -> (model for the offline run, what the mock answers, mock knobs)
DEMO_MODELS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "planner": ("openai/gpt-4.1",
                "1. Define the question 2. Collect three recent sources 3. Draft 400 words 4. Check every claim",
                {"cached_tokens": 1024}),
    "researcher": ("openai/gpt-4.1-mini",
                   "Source summary: adoption grew steadily, costs fell by half, two studies disagree on safety",
                   {"cached_tokens": 512}),
    "writer": ("openai/o4-mini",
               "Draft: Over the last year the picture changed. Costs fell, adoption rose, and the open "
               "questions moved from whether to how. Here is what the sources say and where they disagree.",
               {"reasoning_tokens": 384}),
    "fact-checker": ("openai/newsroom-checker-7b",
                     "All four claims are supported by the cited sources; one figure needs a date.",
                     {}),
}

#: (session id, user id, topic): several users, one of them with two sessions.
DEMO_SESSIONS: tuple[tuple[str, str, str], ...] = (
    ("session-101", "alice", "solar panel recycling"),
    ("session-102", "bob", "battery prices in 2026"),
    ("session-103", "carol", "heat pumps in cold climates"),
    ("session-104", "alice", "community wind projects"),
)

# The user's own prices, USD per million tokens (the demo's "contract"). The fact-checker's
# self-hosted model is deliberately left out: unpriced, not free.
_DEMO_PRICES = (
    ("openai", "gpt-4.1", 2.00, 8.00, 0.50),
    ("openai", "gpt-4.1-mini", 0.40, 1.60, 0.10),
    ("openai", "o4-mini", 1.10, 4.40, 0.275),
)

_SYSTEM = {
    "planner": "You are the planner of a small newsroom. Break the user's topic into research questions "
               "and a writing plan. Keep it short and numbered.",
    "researcher": "You are a careful researcher. Summarise what reliable sources say about the question, "
                  "with the strongest evidence first.",
    "writer": "You are the writer. Turn the plan and the research notes into a clear, friendly article.",
    "fact-checker": "You check every factual claim of the draft against the research notes.",
}

# Live mode: one small, cheap model for every agent, with its list price.
_LIVE_MODEL = "openai/gpt-4.1-nano"
_LIVE_PRICE = ("openai", "gpt-4.1-nano", 0.10, 0.40, 0.025)


@dataclass
class _Run:
    """What one demo run needs to make a call."""

    llm: Any
    model_for: dict[str, str]
    call_kwargs: dict[str, Any]
    max_tokens: int | None = None

    def _kwargs(self, agent: str, prompt: str, stream: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model_for[agent],
            "messages": [{"role": "system", "content": _SYSTEM[agent]}, {"role": "user", "content": prompt}],
            **self.call_kwargs,
        }
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    def ask(self, agent: str, prompt: str, *, stream: bool = False) -> str:
        """One synchronous call (optionally streamed); returns the reply text."""
        with meter_context(agent_id=agent):
            result = self.llm.completion(**self._kwargs(agent, prompt, stream))
            if not stream:
                return str(result.choices[0].message.content or "")
            parts = []
            for chunk in result:
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")
            return "".join(parts)

    async def aask(self, agent: str, prompt: str, *, stream: bool = False) -> str:
        """One async call (optionally streamed); returns the reply text."""
        async with meter_context(agent_id=agent):
            result = await self.llm.acompletion(**self._kwargs(agent, prompt, stream))
            if not stream:
                return str(result.choices[0].message.content or "")
            parts = []
            async for chunk in result:
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")
            return "".join(parts)


async def _research(run: _Run, plan: str, topic: str) -> list[str]:
    # three questions researched concurrently; the context follows each asyncio task
    questions = [f"Question {i} about {topic}, following this plan: {plan}" for i in (1, 2, 3)]
    return list(await asyncio.gather(*(run.aask("researcher", q, stream=(i == 2))
                                        for i, q in enumerate(questions))))


def _one_session(run: _Run, session_id: str, user_id: str, topic: str) -> None:
    with meter_context(session_id=session_id, user_id=user_id):
        plan = run.ask("planner", f"Plan a short explainer article about {topic}.")
        notes = asyncio.run(_research(run, plan, topic))
        draft = run.ask("writer", f"Plan: {plan}\nNotes: {' '.join(notes)}\nWrite the article.", stream=True)
        run.ask("fact-checker", f"Notes: {' '.join(notes)}\nDraft: {draft}\nCheck the claims.")


def _pricing(prices: Sequence[tuple[str, str, float, float, float]]) -> PricingRegistry:
    pricing = PricingRegistry()
    for provider, model, inp, out, cached in prices:
        pricing.set_price(provider, model, inp, out, cached_input_per_million=cached,
                          price_id=f"demo:{model}")
    return pricing


def _report(out: Any, db: Path, trace_id: str) -> None:
    # the CLI's own report and table rendering, for this run's events only
    from ._report_format import render
    from .report import summarize

    for by, title in (("agent_id", "Cost by agent"), ("model", "Cost by model")):
        rows = summarize(db, by=by, where={"trace_id": trace_id})
        out.write(f"\n{title} (this run)\n")
        out.write(render(rows, (by,), "table"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a2a-llm-tracker demo",
        description="Run a small multi-agent system offline against a local mock provider, track every "
                    "LLM call, and print the cost report.")
    parser.add_argument("--db", default="usage.db", help="SQLite file to record into (default: ./usage.db)")
    parser.add_argument("--live", action="store_true",
                        help="use a real OpenAI model (needs OPENAI_API_KEY; makes a few paid calls)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the process exit code (0 on success).

    Args:
        argv: the arguments after ``demo`` (``--db PATH``, ``--live``); default ``sys.argv[1:]``.
    """
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    out = sys.stdout
    if args.live and not os.environ.get("OPENAI_API_KEY"):
        sys.stderr.write("a2a-llm-tracker demo --live needs OPENAI_API_KEY in the environment\n")
        return 2
    # LiteLLM fetches its model cost map from the internet at import unless told not to; the demo is
    # offline (and prices with the user's own prices), so use the copy bundled with LiteLLM.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        from .integrations.litellm import LiteLLM
    except (ImportError, AdapterUnavailable) as exc:
        sys.stderr.write(f"the demo needs LiteLLM: pip install 'a2a-llm-tracker[litellm]' ({exc})\n")
        return 2
    from .sinks.sqlite import SQLiteSink

    db = Path(args.db).expanduser().resolve()
    trace_id = uuid.uuid4().hex
    if args.live:
        return _live(out, LiteLLM, SQLiteSink(db), db, trace_id)

    from .mock_provider import MockProvider

    models = {model.split("/", 1)[1]: {"reply": reply, **knobs} for model, reply, knobs in DEMO_MODELS.values()}
    pricing = _pricing(_DEMO_PRICES)
    out.write(f"a2a-llm-tracker demo: {len(DEMO_MODELS)} agents, {len(DEMO_SESSIONS)} sessions, "
              f"{len({u for _, u, _ in DEMO_SESSIONS})} users, offline (local mock provider)\n")
    out.write(f"recording into {db}\n")
    with MockProvider(models=models) as server:
        meter = Meter(pricing=pricing, sinks=[SQLiteSink(db)], project="a2a-demo-newsroom")
        run = _Run(LiteLLM(meter=meter), {agent: spec[0] for agent, spec in DEMO_MODELS.items()},
                   {"api_base": server.base_url, "api_key": "mock-key-not-a-secret"})
        try:
            with meter_context(trace_id=trace_id):
                for session_id, user_id, topic in DEMO_SESSIONS:
                    _one_session(run, session_id, user_id, topic)
                    out.write(f"  {session_id} ({user_id}): {topic}: done\n")
        finally:
            meter.close(10.0)
        billed = len(server.billed)
    stats = meter.stats()
    out.write(f"\n{stats.submitted} calls tracked ({billed} answered by the mock provider), "
              f"{stats.written} written to {db.name}, {stats.lost} lost\n")
    _report(out, db, trace_id)
    out.write("\nThe fact-checker runs on a self-hosted model (newsroom-checker-7b) that has no price: its cost shows as 'unpriced', "
              "never $0.\n")
    out.write(f"Explore: a2a-llm-tracker report {db} --by user_id   (or session_id, model, day)\n")
    return 0 if stats.lost == 0 and stats.submitted == billed else 1


def _live(out: Any, lite_llm: Any, sink: Any, db: Path, trace_id: str) -> int:
    """One session against a real OpenAI model (a few cheap calls)."""
    meter = Meter(pricing=_pricing([_LIVE_PRICE]), sinks=[sink], project="a2a-demo-newsroom-live")
    run = _Run(lite_llm(meter=meter), dict.fromkeys(DEMO_MODELS, _LIVE_MODEL), {}, max_tokens=200)
    out.write(f"a2a-llm-tracker demo --live: one session against {_LIVE_MODEL}; recording into {db}\n")
    session_id, user_id, topic = DEMO_SESSIONS[0]
    try:
        with meter_context(trace_id=trace_id):
            _one_session(run, session_id, user_id, topic)
    finally:
        meter.close(10.0)
    _report(out, db, trace_id)
    return 0 if meter.stats().lost == 0 else 1


if __name__ == "__main__":  # python -m a2a_llm_tracker._demo
    raise SystemExit(main())
