"""Buttons, modal submissions and message shortcuts of the registry: ack at once, then run."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.actions import Button, Modal, Registry, Shortcut
from bot.context import Invocation
from bot.deps import Deps
from commands._listener import Listener
from commands._runner import CommandRunner

MAX_VALUE = 100  # a button's value in the audit log (ours are ids)


def register(app: AsyncApp, deps: Deps, registry: Registry, runner: CommandRunner) -> None:
    for button in registry.buttons.values():
        app.action(button.id)(_button(deps, button, runner))
    for modal in registry.modals.values():
        app.view(modal.id)(_modal(deps, modal, runner))
    for shortcut in registry.shortcuts.values():
        app.shortcut(shortcut.id)(_shortcut(deps, shortcut, runner))


def _button(deps: Deps, button: Button, runner: CommandRunner) -> Listener:
    async def handle_button(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        value = str(((body.get("actions") or [{}])[0]).get("value") or "")
        inv = Invocation.from_interaction(body, command=button.audit, text=value[:MAX_VALUE])
        runner.start(inv, respond, lambda: button.handler(deps, inv))

    return handle_button


def _modal(deps: Deps, modal: Modal, runner: CommandRunner) -> Listener:
    async def handle_submission(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body["view"]
        errors = await modal.check(deps, view) if modal.check is not None else {}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        text = modal.describe(body) if modal.describe is not None else ""
        inv = Invocation.from_interaction(body, command=modal.audit, text=text)
        runner.start(inv, None, lambda: modal.handler(deps, inv, view))

    return handle_submission


def _shortcut(deps: Deps, shortcut: Shortcut, runner: CommandRunner) -> Listener:
    async def handle_shortcut(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = Invocation.from_interaction(body, command=shortcut.audit)
        runner.start(inv, respond, lambda: shortcut.handler(deps, inv, body))

    return handle_shortcut
