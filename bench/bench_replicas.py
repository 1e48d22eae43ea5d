"""Benchmark 6: benchmark 2 on PostgreSQL, one replica vs two replicas sharing the database.

Each configuration gets a fresh PostgreSQL database (127.0.0.1:5432, trust auth) and its own
``cmdcenter serve`` process(es) with default settings; with two replicas the events alternate
between them (as a load balancer would spread Slack's requests). Same steps, same checks (zero
loss, no doubles, latency event → timeline-thread post) as benchmark 2.

No numeric target in the issue: the table shows what a second replica buys on this machine.
Run: ``.venv/bin/python bench/bench_replicas.py [--quick]`` (skipped without PostgreSQL).
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BenchResult, bench_main, fmt, print_table, start_bot
from bench._db import PgDatabase, pg_available
from bench._fakes import slack_emulator
from bench.bench_timeline import HEADERS, QUICK_RATES, RATES, STEP_SECONDS, Step, run_steps, summarize


def one_configuration(replicas: int, rates: tuple[int, ...], seconds: float) -> tuple[list[Step], int]:
    """The steps, and how many Slack API rules the bots broke."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-replicas-")))
        slack = stack.enter_context(slack_emulator())
        database = stack.enter_context(PgDatabase("cmdcenter_bench"))
        bots = [
            stack.enter_context(start_bot(workdir, slack.api_url, database.url, name=f"replica-{n}"))
            for n in range(replicas)
        ]
        steps = run_steps(
            slack.ws, [b.url for b in bots], database.url, rates, seconds, [b.pid for b in bots]
        )
        return steps, len(slack.ws.violations)


def run(quick: bool = False) -> BenchResult:
    rates, seconds = (QUICK_RATES, 2.0) if quick else (RATES, STEP_SECONDS)
    result = BenchResult("replicas", "timeline throughput on PostgreSQL, one replica vs two")
    if not pg_available():
        result.check("PostgreSQL at 127.0.0.1:5432", "unavailable: skipped", None)
        return result
    rows: list[list[str]] = []
    summary: dict[int, tuple[float, float]] = {}
    violations = 0
    for replicas in (1, 2):
        steps, broken = one_configuration(replicas, rates, seconds)
        violations += broken
        rows += [[f"{replicas}", *s.row()] for s in steps]
        summary[replicas] = summarize(steps)
    print_table(f"{result.title}, {seconds:.0f} s per step", ("replicas", *HEADERS), rows)
    for replicas, (best, p99) in summary.items():
        result.check(
            f"{replicas} replica(s): highest sustained rate, zero loss",
            f"{best:.0f} events/s, p99 {fmt(p99, 0)} ms",
            None,
        )
    result.check("no Slack API rule broken (emulator)", f"{violations} violation(s)", violations == 0)
    return result


if __name__ == "__main__":
    raise SystemExit(bench_main(run))
