"""/prodstatus: thin listener over ``bot.status.prodstatus``."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.context import Invocation
from bot.deps import Deps
from bot.status import prodstatus
from commands._runner import CommandRunner


def register_command(app: AsyncApp, deps: Deps, runner: CommandRunner) -> None:
    @app.command("/prodstatus")
    async def handle_prodstatus(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        inv = Invocation.from_command(body)
        await runner.answer(inv, ack, respond, lambda: prodstatus.handle(deps, inv), body=body)
