"""Database tables (sqlmodel). Schema changes go through alembic migrations in ``migrations/``.

All timestamps are stored as UTC and come back timezone-aware (``UTCDateTime``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on SQLite and PostgreSQL alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _json() -> Any:
    return Field(default_factory=dict, sa_type=sa.JSON)


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    title: str
    severity: str = Field(index=True)
    service: str | None = Field(default=None, index=True)
    description: str = ""
    status: str = Field(default="investigating", index=True)
    commander: str
    scribe: str | None = None
    comms: str | None = None
    declared_by: str
    declare_key: str = Field(unique=True, description="idempotency key of the declaration")
    channel_id: str | None = None
    channel_name: str | None = None
    timeline_ts: str | None = None
    origin_channel: str | None = None
    resolution: str = ""
    declared_at: datetime = Field(sa_type=UTCDateTime)
    acknowledged_at: datetime | None = _ts()
    identified_at: datetime | None = _ts()
    mitigated_at: datetime | None = _ts()
    resolved_at: datetime | None = _ts()
    last_update_at: datetime | None = _ts()
    statuspage_incident_id: str | None = None
    escalation_level: int = 1
    paged_at: datetime | None = _ts()

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """What lists of open incidents show (``/incident list``, the go/no-go gate, /prodstatus): frozen,
    as the callers of one shared read share it (``bot.db.store.read_open_incidents``)."""

    id: int
    title: str
    severity: str
    status: str
    service: str | None
    commander: str
    channel_id: str | None
    declared_at: datetime

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"


class TimelineEntry(SQLModel, table=True):
    __tablename__ = "timeline_entries"
    __table_args__ = (
        sa.UniqueConstraint("incident_id", "source_channel", "source_ts", name="uq_timeline_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    kind: str  # declared, status, severity, role, note, message, page, statuspage, rollback, resolved...
    text: str
    author: str | None = None  # who said/did it
    actor: str | None = None  # who captured it (reaction, shortcut)
    occurred_at: datetime = Field(sa_type=UTCDateTime, index=True)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    source_channel: str | None = None  # captured message: channel + ts (unique per incident)
    source_ts: str | None = None
    permalink: str | None = None
    deleted: bool = False


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    user_id: str
    channel_id: str | None = None
    command: str
    text: str = ""
    outcome: str  # ok, refused, error, usage
    error_id: str | None = None
    detail: str = ""


class ProcessedEvent(SQLModel, table=True):
    """The inbox of Slack events: recorded before Slack gets its 200, processed exactly once.

    Slack retries deliveries (``X-Slack-Retry-Num``): a second row with the same id is refused by the
    primary key. A row still ``received`` after a crash is processed again by the worker.
    """

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True)
    event_type: str = ""
    payload: dict[str, Any] = _json()
    status: str = Field(default="received", index=True)  # received, done, failed
    received_at: datetime = Field(sa_type=UTCDateTime)
    processed_at: datetime | None = _ts()


class OutboxItem(SQLModel, table=True):
    """A side effect recorded in the same transaction as its cause, delivered by the worker."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, description="idempotency key: the same effect is recorded once")
    op: str = Field(index=True)  # e.g. slack.post, incident.create_channel, pagerduty.trigger
    target: str  # slack, pagerduty, statuspage, deploy...
    payload: dict[str, Any] = _json()
    ordering_key: str | None = Field(default=None, index=True)  # e.g. a Slack channel: delivered in order
    incident_id: int | None = Field(default=None, index=True)
    status: str = Field(default="pending", index=True)  # pending, done, failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, index=True)
    lease_owner: str | None = None
    lease_until: datetime | None = _ts()
    last_error: str = ""
    result: dict[str, Any] = _json()
    created_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = _ts()
    failure_notified: bool = False


class ScheduledJob(SQLModel, table=True):
    """A job due at a time (reminders, escalations, reports); fired once across replicas."""

    __tablename__ = "scheduled_jobs"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str = Field(index=True)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    payload: dict[str, Any] = _json()
    status: str = Field(default="pending", index=True)  # pending, done, cancelled
    lease_owner: str | None = None
    lease_until: datetime | None = _ts()
    done_at: datetime | None = _ts()


class ActionItem(SQLModel, table=True):
    """A post-mortem follow-up: owner, due date, status."""

    __tablename__ = "action_items"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    owner: str
    due: date
    text: str
    status: str = "open"  # open, done
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)


class StatuspageDraft(SQLModel, table=True):
    """A public Statuspage update prepared by the bot, published by an allowed person."""

    __tablename__ = "statuspage_drafts"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    status: str  # investigating, identified, monitoring, resolved
    body: str
    state: str = "draft"  # draft, published, superseded
    channel_id: str | None = None
    message_ts: str | None = None
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    published_by: str | None = None
    published_at: datetime | None = _ts()


class ReleaseRecord(SQLModel, table=True):
    """One deploy or rollback in the release ledger: run by cmdcenter, or reported by CI (webhook)."""

    __tablename__ = "releases"

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True)
    environment: str = Field(index=True)
    kind: str  # deploy, rollback
    version: str
    revision: str = ""
    commit: str | None = None
    previous_version: str | None = None
    status: str = Field(index=True)  # started, succeeded, failed, cancelled
    source: str  # cmdcenter, webhook
    actor: str = ""  # Slack user id, or who CI says deployed
    tool: str = ""
    url: str | None = None
    summary: str = ""
    key: str = Field(unique=True, description="idempotency key: a rollback id, a reported deploy")
    rollback_id: int | None = Field(default=None, index=True)
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = _ts()


class RollbackRequest(SQLModel, table=True):
    """A /rollback from request to health check: pending → approved → running → succeeded | failed
    (or cancelled, expired, interrupted). ``active_key`` (``service/env``, unique) is set while the
    request is pending or running, so one service and environment has one rollback at a time."""

    __tablename__ = "rollbacks"

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True)
    environment: str
    active_key: str | None = Field(default=None, unique=True)
    state: str = Field(default="pending", index=True)
    requested_by: str
    reason: str = ""
    tool: str
    current_version: str | None = None
    current_revision: str | None = None
    target_version: str
    target_revision: str = ""
    dry_run_ok: bool | None = None
    dry_run_summary: str = ""
    dry_run_output: str = ""
    two_person: bool = False
    confirmations: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # users who pressed Confirm
    decided_by: str | None = None  # who confirmed (for good) or cancelled
    origin_channel: str = ""
    channel_id: str | None = None  # the card
    message_ts: str | None = None
    card_version: int = 0
    incident_id: int | None = Field(default=None, index=True)
    notes: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # e.g. "auto-sync suspended"
    result_summary: str = ""
    result_output: str = ""
    result_url: str | None = None
    health: str | None = None  # checking, healthy, unhealthy, skipped
    health_detail: str = ""
    health_deadline: datetime | None = _ts()
    lease_owner: str | None = None
    lease_until: datetime | None = _ts()
    created_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = _ts()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()

    @property
    def ref(self) -> str:
        return f"RB-{self.id}"


class DeployFreeze(SQLModel, table=True):
    """A deploy freeze, for one service or for all (``service`` None), set by an incident or by hand.

    ``active_key`` (unique) is set while it is in force: ``incident:<id>`` or ``manual:<service|*>``."""

    __tablename__ = "deploy_freezes"

    id: int | None = Field(default=None, primary_key=True)
    service: str | None = Field(default=None, index=True)
    reason: str
    source: str  # incident, manual
    incident_id: int | None = Field(default=None, index=True)
    active_key: str | None = Field(default=None, unique=True)
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    lifted_by: str | None = None
    lifted_at: datetime | None = _ts()
    lift_reason: str = ""
    sync_suspended: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # "<service>/<env>" (Argo CD)
    sync_notes: list[str] = Field(default_factory=list, sa_type=sa.JSON)

    @property
    def active(self) -> bool:
        return self.lifted_at is None
