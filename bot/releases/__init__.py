"""Releases: the release ledger, /rollback, deploy freezes and the deploy webhook's ledger entries."""

from __future__ import annotations

from bot.deps import Deps
from bot.releases import freeze, rollback


def wire(deps: Deps) -> None:
    """Called once by the composition root (``bot.app``)."""
    rollback.register(deps)
    freeze.register(deps)
