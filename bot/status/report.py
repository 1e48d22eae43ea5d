"""Gathering a ``/prodstatus`` report: every source asked at once, each failure kept as data.

``gather_report`` takes exactly the ports it uses (health endpoints, Prometheus, PagerDuty and
Statuspage) and cmdcenter's own state through ``load_local``; it knows neither Slack nor the
database, and returns a ``StatusReport`` that templates render. Guarantees:

- Every source is asked at once, each under its own timeout: the slowest sets the total time.
- A source that fails or times out is shown as UNKNOWN, never healthy: its ``SourceStatus`` is not
  ``ok``, its service names it in ``unknown``, and the report's level cannot be HEALTHY. A failed
  ledger leaves the report without deploys, freezes or cmdcenter incidents, and is shown as such.
- A scope that is neither a service nor an environment is ``NotFound``, before any source is asked.
- Sources are listed in a fixed order: health checks, queries, PagerDuty, Statuspage, the ledger.

The rest of the domain: the data in ``bot.status.models``; the judgement (thresholds, baselines,
levels, deploy correlation) in ``bot.status.evaluation``; one service's health checks and queries
in ``bot.status.service_checks``; running one source under its timeout in ``bot.status.source_runs``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from bot.config import ServiceConfig
from bot.errors import NotFound
from bot.ports import (
    Component,
    HealthProbe,
    Metrics,
    OnCallDirectory,
    PagerIncident,
    StatusPage,
)
from bot.status.evaluation import (
    as_utc,
    correlate,
    evaluate_query,
    format_value,
    overall,
    service_level,
    suspect_deploy,
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
from bot.status.service_checks import (
    HealthJob,
    QueryJob,
    ServiceAccumulator,
    health_outcome,
    query_outcome,
    service_status,
    start_health_checks,
    start_queries,
)
from bot.status.source_runs import SourceRun, describe_error, run_source, source_status

# Every public name this module had before the split stays importable from it (most live above now).
__all__ = [
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

RECENT_CHANGES_DAYS = 7


# --- Asking -----------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _Plan:
    """What the report asks about, decided from the config and the scope before anything runs."""

    selected: list[ServiceConfig]
    env_filter: str | None  # the environment, when the scope is one
    accs: list[ServiceAccumulator]
    pd_ids: dict[str, str]  # PagerDuty service id -> service name
    components: dict[str, ServiceConfig]  # Statuspage component id -> service


def _plan(services: list[ServiceConfig], scope: str | None) -> _Plan:
    selected, env_filter = _select(services, scope)
    return _Plan(
        selected=selected,
        env_filter=env_filter,
        accs=[ServiceAccumulator(service) for service in selected],
        pd_ids={s.pagerduty.service_id: s.name for s in selected if s.pagerduty.service_id},
        components={s.statuspage_component_id: s for s in selected if s.statuspage_component_id},
    )


@dataclass(frozen=True)
class _Asked:
    """Every source asked, as tasks of the gatherer's task group: all done once the group exits."""

    local: asyncio.Task[SourceRun[LocalState]]
    health: list[HealthJob]
    queries: list[QueryJob]
    pager: asyncio.Task[SourceRun[list[PagerIncident]]] | None
    statuspage: asyncio.Task[SourceRun[list[Component]]] | None


def _ask_all(
    tg: asyncio.TaskGroup,
    plan: _Plan,
    *,
    health: HealthProbe,
    metrics: Metrics | None,
    pager: OnCallDirectory | None,
    statuspage: StatusPage | None,
    load_local: Callable[[], Awaitable[LocalState]],
    now: datetime,
    deadline: float,
) -> _Asked:
    """Start every source in ``tg``; a source that is not configured (or concerns no service in
    scope) is not asked."""
    env_filter = plan.env_filter
    taken: set[str] = set()  # source names given so far
    local_task = tg.create_task(run_source(load_local, deadline))
    health_jobs = [
        job
        for acc in plan.accs
        for job in start_health_checks(tg, acc, health, env_filter=env_filter, deadline=deadline, taken=taken)
    ]
    query_jobs: list[QueryJob] = []
    if metrics is not None:
        for acc in plan.accs:
            if env_filter is None or acc.config.default_env.lower() == env_filter:
                query_jobs += start_queries(tg, acc, metrics, now=now, deadline=deadline, taken=taken)
    pager_task = None
    if pager is not None and plan.pd_ids:
        ask_pager = partial(pager.open_incidents, service_ids=sorted(plan.pd_ids))
        pager_task = tg.create_task(run_source(ask_pager, deadline))
    status_task = None
    if statuspage is not None and plan.components:
        status_task = tg.create_task(run_source(statuspage.components, deadline))
    return _Asked(local_task, health_jobs, query_jobs, pager_task, status_task)


# --- Collecting -------------------------------------------------------------------------------------


def _pager_incident(incident: PagerIncident, by_pd_id: dict[str, str]) -> OpenIncident:
    return OpenIncident(
        id=incident.id,
        title=incident.title,
        severity=incident.urgency,
        service=by_pd_id.get(incident.service_id),
        source="pagerduty",
        url=incident.html_url or None,
    )


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


def _statuspage_outcome(run: SourceRun[list[Component]], plan: _Plan) -> SourceStatus:
    """Record a finding on each service whose component is not operational; return the source."""
    by_name = {acc.config.name: acc for acc in plan.accs}
    for component in run.value or []:
        service = plan.components.get(component.id)
        if service is not None and component.status != "operational":
            by_name[service.name].findings.append(_component_finding(service, component))
    return source_status("statuspage", run)


def _collect(asked: _Asked, plan: _Plan) -> tuple[list[SourceStatus], list[OpenIncident], LocalState]:
    """Every source's status (health checks, queries, PagerDuty, Statuspage, ledger, in that order),
    PagerDuty's unresolved incidents, and the local state (empty when the ledger failed)."""
    sources = [job.acc.record(health_outcome(job)) for job in asked.health]
    sources += [job.acc.record(query_outcome(job)) for job in asked.queries]
    incidents: list[OpenIncident] = []
    if asked.pager is not None:
        pager_run = asked.pager.result()
        sources.append(source_status("pagerduty", pager_run))
        incidents = [_pager_incident(i, plan.pd_ids) for i in pager_run.value or [] if i.status != "resolved"]
    if asked.statuspage is not None:
        sources.append(_statuspage_outcome(asked.statuspage.result(), plan))
    local_run = asked.local.result()
    sources.append(source_status("ledger", local_run))
    return sources, incidents, local_run.value or LocalState()


# --- Building the report ----------------------------------------------------------------------------


def _recent_deploys(
    deploys: list[DeployEvent], names: set[str], env_filter: str | None, now: datetime
) -> list[DeployEvent]:
    """The deploys of the services in scope (and environment) in the last ``RECENT_CHANGES_DAYS``,
    newest first."""
    since = now - timedelta(days=RECENT_CHANGES_DAYS)
    return sorted(
        (
            d
            for d in deploys
            if d.service in names
            and (env_filter is None or d.environment.lower() == env_filter)
            and as_utc(d.deployed_at) >= since
        ),
        key=lambda d: as_utc(d.deployed_at),
        reverse=True,
    )


def _report(
    plan: _Plan,
    sources: list[SourceStatus],
    pager_incidents: list[OpenIncident],
    local: LocalState,
    *,
    now: datetime,
    scope: str | None,
    window: int,
    started: float,
) -> StatusReport:
    """The report from what the sources gave: findings correlated with the deploys of the last
    ``window`` minutes, critical findings first; its duration runs from ``started`` (loop time)."""
    names = {service.name for service in plan.selected}
    incidents = [i for i in local.open_incidents if i.service is None or i.service in names] + pager_incidents
    deploys = _recent_deploys(local.deploys, names, plan.env_filter, now)
    statuses = [service_status(acc, deploys, incidents, now, window) for acc in plan.accs]
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
        duration_ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
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
    started = asyncio.get_running_loop().time()
    now = as_utc(now)
    plan = _plan(services, scope)
    async with asyncio.TaskGroup() as tg:
        asked = _ask_all(
            tg,
            plan,
            health=health,
            metrics=metrics,
            pager=pager,
            statuspage=statuspage,
            load_local=load_local,
            now=now,
            deadline=deadline,
        )
    sources, incidents, local = _collect(asked, plan)
    window = correlation_minutes
    return _report(plan, sources, incidents, local, now=now, scope=scope, window=window, started=started)
