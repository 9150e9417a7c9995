"""Run every benchmark and print one table of ratios: ``python benchmarks/run.py [--quick] [names...]``.

Each ``bench_*.py`` module beside this file defines ``run(quick: bool) -> list[Result]``. Each module
runs in a fresh interpreter: what one benchmark imported and allocated (a million events, four
frameworks) would otherwise slow the next one's garbage collections and skew its ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _harness import Result, print_results  # noqa: E402

_MARK = "@@results "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all), e.g. core litellm")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one module, in this process
    args = parser.parse_args(argv)
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if args.names:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.names}
        modules = [m for m in modules if m in wanted]
    if args.child:
        part = importlib.import_module(modules[0]).run(quick=args.quick)
        print_results(part)
        print(_MARK + json.dumps([dataclasses.asdict(r) for r in part]), flush=True)
        return 0
    results: list[Result] = []
    for name in modules:
        print(f"# {name}", flush=True)
        command = [sys.executable, str(Path(__file__).resolve()), "--child", name] + (["--quick"] if args.quick else [])
        proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        for line in proc.stdout.splitlines():
            if line.startswith(_MARK):
                results.extend(Result(**r) for r in json.loads(line[len(_MARK):]))
            else:
                print(line, flush=True)
        if proc.returncode != 0:
            results.append(Result(f"{name} (exit status {proc.returncode})", 0.0, "runs", False))
    missed = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(missed)} of {len(results)} targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
