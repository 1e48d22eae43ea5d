"""Incidents, their timelines, post-mortem action items and public Statuspage drafts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.config import Severity
from bot.db.models._types import UTCDateTime, ts

IncidentStatus = Literal["investigating", "identified", "monitoring", "resolved"]
INCIDENT_STATUSES: tuple[IncidentStatus, ...] = ("investigating", "identified", "monitoring", "resolved")
ActionItemStatus = Literal["open", "done"]
DraftState = Literal["draft", "publishing", "published", "superseded"]


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    title: str
    severity: Severity = Field(index=True, sa_type=sa.String)
    service: str | None = Field(default=None, index=True)
    description: str = ""
    status: IncidentStatus = Field(default="investigating", index=True, sa_type=sa.String)
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
    acknowledged_at: datetime | None = ts()
    identified_at: datetime | None = ts()
    mitigated_at: datetime | None = ts()
    resolved_at: datetime | None = ts()
    last_update_at: datetime | None = ts()
    statuspage_incident_id: str | None = None
    escalation_level: int = 1
    paged_at: datetime | None = ts()

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


class ActionItem(SQLModel, table=True):
    """A post-mortem follow-up: owner, due date, status."""

    __tablename__ = "action_items"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    owner: str
    due: date
    text: str
    status: ActionItemStatus = Field(default="open", sa_type=sa.String)
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)


class StatuspageDraft(SQLModel, table=True):
    """A public Statuspage update prepared by the bot, published by an allowed person."""

    __tablename__ = "statuspage_drafts"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    status: IncidentStatus = Field(sa_type=sa.String)  # the public status it announces
    body: str
    state: DraftState = Field(default="draft", sa_type=sa.String)
    channel_id: str | None = None
    message_ts: str | None = None
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    published_by: str | None = None
    published_at: datetime | None = ts()
