"""The release ledger, rollbacks and deploy freezes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.db.models._types import UTCDateTime, ts

ReleaseKind = Literal["deploy", "rollback"]
ReleaseStatus = Literal["started", "succeeded", "failed", "cancelled", "unknown"]
RollbackState = Literal[
    "pending", "approved", "running", "succeeded", "failed", "cancelled", "expired", "interrupted"
]
HealthState = Literal["checking", "healthy", "unhealthy", "skipped"]
FreezeSource = Literal["incident", "manual"]


class ReleaseRecord(SQLModel, table=True):
    """One deploy or rollback in the release ledger: run by cmdcenter, or reported by CI (webhook)."""

    __tablename__ = "releases"

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True)
    environment: str = Field(index=True)
    kind: ReleaseKind = Field(sa_type=sa.String)
    version: str
    revision: str = ""
    commit: str | None = None
    previous_version: str | None = None
    status: ReleaseStatus = Field(index=True, sa_type=sa.String)
    source: str  # cmdcenter, webhook
    actor: str = ""  # Slack user id, or who CI says deployed
    tool: str = ""
    url: str | None = None
    summary: str = ""
    key: str = Field(unique=True, description="idempotency key: a rollback id, a reported deploy")
    rollback_id: int | None = Field(default=None, index=True)
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = ts()


class RollbackRequest(SQLModel, table=True):
    """A /rollback from request to health check: pending → approved → running → succeeded | failed
    (or cancelled, expired, interrupted). ``active_key`` (``service/env``, unique) is set while the
    request is pending or running, so one service and environment has one rollback at a time."""

    __tablename__ = "rollbacks"

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True)
    environment: str
    active_key: str | None = Field(default=None, unique=True)
    state: RollbackState = Field(default="pending", index=True, sa_type=sa.String)
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
    health: HealthState | None = Field(default=None, sa_type=sa.String)
    health_detail: str = ""
    health_deadline: datetime | None = ts()
    lease_owner: str | None = None
    lease_until: datetime | None = ts()
    created_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = ts()
    started_at: datetime | None = ts()
    finished_at: datetime | None = ts()

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
    source: FreezeSource = Field(sa_type=sa.String)
    incident_id: int | None = Field(default=None, index=True)
    active_key: str | None = Field(default=None, unique=True)
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    lifted_by: str | None = None
    lifted_at: datetime | None = ts()
    lift_reason: str = ""
    sync_suspended: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # "<service>/<env>" (Argo CD)
    sync_notes: list[str] = Field(default_factory=list, sa_type=sa.JSON)

    @property
    def active(self) -> bool:
        return self.lifted_at is None
