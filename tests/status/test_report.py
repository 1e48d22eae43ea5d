"""The /prodstatus domain: evaluate_query, correlate, overall, and gather_report with in-memory ports."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import HealthCheck, PagerDutyService, PrometheusQuery, ServiceConfig
from bot.errors import NotFound, ProbeError, Unavailable
from bot.ports import (
    Component,
    ComponentStatus,
    HealthResult,
    OnCall,
    PagerIncident,
    Sample,
    StatusPageIncident,
    StatusPageStatus,
)
from bot.status.evaluation import correlate, evaluate_query, format_value, overall
from bot.status.models import (
    DeployEvent,
    Finding,
    Freeze,
    LocalState,
    OpenIncident,
    ServiceStatus,
    SourceStatus,
    StatusReport,
)
from bot.status.report import gather_report

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)

P95 = PrometheusQuery(name="p95", query="p95_ms", warn=300, critical=800, unit="ms")
ERRORS = PrometheusQuery(name="error rate", query="err_pct", warn=2, critical=5, unit="%")
AVAILABILITY = PrometheusQuery(
    name="availability", query="avail", warn=99.9, critical=99, unit="%", direction="below"
)
P95_BASELINE = PrometheusQuery(name="p95", query="p95_ms", unit="ms", baseline_query="p95_ms offset 1w")


# --- format_value / evaluate_query --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (412.4, "ms", "412 ms"),
        (5.23, "%", "5.2 %"),
        (5.0, "%", "5 %"),
        (0.0523, "", "0.0523"),
        (1234.0, "", "1234"),
    ],
)
def test_format_value(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_below_every_threshold_is_no_finding() -> None:
    assert evaluate_query(P95, 120.0, None) is None


def test_no_value_is_no_finding() -> None:
    assert evaluate_query(P95, None, 100.0) is None
    assert evaluate_query(P95, float("nan"), None) is None


def test_warn_threshold_gives_human_figure() -> None:
    finding = evaluate_query(P95, 412.0, None, service="checkout", runbook_url="https://runbooks/checkout")
    assert finding is not None
    assert finding.level == "warn"
    assert finding.figure == "p95 412 ms (warn 300 ms)"
    assert finding.reason == "at or above the warn threshold of 300 ms"
    assert finding.service == "checkout"
    assert finding.source == "prometheus:checkout:p95"
    assert finding.runbook_url == "https://runbooks/checkout"
    assert finding.change_pct is None
    assert "runbook" in finding.action


def test_critical_threshold_names_the_critical_limit() -> None:
    finding = evaluate_query(P95, 800.0, None)
    assert finding is not None
    assert finding.level == "critical"
    assert finding.figure == "p95 800 ms (critical 800 ms)"


def test_direction_below() -> None:
    assert evaluate_query(AVAILABILITY, 99.95, None) is None
    warn = evaluate_query(AVAILABILITY, 99.5, None)
    critical = evaluate_query(AVAILABILITY, 98.0, None)
    assert warn is not None and warn.level == "warn"
    assert warn.reason == "at or below the warn threshold of 99.9 %"
    assert critical is not None and critical.level == "critical"


def test_baseline_comparison_warn_and_critical() -> None:
    assert evaluate_query(P95_BASELINE, 125.0, 100.0) is None  # +25 %
    warn = evaluate_query(P95_BASELINE, 140.0, 100.0)
    assert warn is not None
    assert warn.level == "warn"
    assert warn.change_pct == pytest.approx(40.0)
    assert warn.figure == "p95 140 ms (+40 % vs baseline 100 ms)"
    critical = evaluate_query(P95_BASELINE, 165.0, 100.0)
    assert critical is not None and critical.level == "critical"


def test_baseline_percentages_come_from_the_config() -> None:
    strict = P95_BASELINE.model_copy(update={"baseline_warn_pct": 10.0, "baseline_critical_pct": 20.0})
    finding = evaluate_query(strict, 125.0, 100.0)
    assert finding is not None and finding.level == "critical"


def test_baseline_below_direction_counts_drops() -> None:
    q = PrometheusQuery(name="rps", query="rps", direction="below", baseline_query="rps offset 1w")
    assert evaluate_query(q, 150.0, 100.0) is None  # more traffic is fine
    finding = evaluate_query(q, 50.0, 100.0)
    assert finding is not None
    assert finding.level == "warn"
    assert finding.change_pct == pytest.approx(-50.0)


def test_missing_or_zero_baseline_is_ignored() -> None:
    assert evaluate_query(P95_BASELINE, 5000.0, None) is None
    assert evaluate_query(P95_BASELINE, 5000.0, 0.0) is None


def test_worse_of_threshold_and_baseline_wins_and_both_are_shown() -> None:
    q = P95.model_copy(update={"baseline_query": "p95_ms offset 1w"})
    finding = evaluate_query(q, 420.0, 250.0)  # warn by threshold, +68 % critical by baseline
    assert finding is not None
    assert finding.level == "critical"
    assert finding.figure == "p95 420 ms (warn 300 ms; +68 % vs baseline 250 ms)"


# --- correlate ----------------------------------------------------------------------------------------


def _deploy(version: str, minutes_ago: float, service: str = "checkout", env: str = "prod") -> DeployEvent:
    return DeployEvent(
        service=service,
        environment=env,
        version=version,
        deployed_at=NOW - timedelta(minutes=minutes_ago),
        actor="alice",
    )


def test_correlate_baseline_finding_names_the_latest_deploy_and_the_percentage() -> None:
    finding = evaluate_query(P95_BASELINE, 140.0, 100.0, service="checkout")
    assert finding is not None
    deploys = [_deploy("v1.4.1", 50), _deploy("v1.4.2", 25), _deploy("v9", 5, service="search")]
    assert correlate(finding, deploys, NOW, 60) == "p95 up 40 % since v1.4.2 was deployed 25 min ago"


def test_correlate_threshold_finding_names_the_value() -> None:
    finding = evaluate_query(ERRORS, 5.2, None, service="checkout")
    assert finding is not None
    text = correlate(finding, [_deploy("v1.4.2", 25)], NOW, 60)
    assert text == "error rate 5.2 % since v1.4.2 was deployed 25 min ago"


def test_correlate_ignores_deploys_outside_the_window_or_in_the_future() -> None:
    finding = evaluate_query(ERRORS, 5.2, None, service="checkout")
    assert finding is not None
    assert correlate(finding, [_deploy("v1.4.0", 61)], NOW, 60) is None
    assert correlate(finding, [_deploy("v2", -5)], NOW, 60) is None
    assert correlate(finding, [], NOW, 60) is None


def test_correlate_respects_the_findings_environment() -> None:
    finding = evaluate_query(ERRORS, 5.2, None, service="checkout")
    assert finding is not None
    prod_finding = finding.model_copy(update={"environment": "prod"})
    assert correlate(prod_finding, [_deploy("v3-rc", 5, env="staging")], NOW, 60) is None
    assert correlate(prod_finding, [_deploy("v3", 5)], NOW, 60) is not None


def test_correlate_formats_just_now_and_hours() -> None:
    finding = evaluate_query(ERRORS, 6.0, None, service="checkout")
    assert finding is not None
    assert (
        correlate(finding, [_deploy("v2", 0.2)], NOW, 60) == "error rate 6 % since v2 was deployed just now"
    )
    assert (
        correlate(finding, [_deploy("v2", 95)], NOW, 120)
        == "error rate 6 % since v2 was deployed 1 h 35 min ago"
    )


# --- overall ------------------------------------------------------------------------------------------


def _finding(level: str, service: str = "checkout") -> Finding:
    return Finding(
        service=service,
        source=f"prometheus:{service}:p95",
        level=level,
        metric="p95",
        figure="p95",
        reason="r",
    )


def _service(*findings: Finding, level: str | None = None) -> ServiceStatus:
    derived = (
        "UNHEALTHY"
        if any(f.level == "critical" for f in findings)
        else ("DEGRADED" if findings else "HEALTHY")
    )
    return ServiceStatus(name="checkout", level=level or derived, findings=list(findings))


OK = SourceStatus(name="health:checkout", ok=True)
FAILED = SourceStatus(name="pagerduty", ok=False, reason="PagerError: 503")


def test_overall_healthy_when_all_is_well() -> None:
    assert overall([_service()], [OK]) == "HEALTHY"


def test_overall_levels() -> None:
    assert overall([_service(_finding("warn"))], [OK]) == "DEGRADED"
    assert overall([_service(_finding("critical"))], [OK]) == "UNHEALTHY"
    assert overall([_service()], [OK, FAILED]) == "DEGRADED"
    assert overall([_service(_finding("critical"))], [OK, FAILED]) == "UNHEALTHY"
    assert overall([_service()], [FAILED]) == "UNKNOWN"  # nothing could be checked


def test_overall_incidents() -> None:
    def incident(severity: str, source: Literal["cmdcenter", "pagerduty"] = "cmdcenter") -> OpenIncident:
        return OpenIncident(id="INC-1", title="t", severity=severity, source=source)

    assert overall([_service()], [OK], [incident("sev1")]) == "UNHEALTHY"
    assert overall([_service()], [OK], [incident("sev2")]) == "DEGRADED"
    assert overall([_service()], [OK], [incident("high", "pagerduty")]) == "DEGRADED"
    assert overall([_service()], [OK], [incident("sev4")]) == "HEALTHY"


levels = st.sampled_from(["warn", "critical"])
sources_st = st.lists(
    st.builds(SourceStatus, name=st.sampled_from(["a", "b", "c"]), ok=st.booleans()), max_size=6
)
services_st = st.lists(
    st.lists(levels, max_size=3).map(lambda ls: _service(*[_finding(level) for level in ls])), max_size=4
)
incidents_st = st.lists(
    st.builds(
        OpenIncident,
        id=st.just("INC-1"),
        title=st.just("t"),
        severity=st.sampled_from(["sev1", "sev2", "sev3", "sev4", "high", "low"]),
        source=st.sampled_from(["cmdcenter", "pagerduty"]),
    ),
    max_size=3,
)


@given(services=services_st, sources=sources_st, incidents=incidents_st)
def test_overall_is_never_healthy_with_an_unknown_source_or_a_critical_finding(
    services: list[ServiceStatus], sources: list[SourceStatus], incidents: list[OpenIncident]
) -> None:
    level = overall(services, sources, incidents)
    findings = [f for s in services for f in s.findings]
    if any(not s.ok for s in sources) or findings:
        assert level != "HEALTHY"
    if any(f.level == "critical" for f in findings):
        assert level == "UNHEALTHY"


# --- gather_report with in-memory ports ---------------------------------------------------------------


class StubHealth:
    def __init__(self, results: dict[str, HealthResult | float]) -> None:
        self.results = results  # a float: sleep that long (seconds) first, then answer ok

    async def check(
        self,
        *,
        url: str,
        expect_status: int = 200,
        json_field: str | None = None,
        expect_value: str | None = None,
        timeout: float = 3.0,
    ) -> HealthResult:
        answer = self.results[url]
        if isinstance(answer, float):
            await asyncio.sleep(answer)
            return HealthResult(url=url, ok=True, status_code=200, latency_ms=answer * 1000)
        return answer


class StubMetrics:
    def __init__(self, values: dict[str, float | Exception | None]) -> None:
        self.values = values
        self.asked: list[str] = []

    async def instant(self, *, query: str, timeout: float = 3.0, at: datetime | None = None) -> Sample:
        self.asked.append(query)
        value = self.values.get(query)
        if isinstance(value, Exception):
            raise value
        return Sample(value=value)


class StubPager:
    def __init__(self, incidents: list[PagerIncident]) -> None:
        self.incidents = incidents
        self.asked: list[list[str]] = []

    async def oncalls(self, *, escalation_policy_id: str) -> list[OnCall]:
        return []

    async def open_incidents(self, *, service_ids: list[str]) -> list[PagerIncident]:
        self.asked.append(service_ids)
        return self.incidents


class StubStatusPage:
    def __init__(self, components: list[Component]) -> None:
        self._components = components

    async def components(self) -> list[Component]:
        return self._components

    async def create_incident(
        self,
        *,
        name: str,
        status: StatusPageStatus,
        body: str,
        components: dict[str, ComponentStatus] | None = None,
    ) -> StatusPageIncident:
        raise NotImplementedError

    async def update_incident(
        self,
        *,
        incident_id: str,
        status: StatusPageStatus,
        body: str,
        components: dict[str, ComponentStatus] | None = None,
    ) -> StatusPageIncident:
        raise NotImplementedError


CHECKOUT = ServiceConfig(
    name="checkout",
    runbook_url="https://runbooks/checkout",
    health_checks=[HealthCheck(url="http://checkout/healthz")],
    prometheus=[P95.model_copy(update={"baseline_query": "p95_ms offset 1w"}), ERRORS],
    pagerduty=PagerDutyService(service_id="PCHK"),
    statuspage_component_id="cmp-checkout",
)
SEARCH = ServiceConfig(
    name="search",
    environments=["staging", "prod"],
    health_checks=[
        HealthCheck(url="http://search-staging/healthz", environment="staging"),
        HealthCheck(url="http://search/healthz", environment="prod", timeout_seconds=0.2),
    ],
)
BATCH = ServiceConfig(name="batch", environments=["prod"])


def _local(**kwargs: object) -> LocalState:
    return LocalState.model_validate(kwargs)


async def _gather(
    health: StubHealth,
    metrics: StubMetrics | None = None,
    local: LocalState | Exception | None = None,
    pager: StubPager | None = None,
    statuspage: StubStatusPage | None = None,
    services: list[ServiceConfig] | None = None,
    scope: str | None = None,
) -> StatusReport:
    async def load_local() -> LocalState:
        if isinstance(local, Exception):
            raise local
        return local or LocalState()

    return await gather_report(
        services=services if services is not None else [CHECKOUT, SEARCH],
        health=health,
        metrics=metrics,
        pager=pager,
        statuspage=statuspage,
        load_local=load_local,
        now=NOW,
        deadline=1.0,
        scope=scope,
    )


def _healthy_stubs() -> tuple[StubHealth, StubMetrics]:
    health = StubHealth(
        {
            "http://checkout/healthz": HealthResult(
                url="http://checkout/healthz", ok=True, status_code=200, latency_ms=12
            ),
            "http://search/healthz": HealthResult(
                url="http://search/healthz", ok=True, status_code=200, latency_ms=20
            ),
            "http://search-staging/healthz": HealthResult(
                url="http://search-staging/healthz", ok=True, status_code=200
            ),
        }
    )
    metrics = StubMetrics({"p95_ms": 210.0, "p95_ms offset 1w": 200.0, "err_pct": 0.4})
    return health, metrics


async def test_gather_all_healthy() -> None:
    health, metrics = _healthy_stubs()
    report = await _gather(health, metrics)
    assert report.level == "HEALTHY"
    assert [s.name for s in report.services] == ["checkout", "search"]
    assert report.services[0].figures == ["health 200 in 12 ms", "p95 210 ms", "error rate 0.4 %"]
    assert report.services[1].figures == ["health (staging) 200 in 0 ms", "health (prod) 200 in 20 ms"]
    assert {s.name for s in report.sources} == {
        "health:checkout",
        "health:search:staging",
        "health:search:prod",
        "prometheus:checkout:p95",
        "prometheus:checkout:error rate",
        "ledger",
    }
    assert all(s.ok for s in report.sources)
    assert report.attention == []


async def test_gather_finding_is_correlated_with_the_recent_deploy() -> None:
    health, metrics = _healthy_stubs()
    metrics.values["p95_ms"] = 280.0  # +40 % on the baseline, below the threshold
    local = _local(
        deploys=[
            _deploy("v1.4.2", 25),
            _deploy("v1.4.1", 60 * 24 * 3),
            _deploy("v1.3.0", 60 * 24 * 8),  # older than the recent-changes window
        ],
        freezes=[Freeze(service=None, reason="SEV1 INC-7", since=NOW)],
    )
    report = await _gather(health, metrics, local=local)
    assert report.level == "DEGRADED"
    [finding] = report.attention
    assert finding.source == "prometheus:checkout:p95"
    assert finding.correlation == "p95 up 40 % since v1.4.2 was deployed 25 min ago"
    assert finding.action.startswith("consider rolling checkout back from v1.4.2 (prod)")
    assert [d.version for d in report.recent_changes] == ["v1.4.2", "v1.4.1"]
    assert report.freezes[0].reason == "SEV1 INC-7"


async def test_gather_health_failure_is_critical_and_no_answer_is_unknown() -> None:
    health, metrics = _healthy_stubs()
    health.results["http://checkout/healthz"] = HealthResult(
        url="http://checkout/healthz?token=s3cret",
        ok=False,
        status_code=503,
        detail="HTTP 503 (expected 200)",
    )
    health.results["http://search/healthz"] = HealthResult(
        url="http://search/healthz", ok=False, detail="connection refused"
    )
    report = await _gather(health, metrics)
    assert report.level == "UNHEALTHY"
    checkout, search = report.services
    assert checkout.level == "UNHEALTHY"
    assert checkout.findings[0].figure == "health HTTP 503 (expected 200)"
    assert "s3cret" not in checkout.findings[0].reason
    assert search.level == "UNKNOWN"
    assert search.unknown == ["health:search:prod"]
    source = next(s for s in report.sources if s.name == "health:search:prod")
    assert (source.ok, source.reason, source.service) == (False, "connection refused", "search")


async def test_gather_hung_and_failing_sources_become_unknown() -> None:
    health, metrics = _healthy_stubs()
    health.results["http://search/healthz"] = 30.0  # hangs; its check has a 0.2 s timeout
    metrics.values["err_pct"] = ProbeError("Prometheus error (execution): many-to-many matching")
    metrics.values["p95_ms offset 1w"] = ProbeError("Prometheus unreachable: ConnectError: refused")
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await _gather(health, metrics, local=Unavailable("database is down"))
    assert loop.time() - started < 30.0
    reasons = {s.name: s.reason for s in report.sources if not s.ok}
    assert reasons == {
        "health:search:prod": "timed out after 0.2 s",
        "prometheus:checkout:error rate": "ProbeError: Prometheus error (execution): many-to-many matching",
        "prometheus:checkout:p95": "baseline: ProbeError: Prometheus unreachable: ConnectError: refused",
        "ledger": "Unavailable: database is down",
    }
    assert report.services[0].figures == ["health 200 in 12 ms", "p95 210 ms"]  # the p95 value is still used
    assert report.level == "DEGRADED"


async def test_gather_pagerduty_and_statuspage() -> None:
    health, metrics = _healthy_stubs()
    pager = StubPager(
        [
            PagerIncident(
                id="PD1", title="checkout 5xx", status="triggered", urgency="high", service_id="PCHK"
            ),
            PagerIncident(id="PD0", title="old", status="resolved", service_id="PCHK"),
        ]
    )
    statuspage = StubStatusPage(
        [
            Component(id="cmp-checkout", name="Checkout", status="partial_outage"),
            Component(id="cmp-other", name="Other", status="major_outage"),
        ]
    )
    local = _local(
        open_incidents=[OpenIncident(id="INC-9", title="slow search", severity="sev3", service="search")]
    )
    report = await _gather(health, metrics, local=local, pager=pager, statuspage=statuspage)
    assert pager.asked == [["PCHK"]]
    assert [(i.id, i.source, i.service) for i in report.open_incidents] == [
        ("INC-9", "cmdcenter", "search"),
        ("PD1", "pagerduty", "checkout"),
    ]
    [finding] = report.attention
    assert (finding.source, finding.level, finding.figure) == (
        "statuspage",
        "warn",
        "Statuspage Checkout: partial outage",
    )
    assert report.services[0].level == "DEGRADED"
    assert report.level == "DEGRADED"


async def test_gather_open_sev1_makes_the_report_unhealthy() -> None:
    health, metrics = _healthy_stubs()
    local = _local(
        open_incidents=[OpenIncident(id="INC-1", title="down", severity="sev1", service="checkout")]
    )
    report = await _gather(health, metrics, local=local)
    assert report.services[0].level == "UNHEALTHY"
    assert report.level == "UNHEALTHY"


async def test_gather_scope_by_service_and_environment() -> None:
    health, metrics = _healthy_stubs()
    report = await _gather(health, metrics, scope="search")
    assert [s.name for s in report.services] == ["search"]
    assert metrics.asked == []
    report = await _gather(health, metrics, scope="staging")
    assert [s.name for s in report.services] == ["checkout", "search"]  # both have a staging
    # checkout's only health check and its queries describe prod, its default environment
    assert [s.name for s in report.sources] == ["health:search:staging", "ledger"]
    assert report.scope == "staging"
    with pytest.raises(NotFound):
        await _gather(health, metrics, scope="nonexistent")


async def test_gather_without_metrics_or_checks() -> None:
    health, _ = _healthy_stubs()
    report = await _gather(health, None, services=[BATCH])
    assert [s.name for s in report.sources] == ["ledger"]
    assert report.services[0].figures == []
    assert report.level == "HEALTHY"
