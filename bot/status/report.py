"""The ``/prodstatus`` domain: models, pure judgement functions and the concurrent gatherer.

Nothing here knows Slack or the database: ``gather_report`` reaches health endpoints, Prometheus,
PagerDuty and Statuspage through the ports and cmdcenter's own state through ``load_local``, and
returns a ``StatusReport`` that templates render.

Levels. A ``Finding`` is ``warn`` or ``critical``. A service is UNHEALTHY (critical finding or open
SEV1), DEGRADED (warn finding, open SEV2 or PagerDuty incident, non-operational Statuspage
component), UNKNOWN (one of its sources failed and nothing worse is known) or HEALTHY. A source
that fails or times out never lets the overall level be HEALTHY (see ``overall``).

A health check that answers with the wrong status or JSON is a critical finding; one that does not
answer at all (timeout, connection refused) is an UNKNOWN source: cmdcenter could not tell.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from bot.config import PrometheusQuery, ServiceConfig
from bot.errors import NotFound
from bot.ports import (
    Component,
    HealthProbe,
    HealthResult,
    Metrics,
    OnCallDirectory,
    PagerIncident,
    Sample,
    StatusPage,
)
from bot.status.models import (
    DeployEvent,
    Finding,
    FindingLevel,
    Freeze,
    Level,
    LocalState,
    OpenIncident,
    ServiceStatus,
    SourceStatus,
    StatusReport,
)

__all__ = [  # the models keep being importable from here, as they were before they moved
    "RECENT_CHANGES_DAYS",
    "DeployEvent",
    "Finding",
    "FindingLevel",
    "Freeze",
    "Level",
    "LocalState",
    "OpenIncident",
    "ServiceStatus",
    "SourceStatus",
    "StatusReport",
    "correlate",
    "describe_error",
    "evaluate_query",
    "format_value",
    "gather_report",
    "overall",
    "service_level",
    "suspect_deploy",
]

log = logging.getLogger(__name__)

RECENT_CHANGES_DAYS = 7
_BACKSTOP_GRACE = 0.25  # the gatherer's own timeout on a health check, after the probe's own
_RANK: dict[Level, int] = {"HEALTHY": 0, "UNKNOWN": 1, "DEGRADED": 2, "UNHEALTHY": 3}


# --- Figures ----------------------------------------------------------------------------------------


def format_value(value: float, unit: str = "") -> str:
    """``412 ms``, ``5.2 %``, ``0.052``: three significant figures at most, unit after a space."""
    if math.isinf(value):
        number = "∞" if value > 0 else "-∞"
    elif abs(value) >= 100:
        number = f"{value:.0f}"
    elif abs(value) >= 1:
        number = f"{value:.1f}".removesuffix(".0")
    else:
        number = f"{value:.3g}"
    return f"{number} {unit}" if unit else number


def _pct(change: float) -> str:
    return f"{change:+.0f} %" if math.isfinite(change) else ("+∞ %" if change > 0 else "-∞ %")


# --- evaluate_query ---------------------------------------------------------------------------------


def _threshold(q: PrometheusQuery, value: float) -> tuple[FindingLevel, float] | None:
    def crossed(limit: float | None) -> bool:
        if limit is None:
            return False
        return value >= limit if q.direction == "above" else value <= limit

    if crossed(q.critical):
        assert q.critical is not None
        return "critical", q.critical
    if crossed(q.warn):
        assert q.warn is not None
        return "warn", q.warn
    return None


def _baseline(q: PrometheusQuery, value: float, baseline: float | None) -> tuple[FindingLevel, float] | None:
    if baseline is None or not math.isfinite(baseline) or baseline <= 0:
        return None
    change = (value - baseline) / baseline * 100
    worse_by = change if q.direction == "above" else -change
    if worse_by >= q.baseline_critical_pct:
        return "critical", change
    if worse_by >= q.baseline_warn_pct:
        return "warn", change
    return None


def evaluate_query(
    q: PrometheusQuery,
    value: float | None,
    baseline: float | None,
    *,
    service: str = "",
    runbook_url: str | None = None,
) -> Finding | None:
    """Judge one query's value against its warn/critical thresholds and its baseline.

    Thresholds are inclusive (``value >= warn`` for ``direction: above``, ``<=`` for ``below``). The
    baseline comparison raises a warn at ``baseline_warn_pct`` worse than the baseline and a critical
    at ``baseline_critical_pct``; it is skipped when the baseline is missing or not positive. The worse
    of the two wins. No value (no series, NaN) is no finding.
    """
    if value is None or math.isnan(value):
        return None
    by_threshold = _threshold(q, value)
    by_baseline = _baseline(q, value, baseline)
    levels = [hit[0] for hit in (by_threshold, by_baseline) if hit is not None]
    if not levels:
        return None
    level: FindingLevel = "critical" if "critical" in levels else "warn"
    side = "above" if q.direction == "above" else "below"
    notes: list[str] = []
    reasons: list[str] = []
    if by_threshold is not None:
        name, limit = by_threshold
        notes.append(f"{name} {format_value(limit, q.unit)}")
        reasons.append(f"at or {side} the {name} threshold of {format_value(limit, q.unit)}")
    change_pct: float | None = None
    if by_baseline is not None:
        assert baseline is not None
        change_pct = by_baseline[1]
        notes.append(f"{_pct(change_pct)} vs baseline {format_value(baseline, q.unit)}")
        reasons.append(f"{_pct(change_pct)} against the baseline of {format_value(baseline, q.unit)}")
    action = "check recent deploys and the dashboards"
    if runbook_url:
        action += ", then follow the runbook"
    return Finding(
        service=service,
        source=f"prometheus:{service}:{q.name}" if service else f"prometheus:{q.name}",
        level=level,
        metric=q.name,
        figure=f"{q.name} {format_value(value, q.unit)} ({'; '.join(notes)})",
        reason="; ".join(reasons),
        action=action,
        runbook_url=runbook_url,
        value=value,
        unit=q.unit,
        change_pct=change_pct,
    )


# --- correlate --------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min ago" if rest else f"{hours} h ago"


def suspect_deploy(
    finding: Finding, deploys: Iterable[DeployEvent], now: datetime, window_minutes: int
) -> DeployEvent | None:
    """The most recent deploy of the finding's service (and environment, when the finding has one)
    within ``window_minutes`` before ``now``."""
    now = _utc(now)
    earliest = now - timedelta(minutes=window_minutes)
    candidates = [
        d
        for d in deploys
        if d.service == finding.service
        and (finding.environment is None or d.environment == finding.environment)
        and earliest <= _utc(d.deployed_at) <= now
    ]
    return max(candidates, key=lambda d: _utc(d.deployed_at), default=None)


def correlate(finding: Finding, deploys: list[DeployEvent], now: datetime, window_minutes: int) -> str | None:
    """Name the deploy that may have caused ``finding``, e.g.
    ``"p95 up 40 % since v1.4.2 was deployed 25 min ago"`` (baseline findings) or
    ``"error rate 5.2 % since v1.4.2 was deployed 25 min ago"``; ``None`` when no deploy is in the window.
    """
    deploy = suspect_deploy(finding, deploys, now, window_minutes)
    if deploy is None:
        return None
    if finding.change_pct is not None and math.isfinite(finding.change_pct):
        direction = "up" if finding.change_pct >= 0 else "down"
        subject = f"{finding.metric} {direction} {abs(finding.change_pct):.0f} %"
    elif finding.value is not None:
        subject = f"{finding.metric} {format_value(finding.value, finding.unit)}"
    else:
        subject = f"{finding.metric} failing"
    return f"{subject} since {deploy.version} was deployed {_ago(_utc(now) - _utc(deploy.deployed_at))}"


# --- overall ----------------------------------------------------------------------------------------


def _incident_level(incident: OpenIncident) -> Level:
    if incident.source == "pagerduty":
        return "DEGRADED"
    severity = incident.severity.lower()
    if severity == "sev1":
        return "UNHEALTHY"
    return "DEGRADED" if severity == "sev2" else "HEALTHY"


def _worst(levels: Iterable[Level]) -> Level:
    return max(levels, key=_RANK.__getitem__, default="HEALTHY")


def service_level(
    findings: Sequence[Finding], failed_sources: int = 0, incidents: Sequence[OpenIncident] = ()
) -> Level:
    """UNHEALTHY > DEGRADED > UNKNOWN > HEALTHY: what is known to be bad beats what could not be told."""
    levels: list[Level] = ["UNHEALTHY" if f.level == "critical" else "DEGRADED" for f in findings]
    levels += [_incident_level(i) for i in incidents]
    if failed_sources:
        levels.append("UNKNOWN")
    return _worst(levels)


def overall(
    services: Sequence[ServiceStatus],
    sources: Sequence[SourceStatus],
    incidents: Sequence[OpenIncident] = (),
) -> Level:
    """The report's level.

    UNHEALTHY: any critical finding, any UNHEALTHY service or any open SEV1.
    UNKNOWN: every source failed (nothing could be checked).
    DEGRADED: any warn finding (Statuspage components that are not operational are warn findings),
    any failed source, any DEGRADED/UNKNOWN service, an open SEV2 or PagerDuty incident.
    HEALTHY otherwise. A failed source therefore never allows HEALTHY.
    """
    findings = [f for s in services for f in s.findings]
    service_levels = [s.level for s in services]
    incident_levels = [_incident_level(i) for i in incidents]
    if (
        any(f.level == "critical" for f in findings)
        or "UNHEALTHY" in service_levels
        or "UNHEALTHY" in incident_levels
    ):
        return "UNHEALTHY"
    if sources and not any(s.ok for s in sources):
        return "UNKNOWN"
    if (
        findings
        or not all(s.ok for s in sources)
        or any(level in ("DEGRADED", "UNKNOWN") for level in service_levels)
        or "DEGRADED" in incident_levels
    ):
        return "DEGRADED"
    return "HEALTHY"


# --- Running sources --------------------------------------------------------------------------------

T = TypeVar("T")

_USERINFO = re.compile(r"(\w+://)[^/\s@]+@")
_SECRET_PARAM = re.compile(r"(?i)\b(token|api[_-]?key|key|secret|password|passwd|auth\w*)=[^&\s]+")


def describe_error(exc: BaseException) -> str:
    """``ProbeError: Prometheus error (execution): ...``: class name and the first line of the
    message, credentials in URLs and secret-looking parameters masked, at most 200 characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    text = _SECRET_PARAM.sub(r"\1=***", _USERINFO.sub(r"\1***@", text))[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class _Run(Generic[T]):
    value: T | None
    error: str | None
    duration_ms: float


async def _timed(call: Callable[[], Awaitable[T]], timeout: float, *, said: float | None = None) -> _Run[T]:
    """Run one source under its own timeout; failures become data (never raised, never a traceback)."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    def elapsed() -> float:
        return round((loop.time() - started) * 1000, 1)

    try:
        async with asyncio.timeout(timeout):
            value = await call()
    except TimeoutError:
        return _Run(None, f"timed out after {said if said is not None else timeout:.1f} s", elapsed())
    except Exception as exc:
        log.warning("prodstatus source failed", exc_info=True)
        return _Run(None, describe_error(exc), elapsed())
    return _Run(value, None, elapsed())


# --- gather_report ----------------------------------------------------------------------------------


def _select(services: list[ServiceConfig], scope: str | None) -> tuple[list[ServiceConfig], str | None]:
    """The services in scope and, when the scope is an environment, that environment."""
    if scope is None or not scope.strip():
        return services, None
    wanted = scope.strip().lower()
    named = [s for s in services if s.name == wanted]
    if named:
        return named, None
    in_env = [s for s in services if wanted in (e.lower() for e in s.environments)]
    if in_env:
        return in_env, wanted
    raise NotFound(f"No service or environment called `{scope.strip()}`.")


def _public_url(url: str) -> str:
    """The URL without credentials or query string, safe to show."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}#{n}", n + 1
    taken.add(candidate)
    return candidate


@dataclass
class _ServiceAcc:
    """What the gatherer learns about one service while the sources come back."""

    config: ServiceConfig
    figures: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def record(self, source: SourceStatus) -> SourceStatus:
        if not source.ok:
            self.unknown.append(source.name)
        return source.model_copy(update={"service": self.config.name})


@dataclass
class _HealthJob:
    acc: _ServiceAcc
    name: str
    env: str
    label: str
    task: asyncio.Task[_Run[HealthResult]]


@dataclass
class _QueryJob:
    acc: _ServiceAcc
    query: PrometheusQuery
    name: str
    main: asyncio.Task[_Run[Sample]]
    base: asyncio.Task[_Run[Sample]] | None


def _source(name: str, run: _Run[T]) -> SourceStatus:
    return SourceStatus(name=name, ok=run.error is None, reason=run.error or "", duration_ms=run.duration_ms)


def _start_health(
    tg: asyncio.TaskGroup,
    acc: _ServiceAcc,
    health: HealthProbe,
    *,
    env_filter: str | None,
    deadline: float,
    taken: set[str],
) -> list[_HealthJob]:
    service = acc.config
    several = len(service.health_checks) > 1  # then names carry the environment, whatever the scope
    checks = [(c, c.environment or service.default_env) for c in service.health_checks]
    checks = [(c, env) for c, env in checks if env_filter is None or env.lower() == env_filter]
    jobs: list[_HealthJob] = []
    for check, env in checks:
        name = _unique(f"health:{service.name}" + (f":{env}" if several else ""), taken)
        limit = min(check.timeout_seconds, deadline)
        call = partial(
            health.check,
            url=check.url,
            expect_status=check.expect_status,
            json_field=check.json_field,
            expect_value=check.expect_value,
            timeout=limit,
        )
        # The probe times itself out at ``limit``; the gatherer's own timeout is only a backstop.
        task = tg.create_task(_timed(call, min(limit + _BACKSTOP_GRACE, deadline), said=limit))
        jobs.append(_HealthJob(acc, name, env, f"health ({env})" if several else "health", task))
    return jobs


def _start_queries(
    tg: asyncio.TaskGroup,
    acc: _ServiceAcc,
    metrics: Metrics,
    *,
    now: datetime,
    deadline: float,
    taken: set[str],
) -> list[_QueryJob]:
    jobs: list[_QueryJob] = []
    for q in acc.config.prometheus:
        name = _unique(f"prometheus:{acc.config.name}:{q.name}", taken)
        ask = partial(metrics.instant, query=q.query, timeout=deadline, at=now)
        main = tg.create_task(_timed(ask, deadline))
        base = None
        if q.baseline_query:
            ask_base = partial(metrics.instant, query=q.baseline_query, timeout=deadline, at=now)
            base = tg.create_task(_timed(ask_base, deadline))
        jobs.append(_QueryJob(acc, q, name, main, base))
    return jobs


def _health_outcome(job: _HealthJob) -> SourceStatus:
    service, run = job.acc.config, job.task.result()
    result = run.value
    if result is None:
        return _source(job.name, run)
    if result.ok:
        job.acc.figures.append(f"{job.label} {result.status_code} in {result.latency_ms or 0:.0f} ms")
    elif result.status_code is None:  # no answer at all (timeout, refused): cmdcenter cannot tell
        return SourceStatus(name=job.name, ok=False, reason=result.detail, duration_ms=run.duration_ms)
    else:
        job.acc.figures.append(f"{job.label} failing")
        action = "check the service's logs and recent changes"
        job.acc.findings.append(
            Finding(
                service=service.name,
                source=job.name,
                level="critical",
                metric="health check",
                figure=f"{job.label} {result.detail}",
                reason=f"{_public_url(result.url)} answers but does not report healthy",
                action=action + (", then follow the runbook" if service.runbook_url else ""),
                runbook_url=service.runbook_url,
                environment=job.env,
            )
        )
    return _source(job.name, run)


def _query_outcome(job: _QueryJob) -> SourceStatus:
    service, q = job.acc.config, job.query
    main = job.main.result()
    base = job.base.result() if job.base is not None else None
    duration = max(main.duration_ms, base.duration_ms if base else 0.0)
    if main.value is None:
        return SourceStatus(name=job.name, ok=False, reason=main.error or "", duration_ms=duration)
    value = main.value.value
    baseline = base.value.value if base is not None and base.value is not None else None
    figure = f"{q.name} {format_value(value, q.unit)}" if value is not None else f"{q.name} no data"
    job.acc.figures.append(figure)
    finding = evaluate_query(q, value, baseline, service=service.name, runbook_url=service.runbook_url)
    if finding is not None:
        job.acc.findings.append(
            finding.model_copy(update={"source": job.name, "environment": service.default_env})
        )
    if base is not None and base.error is not None:
        reason = f"baseline: {base.error}"
        return SourceStatus(name=job.name, ok=False, reason=reason, duration_ms=duration)
    return SourceStatus(name=job.name, ok=True, duration_ms=duration)


def _component_finding(service: ServiceConfig, component: Component) -> Finding:
    shown = component.status.replace("_", " ")
    return Finding(
        service=service.name,
        source="statuspage",
        level="warn",
        metric="statuspage",
        figure=f"Statuspage {component.name}: {shown}",
        reason=f"the public status page shows {component.name} as {shown}",
        action="keep the status page in step with the incident; set it to operational once resolved",
        runbook_url=service.runbook_url,
    )


def _pager_incident(incident: PagerIncident, by_pd_id: dict[str, str]) -> OpenIncident:
    return OpenIncident(
        id=incident.id,
        title=incident.title,
        severity=incident.urgency,
        service=by_pd_id.get(incident.service_id),
        source="pagerduty",
        url=incident.html_url or None,
    )


def _with_correlation(finding: Finding, deploys: list[DeployEvent], now: datetime, window: int) -> Finding:
    if finding.source == "statuspage":
        return finding
    deploy = suspect_deploy(finding, deploys, now, window)
    if deploy is None:
        return finding
    rollback = f"consider rolling {finding.service} back from {deploy.version} ({deploy.environment})"
    return finding.model_copy(
        update={
            "correlation": correlate(finding, [deploy], now, window),
            "action": f"{rollback}; {finding.action}" if finding.action else rollback,
        }
    )


async def gather_report(
    *,
    services: list[ServiceConfig],
    health: HealthProbe,
    metrics: Metrics | None,
    pager: OnCallDirectory | None,
    statuspage: StatusPage | None,
    load_local: Callable[[], Awaitable[LocalState]],
    now: datetime,
    deadline: float = 4.0,
    scope: str | None = None,
    correlation_minutes: int = 60,
) -> StatusReport:
    """Ask every source at once and build the report; the slowest source sets the total time.

    Each health check runs under its own ``timeout_seconds`` (capped at ``deadline``); each Prometheus
    query (and its baseline), PagerDuty, Statuspage and ``load_local`` under ``deadline``. A source
    that raises or times out becomes an UNKNOWN ``SourceStatus``. ``scope`` is a service name or an
    environment (neither: ``NotFound``). Prometheus queries are taken to describe each service's
    default environment, so an environment scope runs them only for services whose default it is.
    ``metrics``, ``pager`` and ``statuspage`` may be ``None`` (not configured: no source).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    now = _utc(now)
    selected, env_filter = _select(services, scope)
    accs = [_ServiceAcc(service) for service in selected]
    pd_ids = {s.pagerduty.service_id: s.name for s in selected if s.pagerduty.service_id}
    components = {s.statuspage_component_id: s for s in selected if s.statuspage_component_id}
    taken: set[str] = set()

    async with asyncio.TaskGroup() as tg:
        local_task = tg.create_task(_timed(load_local, deadline))
        health_jobs = [
            job
            for acc in accs
            for job in _start_health(tg, acc, health, env_filter=env_filter, deadline=deadline, taken=taken)
        ]
        query_jobs: list[_QueryJob] = []
        if metrics is not None:
            for acc in accs:
                if env_filter is None or acc.config.default_env.lower() == env_filter:
                    query_jobs += _start_queries(tg, acc, metrics, now=now, deadline=deadline, taken=taken)
        pager_task = None
        if pager is not None and pd_ids:
            ask_pager = partial(pager.open_incidents, service_ids=sorted(pd_ids))
            pager_task = tg.create_task(_timed(ask_pager, deadline))
        status_task = None
        if statuspage is not None and components:
            status_task = tg.create_task(_timed(statuspage.components, deadline))

    sources = [job.acc.record(_health_outcome(job)) for job in health_jobs]
    sources += [job.acc.record(_query_outcome(job)) for job in query_jobs]
    incidents: list[OpenIncident] = []
    if pager_task is not None:
        pager_run = pager_task.result()
        sources.append(_source("pagerduty", pager_run))
        incidents = [_pager_incident(i, pd_ids) for i in pager_run.value or [] if i.status != "resolved"]
    if status_task is not None:
        status_run = status_task.result()
        sources.append(_source("statuspage", status_run))
        by_name = {acc.config.name: acc for acc in accs}
        for component in status_run.value or []:
            service = components.get(component.id)
            if service is not None and component.status != "operational":
                by_name[service.name].findings.append(_component_finding(service, component))
    local_run = local_task.result()
    sources.append(_source("ledger", local_run))
    local = local_run.value or LocalState()

    names = {service.name for service in selected}
    incidents = [i for i in local.open_incidents if i.service is None or i.service in names] + incidents
    since = now - timedelta(days=RECENT_CHANGES_DAYS)
    deploys = sorted(
        (
            d
            for d in local.deploys
            if d.service in names
            and (env_filter is None or d.environment.lower() == env_filter)
            and _utc(d.deployed_at) >= since
        ),
        key=lambda d: _utc(d.deployed_at),
        reverse=True,
    )
    statuses = [_service_status(acc, deploys, incidents, now, correlation_minutes) for acc in accs]
    attention = sorted((f for s in statuses for f in s.findings), key=lambda f: f.level != "critical")
    return StatusReport(
        generated_at=now,
        level=overall(statuses, sources, incidents),
        services=statuses,
        attention=attention,
        recent_changes=deploys,
        freezes=[f for f in local.freezes if f.service is None or f.service in names],
        open_incidents=incidents,
        sources=sources,
        scope=scope.strip() if scope and scope.strip() else None,
        duration_ms=round((loop.time() - started) * 1000, 1),
    )


def _service_status(
    acc: _ServiceAcc, deploys: list[DeployEvent], incidents: list[OpenIncident], now: datetime, window: int
) -> ServiceStatus:
    findings = [_with_correlation(f, deploys, now, window) for f in acc.findings]
    own_incidents = [i for i in incidents if i.service == acc.config.name]
    return ServiceStatus(
        name=acc.config.name,
        level=service_level(findings, len(acc.unknown), own_incidents),
        figures=acc.figures,
        findings=findings,
        unknown=acc.unknown,
        owner_team=acc.config.owner_team,
        runbook_url=acc.config.runbook_url,
    )
