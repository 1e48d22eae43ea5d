"""The dependencies of cmdcenter's areas, typed: what a handler or a service may use.

Built once per app by the composition root (``bot.app.build``) and passed down; the areas import this
module, never ``bot.app``. Every field is typed, so mypy checks every use: there is no bag of
extras. Vendor ports are ``None`` when their integration is not configured.

What other areas add to an incident's life (a freeze on declare, a page, a Statuspage draft, a line
on ``/incident show``) is registered in ``IncidentExtensions``: the incidents area calls those hooks
inside the transaction that changes the incident, and never imports the areas that add them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.access import Access
from bot.clock import Clock
from bot.config import Config
from bot.db.batch import GroupCommit, SharedRead
from bot.db.engine import Database
from bot.db.models import Incident, IncidentSummary, TimelineEntry
from bot.db.store import read_open_incidents
from bot.inbox import Inbox
from bot.jobs import Jobs
from bot.locks import KeyedLocks
from bot.message_reads import MessageReads
from bot.outbox import Outbox
from bot.ports import (
    AutoSyncControl,
    Chat,
    DeployTool,
    GateSources,
    HealthProbe,
    Metrics,
    OnCallDirectory,
    Pager,
    StatusPage,
)
from bot.render import Mrkdwn, Renderer
from bot.settings import Settings
from bot.tasks import Background
from bot.telemetry import Telemetry

Hook = Callable[[AsyncSession, Incident], Awaitable[None]]
SeverityHook = Callable[[AsyncSession, Incident, str], Awaitable[None]]  # the old severity
Moment = Literal["declared", "channel_opened", "status_changed", "resolved"]  # (and severity_changed)
CardLine = Callable[[Incident], Awaitable[Mrkdwn | str]]  # a line on /incident show ("" for none)
# A message captured for a timeline: its incident and the entry's column values.
Capture = tuple[Incident, dict[str, Any]]
Captures = GroupCommit[Capture, TimelineEntry | None]

CHANNEL_CACHE = 1000  # incident channels remembered by timeline capture


@dataclass
class IncidentExtensions:
    """Hooks run in the transaction that changes an incident, and lines for its ``/incident show``."""

    declared: list[Hook] = field(default_factory=list)
    channel_opened: list[Hook] = field(default_factory=list)
    status_changed: list[Hook] = field(default_factory=list)
    severity_changed: list[SeverityHook] = field(default_factory=list)
    resolved: list[Hook] = field(default_factory=list)
    card_lines: dict[str, CardLine] = field(default_factory=dict)  # by name: a line each

    async def run(self, moment: Moment, session: AsyncSession, incident: Incident) -> None:
        hooks: list[Hook] = getattr(self, moment)
        for hook in hooks:
            await hook(session, incident)

    async def run_severity(self, session: AsyncSession, incident: Incident, old: str) -> None:
        for hook in self.severity_changed:
            await hook(session, incident, old)


@dataclass
class Deps:
    """Everything an area may use; built once per app by ``bot.app.build``."""

    settings: Settings
    config: Config
    db: Database
    chat: Chat
    renderer: Renderer
    clock: Clock
    telemetry: Telemetry
    outbox: Outbox
    jobs: Jobs
    inbox: Inbox
    gate_sources: GateSources
    health: HealthProbe
    timeline_captures: Captures  # captures arriving together share one transaction (incidents.timeline)
    pager: Pager | None = None
    oncall: OnCallDirectory | None = None
    statuspage: StatusPage | None = None
    deploy: DeployTool | None = None
    auto_sync: AutoSyncControl | None = None  # Argo CD automated sync, suspended by freezes
    metrics: Metrics | None = None
    incidents: IncidentExtensions = field(default_factory=IncidentExtensions)
    tasks: Background = field(default_factory=Background)  # work beside the worker; drained at shutdown
    locks: KeyedLocks = field(default_factory=KeyedLocks)  # per-key ordering within this process
    # Incident channels whose timeline thread exists: the fields a capture uses never change.
    timeline_channels: dict[str, Incident] = field(default_factory=dict)
    access: Access = field(init=False)
    message_reads: MessageReads = field(init=False)  # reads of Slack messages, coalesced per channel
    _open_incidents: SharedRead[tuple[IncidentSummary, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.access = Access(self.config, self.chat)
        self.message_reads = MessageReads(self.chat)
        self._open_incidents = SharedRead(self.db, read_open_incidents)

    async def open_incidents(self) -> tuple[IncidentSummary, ...]:
        """The open incidents, oldest first. Callers at the same moment share one query (a burst of
        ``/incident list``, the gates of several go/no-go runs, /prodstatus)."""
        if self._open_incidents.db is not self.db:  # a test swapped the database for one that is down
            self._open_incidents = SharedRead(self.db, read_open_incidents)
        return await self._open_incidents.get()

    def remember_channel(self, channel: str, incident: Incident) -> None:
        if len(self.timeline_channels) >= CHANNEL_CACHE:
            self.timeline_channels.clear()
        self.timeline_channels[channel] = incident
