"""Render report rows as a table (rich in a terminal, plain text otherwise), JSON, CSV or Markdown.

Unpriced cost is never printed as $0: the table and Markdown say ``unpriced``, JSON has
``null`` and CSV leaves the cell empty.
"""

from __future__ import annotations as _annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from .report import TOTAL_FIELDS, ReportRow, grand_total

__all__ = ["FORMATS", "format_cost", "render", "render_rich"]

FORMATS = ("table", "json", "csv", "markdown")
UNPRICED = "unpriced"

# column header -> ReportRow attribute, for the human formats
_HUMAN_COLUMNS = (("calls", "calls"), ("errors", "errors"), ("input", "input_tokens"), ("output", "output_tokens"),
                  ("cached", "cached_input_tokens"), ("reasoning", "reasoning_tokens"), ("cost (USD)", "cost_usd"),
                  ("unpriced", "unpriced_calls"))


def format_cost(cost: float | None) -> str:
    """``$1.234560``; ``unpriced`` for None (never ``$0``)."""
    if cost is None:
        return UNPRICED
    return f"${cost:,.6f}" if cost < 1000 else f"${cost:,.2f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _cells(row: ReportRow) -> list[str]:
    out = []
    for _, attr in _HUMAN_COLUMNS:
        value = getattr(row, attr)
        if attr == "cost_usd":
            # no cost and nothing to price (only calls without usage): "-", not "unpriced" and never $0
            out.append("-" if value is None and not row.unpriced_calls else format_cost(value))
        else:
            out.append(_count(value))
    return out


def _group_cells(row: ReportRow, by: Sequence[str]) -> list[str]:
    return ["(none)" if row.group.get(f) is None else str(row.group[f]) for f in by]


def _records(rows: Sequence[ReportRow], by: Sequence[str]) -> tuple[list[str], list[list[str]], list[str]]:
    header = [*by, *(h for h, _ in _HUMAN_COLUMNS)]
    body = [[*_group_cells(r, by), *_cells(r)] for r in rows]
    total = ["TOTAL", *([""] * (len(by) - 1)), *_cells(grand_total(rows))]
    return header, body, total


def _plain(rows: Sequence[ReportRow], by: Sequence[str]) -> str:
    header, body, total = _records(rows, by)
    table = [header, *body, total]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    left = len(by)

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) if i < left else c.rjust(w)
                  for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(header), rule, *(line(r) for r in body), rule, line(total)]
    if not rows:
        out.insert(2, "(no events)")
    return "\n".join(out) + "\n"


def _markdown(rows: Sequence[ReportRow], by: Sequence[str]) -> str:
    header, body, total = _records(rows, by)

    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    left = len(by)
    out = ["| " + " | ".join(esc(h) for h in header) + " |",
           "|" + "|".join(":---" if i < left else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
    out.append("| " + " | ".join(f"**{esc(c)}**" if c else "" for c in total) + " |")
    return "\n".join(out) + "\n"


def _csv(rows: Sequence[ReportRow], by: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*by, *TOTAL_FIELDS])
    for r in rows:
        d = r.as_dict()
        writer.writerow([*("" if d.get(f) is None else d[f] for f in by),
                         *("" if d[f] is None else (repr(d[f]) if isinstance(d[f], float) else d[f])
                           for f in TOTAL_FIELDS)])
    return buf.getvalue()


def _json(rows: Sequence[ReportRow], by: Sequence[str], meta: dict[str, Any] | None) -> str:
    total = grand_total(rows).as_dict()
    doc = {**(meta or {}), "by": list(by), "rows": [r.as_dict() for r in rows], "total": total}
    return json.dumps(doc, indent=2, default=str) + "\n"


def render(rows: Sequence[ReportRow], by: Sequence[str], fmt: str = "table",
           meta: dict[str, Any] | None = None) -> str:
    """*rows* as text in *fmt* (``table`` is the plain-text table; see :func:`render_rich`)."""
    if fmt == "json":
        return _json(rows, by, meta)
    if fmt == "csv":
        return _csv(rows, by)
    if fmt == "markdown":
        return _markdown(rows, by)
    if fmt == "table":
        return _plain(rows, by)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def render_rich(rows: Sequence[ReportRow], by: Sequence[str], title: str | None = None) -> bool:
    """Print a rich table to the terminal; False if rich is not installed (use :func:`render`)."""
    try:
        from rich.console import Console
        from rich.measure import Measurement
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return False
    from rich import box

    header, body, total = _records(rows, by)
    table = Table(title=title, show_footer=False, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, name in enumerate(header):
        if i < len(by):  # group values fold on a narrow terminal rather than vanish
            widest = max([len(name), *(len(r[i]) for r in body)])
            table.add_column(name, justify="left", min_width=min(widest, 24), overflow="fold")
        else:  # headers may wrap, numbers never
            widest = max([*(len(w) for w in name.split()), *(len(r[i]) for r in (*body, total))])
            table.add_column(name, justify="right", min_width=widest)
    for cells in body:  # Text, not markup: group values may contain brackets
        table.add_row(*(Text(c, style="yellow" if c == UNPRICED else "") for c in cells))
    table.add_section()
    table.add_row(*(Text(c, style="bold") for c in total))
    if not rows:
        table.caption = "no events"
    console = Console()
    needed = Measurement.get(console, console.options, table).minimum
    if needed > console.width:  # too narrow: let the terminal wrap lines rather than crop the cost away
        console = Console(width=needed)
    console.print(table, crop=False)
    return True
