"""Production status: ``/prodstatus``, ``GET /api/prodstatus``, the daily digest and the weekly report.

The gathering and evaluation (``bot.status.report``) take no Slack and no database: explicit ports
in, data out, a failing source turned into data. ``prodstatus`` adds cmdcenter's own state;
``digests`` posts the scheduled reports.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.status import digests
from bot.status.report import (
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
    correlate,
    evaluate_query,
    gather_report,
    overall,
)

__all__ = [
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
    "evaluate_query",
    "gather_report",
    "overall",
]


def wire(deps: Deps) -> None:
    """Called once by the composition root: the scheduled reports."""
    digests.wire(deps)
