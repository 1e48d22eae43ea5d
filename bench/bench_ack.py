"""Benchmark 1: ack latency of signed slash commands, cmdcenter vs a Bolt app that only acks.

In one run: the Slack emulator (a thread of this process, where the bot's replies go), ``cmdcenter
serve`` (a subprocess, SQLite in a temp dir, default settings), ``bench/baseline_app.py`` (a
subprocess, same signing secret) and ``bench/_floor.py`` (a raw asyncio responder: what the load
generator alone can do). A load-generator process sends 2,000 signed ``/incident help`` commands at
concurrency 50 (closed loop: a new request as soon as one is answered) to each, then 2,000
``/incident list``, in four alternating rounds (baseline, cmdcenter, baseline, …) so both see the
same background load; latency is request sent → response received, as Slack measures its 3 s limit.
A second phase offers 25 commands/s (open loop, at most 50 in flight): latency below saturation.
200 unmeasured commands warm each server first, and open the load generator's 50 keep-alive
connections to it, which the rounds go on using (as a load balancer's pool to a backend would): the
four rounds measure what one continuous run of 2,000 would. A third phase, without a target, sends
bursts of 50 commands at once on 50 new connections (``fresh_connections``), ten per server,
alternating: a burst after a quiet spell, its connection set-up included.

Targets: p99 <= 1.5x the baseline's p99, and < 100 ms.
Run: ``.venv/bin/python bench/bench_ack.py [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    SIGNING_SECRET,
    BenchResult,
    bench_main,
    cpu_seconds,
    fmt,
    percentile,
    print_table,
    rss_mb,
    sqlite_url,
    start_baseline,
    start_bot,
    start_floor,
)
from bench._db import query
from bench._fakes import RecordingWorkspace, slack_emulator
from bench._load import Loader, Outcome, Shot
from bot.sandbox.slack.driver import SlackDriver

REQUESTS = 2000
CONCURRENCY = 50
WARMUP = 200
OPEN_RATE = 25.0
ROUNDS = 4
BURSTS = 10
OPEN_COUNT = 500
TARGET_RATIO = 1.5
TARGET_P99_MS = 100.0


@dataclass
class Stats:
    label: str
    sent: int
    errors: int
    per_second: float
    p50: float
    p95: float
    p99: float
    max: float

    def row(self) -> list[str]:
        return [
            self.label, str(self.sent), str(self.errors), fmt(self.per_second, 0),
            fmt(self.p50), fmt(self.p95), fmt(self.p99), fmt(self.max),
        ]  # fmt: skip


HEADERS = ("server / command", "sent", "non-200", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")


def command_shots(
    ws: RecordingWorkspace, url: str, text: str, count: int, rate: float | None = None
) -> list[Shot]:
    """``count`` signed ``/incident <text>`` requests, each with its own trigger id and response URL;
    with ``rate``, spread over time (open loop)."""
    driver = SlackDriver(f"{url}/slack/events", SIGNING_SECRET, ws)
    shots = []
    for i in range(count):
        request = driver.command_request("/incident", text, user="U_ALICE", channel="incident-bridge")
        shots.append(Shot(driver.bot_url, request.body, request.headers, at=i / rate if rate else 0.0))
    return shots


def compare(
    loader: Loader,
    ws: RecordingWorkspace,
    servers: list[tuple[str, str]],
    text: str,
    count: int,
    *,
    rounds: int = 1,
    rate: float | None = None,
    between: Callable[[], None] | None = None,
    fresh_connections: bool = False,
) -> list[Stats]:
    """``count`` commands to each ``(url, label)``, in ``rounds`` alternating chunks so that the servers
    share the machine's ups and downs (other work on it); ``between`` runs after each chunk."""
    outcomes: dict[str, list[Outcome]] = {label: [] for _, label in servers}
    walls = dict.fromkeys(outcomes, 0.0)
    for _ in range(rounds):
        for url, label in servers:
            shots = command_shots(ws, url, text, count // rounds, rate)
            chunk = loader.run(shots, concurrency=CONCURRENCY, fresh_connections=fresh_connections)
            outcomes[label] += chunk
            walls[label] += max(o.done for o in chunk) - min(o.sent for o in chunk)
            if between is not None:
                between()
    stats = []
    for label, done in outcomes.items():
        latencies = [o.ms for o in done if o.status == 200]
        stats.append(
            Stats(
                label,
                len(done),
                sum(o.status != 200 for o in done),
                len(done) / walls[label] if walls[label] > 0 else 0.0,
                percentile(latencies, 50),
                percentile(latencies, 95),
                percentile(latencies, 99),
                max(latencies, default=float("nan")),
            )
        )
    return stats


def measure(loader: Loader, ws: RecordingWorkspace, url: str, text: str, count: int, label: str) -> Stats:
    return compare(loader, ws, [(url, label)], text, count)[0]


def settle(database_url: str, timeout: float = 60.0) -> None:
    """Wait until the bot finished the work it does after its acks (every command marked done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = query(database_url, "select count(*) from processed_events where status <> 'done'")
        if pending[0][0] == 0:
            return
        time.sleep(0.1)
    raise TimeoutError("the bot did not finish its post-ack work")


def run(quick: bool = False) -> BenchResult:
    count, warmup, open_count = (500, 100, 150) if quick else (REQUESTS, WARMUP, OPEN_COUNT)
    result = BenchResult("ack", f"ack latency, {count} signed slash commands at concurrency {CONCURRENCY}")
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ack-")))
        slack = stack.enter_context(slack_emulator())
        database_url = sqlite_url(workdir)
        bot = stack.enter_context(start_bot(workdir, slack.api_url, database_url))
        baseline = stack.enter_context(start_baseline(workdir, slack.api_url))
        floor = stack.enter_context(start_floor(workdir))
        loader = stack.enter_context(Loader())
        for server in (floor, baseline, bot):
            measure(loader, slack.ws, server.url, "help", warmup, "warm-up")
        settle(database_url)
        cpu_before = cpu_seconds(bot.pid)
        rows = [measure(loader, slack.ws, floor.url, "help", count, "floor (raw asyncio, no work)")]
        for text in ("help", "list"):
            servers = [(baseline.url, f"baseline /incident {text}"), (bot.url, f"cmdcenter /incident {text}")]
            base, ours = compare(
                loader, slack.ws, servers, text, count, rounds=ROUNDS, between=lambda: settle(database_url)
            )
            rows += [base, ours]
            _check(result, f"/incident {text}, concurrency {CONCURRENCY}", ours, base)
        cpu_used = cpu_seconds(bot.pid) - cpu_before
        print_table(f"{result.title} (closed loop)", HEADERS, [s.row() for s in rows])
        label = f"{OPEN_RATE:.0f}/s"
        servers = [(baseline.url, f"baseline {label}"), (bot.url, f"cmdcenter {label}")]
        base, ours = compare(
            loader,
            slack.ws,
            servers,
            "help",
            open_count,
            rate=OPEN_RATE,
            between=lambda: settle(database_url),
        )
        print_table(
            f"/incident help offered at {label} (open loop, at most {CONCURRENCY} in flight)",
            HEADERS,
            [base.row(), ours.row()],
        )
        _check(result, f"/incident help at {label} (supplementary)", ours, base)
        _cold_bursts(result, loader, slack.ws, baseline.url, bot.url, 4 if quick else BURSTS, database_url)
        violations = len(slack.ws.violations)
        result.check("no Slack API rule broken (emulator)", f"{violations} violation(s)", violations == 0)
        result.notes.append(
            f"cmdcenter CPU: {cpu_used / (2 * count) * 1000:.1f} ms per command (ack and the work after it); "
            f"RSS {rss_mb(bot.pid):.0f} MiB after the load"
        )
        result.notes.append(
            f"closed loop: mean latency = {CONCURRENCY} in flight / throughput (Little's law), so "
            f"p99 < {TARGET_P99_MS:.0f} ms needs > {CONCURRENCY * 1000 / TARGET_P99_MS:.0f} req/s; "
            "see the floor row"
        )
    return result


def _cold_bursts(
    result: BenchResult,
    loader: Loader,
    ws: RecordingWorkspace,
    baseline_url: str,
    bot_url: str,
    bursts: int,
    database_url: str,
) -> None:
    """``bursts`` times per server, alternating: 50 ``/incident help`` at once on 50 new connections.
    A burst's latency is its slowest reply (all 50 are in the server together)."""
    slowest: dict[str, list[float]] = {"baseline": [], "cmdcenter": []}
    for _ in range(bursts):
        for url, label in ((baseline_url, "baseline"), (bot_url, "cmdcenter")):
            (stats,) = compare(loader, ws, [(url, label)], "help", CONCURRENCY, fresh_connections=True)
            slowest[label].append(stats.max)
            settle(database_url)
    rows = [
        [label, str(len(values)), fmt(percentile(values, 50)), fmt(max(values))]
        for label, values in slowest.items()
    ]
    headers = ("server", "bursts", "median of slowest ms", "slowest ms")
    print_table(f"bursts of {CONCURRENCY} /incident help on {CONCURRENCY} new connections", headers, rows)
    base, ours = percentile(slowest["baseline"], 50), percentile(slowest["cmdcenter"], 50)
    result.check(
        f"(no target) bursts of {CONCURRENCY} on new connections: median of each burst's slowest reply",
        f"{ours:.0f} ms vs {base:.0f} ms = {ours / base:.2f}x",
        None,
    )


def _check(result: BenchResult, what: str, ours: Stats, base: Stats) -> None:
    ratio = ours.p99 / base.p99
    result.check(
        f"{what}: p99 <= {TARGET_RATIO}x baseline and < {TARGET_P99_MS:.0f} ms",
        f"{ours.p99:.0f} ms vs {base.p99:.0f} ms = {ratio:.2f}x; {ours.errors} non-200",
        ratio <= TARGET_RATIO and ours.p99 < TARGET_P99_MS and ours.errors == 0,
    )


if __name__ == "__main__":
    raise SystemExit(bench_main(run))
