"""Production status: ``/prodstatus``, ``GET /api/prodstatus``, the daily digest and the weekly report.

The gathering takes no Slack and no database: explicit ports in, data out, a failing source turned
into data. ``report`` gathers (``gather_report``), ``models`` holds the data, ``evaluation`` the
judgement, ``service_checks`` one service's checks and ``source_runs`` one source's run under its
timeout. ``prodstatus`` adds cmdcenter's own state (incidents, ledger, freezes), ``dispatch`` answers
the command, ``digests`` posts the scheduled reports.
"""

from __future__ import annotations

from bot.deps import Deps
from bot.status import digests
from bot.status.evaluation import correlate, evaluate_query, overall
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
from bot.status.report import gather_report

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
