"""``/prodstatus`` and ``GET /api/prodstatus``: gather the report from the services' sources.

The gathering itself (concurrent sources, timeouts, evaluation) is ``bot.status.report``; this module
supplies cmdcenter's own state (open incidents, the release ledger, freezes) and renders the result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.deps import Deps
from bot.releases.freeze import active_freezes
from bot.releases.ledger import recent_releases
from bot.status.report import DeployEvent, Freeze, LocalState, OpenIncident, StatusReport, gather_report

DEADLINE = 4.0  # seconds: the report arrives by then, whatever a source does


async def release_state(deps: Deps, since: datetime) -> tuple[list[DeployEvent], list[Freeze]]:
    """The successful deploys and rollbacks since ``since``, newest first, and the freezes in force."""
    deploys = [
        DeployEvent(
            service=e.service,
            environment=e.environment,
            version=e.version,
            deployed_at=e.at,
            actor=e.actor,  # a Slack user id for cmdcenter's own rollbacks, CI's name for reported ones
        )
        for e in await recent_releases(deps, since=since)
        if e.status == "succeeded"
    ]
    freezes = [Freeze(service=f.service, reason=f.reason, since=f.since) for f in await active_freezes(deps)]
    return deploys, freezes


async def local_state(deps: Deps) -> LocalState:
    """cmdcenter's own incidents, the release ledger and the freezes."""
    incidents = await deps.open_incidents()
    deploys, freezes = await release_state(deps, deps.clock.now() - timedelta(days=7))
    return LocalState(
        open_incidents=[
            OpenIncident(id=i.ref, title=i.title, severity=i.severity, service=i.service, source="cmdcenter")
            for i in incidents
        ],
        deploys=deploys,
        freezes=freezes,
    )


async def build_report(deps: Deps, *, scope: str | None = None) -> StatusReport:
    return await gather_report(
        services=list(deps.config.services),
        health=deps.health,
        metrics=deps.metrics,
        pager=deps.oncall,
        statuspage=deps.statuspage,
        load_local=lambda: local_state(deps),
        now=deps.clock.now(),
        deadline=DEADLINE,
        scope=scope,
        correlation_minutes=deps.config.reports.deploy_correlation_minutes,
    )


def render(deps: Deps, report: StatusReport) -> Any:
    detailed = report.scope is not None or len(report.services) <= 12
    return deps.renderer.message("prodstatus/report", report=report, detailed=detailed)
