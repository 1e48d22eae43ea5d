"""Extension points of the incident lifecycle.

Other areas (paging, Statuspage, deploy freeze) register a hook; the incident service calls every hook
inside the transaction that changes the incident, so the effects they record (outbox items, freezes)
commit or roll back with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Incident

Hook = Callable[[AsyncSession, Incident], Awaitable[None]]
SeverityHook = Callable[[AsyncSession, Incident, str], Awaitable[None]]  # old severity


@dataclass
class IncidentHooks:
    declared: list[Hook] = field(default_factory=list)
    channel_opened: list[Hook] = field(default_factory=list)
    status_changed: list[Hook] = field(default_factory=list)
    severity_changed: list[SeverityHook] = field(default_factory=list)
    resolved: list[Hook] = field(default_factory=list)

    async def run(self, name: str, session: AsyncSession, incident: Incident) -> None:
        for hook in getattr(self, name):
            await hook(session, incident)

    async def run_severity(self, session: AsyncSession, incident: Incident, old: str) -> None:
        for hook in self.severity_changed:
            await hook(session, incident, old)
