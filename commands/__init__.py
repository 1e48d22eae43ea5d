"""Thin Slack listeners: ack, parse, call a service, render, respond. One module per command."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from commands import events, gonogo, gonogo_actions, incident, prodstatus, rollback
from commands._runner import CommandRunner

COMMANDS = ("/incident", "/gonogo", "/rollback", "/prodstatus")


def register_all(app: AsyncApp, deps: Deps) -> None:
    runner = CommandRunner(deps)
    # Bolt tries the listeners in this order, building each matcher's arguments: the events (one
    # listener; reactions come in bursts) and the four slash commands first, then buttons and modals.
    events.register(app, deps, runner)
    for module in (incident, gonogo, rollback, prodstatus):
        module.register_command(app, deps, runner)
    incident.register(app, deps, runner)
    gonogo_actions.register(app, deps, runner)
    rollback.register(app, deps, runner)
