"""The GO/NO-GO card's buttons (Approve, Reject, Re-check, Deploy) and the Reject modal: thin
listeners over ``bot.gonogo.actions``."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.deps import Deps
from bot.gonogo import actions
from bot.gonogo.actions import Action
from commands._runner import CommandRunner


def register(app: AsyncApp, deps: Deps, runner: CommandRunner) -> None:
    @app.action(Action.APPROVE.value)
    async def handle_approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = actions.invocation(body, command="/gonogo approve")
        runner.start(inv, respond, lambda: actions.approve(deps, inv))

    @app.action(Action.REJECT.value)
    async def handle_reject(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = actions.invocation(body, command="/gonogo reject (form)")
        runner.start(inv, respond, lambda: actions.open_reject(deps, inv))

    @app.view(Action.REJECT_VIEW.value)
    async def handle_reject_reason(ack: AsyncAck, body: dict[str, Any]) -> None:
        errors = await actions.reject_errors(deps, body["view"])
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        inv = actions.reject_invocation(body)
        runner.start(inv, None, lambda: actions.reject(deps, inv, body["view"]))

    @app.action(Action.RECHECK.value)
    async def handle_recheck(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = actions.invocation(body, command="/gonogo recheck")
        runner.start(inv, respond, lambda: actions.recheck(deps, inv))

    @app.action(Action.DEPLOY.value)
    async def handle_deploy(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = actions.invocation(body, command="/gonogo deploy")
        runner.start(inv, respond, lambda: actions.deploy(deps, inv))
