"""/gonogo: release gates, approvals, policy exceptions, the GO announcement and Deploy on GO.

    parse.py     /gonogo text → a typed command
    windows.py   change windows: allow / deny specs, holidays (pure)
    gates.py     the gate kinds, their config, concurrent evaluation with a timeout each
    sources.py   what the gates read outside: JSON endpoints, GitHub check runs, manifests
    assess.py    the verdict from gate results, votes and exceptions (pure)
    service.py   decisions: decide, re-check, approve, reject, exceptions, status, the card
    deploy.py    Deploy on GO: the deploy tool, the release ledger, the post-deploy update
    actions.py   the card's buttons and the Reject modal (called by ``commands/gonogo_actions.py``)
    commands.py  /gonogo (``freeze`` / ``unfreeze`` belong to ``bot.releases``)
    models.py    the tables (migration 0004)

``register`` is called once by the composition root (``bot/app.py:_register_domains``); calling it
again on the same services does nothing. Invalid gate config stops the start with every problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import Services


def register(svc: Services) -> None:
    from bot.errors import ConfigError
    from bot.gonogo import deploy, gates, service
    from bot.releases import freeze

    if svc.extras.get("gonogo_registered"):
        return
    problems = gates.config_problems(svc.config)
    if problems:
        raise ConfigError(problems)
    svc.extras["gonogo_registered"] = True
    # The no_freeze gate reads the freezes through this seam; the releases area may set its own.
    svc.extras.setdefault("active_freezes", freeze.active_freezes)
    service.register(svc)
    deploy.register(svc)
