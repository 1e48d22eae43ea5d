"""Socket Mode, Slack's side: ``apps.connections.open`` URLs, the websocket the app connects to,
envelopes out, acks in, ``disconnect`` messages and redeliveries.

The protocol (https://docs.slack.dev/apis/events-api/using-socket-mode/, and what slack_sdk's
Socket Mode clients and Bolt's handlers read and write)::

    app                                     emulator
    POST /api/apps.connections.open   -->   Authorization: Bearer xapp-…
                                      <--   {"ok": true, "url": "ws://127.0.0.1:PORT/link/?ticket=…&app_id=A0001"}
    websocket to that URL             -->
                                      <--   {"type": "hello", "num_connections": n, "debug_info": {…},
                                             "connection_info": {"app_id": "A0001"}}
                                      <--   {"envelope_id": "<uuid>", "payload": {…},
                                             "type": "events_api" | "slash_commands" | "interactive",
                                             "accepts_response_payload": bool,
                                             "retry_attempt": 0, "retry_reason": ""}  (retry_*: events_api)
    {"envelope_id": "<uuid>",         -->   the ack; a payload only where the envelope accepts one
     "payload": {…}}
                                      <--   {"type": "disconnect", "reason": "refresh_requested" | "warning"
                                             | "link_disabled" | "too_many_websockets", "debug_info": {…}},
                                            then the emulator closes the websocket

Payloads are what the HTTP transport would POST: the Events API body (``event_callback``), the slash
command's fields as a JSON object (strings, as in the form), the interactivity payload.
``accepts_response_payload`` is true for slash commands, view submissions and block suggestions.

A delivery (one payload handed to the app) goes::

    queued --(a connection is open)--> sent --(ack)--> acked
                                         |
                                         +--(no ack within ack_timeout)--> redelivered: a new envelope,
                                                retry_attempt + 1, retry_reason "timeout", on the newest
                                                open connection (or the next one to open), at most
                                                max_retries times; then (or for a type that is not
                                                redelivered) the delivery ends unacknowledged

Slack retries Events API deliveries only (``redelivered_types``, default ``{"events_api"}``); an
unacknowledged slash command or interaction is an error shown to the user. Tests that want every
type redelivered (to check a bot's de-duplication by trigger id) set ``redelivered_types``.
An envelope in flight when its connection closes is not acked there, so it is redelivered when its
deadline passes, like any other; an ack is accepted on any connection of the app, so an app that
acks on its new connection what it received on the old one is not sent it again. Envelopes queued
on a connection that closed before they were written go out on the next connection unchanged.

Envelopes go to the newest open connection. Everything is recorded in the workspace
(``socket_connections``, ``socket_envelopes``, ``socket_acks``) under its lock; broken rules (an
unknown ticket, an ack for an envelope never sent, a frame that is not an ack) are violations.
The emulator does not model Socket Mode being switched off: ``link_disabled`` is only the message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.sandbox.slack._models import (
    APP_ID,
    ENVELOPE_TYPES,
    Envelope,
    EnvelopeAck,
    JsonDict,
    SocketConnection,
)
from bot.sandbox.slack._responses import record_ack_reply
from bot.sandbox.slack._workspace import SlackWorkspace

SLACK_ACK_TIMEOUT = 3.0
"""Seconds Slack waits for an envelope's ack."""
SLACK_MAX_RETRIES = 3
"""Slack retries an unacknowledged event three times."""
MAX_CONNECTIONS = 10
"""Slack allows an app ten open Socket Mode connections."""
DISCONNECT_REASONS = frozenset({"refresh_requested", "warning", "link_disabled", "too_many_websockets"})
_RESPONSE_PAYLOAD_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})
_CLOSE_NORMAL = 1000


@dataclass(frozen=True)
class DeliveryOutcome:
    """How a delivery ended: the envelope the app acked (or the last one sent) and the ack."""

    envelope: Envelope
    ack: EnvelopeAck | None
    failure: str = ""
    """Why there is no ack: ``"timeout"`` (after the last retry) or ``"no_connection"``."""

    @property
    def acked(self) -> bool:
        return self.ack is not None


class Delivery:
    """One payload handed to the app: its envelopes (the first and any redeliveries) and its outcome.

    Wait for the outcome with :meth:`result` (blocking) or :meth:`wait` (async).
    """

    def __init__(self, first: Envelope, *, redelivered: bool) -> None:
        self.envelopes: list[Envelope] = [first]
        self.redelivered = redelivered
        self._outcome: concurrent.futures.Future[DeliveryOutcome] = concurrent.futures.Future()

    @property
    def envelope_id(self) -> str:
        return self.envelopes[0].envelope_id

    @property
    def last(self) -> Envelope:
        return self.envelopes[-1]

    def done(self) -> bool:
        return self._outcome.done()

    @property
    def outcome(self) -> DeliveryOutcome | None:
        """The outcome if the delivery has ended, else ``None``."""
        return self._outcome.result() if self._outcome.done() else None

    def result(self, timeout: float | None = None) -> DeliveryOutcome:
        """The outcome; raises ``TimeoutError`` if it has not come within ``timeout`` seconds."""
        return self._outcome.result(timeout)

    async def wait(self, timeout: float | None = None) -> DeliveryOutcome:
        """:meth:`result` without blocking the event loop (the app may run on it)."""
        waiting = asyncio.shield(asyncio.wrap_future(self._outcome))
        return await asyncio.wait_for(waiting, timeout)

    def _settle(self, outcome: DeliveryOutcome) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self._outcome.set_result(outcome)


@dataclass(frozen=True)
class _Close:
    reason: str | None
    grace: float


@dataclass(eq=False)
class _Link:
    """A live websocket: its record, its event loop and what is queued for it."""

    record: SocketConnection
    loop: asyncio.AbstractEventLoop
    outgoing: asyncio.Queue[str | Envelope | _Close] = field(default_factory=asyncio.Queue)
    assigned: list[Envelope] = field(default_factory=list)
    """Envelopes queued on this link and not yet written."""
    closing: bool = False
    close_sent: bool = False

    @property
    def id(self) -> str:
        return self.record.id

    def put(self, item: str | Envelope | _Close) -> None:
        """Queue a frame from any thread."""
        self.loop.call_soon_threadsafe(self.outgoing.put_nowait, item)


class SocketModeServer:
    """The Socket Mode side of one emulator. Thread-safe: its state is guarded by the workspace's
    lock; frames are written by each connection's task on the server's event loop.

    ``ack_timeout`` (for envelopes sent afterwards), ``max_retries``, ``redelivered_types`` (for
    deliveries made afterwards) and ``max_connections`` may be changed at any time. The app-level
    token is checked by ``apps.connections.open`` (``_dispatch.py``), which hands out the tickets.
    """

    def __init__(
        self,
        workspace: SlackWorkspace,
        *,
        ack_timeout: float = SLACK_ACK_TIMEOUT,
        max_retries: int = SLACK_MAX_RETRIES,
        redelivered_types: frozenset[str] = frozenset({"events_api"}),
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.ack_timeout = ack_timeout
        self.max_retries = max_retries
        self.redelivered_types = redelivered_types
        self.max_connections = max_connections
        self.ws = workspace
        self._tickets: set[str] = set()
        self._links: list[_Link] = []
        self._pending: deque[Envelope] = deque()
        self._deliveries: dict[str, tuple[Envelope, Delivery]] = {}  # by envelope id
        self._acked: set[str] = set()  # envelope ids

    def use_workspace(self, workspace: SlackWorkspace) -> None:
        """Serve ``workspace`` from now on: open connections are closed, pending deliveries dropped."""
        with self.ws.lock:
            for link in self._links:
                if not link.closing:
                    link.closing = True
                    link.put(_Close(None, 0.0))
            self._pending.clear()
            self._deliveries.clear()
            self._acked.clear()
            self._tickets.clear()
            self.ws = workspace

    # --- the Web API side --------------------------------------------------------------------

    def open_url(self, base_url: str) -> str:
        """``apps.connections.open``: a new websocket URL under ``base_url`` (the emulator's)."""
        ticket = uuid.uuid4().hex
        with self.ws.lock:
            self._tickets.add(ticket)
        scheme, _, rest = base_url.partition("://")
        ws_scheme = "wss" if scheme == "https" else "ws"
        return f"{ws_scheme}://{rest.rstrip('/')}/link/?ticket={ticket}&app_id={APP_ID}"

    # --- for tests and the driver (any thread) -------------------------------------------------

    def open_connections(self) -> list[str]:
        """Ids of the connections envelopes can go to (open, not told to disconnect), oldest first."""
        with self.ws.lock:
            return [link.id for link in self._links if not link.closing]

    def wait_for_connection(self, timeout: float = 10.0, *, count: int = 1) -> None:
        """Block until ``count`` connections are open; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.open_connections()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Socket Mode connection within {timeout}s: is the app connected?")
            time.sleep(0.005)

    def deliver(
        self,
        type: str,
        payload: JsonDict,
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Delivery:
        """Hand ``payload`` to the app in an envelope of ``type``; returns the delivery to wait on.

        Without an open connection, an event waits for one; a slash command or an interaction ends
        at once unacknowledged (``failure="no_connection"``), as Slack tells the user the app did not
        respond (unless its type is in ``redelivered_types``).
        """
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"not a Socket Mode envelope type: {type!r}")
        if accepts_response_payload is None:
            accepts_response_payload = _accepts_response_payload(type, payload)
        redelivered = type in self.redelivered_types
        envelope_id = str(uuid.uuid4())
        envelope = Envelope(
            envelope_id=envelope_id,
            type=type,
            payload=payload,
            accepts_response_payload=accepts_response_payload,
            delivery_id=envelope_id,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            retry_fields=type == "events_api" or redelivered,
        )
        delivery = Delivery(envelope, redelivered=redelivered)
        with self.ws.lock:
            self._deliveries[envelope_id] = (envelope, delivery)
            if not redelivered and self._newest_link() is None:
                delivery._settle(DeliveryOutcome(envelope, None, "no_connection"))
                return delivery
            self._pending.append(envelope)
            self._pump()
        return delivery

    def disconnect(
        self, reason: str | None = "refresh_requested", *, connection: str | None = None, grace: float = 0.0
    ) -> list[str]:
        """Send ``{"type": "disconnect", "reason": reason}`` and close the connection ``grace`` seconds
        later (Slack keeps a ``warning``-ed one for about ten); ``reason=None`` closes it without a word.

        Every open connection, or the one given. No new envelope goes to a connection once told.
        Returns the ids of the connections told.

        slack_sdk's client reconnects on the message and again on the close: closed at once
        (``grace=0``), it opens a connection it closes right after, and an envelope written to that
        one in between is lost unless its type is redelivered. With a ``grace`` (Slack's refresh),
        the client opens its new connection and closes the old one itself.
        """
        if reason is not None and reason not in DISCONNECT_REASONS:
            raise ValueError(
                f"not a Slack disconnect reason: {reason!r} (one of {sorted(DISCONNECT_REASONS)})"
            )
        with self.ws.lock:
            told = [
                link
                for link in self._links
                if not link.closing and (connection is None or link.id == connection)
            ]
            if connection is not None and not told:
                raise KeyError(f"no open Socket Mode connection {connection!r}")
            for link in told:
                link.closing = True
                link.put(_Close(reason, grace))
            return [link.id for link in told]

    # --- the websocket -------------------------------------------------------------------------

    async def endpoint(self, websocket: WebSocket) -> None:
        """The ``/link/`` websocket route."""
        ticket = websocket.query_params.get("ticket", "")
        with self.ws.lock:
            known = ticket in self._tickets
        if not known:
            self.ws.add_violation(
                "socket mode: websocket opened with a ticket apps.connections.open did not issue"
            )
            await websocket.close(code=1008)  # before accept: the handshake is refused (HTTP 403)
            return
        await websocket.accept()
        link = self._open(ticket, asyncio.get_running_loop())
        writer = asyncio.create_task(self._write(websocket, link), name=f"socket-mode-{link.id}")
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None and message.get("bytes") is not None:
                    text = message["bytes"].decode("utf-8", "replace")
                if text is not None:
                    self._receive(link, text)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self._closed(link)

    def _open(self, ticket: str, loop: asyncio.AbstractEventLoop) -> _Link:
        with self.ws.lock:
            record = SocketConnection(id=self.ws.next_id("link-", width=1), ticket=ticket, opened_at=_now())
            self.ws.socket_connections.append(record)
            link = _Link(record, loop)
            open_before = [other for other in self._links if not other.closing]
            self._links.append(link)
            if len(open_before) >= self.max_connections:
                link.closing = True
                link.put(_Close("too_many_websockets", 0.0))
                return link
            link.put(json.dumps(self._hello(link, len(open_before) + 1)))
            self._pump()
            return link

    def _hello(self, link: _Link, num_connections: int) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": num_connections,
            "debug_info": _debug_info(link),
            "connection_info": {"app_id": APP_ID},
        }

    async def _write(self, websocket: WebSocket, link: _Link) -> None:
        try:
            while True:
                item = await link.outgoing.get()
                if isinstance(item, _Close):
                    await self._close(websocket, link, item)
                    return
                if isinstance(item, Envelope):
                    if not self._mark_sent(link, item):
                        continue  # taken back when the connection closed
                    asyncio.get_running_loop().call_later(self.ack_timeout, self._deadline, item.envelope_id)
                    item = json.dumps(item.to_api())
                await websocket.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the app closed it: the reader sees that and cleans up

    async def _close(self, websocket: WebSocket, link: _Link, close: _Close) -> None:
        if close.reason is not None:
            with self.ws.lock:
                link.record.disconnect_reason = close.reason
            message = {"type": "disconnect", "reason": close.reason, "debug_info": _debug_info(link)}
            await websocket.send_text(json.dumps(message))
        if close.grace > 0:
            await asyncio.sleep(close.grace)
        link.close_sent = True
        await websocket.close(code=_CLOSE_NORMAL)

    def _mark_sent(self, link: _Link, envelope: Envelope) -> bool:
        with self.ws.lock:
            if not any(queued is envelope for queued in link.assigned):
                return False
            link.assigned = [queued for queued in link.assigned if queued is not envelope]
            envelope.sent_at = _now()
            self.ws.socket_envelopes.append(envelope)
            return True

    def _receive(self, link: _Link, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        if not isinstance(frame, dict) or not isinstance(envelope_id, str):
            self.ws.add_violation(f"socket mode: the app sent a frame that is not an ack: {text[:80]!r}")
            return
        payload = frame.get("payload")
        if payload is not None and not isinstance(payload, dict):
            self.ws.add_violation(f"socket mode: ack {envelope_id}: payload must be a JSON object")
            payload = None
        with self.ws.lock:
            entry = self._deliveries.get(envelope_id)
            if entry is None:
                self.ws.add_violation(f"socket mode: ack for an envelope never sent: {envelope_id!r}")
                return
            envelope, delivery = entry
            outcome = delivery.outcome
            ack = EnvelopeAck(
                envelope_id=envelope_id,
                connection=link.id,
                payload=payload,
                received_at=_now(),
                duplicate=envelope_id in self._acked,
                late=outcome is not None and not outcome.acked,
            )
            self._acked.add(envelope_id)
            self.ws.socket_acks.append(ack)
            if outcome is not None:
                return  # acked already (another envelope of the delivery), or given up on
            delivery._settle(DeliveryOutcome(envelope, ack))
            if envelope.type == "slash_commands" and payload:
                response_url = str(envelope.payload.get("response_url", ""))
                record_ack_reply(self.ws, response_url, json.dumps(payload).encode(), "application/json")

    def _deadline(self, envelope_id: str) -> None:
        """An envelope's ack time is up: redeliver it, or end its delivery unacknowledged."""
        with self.ws.lock:
            entry = self._deliveries.get(envelope_id)
            if entry is None:
                return  # the workspace was reset
            envelope, delivery = entry
            if delivery.done() or envelope is not delivery.last:
                return
            if not delivery.redelivered or envelope.retry_attempt >= self.max_retries:
                delivery._settle(DeliveryOutcome(envelope, None, "timeout"))
                return
            retry = Envelope(
                envelope_id=str(uuid.uuid4()),
                type=envelope.type,
                payload=envelope.payload,
                accepts_response_payload=envelope.accepts_response_payload,
                delivery_id=envelope.delivery_id,
                retry_attempt=envelope.retry_attempt + 1,
                retry_reason="timeout",
                retry_fields=True,
            )
            delivery.envelopes.append(retry)
            self._deliveries[retry.envelope_id] = (retry, delivery)
            self._pending.append(retry)
            self._pump()

    def _closed(self, link: _Link) -> None:
        with self.ws.lock:
            link.record.closed_at = _now()
            link.record.closed_by = "slack" if link.close_sent else "app"
            link.closing = True
            if link in self._links:
                self._links.remove(link)
            self._pending.extendleft(reversed(link.assigned))  # never written: they go out unchanged
            link.assigned.clear()
            self._pump()

    def _newest_link(self) -> _Link | None:
        return next((link for link in reversed(self._links) if not link.closing), None)

    def _pump(self) -> None:
        """Queue the pending envelopes on the newest open connection (call with the lock held)."""
        link = self._newest_link()
        if link is None:
            return
        while self._pending:
            envelope = self._pending.popleft()
            envelope.connection = link.id
            link.assigned.append(envelope)
            link.put(envelope)


def _accepts_response_payload(type: str, payload: JsonDict) -> bool:
    if type == "slash_commands":
        return True
    return type == "interactive" and payload.get("type") in _RESPONSE_PAYLOAD_INTERACTIONS


def _debug_info(link: _Link) -> JsonDict:
    return {"host": f"applink-emulator-{link.id}", "build_number": 1, "approximate_connection_time": 18060}


def _now() -> float:
    return time.monotonic()
