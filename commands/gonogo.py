"""/gonogo: thin listener over ``bot.releases.commands.handle_gonogo`` (sub-commands listed there)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.context import Invocation
from bot.deps import Deps
from bot.releases import commands as releases
from commands._runner import CommandRunner


def register_command(app: AsyncApp, deps: Deps, runner: CommandRunner) -> None:
    @app.command("/gonogo")
    async def handle_gonogo(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        inv = Invocation.from_command(body)
        await runner.answer(inv, ack, respond, lambda: releases.handle_gonogo(deps, inv), body=body)
