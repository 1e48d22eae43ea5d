"""The real health and Prometheus adapters against the sandbox fakes, over HTTP on 127.0.0.1."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.adapters.health import HttpHealthProbe
from bot.adapters.prometheus import PrometheusMetrics
from bot.config import HealthCheck, PrometheusQuery, ServiceConfig
from bot.errors import ProbeError
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.vendors.health import HealthFake
from bot.sandbox.vendors.prometheus import PrometheusFake
from bot.status.report import LocalState, gather_report

HANG_SECONDS = 30.0  # a hung request outlives every timeout below by far
NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def health_fake() -> Iterator[tuple[HealthFake, RunningServer]]:
    fake = HealthFake(hang_seconds=HANG_SECONDS)
    with serve_in_thread(fake.app) as server:
        yield fake, server
        fake.release()


@pytest.fixture(scope="module")
def prom_fake() -> Iterator[tuple[PrometheusFake, RunningServer]]:
    fake = PrometheusFake(hang_seconds=HANG_SECONDS)
    with serve_in_thread(fake.app) as server:
        yield fake, server
        fake.release()


@pytest.fixture(autouse=True)
def _fresh_fakes(
    health_fake: tuple[HealthFake, RunningServer], prom_fake: tuple[PrometheusFake, RunningServer]
) -> None:
    health_fake[0].reset()
    prom_fake[0].reset()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


@pytest.fixture
def probe(client: httpx.AsyncClient) -> HttpHealthProbe:
    return HttpHealthProbe(client)


@pytest.fixture
def prometheus(
    client: httpx.AsyncClient, prom_fake: tuple[PrometheusFake, RunningServer]
) -> PrometheusMetrics:
    return PrometheusMetrics(prom_fake[1].url, client=client)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- HttpHealthProbe ----------------------------------------------------------------------------------


async def test_health_ok(probe: HttpHealthProbe, health_fake: tuple[HealthFake, RunningServer]) -> None:
    fake, server = health_fake
    fake.set("/checkout/healthz")
    result = await probe.check(url=f"{server.url}/checkout/healthz", json_field="status", expect_value="ok")
    assert result.ok
    assert result.status_code == 200
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert fake.hit_count("/checkout/healthz") == 1


async def test_health_wrong_status(
    probe: HttpHealthProbe, health_fake: tuple[HealthFake, RunningServer]
) -> None:
    fake, server = health_fake
    fake.set("/checkout/healthz", status=503, json={"status": "down"})
    result = await probe.check(url=f"{server.url}/checkout/healthz")
    assert not result.ok
    assert result.status_code == 503
    assert result.detail == "HTTP 503 (expected 200)"


async def test_health_expected_non_200_status(
    probe: HttpHealthProbe, health_fake: tuple[HealthFake, RunningServer]
) -> None:
    fake, server = health_fake
    fake.set("/legacy/ping", status=204)
    result = await probe.check(url=f"{server.url}/legacy/ping", expect_status=200)
    assert not result.ok
    result = await probe.check(url=f"{server.url}/legacy/ping", expect_status=204)
    assert result.ok


async def test_health_wrong_json_field(
    probe: HttpHealthProbe, health_fake: tuple[HealthFake, RunningServer]
) -> None:
    fake, server = health_fake
    fake.set("/search/healthz", json={"status": "degraded"})
    result = await probe.check(url=f"{server.url}/search/healthz", json_field="status", expect_value="ok")
    assert not result.ok
    assert result.status_code == 200
    assert result.detail == "status is 'degraded' (expected 'ok')"


async def test_health_dotted_json_path_and_json_scalars(
    probe: HttpHealthProbe, health_fake: tuple[HealthFake, RunningServer]
) -> None:
    fake, server = health_fake
    fake.set("/api/health", json={"checks": {"db": {"up": True}}, "items": [{"ok": "yes"}]})
    url = f"{server.url}/api/health"
    assert (await probe.check(url=url, json_field="checks.db.up", expect_value="true")).ok
    assert (await probe.check(url=url, json_field="items.0.ok", expect_value="yes")).ok
    assert (await probe.check(url=url, json_field="checks.db.up")).ok  # present and truthy
    missing = await probe.check(url=url, json_field="checks.cache.up", expect_value="true")
    assert not missing.ok
    assert missing.detail == "checks.cache.up missing from the JSON body"


async def test_health_timeout_is_data(
    probe: HttpHealthProbe, health_fake: tuple[HealthFake, RunningServer]
) -> None:
    fake, server = health_fake
    fake.hang("/slow/healthz")
    started = time.monotonic()
    result = await probe.check(url=f"{server.url}/slow/healthz", timeout=0.5)
    assert time.monotonic() - started < HANG_SECONDS
    assert not result.ok
    assert result.status_code is None
    assert result.detail == "timed out after 0.5 s"


async def test_health_connection_refused_is_data(probe: HttpHealthProbe) -> None:
    result = await probe.check(url=f"http://127.0.0.1:{_closed_port()}/healthz", timeout=2.0)
    assert not result.ok
    assert result.status_code is None
    assert result.detail == "connection refused"


async def test_health_probe_owns_and_closes_its_client(health_fake: tuple[HealthFake, RunningServer]) -> None:
    fake, server = health_fake
    fake.set("/own/healthz")
    async with HttpHealthProbe() as own:
        assert (await own.check(url=f"{server.url}/own/healthz")).ok


# --- PrometheusMetrics --------------------------------------------------------------------------------


async def test_prometheus_value_and_labels(
    prometheus: PrometheusMetrics, prom_fake: tuple[PrometheusFake, RunningServer]
) -> None:
    fake, _ = prom_fake
    fake.set("up_ratio", 1.5, labels={"job": "checkout"})
    sample = await prometheus.instant(query="up_ratio", at=NOW)
    assert sample.value == 1.5
    assert sample.labels == {"job": "checkout"}
    assert fake.hits[-1].query == "up_ratio"
    assert fake.hits[-1].time is not None and float(fake.hits[-1].time) == NOW.timestamp()


async def test_prometheus_scalar(
    prometheus: PrometheusMetrics, prom_fake: tuple[PrometheusFake, RunningServer]
) -> None:
    prom_fake[0].set("scalar(42)", 42.0, result_type="scalar")
    assert (await prometheus.instant(query="scalar(42)")).value == 42.0


async def test_prometheus_empty_unknown_and_nan_are_none(
    prometheus: PrometheusMetrics, prom_fake: tuple[PrometheusFake, RunningServer]
) -> None:
    fake, _ = prom_fake
    fake.set("no_series", None)
    fake.set("zero_over_zero", math.nan)
    assert (await prometheus.instant(query="no_series")).value is None
    assert (await prometheus.instant(query="never_set")).value is None
    assert (await prometheus.instant(query="zero_over_zero")).value is None
    assert fake.queries == ["no_series", "never_set", "zero_over_zero"]


async def test_prometheus_error_carries_prometheus_text(
    prometheus: PrometheusMetrics, prom_fake: tuple[PrometheusFake, RunningServer]
) -> None:
    prom_fake[0].fail(
        "rate(x[5m]", "1:11: parse error: unclosed left parenthesis", error_type="bad_data", status=400
    )
    with pytest.raises(ProbeError, match="unclosed left parenthesis") as caught:
        await prometheus.instant(query="rate(x[5m]")
    assert caught.value.status == 400
    assert not caught.value.retryable


async def test_prometheus_status_error_with_http_200(
    prometheus: PrometheusMetrics, prom_fake: tuple[PrometheusFake, RunningServer]
) -> None:
    prom_fake[0].fail("odd", "query processing would load too many samples", status=200)
    with pytest.raises(ProbeError, match="too many samples"):
        await prometheus.instant(query="odd")


async def test_prometheus_timeout_raises_probe_error(
    prometheus: PrometheusMetrics, prom_fake: tuple[PrometheusFake, RunningServer]
) -> None:
    prom_fake[0].hang("slow")
    with pytest.raises(ProbeError, match=r"timed out after 0\.5 s"):
        await prometheus.instant(query="slow", timeout=0.5)


async def test_prometheus_unreachable_raises_probe_error(client: httpx.AsyncClient) -> None:
    metrics = PrometheusMetrics(f"http://127.0.0.1:{_closed_port()}", client=client)
    with pytest.raises(ProbeError, match="unreachable") as caught:
        await metrics.instant(query="up", timeout=2.0)
    assert caught.value.retryable


# --- gather_report over real HTTP ---------------------------------------------------------------------


async def test_gather_with_hung_sources_arrives_within_deadline(
    probe: HttpHealthProbe,
    prometheus: PrometheusMetrics,
    health_fake: tuple[HealthFake, RunningServer],
    prom_fake: tuple[PrometheusFake, RunningServer],
) -> None:
    hfake, hserver = health_fake
    pfake, _ = prom_fake
    hfake.set("/checkout/healthz", delay=0.05)
    hfake.hang("/search/healthz")
    pfake.set("checkout_p95_ms", 120.0, delay=0.05)
    pfake.hang("search_p95_ms")
    services = [
        ServiceConfig(
            name="checkout",
            health_checks=[
                HealthCheck(url=f"{hserver.url}/checkout/healthz", json_field="status", expect_value="ok")
            ],
            prometheus=[
                PrometheusQuery(name="p95", query="checkout_p95_ms", warn=300, critical=800, unit="ms")
            ],
        ),
        ServiceConfig(
            name="search",
            health_checks=[HealthCheck(url=f"{hserver.url}/search/healthz", timeout_seconds=1.0)],
            prometheus=[PrometheusQuery(name="p95", query="search_p95_ms", warn=300, unit="ms")],
        ),
    ]

    async def load_local() -> LocalState:
        return LocalState()

    started = time.monotonic()
    report = await gather_report(
        services=services,
        health=probe,
        metrics=prometheus,
        pager=None,
        statuspage=None,
        load_local=load_local,
        now=NOW,
        deadline=2.0,
    )
    assert time.monotonic() - started < HANG_SECONDS

    sources = {s.name: s for s in report.sources}
    assert sources["health:search"].ok is False
    assert sources["health:search"].reason == "timed out after 1.0 s"
    assert sources["prometheus:search:p95"].ok is False
    assert "timed out after 2.0 s" in sources["prometheus:search:p95"].reason
    assert sources["health:checkout"].ok and sources["prometheus:checkout:p95"].ok and sources["ledger"].ok
    levels = {s.name: s.level for s in report.services}
    assert levels == {"checkout": "HEALTHY", "search": "UNKNOWN"}
    assert report.level == "DEGRADED"
    checkout = report.services[0]
    assert checkout.figures[0].startswith("health 200 in ")
    assert checkout.figures[1] == "p95 120 ms"
