"""/rollback and its Confirm / Cancel buttons: thin listeners over ``bot.releases``."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.context import Invocation
from bot.deps import Deps
from bot.releases import commands as releases
from commands._runner import CommandRunner


def register_command(app: AsyncApp, deps: Deps, runner: CommandRunner) -> None:
    @app.command("/rollback")
    async def handle_rollback(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        inv = Invocation.from_command(body)
        await runner.answer(inv, ack, respond, lambda: releases.handle_rollback(deps, inv), body=body)


def register(app: AsyncApp, deps: Deps, runner: CommandRunner) -> None:
    @app.action(releases.CONFIRM_ACTION)
    async def handle_confirm(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = releases.button_invocation(body, command="/rollback confirm")
        runner.start(inv, respond, lambda: releases.confirm_rollback(deps, inv))

    @app.action(releases.CANCEL_ACTION)
    async def handle_cancel(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = releases.button_invocation(body, command="/rollback cancel")
        runner.start(inv, respond, lambda: releases.cancel_rollback(deps, inv))
