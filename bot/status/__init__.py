"""The ``/prodstatus`` domain logic (no Slack, no database).

``report`` gathers (``gather_report``), ``models`` holds the data, ``evaluation`` the judgement,
``service_checks`` one service's checks and ``source_runs`` one source's run under its timeout.
"""

from __future__ import annotations

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
