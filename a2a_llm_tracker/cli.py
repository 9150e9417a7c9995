"""The ``a2a-llm-tracker`` command: report, reprice, prices check, demo.

Exit codes: 0 success; 1 ``prices check`` found models no price covers; 2 bad input (a missing
file, an unknown ``--by`` field, a bad date, an invalid price sheet...), reported as one line
on stderr; 130 interrupted.

Examples::

    a2a-llm-tracker report usage.db --by agent_id,model --since 7d
    a2a-llm-tracker report usage.jsonl --by day --format csv > daily.csv
    a2a-llm-tracker reprice usage.db --prices contract.toml --dry-run
    a2a-llm-tracker prices check usage.db --prices contract.toml
"""

from __future__ import annotations as _annotations

import argparse
import contextlib
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from ._report_format import FORMATS, format_cost, render, render_rich
from ._sources import open_source
from .exceptions import TrackerError
from .report import GROUP_FIELDS, summarize

__all__ = ["main"]

PROG = "a2a-llm-tracker"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _Fail(Exception):
    """A user error: printed as one line, exit code 2."""


# -- output helpers ------------------------------------------------------------------------------------
def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A transient rich progress bar on stderr (a terminal only); yields the hook or None."""
    if not enabled or not _isatty(sys.stderr):
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def hook(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield hook


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right_from: int) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < right_from else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]) + "\n"


def _parse_where(items: Sequence[str] | None) -> dict[str, list[str | None]]:
    where: dict[str, list[str | None]] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise _Fail(f"--where takes FIELD=VALUE, got {item!r}")
        where.setdefault(name.strip(), []).append(None if value == "" else value)
    return where


# -- commands ------------------------------------------------------------------------------------------
def _cmd_report(args: argparse.Namespace) -> int:
    by = tuple(f.strip() for f in args.by.split(",") if f.strip())
    src = open_source(args.source, table=args.table)
    with _progress(not args.no_progress, f"reading {src.label}") as hook:
        rows = summarize(src, by=by, since=args.since, until=args.until, where=_parse_where(args.where),
                         progress=hook)
    if args.format == "table" and _isatty(sys.stdout) and render_rich(rows, by, title=f"LLM usage: {src.label}"):
        return 0
    meta = {"source": src.label, "since": args.since, "until": args.until}
    _out(render(rows, by, args.format, meta=meta))
    return 0


def _money_change(old: float | None, new: float | None) -> tuple[str, str, str]:
    if new is None:
        return format_cost(old) if old is not None else "-", "(not covered)", "-"
    delta = new - (old or 0.0)
    sign = "+" if delta >= 0 else "-"
    return format_cost(old), format_cost(new), f"{sign}${abs(delta):,.6f}"


def _cmd_reprice(args: argparse.Namespace) -> int:
    from .repricing import plan_reprice

    src = open_source(args.source, table=args.table)
    with _progress(not args.no_progress, f"reading {src.label}") as hook:
        plan = plan_reprice(src, args.prices, since=args.since, until=args.until, progress=hook)
    if args.format == "json":
        doc = {"source": src.label, "prices": args.prices, "dry_run": args.dry_run,
               "changed": plan.changed, "models": [d.as_dict() for d in plan.diffs]}
        _out(json.dumps(doc, indent=2) + "\n")
    else:
        headers = ["provider", "model", "events", "repriced", "not covered", "no usage", "old cost", "new cost",
                   "difference"]
        body = [[d.provider or "(none)", d.model or "(none)", f"{d.events:,}", f"{d.repriced:,}",
                 f"{d.uncovered:,}", f"{d.no_usage:,}", *_money_change(d.old_cost_usd, d.new_cost_usd)]
                for d in plan.diffs]
        _out(_table(headers, body, right_from=2) if body else "(no events)\n")
    if args.dry_run:
        sys.stderr.write(f"dry run: {plan.changed:,} event(s) would change; nothing written\n")
        return 0
    written = plan.apply()
    sys.stderr.write(f"updated {written:,} event(s) in {src.label}\n")
    return 0


def _cmd_prices_check(args: argparse.Namespace) -> int:
    from ._pricing import PricingRegistry
    from .repricing import uncovered_models

    registry = None
    if args.prices or args.catalog:
        registry = PricingRegistry(catalog=args.catalog)
        if args.prices:
            registry.load(args.prices)
    src = open_source(args.source, table=args.table)
    with _progress(not args.no_progress, f"reading {src.label}") as hook:
        missing = uncovered_models(src, registry, since=args.since, until=args.until, progress=hook)
    against = "the stored costs" if registry is None else " + ".join(
        ([args.prices] if args.prices else []) + (["the bundled catalog"] if args.catalog else []))
    if args.format == "json":
        _out(json.dumps({"source": src.label, "against": against,
                         "uncovered": [m.as_dict() for m in missing]}, indent=2) + "\n")
    elif missing:
        body = [[m.provider or "(none)", m.model or "(none)", m.response_model or "",
                 f"{m.events:,}", m.first_seen.strftime("%Y-%m-%d %H:%M") if m.first_seen else "-",
                 m.last_seen.strftime("%Y-%m-%d %H:%M") if m.last_seen else "-"] for m in missing]
        _out(_table(["provider", "model", "response_model", "events", "first seen", "last seen"], body,
                    right_from=3))
        sys.stderr.write(f"{len(missing)} model(s) not covered by {against}\n")
    else:
        _out(f"every model in {src.label} is covered by {against}\n")
    return 1 if missing else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        demo = importlib.import_module("a2a_llm_tracker._demo")
    except ModuleNotFoundError as exc:
        if exc.name not in ("a2a_llm_tracker._demo", "a2a_llm_tracker"):
            raise _Fail(f"the demo needs a package that is not installed: {exc.name} "
                        "(pip install 'a2a-llm-tracker[litellm]')") from None
        raise _Fail("the demo is not available in this version of a2a-llm-tracker "
                    "(module a2a_llm_tracker._demo is missing)") from None
    try:
        demo_args = list(args.demo_args)
        result = demo.main(demo_args[1:] if demo_args[:1] == ["--"] else demo_args)
    except SystemExit as exc:  # the demo's own argparse (--help, usage errors)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return int(result or 0)


# -- parser --------------------------------------------------------------------------------------------
def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE",
                   help="a .jsonl file, a .db/.sqlite SQLite file or a postgresql:// DSN")
    p.add_argument("--since", help="only events at/after this: 2026-01-31, 2026-01-31T12:00Z, 7d, 24h, today")
    p.add_argument("--until", help="only events before this (a plain date includes that day)")
    p.add_argument("--table", help="events table of a SQL source (default usage_events; schema.table allowed)")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = _Parser(prog=PROG, description="Report, re-price and check the LLM usage a2a-llm-tracker stored.",
                     epilog="exit codes: 0 ok, 1 'prices check' found uncovered models, 2 bad input")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    rep = sub.add_parser("report", help="totals per agent, model, day ...",
                         description="Totals of calls, tokens, cost, unpriced calls and errors per group.")
    _add_source(rep)
    rep.add_argument("--by", default="agent_id",
                     help=f"comma-separated group fields: {', '.join(GROUP_FIELDS)} (default agent_id)")
    rep.add_argument("--where", action="append", metavar="FIELD=VALUE",
                     help="only events with FIELD=VALUE (repeatable; FIELD= matches unset)")
    rep.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    rep.set_defaults(func=_cmd_report)

    rp = sub.add_parser("reprice", help="recompute stored costs with a price sheet",
                        description="Recompute the cost of stored events with a price sheet (the price in force "
                                    "at each event's time), print the difference per model, then write it.")
    _add_source(rp)
    rp.add_argument("--prices", required=True, metavar="SHEET", help="a TOML or JSON price sheet")
    rp.add_argument("--dry-run", action="store_true", help="print the difference and write nothing")
    rp.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    rp.set_defaults(func=_cmd_reprice)

    prices = sub.add_parser("prices", help="price checks", description="Price checks.")
    psub = prices.add_subparsers(dest="prices_command", metavar="ACTION", parser_class=_Parser)
    psub.required = True
    chk = psub.add_parser("check", help="list models in the data that no price covers (exit 1 if any)",
                          description="List the models in the data that no price covers; exit code 1 if any. "
                                      "Without --prices/--catalog: models with events stored without a cost.")
    _add_source(chk)
    chk.add_argument("--prices", metavar="SHEET", help="check against this TOML or JSON price sheet")
    chk.add_argument("--catalog", action="store_true", help="count the bundled genai-prices catalog as a price")
    chk.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    chk.set_defaults(func=_cmd_prices_check)

    demo = sub.add_parser("demo", help="run a self-contained demo (local mock provider, no API key)",
                          add_help=False)
    demo.add_argument("demo_args", nargs=argparse.REMAINDER)
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = _parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["demo"]:  # everything after `demo` is the demo's (argparse REMAINDER drops "--x")
        arguments = ["demo", "--", *arguments[1:]]
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:  # pragma: no cover - `| head`
        return 0
    except (_Fail, TrackerError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"{PROG} {args.command}: error: {message}\n")
        return 2
