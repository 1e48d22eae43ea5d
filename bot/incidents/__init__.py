"""Incidents: declare, status, severity, roles, timeline, reminders, paging, Statuspage, post-mortem."""

from __future__ import annotations

from bot.deps import Deps
from bot.incidents import failures, paging, postmortem, reminders, statuspage, steps, timeline_posts


def wire(deps: Deps) -> None:
    """Called once by the composition root (``bot.app``): outbox steps, jobs and lifecycle hooks."""
    failures.register(deps)
    steps.register(deps)
    timeline_posts.register(deps)
    reminders.register(deps)
    postmortem.register(deps)
    paging.register(deps)
    statuspage.register(deps)
