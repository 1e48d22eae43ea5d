"""``/prodstatus`` and ``GET /api/prodstatus``: gather the report from the services' sources.

The gathering itself (concurrent sources, timeouts, evaluation) is ``bot.status.report``; this module
supplies cmdcenter's own state (open incidents, the release ledger, freezes) and renders the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from bot.app import Services
from bot.context import Invocation, Reply
from bot.errors import UsageError
from bot.help import command_help, usage
from bot.incidents.store import open_incidents
from bot.status.report import DeployEvent, Freeze, LocalState, OpenIncident, StatusReport, gather_report

DEADLINE = 4.0  # seconds: the report arrives by then, whatever a source does
ReleaseState = Callable[[Services, datetime], Awaitable[tuple[list[DeployEvent], list[Freeze]]]]


async def local_state(svc: Services) -> LocalState:
    """cmdcenter's own incidents, plus the release ledger and freezes when the releases area is present."""
    incidents = await open_incidents(svc)
    deploys: list[DeployEvent] = []
    freezes: list[Freeze] = []
    provider: ReleaseState | None = svc.extras.get("release_state")
    if provider is not None:
        deploys, freezes = await provider(svc, svc.clock.now() - timedelta(days=7))
    return LocalState(
        open_incidents=[
            OpenIncident(id=i.ref, title=i.title, severity=i.severity, service=i.service, source="cmdcenter")
            for i in incidents
        ],
        deploys=deploys,
        freezes=freezes,
    )


async def build_report(svc: Services, *, scope: str | None = None) -> StatusReport:
    health = svc.health
    if health is None:
        from bot.adapters.health import HttpHealthProbe

        health = HttpHealthProbe()
    return await gather_report(
        services=list(svc.config.services),
        health=health,
        metrics=svc.metrics,
        pager=svc.oncall,
        statuspage=svc.statuspage,
        load_local=lambda: local_state(svc),
        now=svc.clock.now(),
        deadline=DEADLINE,
        scope=scope,
        correlation_minutes=svc.config.reports.deploy_correlation_minutes,
    )


def _parse(text: str) -> tuple[str | None, bool]:
    words = text.lower().split()
    share = "share" in words
    rest = [w for w in words if w != "share"]
    if len(rest) > 1:
        raise UsageError(
            "Give at most one service or environment: `/prodstatus checkout` or `/prodstatus prod`."
        )
    return (rest[0] if rest else None), share


async def handle(svc: Services, inv: Invocation) -> Reply:
    word = inv.text.strip().split(maxsplit=1)[0].lower() if inv.text.strip() else ""
    if word in ("help", "-h", "--help", "?"):
        return await command_help(svc, "prodstatus", "help")
    try:
        scope, share = _parse(inv.text)
    except UsageError as exc:
        exc.usage = usage(svc, "prodstatus")
        raise
    report = await build_report(svc, scope=scope)
    return Reply(message=render(svc, report), in_channel=share)


def render(svc: Services, report: StatusReport) -> Any:
    detailed = report.scope is not None or len(report.services) <= 12
    return svc.renderer.message("prodstatus/report", report=report, detailed=detailed)


def is_read_only(body: dict[str, Any]) -> bool:
    """Every ``/prodstatus`` only reads (its sources, and the database)."""
    return body.get("command") == "/prodstatus"


def register(svc: Services) -> None:
    """``GET /api/prodstatus[?scope=...]``: the report as JSON for dashboards (bearer token); the
    command declared read-only to the inbox."""
    svc.inbox.read_only(is_read_only)
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from bot.errors import NotFound
    from bot.web import bearer_ok

    async def api(request: Request) -> Response:
        token = svc.settings.api_token.get_secret_value() if svc.settings.api_token else None
        if not bearer_ok(request, token):
            return JSONResponse(
                {"error": "a valid bearer token (CMDCENTER_API_TOKEN) is required"}, status_code=401
            )
        try:
            report = await build_report(svc, scope=request.query_params.get("scope") or None)
        except NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse(report.model_dump(mode="json"))

    svc.routes.append(Route("/api/prodstatus", api, methods=["GET"]))
