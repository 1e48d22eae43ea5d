"""Run the benchmarks: ``.venv/bin/python -m bench [--only NAME ...] [--quick]``.

Prints the machine, then each benchmark's tables and its targets, then a summary of every target.
Exit status: 0 when every target is met, 1 when one is missed, 2 when a benchmark failed to run.
Benchmarks are not tests: nothing here is part of the test suite's pass/fail.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BenchResult, machine, print_table, run_noting_load

BENCHMARKS = {
    "ack": "bench.bench_ack",
    "timeline": "bench.bench_timeline",
    "declare": "bench.bench_declare",
    "prodstatus": "bench.bench_prodstatus",
    "footprint": "bench.bench_footprint",
    "replicas": "bench.bench_replicas",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME", help="repeatable"
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests and shorter steps (a smoke run)")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    print_table("machine", ("item", "value"), machine(), left=2)
    results: list[BenchResult] = []
    failed: list[str] = []
    for name in names:
        started = time.monotonic()
        print(f"\n=== {name} ===", flush=True)
        try:
            result = run_noting_load(importlib.import_module(BENCHMARKS[name]).run, args.quick)
        except KeyboardInterrupt:
            print("\ninterrupted: every process started was stopped", file=sys.stderr)
            return 130
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        result.print()
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
        results.append(result)
    rows = [
        (r.name, c.target, c.result, {True: "yes", False: "NO", None: "-"}[c.met])
        for r in results
        for c in r.checks
    ]
    rows += [(name, "(benchmark failed to run)", "see the traceback above", "NO") for name in failed]
    print_table("summary", ("benchmark", "target", "result", "met?"), rows, left=3)
    if failed:
        return 2
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
