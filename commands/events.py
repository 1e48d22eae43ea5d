"""Events API plumbing: the inbox middleware (each event id once), event listeners, the last-resort
error handler."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.context import REPLAY
from bot.deps import Deps
from bot.errors import new_error_id
from commands._runner import CommandRunner

log = logging.getLogger("cmdcenter.events")

EVENTS = ("reaction_added", "reaction_removed", "message", "app_home_opened")


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


def register(app: AsyncApp, deps: Deps, runner: CommandRunner) -> None:
    app.use(RecordRequest(deps))

    async def replay_command(stored: dict[str, Any]) -> None:
        """A command recorded but never started (the process died right after the ack): run it now.
        Its answer still reaches the user through its response_url (valid for 30 minutes)."""
        await app.async_dispatch(AsyncBoltRequest(body={**stored, REPLAY: "1"}, mode="socket_mode"))

    deps.inbox.register("command", replay_command)

    async def handle_event(body: dict[str, Any]) -> None:
        deps.tasks.spawn(deps.inbox.process(body), what=f"event {body.get('event_id')}")

    # One listener for every event type handled: Bolt tries its listeners' matchers in turn (each
    # costs a build of the listener arguments), so one matcher here is one less for every request.
    app.event(re.compile("^(?:" + "|".join(EVENTS) + ")$"))(handle_event)

    @app.error
    async def handle_error(error: Exception, body: dict[str, Any]) -> None:
        error_id = new_error_id()
        deps.telemetry.errors.labels("unexpected").inc()
        log.error("unhandled error %s for a %s request", error_id, body.get("type", "?"), exc_info=error)
