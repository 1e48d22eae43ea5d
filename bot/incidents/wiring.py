"""How the area plugs into the app: its outbox handlers, jobs and lifecycle hooks, registered once
by the composition root (``bot.app``). The package's ``__init__`` imports nothing, so that
importing one module of the area never loads (or cycles through) the rest."""

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
