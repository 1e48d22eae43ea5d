"""The slash commands of the registry: record, ack (with the reply when it is ready), dispatch."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.actions import Registry
from bot.context import Invocation
from bot.deps import Deps
from commands._listener import Listener
from commands._runner import CommandRunner


def register(app: AsyncApp, deps: Deps, registry: Registry, runner: CommandRunner) -> None:
    # The inbox asks the registry which commands only read, and which may run again after a crash.
    deps.inbox.read_only(registry.is_read_only)
    deps.inbox.resumable(registry.is_resumable)
    for command in registry.commands.values():
        app.command(command.name)(_listener(deps, registry, runner))


def _listener(deps: Deps, registry: Registry, runner: CommandRunner) -> Listener:
    async def handle_command(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        inv = Invocation.from_command(body)
        await runner.answer(inv, ack, respond, lambda: registry.run_command(deps, inv), body=body)

    return handle_command
