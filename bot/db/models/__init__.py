"""Database tables (sqlmodel), by area. Schema changes go through alembic migrations in
``bot/db/migrations/``. All timestamps are stored as UTC and come back timezone-aware.

States are ``Literal`` types beside their tables (mypy checks every assignment); the state machines
are drawn in the docstrings of the modules that move them (``bot.releases.rollback``,
``bot.db.models.gonogo``, ``bot.outbox``, ``bot.inbox``).
"""

from __future__ import annotations

from bot.db.models._types import UTCDateTime
from bot.db.models.delivery import (
    AuditLog,
    DeliveryStatus,
    JobStatus,
    OutboxItem,
    ProcessedEvent,
    RequestStatus,
    ScheduledJob,
)
from bot.db.models.gonogo import (
    LIVE,
    DecisionStatus,
    GateException,
    GateResult,
    GateStatus,
    GoNoGoDecision,
    GoNoGoVote,
    Verdict,
)
from bot.db.models.incidents import (
    INCIDENT_STATUSES,
    ActionItem,
    ActionItemStatus,
    DraftState,
    Incident,
    IncidentStatus,
    IncidentSummary,
    StatuspageDraft,
    TimelineEntry,
)
from bot.db.models.releases import (
    DeployFreeze,
    FreezeSource,
    HealthState,
    ReleaseKind,
    ReleaseRecord,
    ReleaseStatus,
    RollbackRequest,
    RollbackState,
)

__all__ = [
    "INCIDENT_STATUSES",
    "LIVE",
    "ActionItem",
    "ActionItemStatus",
    "AuditLog",
    "DecisionStatus",
    "DeliveryStatus",
    "DeployFreeze",
    "DraftState",
    "FreezeSource",
    "GateException",
    "GateResult",
    "GateStatus",
    "GoNoGoDecision",
    "GoNoGoVote",
    "HealthState",
    "Incident",
    "IncidentStatus",
    "IncidentSummary",
    "JobStatus",
    "OutboxItem",
    "ProcessedEvent",
    "ReleaseKind",
    "ReleaseRecord",
    "ReleaseStatus",
    "RequestStatus",
    "RollbackRequest",
    "RollbackState",
    "ScheduledJob",
    "StatuspageDraft",
    "TimelineEntry",
    "UTCDateTime",
    "Verdict",
]
