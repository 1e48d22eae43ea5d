"""Socket Mode: the same ``App`` over Slack's websocket, with the service routes served beside it.

    web = build_socket_web(app, app_token)  # /healthz, /metrics, POST /hooks/deploy, /api/prodstatus
    uvicorn.run(web, host=..., port=...)    # its lifespan runs the app and the websocket: one event loop

The websocket client is slack_sdk's aiohttp ``SocketModeClient`` (it reconnects by itself after a
``disconnect`` message or a closed connection). Each envelope it receives goes through
:class:`Envelopes`, the Socket Mode twin of ``bot.web.SlackEvents``::

    frame --(not JSON)--> counted, logged (no envelope id: nothing to ack)
      |
    envelope --(over MAX_BODY, not UTF-8, not a Slack payload's shape)--> acked empty, counted, logged
      |
    Bolt (mode "socket_mode"; the retry attempt as X-Slack-Retry-Num) --> acked with Bolt's reply

Guarantees:

- Bolt sees only what HTTP lets through: a frame of at most ``bot.web.MAX_BODY`` bytes whose text
  encodes as UTF-8 (a JSON escape can carry a lone surrogate) and whose payload has the shape
  ``bot.web``'s checks ask for (``malformed_event``, ``malformed_interaction``, ``malformed_command``;
  a slash command's fields are strings, as in a form). A bad envelope is acked empty (refused
  again, an event would only come back), counted as ``cmdcenter_errors_total{kind="malformed"}``
  and logged; nothing in it stops the client. aiohttp closes the connection on a frame over 4 MiB
  or a text frame that is not UTF-8; the client then reconnects.
- Every envelope is acked once: with Bolt's reply where the envelope accepts one (a slash command's
  reply, a modal's errors), empty when Bolt fails, has no listener for it or answers non-200. An
  ack whose connection went while Bolt worked goes out on the next one (Slack takes an ack on any
  connection of the app), within Slack's 3 s.
- The request metrics are HTTP's: ``cmdcenter_requests_total{kind}`` and ``cmdcenter_ack_seconds{kind}``
  with the kind of the envelope type (``event``, ``interactive``, ``command``).
- Shutting down (SIGTERM, handled by uvicorn as in HTTP mode): uvicorn finishes the HTTP requests in
  flight; from then on envelopes are left unacked (Slack sends them again, to another connection),
  the ones in flight get their acks (for at most Slack's 3 s), the websocket closes, and
  ``App.running()`` lets the work started after the acks finish and stops the worker.
- Slack unreachable at start: the connection is retried with backoff; the service routes answer
  meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackClientError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from starlette.applications import Starlette

from bot.app import App
from bot.errors import new_error_id
from bot.telemetry import Telemetry
from bot.web import MAX_BODY, malformed_command, malformed_event, malformed_interaction, service_routes

log = logging.getLogger(__name__)

SLACK_ACK_DEADLINE = 3.0
"""Seconds Slack waits for an envelope's ack: at shutdown, acks in flight are waited for this long."""
PING_INTERVAL = 10.0
"""Seconds between the client's pings (Bolt's ``AsyncSocketModeHandler`` default)."""
KINDS = {"events_api": "event", "interactive": "interactive", "slash_commands": "command"}
"""Envelope type -> the ``kind`` label HTTP gives the same payload in the request metrics."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def build_socket_web(app: App, app_token: str) -> Starlette:
    """Socket Mode: the service routes, and a lifespan that runs ``app`` and its websocket to Slack."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with app.running():
            connection = SocketModeConnection(app, app_token)
            connection.start()
            try:
                yield
            finally:
                await connection.stop()

    return Starlette(routes=service_routes(app.deps), lifespan=lifespan)


class SocketModeConnection:
    """The websocket of one app: opened in the background by :meth:`start` (on the running event
    loop: the client starts tasks as it is built), closed gracefully by :meth:`stop`."""

    def __init__(self, app: App, app_token: str) -> None:
        self.app = app
        self.app_token = app_token
        self.envelopes = Envelopes(app)
        self.client: _Client | None = None
        self._connecting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.client = _Client(
            self.envelopes,
            app_token=self.app_token,
            web_client=self.app.slack_client,
            logger=logging.getLogger("cmdcenter.socket_mode.client"),
            ping_interval=PING_INTERVAL,
        )
        self._connecting = asyncio.create_task(_connect(self.client), name="socket-mode-connect")

    async def stop(self) -> None:
        """No envelope handled from now on; those in flight acked (at most ``SLACK_ACK_DEADLINE``);
        the websocket closed."""
        self.envelopes.accepting = False
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self.client is None:
            return
        if self.client.in_flight:
            await asyncio.wait(set(self.client.in_flight), timeout=SLACK_ACK_DEADLINE)
        await self.client.close()  # type: ignore[no-untyped-call]


async def _connect(client: SocketModeClient) -> None:
    """Ask Slack for a websocket URL until it gives one (backoff up to 30 s), then connect (the
    client retries that by itself)."""
    delay, failures = 0.05, 0
    while True:
        try:
            client.wss_uri = await client.issue_new_wss_url()
            break
        except (OSError, aiohttp.ClientError, SlackClientError) as exc:
            failures += 1
            level = logging.WARNING if failures > 5 else logging.INFO  # the first ones: still starting
            log.log(level, "Socket Mode: no connection to Slack yet (%s); again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
    await client.connect()  # type: ignore[no-untyped-call]


class _Client(SocketModeClient):
    """slack_sdk's aiohttp client, whose envelopes go to :class:`Envelopes` (``hello`` and
    ``disconnect`` messages are the client's own business, as before). Each message is handled in a
    task of its own, kept referenced until it ends; ``in_flight`` has the envelopes' (a shutdown
    waits for their acks)."""

    def __init__(self, envelopes: Envelopes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.envelopes = envelopes
        self.in_flight: set[asyncio.Future[None]] = set()
        self._others: set[asyncio.Future[None]] = set()

    async def process_message(self) -> None:
        raw = await self.message_queue.get()
        if raw is None:
            return
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.envelopes.unreadable(raw)
            return
        handling = asyncio.ensure_future(self.run_message_listeners(message, raw))
        running = self.in_flight if "envelope_id" in message else self._others
        running.add(handling)
        handling.add_done_callback(lambda done: self._done(running, done))

    async def run_message_listeners(self, message: dict[str, Any], raw_message: str) -> None:
        if "envelope_id" in message:
            await self.envelopes.handle(self, message, raw_message)
        else:
            await super().run_message_listeners(message, raw_message)

    def _done(self, running: set[asyncio.Future[None]], handling: asyncio.Future[None]) -> None:
        running.discard(handling)
        if not handling.cancelled() and handling.exception() is not None:
            self.envelopes.telemetry.errors.labels("unexpected").inc()
            log.error(
                "error %s handling a Socket Mode message", new_error_id(), exc_info=handling.exception()
            )


class Envelopes:
    """Each envelope checked as ``bot.web.SlackEvents`` checks a request, the good ones handed to
    Bolt, every one acked (see the module's guarantees)."""

    def __init__(self, app: App) -> None:
        self.bolt = app.bolt
        self.telemetry: Telemetry = app.deps.telemetry
        self.accepting = True

    def unreadable(self, raw: str) -> None:
        self.telemetry.errors.labels("malformed").inc()
        log.warning("Socket Mode: dropped a frame that is not a JSON object: %r", raw[:80])

    async def handle(self, client: SocketModeClient, message: dict[str, Any], raw: str) -> None:
        if not self.accepting:
            return  # shutting down: Slack sends it again, to another connection
        started = time.perf_counter()
        deadline = time.monotonic() + SLACK_ACK_DEADLINE
        envelope_id = message["envelope_id"]
        kind = KINDS.get(str(message.get("type")), "unknown")
        requests, ack_seconds = self.telemetry.request_metrics(kind)
        requests.inc()
        problem = envelope_problem(message, raw)
        if problem is not None:
            self.telemetry.errors.labels("malformed").inc()
            log.warning("Socket Mode: refused a %s envelope %s: %s", kind, envelope_id, problem)
            await _ack(client, envelope_id, None, deadline=deadline)
            return
        reply = await self._dispatch(message, kind)
        accepted = reply if message.get("accepts_response_payload") else None
        await _ack(client, envelope_id, accepted, deadline=deadline)
        ack_seconds.observe(time.perf_counter() - started)

    async def _dispatch(self, message: dict[str, Any], kind: str) -> dict[str, Any] | None:
        """Bolt's answer to the payload, as the ack's payload (None: an empty ack)."""
        request = AsyncBoltRequest(
            mode="socket_mode", body=message["payload"], headers=_retry_headers(message)
        )
        try:
            response = await self.bolt.async_dispatch(request)
        except Exception:  # Bolt choked on a payload we did not foresee: an empty ack, as HTTP's 400
            error_id = new_error_id()
            self.telemetry.errors.labels("unexpected").inc()
            log.exception("error %s handling a %s envelope", error_id, kind)
            return None
        if response.status != 200:
            log.info(
                "Socket Mode: Bolt answered %d to a %s envelope: %s", response.status, kind, response.body
            )
            return None
        return _ack_payload(response)


def envelope_problem(message: dict[str, Any], raw: str) -> str | None:
    """Why an envelope must not reach Bolt (what ``bot.web`` answers 413 or 400), or None."""
    size = len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY:
        return "payload too large"
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "payload must be a JSON object"
    if _SURROGATE_ESCAPE.search(raw) and not _encodes_as_utf8(payload):
        return "not UTF-8"
    kind = message.get("type")
    if kind == "events_api":
        return malformed_event(payload)
    if kind == "interactive":
        return malformed_interaction(payload)
    if kind == "slash_commands":
        if not all(isinstance(value, str) for value in payload.values()):
            return "slash command fields must be strings"
        return None if "command" not in payload else malformed_command(payload["command"])
    return f"unknown envelope type {kind!r}"


def _encodes_as_utf8(payload: dict[str, Any]) -> bool:
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _retry_headers(message: dict[str, Any]) -> dict[str, str | Sequence[str]] | None:
    """What HTTP would carry as headers: Slack's retry attempt and reason (events)."""
    headers: dict[str, str | Sequence[str]] = {}
    if message.get("retry_attempt") is not None:
        headers["x-slack-retry-num"] = str(message["retry_attempt"])
    if message.get("retry_reason") is not None:
        headers["x-slack-retry-reason"] = str(message["retry_reason"])
    return headers or None


def _ack_payload(response: BoltResponse) -> dict[str, Any] | None:
    """Bolt's reply as an ack's payload, as Bolt's own Socket Mode handler makes it."""
    if not response.body:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    if content_type.startswith("application/json"):
        body = json.loads(response.body)
        return body if isinstance(body, dict) else None
    return {"text": response.body}


async def _ack(
    client: SocketModeClient, envelope_id: object, payload: dict[str, Any] | None, *, deadline: float
) -> None:
    """Send the ack; if the connection went meanwhile, send it on the next one (Slack takes an ack
    on any connection of the app) until ``deadline`` (Slack's time for it: after that, an event comes
    again and is answered from the inbox; a command was shown as failed)."""
    frame: dict[str, Any] = {"envelope_id": envelope_id}
    if payload:
        frame["payload"] = payload
    text = json.dumps(frame)
    while True:
        try:
            await client.send_message(text)
            return
        except (ConnectionError, aiohttp.ClientError) as exc:
            if client.closed or time.monotonic() >= deadline:
                log.warning("Socket Mode: envelope %s not acked (%s)", envelope_id, exc)
                return
        await asyncio.sleep(0.05)
