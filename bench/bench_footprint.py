"""Benchmark 5: footprint of ``cmdcenter serve``: start-up time, idle RSS, RSS after load.

Start-up is the time from ``exec`` to the first ``200`` from ``/healthz`` (polled every 10 ms), three
times on a fresh SQLite database (migrations included) and three times on the existing one. RSS is
``VmRSS`` of /proc/<pid>/status: once idle (2 s after start-up), then after benchmark 1's load
(2,000 ``/incident help`` then 2,000 ``/incident list`` at concurrency 50, the bot's post-ack work
finished).

cmdcenter's bytecode is compiled first, as ``scripts/setup`` and any install do (where
``PYTHONDONTWRITEBYTECODE`` is set, a checkout edited since would otherwise compile its changed modules
at every start); the table says how many modules that was.

Targets: start-up < 2 s, RSS < 120 MB. Run: ``.venv/bin/python bench/bench_footprint.py [--quick]``.
"""

from __future__ import annotations

import compileall
import importlib.util
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, BenchResult, bench_main, print_table, rss_mb, sqlite_url, start_bot
from bench._fakes import slack_emulator
from bench._load import Loader
from bench.bench_ack import REQUESTS, measure, settle

STARTS = 3
TARGET_START_SECONDS = 2.0
TARGET_RSS_MB = 120.0
MB = 1_000_000 / 2**20  # the target is in MB; RSS is read in MiB


def compile_bytecode() -> int:
    """Compile cmdcenter's modules whose bytecode is missing or older than the source; how many."""
    sources = [path for package in ("bot", "commands") for path in (REPO / package).rglob("*.py")]

    def stale(path: Path) -> bool:
        cached = Path(importlib.util.cache_from_source(str(path)))
        return not cached.exists() or cached.stat().st_mtime < path.stat().st_mtime

    count = sum(1 for path in sources if stale(path))
    for package in ("bot", "commands"):
        compileall.compile_dir(REPO / package, quiet=1)
    return count


def run(quick: bool = False) -> BenchResult:
    count = 500 if quick else REQUESTS
    result = BenchResult("footprint", "footprint of cmdcenter serve (SQLite)")
    rows: list[list[str]] = []
    compiled = compile_bytecode()
    with ExitStack() as stack:
        slack = stack.enter_context(slack_emulator())
        fresh: list[float] = []
        existing: list[float] = []
        for _ in range(STARTS):
            with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
                workdir = Path(tmp)
                with start_bot(workdir, slack.api_url, sqlite_url(workdir)) as bot:
                    fresh.append(bot.startup_seconds)
                with start_bot(workdir, slack.api_url, sqlite_url(workdir)) as bot:
                    existing.append(bot.startup_seconds)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-footprint-")))
        database_url = sqlite_url(workdir)
        bot = stack.enter_context(start_bot(workdir, slack.api_url, database_url))
        time.sleep(2.0)
        idle = rss_mb(bot.pid)
        loader = stack.enter_context(Loader())
        for text in ("help", "list"):
            measure(loader, slack.ws, bot.url, text, count, text)
        settle(database_url)
        loaded = rss_mb(bot.pid)
    for label, values in (("start-up, fresh database", fresh), ("start-up, existing database", existing)):
        rows.append(
            [label, " / ".join(f"{v:.2f}" for v in values) + " s", f"{statistics.median(values):.2f} s"]
        )
    rows.append(["bytecode compiled first", f"{compiled} module(s)", "as an install does"])
    rows.append(["RSS idle", f"{idle:.0f} MiB", f"{idle / MB:.0f} MB"])
    rows.append([f"RSS after {2 * count} commands", f"{loaded:.0f} MiB", f"{loaded / MB:.0f} MB"])
    print_table(result.title, ("measure", "runs", "result"), rows)
    worst_start = max(fresh + existing)
    result.check(
        f"start-up to healthy /healthz < {TARGET_START_SECONDS:.0f} s",
        f"median {statistics.median(fresh):.2f} s fresh, {statistics.median(existing):.2f} s existing; "
        f"worst {worst_start:.2f} s",
        worst_start < TARGET_START_SECONDS,
    )
    result.check(f"idle RSS < {TARGET_RSS_MB:.0f} MB", f"{idle / MB:.0f} MB", idle / MB < TARGET_RSS_MB)
    result.check(
        f"RSS after the load < {TARGET_RSS_MB:.0f} MB", f"{loaded / MB:.0f} MB", loaded / MB < TARGET_RSS_MB
    )
    return result


if __name__ == "__main__":
    raise SystemExit(bench_main(run))
