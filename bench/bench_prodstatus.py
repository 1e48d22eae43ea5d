"""Benchmark: /prodstatus gathers its sources concurrently.

Starts the health fake and the Prometheus fake on 127.0.0.1, configures 10 services with one health
check and two Prometheus queries each (30 sources, every one answering after 300 ms), then runs
``gather_report`` several times:

* ``30 x 300 ms``          - the total should be close to the slowest source, not the sum (9 s);
* ``30 x 300 ms + 1 hung`` - one more health check never answers; its 1 s timeout must cut it.

A first block times the same 30 requests through the same adapters with a bare ``asyncio.gather``
(no report): the floor of this harness, where client and fakes share one process and one GIL.

Target: total < 1.3x the slowest source. Run: ``.venv/bin/python bench/bench_prodstatus.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BenchResult, bench_main, print_table
from bot.adapters.health import HttpHealthProbe
from bot.adapters.prometheus import PrometheusMetrics
from bot.config import HealthCheck, PrometheusQuery, ServiceConfig
from bot.sandbox.server import serve_in_thread
from bot.sandbox.vendors.health import HealthFake
from bot.sandbox.vendors.prometheus import PrometheusFake
from bot.status.report import LocalState, StatusReport, gather_report

SERVICES = 10
DELAY = 0.3
HUNG_TIMEOUT = 1.0
RUNS = 5
TARGET_RATIO = 1.3


def build_services(health_url: str, *, with_hung: bool) -> list[ServiceConfig]:
    services = [
        ServiceConfig(
            name=f"svc{i:02d}",
            health_checks=[
                HealthCheck(url=f"{health_url}/svc{i:02d}/healthz", json_field="status", expect_value="ok")
            ],
            prometheus=[
                PrometheusQuery(name="p95", query=f"p95_ms{{service='svc{i:02d}'}}", warn=300, unit="ms"),
                PrometheusQuery(
                    name="error rate", query=f"err_pct{{service='svc{i:02d}'}}", warn=2, unit="%"
                ),
            ],
        )
        for i in range(SERVICES)
    ]
    if with_hung:
        services.append(
            ServiceConfig(
                name="hung",
                health_checks=[HealthCheck(url=f"{health_url}/hung/healthz", timeout_seconds=HUNG_TIMEOUT)],
            )
        )
    return services


def program(health: HealthFake, prometheus: PrometheusFake) -> None:
    for i in range(SERVICES):
        health.set(f"/svc{i:02d}/healthz", delay=DELAY)
        prometheus.set(f"p95_ms{{service='svc{i:02d}'}}", 120.0, delay=DELAY)
        prometheus.set(f"err_pct{{service='svc{i:02d}'}}", 0.2, delay=DELAY)
    health.hang("/hung/healthz")


async def load_local() -> LocalState:
    return LocalState()


async def one_run(
    services: list[ServiceConfig], probe: HttpHealthProbe, metrics: PrometheusMetrics
) -> tuple[float, StatusReport]:
    started = time.perf_counter()
    report = await gather_report(
        services=services,
        health=probe,
        metrics=metrics,
        pager=None,
        statuspage=None,
        load_local=load_local,
        now=datetime.now(UTC),
        deadline=4.0,
    )
    return (time.perf_counter() - started) * 1000, report


async def floor_run(
    services: list[ServiceConfig], probe: HttpHealthProbe, metrics: PrometheusMetrics
) -> float:
    """The same requests through the same adapters with a bare ``asyncio.gather``: the harness floor
    (client and both fake servers share one process, so 30 concurrent requests cost some CPU)."""
    calls: list[Awaitable[object]] = [
        probe.check(url=c.url, json_field=c.json_field, expect_value=c.expect_value)
        for s in services
        for c in s.health_checks
    ]
    calls += [metrics.instant(query=q.query) for s in services for q in s.prometheus]
    started = time.perf_counter()
    await asyncio.gather(*calls)
    return (time.perf_counter() - started) * 1000


HEADERS = ("scenario", "run", "sources", "total ms", "slowest ms", "ratio", "sum ms", "hung source", "ok")


async def bench(health_url: str, prometheus_url: str, runs: int, result: BenchResult) -> list[list[str]]:
    rows: list[list[str]] = []
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(trust_env=False, limits=limits) as client:
        probe = HttpHealthProbe(client)
        metrics = PrometheusMetrics(prometheus_url, client=client)
        await one_run(build_services(health_url, with_hung=False), probe, metrics)  # warm-up, not shown
        for run in range(1, runs + 1):
            floor = await floor_run(build_services(health_url, with_hung=False), probe, metrics)
            rows.append(
                ["floor: bare gather", str(run), str(SERVICES * 3), f"{floor:.0f}", "", "", "", "", ""]
            )
        for scenario, with_hung in (("30 x 300 ms", False), ("30 x 300 ms + 1 hung", True)):
            services = build_services(health_url, with_hung=with_hung)
            ratios: list[float] = []
            hung_ms: list[float] = []
            all_ok = True
            for run in range(1, runs + 1):
                total, report = await one_run(services, probe, metrics)
                timed = [s for s in report.sources if s.name != "ledger"]
                slowest = max(s.duration_ms for s in timed)
                ratio = total / slowest
                hung = next((s for s in report.sources if s.name == "health:hung"), None)
                hung_text = "-" if hung is None else f"{hung.level} {hung.duration_ms:.0f} ms ({hung.reason})"
                expected_level = "DEGRADED" if with_hung else "HEALTHY"
                run_ok = ratio < TARGET_RATIO and report.level == expected_level
                if hung is not None:
                    hung_ms.append(hung.duration_ms)
                    run_ok = run_ok and not hung.ok and hung.duration_ms < HUNG_TIMEOUT * 1000 * TARGET_RATIO
                ratios.append(ratio)
                all_ok = all_ok and run_ok
                rows.append(
                    [
                        scenario, str(run), str(len(timed)), f"{total:.0f}", f"{slowest:.0f}", f"{ratio:.2f}",
                        f"{sum(s.duration_ms for s in timed):.0f}", hung_text, "yes" if run_ok else "NO",
                    ]
                )  # fmt: skip
            target = f"{scenario}: total < {TARGET_RATIO}x slowest source"
            if with_hung:
                target += f", hung source cut at {HUNG_TIMEOUT:.0f} s"
            text = f"worst ratio {max(ratios):.2f}"
            if hung_ms:
                text += f", hung source cut after {max(hung_ms):.0f} ms"
            result.check(target, text, all_ok)
    return rows


def run(quick: bool = False) -> BenchResult:
    runs = 2 if quick else RUNS
    result = BenchResult(
        "prodstatus", f"/prodstatus fan-out, {SERVICES * 3} sources at {DELAY * 1000:.0f} ms"
    )
    health, prometheus = HealthFake(), PrometheusFake()
    program(health, prometheus)
    with serve_in_thread(health.app) as health_server, serve_in_thread(prometheus.app) as prom_server:
        try:
            rows = asyncio.run(bench(health_server.url, prom_server.url, runs, result))
        finally:
            health.release()
            prometheus.release()
    print_table(result.title, HEADERS, rows, left=1)
    floors = [float(r[3]) for r in rows if r[0].startswith("floor")]
    totals = [float(r[3]) for r in rows if r[0] == "30 x 300 ms"]
    result.notes.append(
        f"'slowest' is the slowest source as measured; against the nominal {DELAY * 1000:.0f} ms the "
        f"median total is {statistics.median(totals) / (DELAY * 1000):.2f}x, and the floor rows (the same 30 "
        f"requests in a bare asyncio.gather, no report) take {statistics.median(floors):.0f} ms median: "
        "the excess is the harness (client and fakes in one process), not the report"
    )
    return result


if __name__ == "__main__":
    raise SystemExit(bench_main(run))
