"""Shared helpers of the benchmarks: percentiles, tables, results, and starting/stopping processes.

Every process started here is stopped by ``ServerProcess.stop`` (SIGTERM, then SIGKILL); callers
use ``contextlib.ExitStack`` so that a failure or Ctrl-C stops them too.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-test"  # the emulator's bot token
CONFIG = """
slack: {incident_channel: incident-bridge, release_channel: releases}
"""


# --- statistics and tables -------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], *, left: int = 1
) -> None:
    """A plain-text table; the first ``left`` columns are left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("-" * max(len(line(r)) for r in cells))
    for row in cells[1:]:
        print(line(row))


@dataclass
class Check:
    target: str
    result: str
    met: bool | None  # None: informational, no target


@dataclass
class BenchResult:
    name: str
    title: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, target: str, result: str, met: bool | None) -> None:
        self.checks.append(Check(target, result, met))

    @property
    def ok(self) -> bool:
        return all(c.met is not False for c in self.checks)

    def print(self) -> None:
        rows = [(c.target, c.result, {True: "yes", False: "NO", None: "-"}[c.met]) for c in self.checks]
        print_table(f"[{self.name}] {self.title}: targets", ("target", "result", "met?"), rows, left=2)
        for note in self.notes:
            print(f"  note: {note}")


def run_noting_load(run: Callable[[bool], BenchResult], quick: bool) -> BenchResult:
    """Run a benchmark and note the machine's load average around it: other work on the machine
    (a test suite, another benchmark) shows up in every number, so it is recorded with them."""
    before = os.getloadavg()[0]
    result = run(quick)
    result.notes.append(f"load average (1 min): {before:.2f} before, {os.getloadavg()[0]:.2f} after")
    return result


def bench_main(run: Callable[[bool], BenchResult]) -> int:
    """``main()`` of a benchmark script: ``--quick`` for a shorter run; exit 1 when a target is missed."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter steps")
    args = parser.parse_args()
    try:
        result = run_noting_load(run, args.quick)
    except KeyboardInterrupt:
        print("\ninterrupted: every process started was stopped", file=sys.stderr)
        return 130
    result.print()
    return 0 if result.ok else 1


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (``VmRSS`` of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """An HTTP server subprocess on 127.0.0.1:``port``; ``stop()`` is idempotent."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int) -> None:
        self.name, self.port = name, port
        self.log_path = cwd / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)
        self.startup_seconds = math.nan

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_healthy(self, path: str = "/healthz", timeout: float = 30.0) -> float:
        """Poll ``path`` every 10 ms until it answers 200; returns the seconds since the process started."""
        deadline = self.started + timeout
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.popen.returncode}; see {self.log_path}"
                    )
                try:
                    if client.get(self.url + path).status_code == 200:
                        self.startup_seconds = time.monotonic() - self.started
                        return self.startup_seconds
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def sqlite_url(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'cmdcenter.db'}"


def bot_env(workdir: Path, slack_api_url: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``cmdcenter serve`` under test: default settings except where named."""
    config = workdir / "cmdcenter.yaml"
    if not config.exists():
        config.write_text(CONFIG)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CMDCENTER_", "PAGERDUTY_", "STATUSPAGE_"))
    }
    return env | {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
        "DATABASE_URL": database_url,
        "CMDCENTER_CONFIG": str(config),
        **extra,
    }


def _start_healthy(
    name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int
) -> ServerProcess:
    """Start a server process and wait until it answers; stopped again if it never does."""
    process = ServerProcess(name, argv, env, workdir, port)
    try:
        process.wait_healthy()
    except BaseException:
        process.stop()
        raise
    return process


def start_bot(
    workdir: Path, slack_api_url: str, database_url: str, *, name: str = "cmdcenter", **extra: str
) -> ServerProcess:
    """``cmdcenter serve`` in ``workdir`` (its cwd, so no stray ``.env`` is read), waited until healthy."""
    port = free_port()
    argv = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)]
    return _start_healthy(name, argv, bot_env(workdir, slack_api_url, database_url, **extra), workdir, port)


def start_baseline(workdir: Path, slack_api_url: str) -> ServerProcess:
    """``bench/baseline_app.py`` (a Bolt AsyncApp that only acks) under uvicorn, same signing secret."""
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "bench.baseline_app:build",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = bot_env(workdir, slack_api_url, "unused") | {"PYTHONPATH": str(REPO)}
    return _start_healthy("baseline", argv, env, workdir, port)


def start_floor(workdir: Path) -> ServerProcess:
    """``bench/_floor.py``: answers 200 at once; what the load generator alone achieves."""
    port = free_port()
    argv = [sys.executable, "-m", "bench._floor", str(port)]
    return _start_healthy("floor", argv, dict(os.environ) | {"PYTHONPATH": str(REPO)}, workdir, port)


def _pg_version() -> str:
    from bench._db import pg_version

    return pg_version()


def machine() -> list[tuple[str, str]]:
    """What the results were measured on."""
    import platform

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "?",
    )  # fmt: skip
    memory = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    started = time.perf_counter()
    sum(range(10_000_000))
    speed = time.perf_counter() - started
    return [
        ("cpus (nproc)", str(os.cpu_count())),
        ("cpu model", cpu),
        ("memory", f"{int(memory) / 1024 / 1024:.1f} GiB"),
        ("python", sys.version.split()[0]),
        ("sqlite", sqlite3.sqlite_version),
        ("postgresql", _pg_version()),
        ("kernel", platform.release()),
        ("python speed: sum(range(10**7))", f"{speed * 1000:.0f} ms"),
        ("load average (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]
