"""The checks that belong to one service: its health checks and Prometheus queries.

``start_health_checks`` and ``start_queries`` start them as tasks in the gatherer's task group;
once the group is done, ``health_outcome`` and ``query_outcome`` turn each into figures and
findings on the service's ``ServiceAccumulator`` and a ``SourceStatus`` for the report, and
``service_status`` gives the service its level. Guarantees:

- Each health check runs under its own ``timeout_seconds`` (capped at the deadline, with a short
  backstop after the probe's own timeout); each query and its baseline under the deadline.
- A health check that answers with the wrong status or JSON is a critical finding; one that does
  not answer at all (timeout, connection refused) is an UNKNOWN source: cmdcenter could not tell.
- A query whose baseline failed keeps its figure and finding, but its source is UNKNOWN.
- A source that fails or times out is named in its service's ``unknown``, so the service is never
  HEALTHY because of it. Source names are unique within a report (``#2``, ``#3`` on repeats).
- A URL shown in a finding has no credentials and no query string.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from urllib.parse import urlsplit

from bot.config import PrometheusQuery, ServiceConfig
from bot.ports import HealthProbe, HealthResult, Metrics, Sample
from bot.status.evaluation import evaluate_query, format_value, service_level, with_correlation
from bot.status.models import DeployEvent, Finding, OpenIncident, ServiceStatus, SourceStatus
from bot.status.source_runs import SourceRun, run_source, source_status

_BACKSTOP_GRACE = 0.25  # the gatherer's own timeout on a health check, after the probe's own


def _public_url(url: str) -> str:
    """The URL without credentials or query string, safe to show."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name#2``, ``name#3`` … when it is taken; the result is then taken too."""
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}#{n}", n + 1
    taken.add(candidate)
    return candidate


@dataclass
class ServiceAccumulator:
    """What the gatherer learns about one service while the sources come back."""

    config: ServiceConfig
    figures: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def record(self, source: SourceStatus) -> SourceStatus:
        """``source`` as this service's; a failed one is named in ``unknown``."""
        if not source.ok:
            self.unknown.append(source.name)
        return source.model_copy(update={"service": self.config.name})


@dataclass
class HealthJob:
    """One health check in flight: its service, source name, environment and figure label."""

    acc: ServiceAccumulator
    name: str
    env: str
    label: str
    task: asyncio.Task[SourceRun[HealthResult]]


@dataclass
class QueryJob:
    """One Prometheus query in flight, with its baseline query when it has one."""

    acc: ServiceAccumulator
    query: PrometheusQuery
    name: str
    main: asyncio.Task[SourceRun[Sample]]
    base: asyncio.Task[SourceRun[Sample]] | None


def start_health_checks(
    tg: asyncio.TaskGroup,
    acc: ServiceAccumulator,
    health: HealthProbe,
    *,
    env_filter: str | None,
    deadline: float,
    taken: set[str],
) -> list[HealthJob]:
    """Start the service's health checks in ``env_filter`` (every one when ``None``); when the service
    has more than one, their source names and labels carry the environment."""
    service = acc.config
    several = len(service.health_checks) > 1  # then names carry the environment, whatever the scope
    checks = [(c, c.environment or service.default_env) for c in service.health_checks]
    checks = [(c, env) for c, env in checks if env_filter is None or env.lower() == env_filter]
    jobs: list[HealthJob] = []
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
        task = tg.create_task(run_source(call, min(limit + _BACKSTOP_GRACE, deadline), said=limit))
        jobs.append(HealthJob(acc, name, env, f"health ({env})" if several else "health", task))
    return jobs


def start_queries(
    tg: asyncio.TaskGroup,
    acc: ServiceAccumulator,
    metrics: Metrics,
    *,
    now: datetime,
    deadline: float,
    taken: set[str],
) -> list[QueryJob]:
    """Start each of the service's queries, and its baseline, as of ``now``."""
    jobs: list[QueryJob] = []
    for q in acc.config.prometheus:
        name = _unique(f"prometheus:{acc.config.name}:{q.name}", taken)
        ask = partial(metrics.instant, query=q.query, timeout=deadline, at=now)
        main = tg.create_task(run_source(ask, deadline))
        base = None
        if q.baseline_query:
            ask_base = partial(metrics.instant, query=q.baseline_query, timeout=deadline, at=now)
            base = tg.create_task(run_source(ask_base, deadline))
        jobs.append(QueryJob(acc, q, name, main, base))
    return jobs


def health_outcome(job: HealthJob) -> SourceStatus:
    """Record a finished health check's figure and finding on its service; return its source."""
    service, run = job.acc.config, job.task.result()
    result = run.value
    if result is None:
        return source_status(job.name, run)
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
    return source_status(job.name, run)


def query_outcome(job: QueryJob) -> SourceStatus:
    """Record a finished query's figure (``no data`` without a value) and finding on its service;
    return its source."""
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


def service_status(
    acc: ServiceAccumulator,
    deploys: list[DeployEvent],
    incidents: list[OpenIncident],
    now: datetime,
    window: int,
) -> ServiceStatus:
    """The service as the report shows it: findings correlated with the deploys of the last ``window``
    minutes; its level from them, its failed sources and its own open incidents."""
    findings = [with_correlation(f, deploys, now, window) for f in acc.findings]
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
