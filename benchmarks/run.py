"""Run every benchmark and print one table of ratios: ``python benchmarks/run.py [--quick] [names...]``.

Each ``bench_*.py`` module beside this file defines ``run(quick: bool) -> list[Result]``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _harness import Result, print_results  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all), e.g. core litellm")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args(argv)
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if args.names:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.names}
        modules = [m for m in modules if m in wanted]
    results: list[Result] = []
    for name in modules:
        print(f"# {name}", flush=True)
        module = importlib.import_module(name)
        part = module.run(quick=args.quick)
        print_results(part)
        results.extend(part)
    missed = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(missed)} of {len(results)} targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
