"""What a ``/prodstatus`` report is made of: the data ``gather_report`` returns and templates render.

Plain data, nothing else: every model is a frozen pydantic model (a report cannot be changed once
built), and nothing here reaches a port, the database or Slack. A ``SourceStatus`` with ``ok=False``
is a source that failed or timed out: its level is UNKNOWN, never OK. ``LocalState`` is what the
caller loads from cmdcenter's own database and hands to the gatherer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["HEALTHY", "DEGRADED", "UNHEALTHY", "UNKNOWN"]
FindingLevel = Literal["warn", "critical"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Finding(_Model):
    """Something that needs attention, with the figure that shows it and what to do about it."""

    service: str
    source: str  # e.g. "prometheus:checkout:p95", "health:checkout", "statuspage"
    level: FindingLevel
    metric: str  # e.g. "p95", "health check", "statuspage"
    figure: str  # e.g. "p95 412 ms (warn 300 ms)"
    reason: str  # e.g. "at or above the warn threshold of 300 ms"
    action: str = ""
    runbook_url: str | None = None
    environment: str | None = None  # the environment the figure is about, when known
    value: float | None = None
    unit: str = ""
    change_pct: float | None = None  # set when a baseline comparison raised the finding
    correlation: str | None = None  # e.g. "p95 up 40 % since v1.4.2 was deployed 25 min ago"


class ServiceStatus(_Model):
    name: str
    level: Level
    figures: list[str] = Field(default_factory=list)  # e.g. ["health 200 in 34 ms", "p95 212 ms"]
    findings: list[Finding] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)  # names of this service's failed sources
    owner_team: str = ""
    runbook_url: str | None = None


class SourceStatus(_Model):
    """One thing the gatherer asked; ``ok=False`` means UNKNOWN (it failed or timed out)."""

    name: str  # "health:checkout", "prometheus:checkout:p95", "pagerduty", "statuspage", "ledger"
    ok: bool
    reason: str = ""  # why it is UNKNOWN: exception class + safe message, or "timed out after 1.0 s"
    duration_ms: float = 0.0
    service: str | None = None

    @property
    def level(self) -> Literal["OK", "UNKNOWN"]:
        return "OK" if self.ok else "UNKNOWN"


class DeployEvent(_Model):
    service: str
    environment: str
    version: str
    deployed_at: datetime
    actor: str = ""


class OpenIncident(_Model):
    id: str
    title: str
    severity: str  # "sev1".."sev4" for cmdcenter incidents; the urgency ("high") for PagerDuty
    service: str | None = None
    source: Literal["cmdcenter", "pagerduty"] = "cmdcenter"
    url: str | None = None


class Freeze(_Model):
    service: str | None  # None: everything is frozen
    reason: str
    since: datetime


class LocalState(_Model):
    """What cmdcenter's own database knows, loaded by the caller (``load_local``)."""

    open_incidents: list[OpenIncident] = Field(default_factory=list)
    deploys: list[DeployEvent] = Field(default_factory=list)  # the release ledger, last 7 days
    freezes: list[Freeze] = Field(default_factory=list)


class StatusReport(_Model):
    generated_at: datetime
    level: Level
    services: list[ServiceStatus]
    attention: list[Finding]  # every finding, critical first
    recent_changes: list[DeployEvent]  # newest first
    freezes: list[Freeze]
    open_incidents: list[OpenIncident]
    sources: list[SourceStatus]
    scope: str | None = None
    duration_ms: float = 0.0
