"""The Events API: the inbox middleware (each event id once), typed event listeners, the replay of a
command a crash interrupted, and the last-resort error handler.

Bolt hears every event type the registry lists (one listener: Bolt tries each listener's matcher in
turn, so one matcher is one less for every request) and hands the body to the inbox, which records it
before Slack's 200 and runs the listener registered here for its type: the payload parsed into a
typed event (``bot.context``), then the registry's handler. A payload that does not parse is logged
and dropped (its row is marked failed), never retried forever.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.actions import Event, Registry
from bot.context import REPLAY, MessageDeleted, MessageEdited, Reaction
from bot.deps import Deps
from bot.errors import new_error_id

log = logging.getLogger("cmdcenter.events")

Parse = Callable[[dict[str, Any]], BaseModel | None]


def _reaction(event: dict[str, Any]) -> Reaction | None:
    item = event.get("item") or {}
    if item.get("type") != "message":
        return None  # a reaction to a file: not a timeline matter
    return Reaction(
        user=str(event.get("user") or ""),
        reaction=str(event.get("reaction") or ""),
        channel=str(item.get("channel") or ""),
        ts=str(item.get("ts") or ""),
    )


def _edited(event: dict[str, Any]) -> MessageEdited:
    message = event.get("message") or {}
    return MessageEdited(
        channel=str(event.get("channel") or ""),
        ts=str(message.get("ts") or ""),
        text=str(message.get("text") or ""),
    )


def _deleted(event: dict[str, Any]) -> MessageDeleted:
    ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts") or ""
    return MessageDeleted(channel=str(event.get("channel") or ""), ts=str(ts))


PARSERS: dict[str, Parse] = {
    "reaction_added": _reaction,
    "reaction_removed": _reaction,
    "message/message_changed": _edited,
    "message/message_deleted": _deleted,
}


class RecordRequest(AsyncMiddleware):
    """Records each event in the inbox before Slack gets its 200; a retry or a duplicate is answered
    200 without running anything. (Slash commands are recorded by ``CommandRunner.answer``, which
    knows whether the reply goes in the ack. A middleware class: Bolt calls it directly, without
    building the listener arguments as it does for a middleware function.)"""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        body = req.body
        if body.get("type") == "event_callback" and not await self.deps.inbox.record(body):
            return BoltResponse(status=200, body="")  # a retry or a duplicate: already recorded
        return await next()


def register(app: AsyncApp, deps: Deps, registry: Registry) -> None:
    app.use(RecordRequest(deps))
    for event in registry.events.values():
        deps.inbox.register(event.type, _listener(deps, event))

    async def replay_command(stored: dict[str, Any]) -> None:
        """A command recorded but never started (the process died right after the ack): run it now.
        Its answer still reaches the user through its response_url (valid for 30 minutes)."""
        await app.async_dispatch(AsyncBoltRequest(body={**stored, REPLAY: "1"}, mode="socket_mode"))

    deps.inbox.register("command", replay_command)

    async def handle_event(body: dict[str, Any]) -> None:
        deps.tasks.spawn(deps.inbox.process(body), what=f"event {body.get('event_id')}")

    types = sorted({event.type.partition("/")[0] for event in registry.events.values()})
    app.event(re.compile("^(?:" + "|".join(map(re.escape, types)) + ")$"))(handle_event)

    @app.error
    async def handle_error(error: Exception, body: dict[str, Any]) -> None:
        error_id = new_error_id()
        deps.telemetry.errors.labels("unexpected").inc()
        log.error("unhandled error %s for a %s request", error_id, body.get("type", "?"), exc_info=error)


def _listener(deps: Deps, event: Event) -> Callable[[dict[str, Any]], Awaitable[None]]:
    parse = PARSERS.get(event.type)
    if parse is None:
        raise ValueError(f"no parser for the {event.type} event in commands/events.py")

    async def on_event(body: dict[str, Any]) -> None:
        try:
            typed = parse(body.get("event") or {})
        except ValidationError:
            log.warning("event %s (%s): payload not understood; dropped", body.get("event_id"), event.type)
            return
        if typed is not None:
            await event.handler(deps, typed)

    return on_event
