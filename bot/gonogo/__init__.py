"""/gonogo: release gates, approvals, policy exceptions, the GO announcement and Deploy on GO.

    parse.py     /gonogo text → a typed command
    windows.py   change windows: allow / deny specs, holidays (pure)
    gates.py     the gate kinds, their config, concurrent evaluation with a timeout each
    assess.py    the verdict from gate results, votes and exceptions (pure)
    service.py   decisions: decide, re-check, approve, reject, exceptions, status, the card
    deploy.py    Deploy on GO: the deploy tool, the release ledger, the post-deploy update
    actions.py   the card's buttons and the Reject modal (called by ``commands/gonogo_actions.py``)
    commands.py  /gonogo (``freeze`` / ``unfreeze`` belong to ``bot.releases``)
    models.py    the tables (migration 0004)

What the gates read outside (JSON endpoints, GitHub check runs, manifests, commands) comes through
the ``GateSources`` port (``bot.adapters.gate_sources``).
"""

from __future__ import annotations

from bot.deps import Deps
from bot.errors import ConfigError
from bot.gonogo import deploy, gates, service


def wire(deps: Deps) -> None:
    """Called once by the composition root; invalid gate config stops the start with every problem."""
    problems = gates.config_problems(deps.config)
    if problems:
        raise ConfigError(problems)
    service.register(deps)
    deploy.register(deps)
