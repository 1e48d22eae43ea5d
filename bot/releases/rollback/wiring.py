"""How /rollback plugs into the app: its card's steps, the run, the health checks and the watchdog,
registered by ``bot.releases.wiring``. The package's ``__init__`` imports nothing, so that importing
one module of it (the pure ``parse``, say) never loads the rest."""

from __future__ import annotations

from functools import partial

from bot.deps import Deps
from bot.releases.rollback import card, health, run


def wire(deps: Deps) -> None:
    """The card's post and update steps, the run, the health checks and the watchdog."""
    card.ROLLBACK_CARD.wire(deps, on_post_failure=partial(run.card_failed, deps))
    deps.outbox.register(
        run.EXECUTE, partial(run.execute, deps), on_failure=partial(run.execute_failed, deps)
    )
    deps.outbox.register(health.HEALTH, partial(health.check, deps))
    deps.jobs.register(run.WATCHDOG, partial(run.watchdog, deps))
