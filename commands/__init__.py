"""Thin Slack listeners: ack, parse, call a service, render, respond. One module per command."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.app import Services
from commands import events, gonogo, gonogo_actions, incident, prodstatus, rollback
from commands._runner import CommandRunner

COMMANDS = ("/incident", "/gonogo", "/rollback", "/prodstatus")


def register_all(app: AsyncApp, services: Services) -> None:
    runner = CommandRunner(services)
    # Bolt tries the listeners in this order, building each matcher's arguments: the events (one
    # listener; reactions come in bursts) and the four slash commands first, then buttons and modals.
    events.register(app, services, runner)
    for module in (incident, gonogo, rollback, prodstatus):
        module.register_command(app, services, runner)
    incident.register(app, services, runner)
    gonogo_actions.register(app, services, runner)
    rollback.register(app, services, runner)
