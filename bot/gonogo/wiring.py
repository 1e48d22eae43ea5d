"""How the area plugs into the app: its outbox handlers, jobs and lifecycle hooks, registered once
by the composition root (``bot.app``). The package's ``__init__`` imports nothing, so that
importing one module of the area never loads (or cycles through) the rest."""

from __future__ import annotations

from bot.deps import Deps
from bot.errors import ConfigError
from bot.gonogo import card, decisions, deploy, exceptions, gate_specs


def wire(deps: Deps) -> None:
    """Called once by the composition root; invalid gate config stops the start with every problem."""
    problems = gate_specs.config_problems(deps.config)
    if problems:
        raise ConfigError(problems)
    card.GONOGO_CARD.wire(deps)
    decisions.register(deps)
    exceptions.register(deps)
    deploy.register(deps)
