"""/incident, the incident modals and buttons: thin listeners over ``bot.incidents``."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.context import Invocation
from bot.deps import Deps
from bot.incidents import commands as incidents
from bot.incidents import statuspage, timeline
from commands._runner import CommandRunner


def register_command(app: AsyncApp, deps: Deps, runner: CommandRunner) -> None:
    @app.command("/incident")
    async def handle_incident(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        inv = Invocation.from_command(body)
        await runner.answer(inv, ack, respond, lambda: incidents.handle(deps, inv), body=body)


def register(app: AsyncApp, deps: Deps, runner: CommandRunner) -> None:
    @app.view(incidents.DECLARE_VIEW)
    async def handle_declare_view(ack: AsyncAck, body: dict[str, Any]) -> None:
        errors = incidents.validate_declare_view(body["view"])
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        inv = Invocation.from_interaction(body, command="/incident declare (modal)")
        runner.start(inv, None, lambda: incidents.declare_from_view(deps, body["view"], inv))

    @app.action(incidents.RETRY_ACTION)
    async def handle_retry(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = Invocation.from_interaction(body, command="/incident retry")
        value = str(body["actions"][0].get("value", ""))
        runner.start(inv, respond, lambda: incidents.retry_step(deps, value, inv))

    @app.shortcut(incidents.TIMELINE_SHORTCUT)
    async def handle_timeline_shortcut(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = Invocation.from_interaction(body, command="timeline shortcut")
        runner.start(inv, respond, lambda: timeline.shortcut_capture(deps, body))

    @app.action(statuspage.PUBLISH_ACTION)
    async def handle_statuspage_publish(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = Invocation.from_interaction(body, command="statuspage publish")
        draft_id = int(body["actions"][0].get("value") or 0)
        runner.start(inv, respond, lambda: statuspage.publish(deps, draft_id, inv))

    @app.action(statuspage.EDIT_ACTION)
    async def handle_statuspage_edit(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        inv = Invocation.from_interaction(body, command="statuspage edit")
        draft_id = int(body["actions"][0].get("value") or 0)
        runner.start(inv, respond, lambda: statuspage.open_editor(deps, draft_id, inv))

    @app.view(statuspage.EDIT_VIEW)
    async def handle_statuspage_saved(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        inv = Invocation.from_interaction(body, command="statuspage edit (modal)")
        runner.start(inv, None, lambda: statuspage.save_edit(deps, body["view"], inv))
