"""What delivers effects and keeps the record: the outbox, scheduled jobs, the inbox of Slack
requests, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.db.models._types import UTCDateTime, json_field, ts

DeliveryStatus = Literal["pending", "done", "failed"]
JobStatus = Literal["pending", "done", "cancelled"]
RequestStatus = Literal["received", "processing", "done", "failed"]


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
    payload: dict[str, Any] = json_field()
    status: RequestStatus = Field(default="received", index=True, sa_type=sa.String)
    received_at: datetime = Field(sa_type=UTCDateTime)
    processed_at: datetime | None = ts()


class OutboxItem(SQLModel, table=True):
    """A side effect recorded in the same transaction as its cause, delivered by the worker."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, description="idempotency key: the same effect is recorded once")
    op: str = Field(index=True)  # e.g. slack.post, incident.create_channel, pagerduty.trigger
    target: str  # slack, pagerduty, statuspage, deploy...
    payload: dict[str, Any] = json_field()
    ordering_key: str | None = Field(default=None, index=True)  # e.g. a Slack channel: delivered in order
    incident_id: int | None = Field(default=None, index=True)
    status: DeliveryStatus = Field(default="pending", index=True, sa_type=sa.String)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, index=True)
    lease_owner: str | None = None
    lease_until: datetime | None = ts()
    last_error: str = ""
    result: dict[str, Any] = json_field()
    created_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = ts()
    failure_notified: bool = False


class ScheduledJob(SQLModel, table=True):
    """A job due at a time (reminders, escalations, reports); fired once across replicas."""

    __tablename__ = "scheduled_jobs"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str = Field(index=True)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    payload: dict[str, Any] = json_field()
    status: JobStatus = Field(default="pending", index=True, sa_type=sa.String)
    lease_owner: str | None = None
    lease_until: datetime | None = ts()
    done_at: datetime | None = ts()
