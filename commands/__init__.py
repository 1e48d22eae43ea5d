"""Thin Slack listeners: ack, parse, call, render, respond. What they listen for is exactly what the
action registry (``bot.actions.REGISTRY``) lists:

    slash.py         the slash commands (their text is dispatched by the registry)
    interactions.py  buttons, modal submissions, message shortcuts
    events.py        the Events API: the inbox middleware, typed event listeners, the error handler
    _runner.py       answering: in the ack or through the response_url; audit rows; errors → replies
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.actions import REGISTRY, Registry
from bot.deps import Deps
from commands import events, interactions, slash
from commands._runner import CommandRunner


def register_all(app: AsyncApp, deps: Deps, registry: Registry = REGISTRY) -> None:
    runner = CommandRunner(deps)
    # Bolt tries the listeners in this order, building each matcher's arguments: the events (one
    # listener; reactions come in bursts) and the slash commands first, then buttons and modals.
    events.register(app, deps, registry)
    slash.register(app, deps, registry, runner)
    interactions.register(app, deps, registry, runner)
