"""How the area plugs into the app: its outbox handlers, jobs and lifecycle hooks, registered once
by the composition root (``bot.app``). The package's ``__init__`` imports nothing, so that
importing one module of the area never loads (or cycles through) the rest."""

from __future__ import annotations

from bot.deps import Deps
from bot.releases import freeze
from bot.releases.rollback import wiring as rollback


def wire(deps: Deps) -> None:
    """Called once by the composition root (``bot.app``)."""
    rollback.wire(deps)
    freeze.register(deps)
