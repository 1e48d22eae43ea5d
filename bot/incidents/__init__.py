"""Incidents: declare, status, severity, roles, timeline, reminders, paging, Statuspage, post-mortem."""

from __future__ import annotations

from bot.deps import Deps
from bot.incidents import paging, postmortem, reminders, statuspage, steps


def wire(deps: Deps) -> None:
    """Called once by the composition root (``bot.app``): outbox steps, jobs and lifecycle hooks."""
    steps.register(deps)
    reminders.register(deps)
    postmortem.register(deps)
    paging.register(deps)
    statuspage.register(deps)
