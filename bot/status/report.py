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
from collections.abc import Awaitable, Callable
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
    QueryJob,
    ServiceAccumulator,
    health_outcome,
    query_outcome,
    service_status,
    start_health_checks,
    start_queries,
)
from bot.status.source_runs import describe_error, run_source, source_status

__all__ = [  # the models and the judgement keep being importable from here, as before they moved
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
    now = as_utc(now)
    selected, env_filter = _select(services, scope)
    accs = [ServiceAccumulator(service) for service in selected]
    pd_ids = {s.pagerduty.service_id: s.name for s in selected if s.pagerduty.service_id}
    components = {s.statuspage_component_id: s for s in selected if s.statuspage_component_id}
    taken: set[str] = set()

    async with asyncio.TaskGroup() as tg:
        local_task = tg.create_task(run_source(load_local, deadline))
        health_jobs = [
            job
            for acc in accs
            for job in start_health_checks(
                tg, acc, health, env_filter=env_filter, deadline=deadline, taken=taken
            )
        ]
        query_jobs: list[QueryJob] = []
        if metrics is not None:
            for acc in accs:
                if env_filter is None or acc.config.default_env.lower() == env_filter:
                    query_jobs += start_queries(tg, acc, metrics, now=now, deadline=deadline, taken=taken)
        pager_task = None
        if pager is not None and pd_ids:
            ask_pager = partial(pager.open_incidents, service_ids=sorted(pd_ids))
            pager_task = tg.create_task(run_source(ask_pager, deadline))
        status_task = None
        if statuspage is not None and components:
            status_task = tg.create_task(run_source(statuspage.components, deadline))

    sources = [job.acc.record(health_outcome(job)) for job in health_jobs]
    sources += [job.acc.record(query_outcome(job)) for job in query_jobs]
    incidents: list[OpenIncident] = []
    if pager_task is not None:
        pager_run = pager_task.result()
        sources.append(source_status("pagerduty", pager_run))
        incidents = [_pager_incident(i, pd_ids) for i in pager_run.value or [] if i.status != "resolved"]
    if status_task is not None:
        status_run = status_task.result()
        sources.append(source_status("statuspage", status_run))
        by_name = {acc.config.name: acc for acc in accs}
        for component in status_run.value or []:
            service = components.get(component.id)
            if service is not None and component.status != "operational":
                by_name[service.name].findings.append(_component_finding(service, component))
    local_run = local_task.result()
    sources.append(source_status("ledger", local_run))
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
            and as_utc(d.deployed_at) >= since
        ),
        key=lambda d: as_utc(d.deployed_at),
        reverse=True,
    )
    statuses = [service_status(acc, deploys, incidents, now, correlation_minutes) for acc in accs]
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
