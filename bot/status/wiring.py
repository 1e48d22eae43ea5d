"""How the area plugs into the app: the scheduled reports, registered once by the composition root
(``bot.app``). The package's ``__init__`` imports nothing, so that importing one module of the area
never loads (or cycles through) the rest."""

from __future__ import annotations

from bot.deps import Deps
from bot.status import digests


def wire(deps: Deps) -> None:
    """Called once by the composition root: the scheduled reports."""
    digests.wire(deps)
