"""Send the bot under test what Slack would: slash commands, events, interactions, over HTTP (signed
requests) or over Socket Mode (envelopes on the emulator's websocket).

    driver = SlackDriver(f"{bot.url}/slack/events", signing_secret, workspace)   # HTTP
    driver = SlackDriver.socket(slack)                  # Socket Mode, to the app connected to ``slack``
    driver.command("/incident", "declare sev1 checkout down", user="U_ALICE", channel="general")
    driver.event(workspace.add_reaction("U_BOB", "general", ts, "eyes"))
    driver.interactive(driver.block_action_payload("U_ALICE", "general", ts, "ack", "yes"))

Payload builders register the trigger ids and response URLs they hand out in the workspace, so
``views.open`` accepts those trigger ids and the bot's replies to the response URLs are recorded.
Every sender has an ``a``-prefixed async twin (``acommand``, ``aevent``, ``ainteractive``); with
Socket Mode, a test whose app runs on its own event loop must use those (a blocking sender would
stop the app it waits for).

Both transports answer with an ``httpx.Response``. Over Socket Mode it is made from the envelope's
ack: status 200, the ack's payload as a JSON body (empty without one: what an HTTP ack's body would
have been), ``extensions["socket_mode"]`` = the envelope id, retry attempt and connection; a
delivery that ended without an ack (the app did not ack in time, Slack's retries included) is a 504
whose text says why. What only HTTP can express (signatures, ``url_verification``, a body that is
no Slack payload) raises :class:`SocketModeUnsupported`; ``retry_num`` becomes the envelope's
``retry_attempt``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import httpx

from bot.sandbox.slack._models import APP_ID, TEAM_DOMAIN, TEAM_ID, JsonDict, View
from bot.sandbox.slack._responses import record_ack_reply
from bot.sandbox.slack._socket_mode import DeliveryOutcome, SocketModeServer
from bot.sandbox.slack._workspace import SlackWorkspace

if TYPE_CHECKING:
    from bot.sandbox.slack.emulator import SlackEmulator

FORM = "application/x-www-form-urlencoded"
SIGNATURE_HEADER = "X-Slack-Signature"
_SOCKET_RETRY_REASONS = {"http_timeout": "timeout"}  # an HTTP retry reason -> Socket Mode's


class SocketModeUnsupported(Exception):
    """What the test asked for exists only over HTTP (a signature, ``url_verification``, a body that
    is not a Slack payload): the test is an HTTP test."""


@dataclass(frozen=True)
class SignedRequest:
    """A request as the HTTP transport would POST it (over Socket Mode: unsigned, and decoded back
    into an envelope by :meth:`SlackDriver.send`)."""

    body: bytes
    headers: dict[str, str]


class SlackDriver:
    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        workspace: SlackWorkspace,
        *,
        timeout: float = 10.0,
        socket_mode: SocketModeServer | None = None,
    ) -> None:
        """HTTP to ``bot_url``, signed with ``signing_secret``; or, with ``socket_mode``, envelopes
        over the emulator's Socket Mode connection (``bot_url`` and ``signing_secret`` unused: see
        :meth:`socket`)."""
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.workspace = workspace
        self.timeout = timeout
        self.socket_mode = socket_mode

    @classmethod
    def socket(
        cls, emulator: SlackEmulator, workspace: SlackWorkspace | None = None, *, timeout: float = 10.0
    ) -> SlackDriver:
        """A driver that sends over Socket Mode to the app connected to ``emulator``."""
        return cls("", "", workspace or emulator.workspace, timeout=timeout, socket_mode=emulator.socket_mode)

    @property
    def transport(self) -> str:
        """``"http"`` or ``"socket"``."""
        return "http" if self.socket_mode is None else "socket"

    # --- signing ----------------------------------------------------------------------------

    def signed_headers(
        self, body: bytes, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for ``body`` (HTTP only)."""
        if self.socket_mode is not None:
            raise SocketModeUnsupported("Socket Mode requests carry no signature: signing is HTTP-only")
        ts = str(int(time.time()) if timestamp is None else timestamp)
        key = (self.signing_secret if secret is None else secret).encode()
        digest = hmac.new(key, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, SIGNATURE_HEADER: f"v0={digest}"}

    def sign(
        self, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None
    ) -> SignedRequest:
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if self.socket_mode is None:
            headers.update(self.signed_headers(body))
        headers.update(extra_headers or {})
        return SignedRequest(body, headers)

    # --- sending ----------------------------------------------------------------------------

    def send(self, request: SignedRequest) -> httpx.Response:
        if self.socket_mode is not None:
            return self._socket_send(request)
        with httpx.Client(timeout=self.timeout) as client:
            response = client.post(self.bot_url, content=request.body, headers=request.headers)
        self._shown(request, response)
        return response

    async def asend(self, request: SignedRequest) -> httpx.Response:
        if self.socket_mode is not None:
            return await self._socket_asend(request)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.bot_url, content=request.body, headers=request.headers)
        self._shown(request, response)
        return response

    def _socket_send(self, request: SignedRequest) -> httpx.Response:
        assert self.socket_mode is not None
        envelope = _envelope_of(request)
        deadline = time.monotonic() + self.timeout
        self.socket_mode.wait_for_connection(self.timeout)
        delivery = self.socket_mode.deliver(envelope.type, envelope.payload, **envelope.retry)
        return _ack_response(delivery.result(max(deadline - time.monotonic(), 0.0)))

    async def _socket_asend(self, request: SignedRequest) -> httpx.Response:
        assert self.socket_mode is not None
        envelope = _envelope_of(request)
        deadline = time.monotonic() + self.timeout
        while not self.socket_mode.open_connections():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Socket Mode connection within {self.timeout}s: is the app connected?")
            await asyncio.sleep(0.005)
        delivery = self.socket_mode.deliver(envelope.type, envelope.payload, **envelope.retry)
        return _ack_response(await delivery.wait(max(deadline - time.monotonic(), 0.0)))

    def _shown(self, request: SignedRequest, response: httpx.Response) -> None:
        """What Slack does with a slash command's ack: a body is the command's reply."""
        if response.status_code != 200 or request.headers.get("Content-Type") != FORM:
            return
        form = dict(parse_qsl(request.body.decode("utf-8")))
        if "command" in form and "response_url" in form:
            content_type = response.headers.get("content-type", "")
            record_ack_reply(self.workspace, form["response_url"], response.content, content_type)

    def command(
        self,
        command: str,
        text: str = "",
        *,
        user: str = "U_ALICE",
        channel: str = "general",
        trigger_id: str | None = None,
    ) -> httpx.Response:
        """Invoke a slash command (``channel`` by id or name) as ``user``."""
        return self.send(
            self.command_request(command, text, user=user, channel=channel, trigger_id=trigger_id)
        )

    async def acommand(
        self,
        command: str,
        text: str = "",
        *,
        user: str = "U_ALICE",
        channel: str = "general",
        trigger_id: str | None = None,
    ) -> httpx.Response:
        request = self.command_request(command, text, user=user, channel=channel, trigger_id=trigger_id)
        return await self.asend(request)

    def event(
        self, payload: JsonDict, *, retry_num: int | None = None, retry_reason: str = "http_timeout"
    ) -> httpx.Response:
        """Deliver an Events API envelope (e.g. from ``workspace.add_reaction``)."""
        return self.send(self.event_request(payload, retry_num=retry_num, retry_reason=retry_reason))

    async def aevent(
        self, payload: JsonDict, *, retry_num: int | None = None, retry_reason: str = "http_timeout"
    ) -> httpx.Response:
        return await self.asend(self.event_request(payload, retry_num=retry_num, retry_reason=retry_reason))

    def interactive(self, payload: JsonDict) -> httpx.Response:
        """Deliver an interactivity payload (block action, view submission, shortcut…)."""
        return self.send(self.interactive_request(payload))

    async def ainteractive(self, payload: JsonDict) -> httpx.Response:
        return await self.asend(self.interactive_request(payload))

    def url_verification(self, challenge: str = "challenge-token") -> httpx.Response:
        """Slack's check of a new Request URL (HTTP only)."""
        payload = {
            "token": self.workspace.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        return self.event(payload)

    # --- request builders -------------------------------------------------------------------

    def command_request(
        self, command: str, text: str, *, user: str, channel: str, trigger_id: str | None = None
    ) -> SignedRequest:
        ws = self.workspace
        with ws.lock:
            sender = ws.require_user(user)
            where = ws.require_channel(channel)
            form = {
                "token": ws.verification_token,
                "team_id": TEAM_ID,
                "team_domain": TEAM_DOMAIN,
                "channel_id": where.id,
                "channel_name": "directmessage" if where.is_im else where.name,
                "user_id": sender.id,
                "user_name": sender.name,
                "command": command if command.startswith("/") else f"/{command}",
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": ws.new_response_url(where.id, sender.id),
                "trigger_id": self._trigger(trigger_id, sender.id),
            }
        return self.sign(urlencode(form).encode(), FORM)

    def event_request(
        self, payload: JsonDict, *, retry_num: int | None = None, retry_reason: str = "http_timeout"
    ) -> SignedRequest:
        extra = {}
        if retry_num is not None:
            extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self.sign(json.dumps(payload).encode(), "application/json", extra)

    def interactive_request(self, payload: JsonDict) -> SignedRequest:
        return self.sign(urlencode({"payload": json.dumps(payload)}).encode(), FORM)

    # --- payload builders -------------------------------------------------------------------

    def block_action_payload(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str,
        *,
        block_id: str | None = None,
        view: JsonDict | str | None = None,
    ) -> JsonDict:
        """A ``block_actions`` payload for an element of a message (or of ``view``: a dict or view id)."""
        ws = self.workspace
        with ws.lock:
            payload = self._interaction_base("block_actions", user)
            if view is not None:
                view_json = ws.view(view).to_api() if isinstance(view, str) else view
                blocks = view_json.get("blocks", [])
                payload["container"] = {"type": "view", "view_id": view_json.get("id")}
                payload["view"] = view_json
            else:
                where = ws.require_channel(channel)
                message = ws.find_message(where.id, message_ts)
                if message is None:
                    raise KeyError(f"no message {message_ts} in {where.id}")
                blocks = message.blocks
                payload.update(self._message_context(where.id, where.name, message_ts, user))
                payload["message"] = ws.render_message(message)
                payload["state"] = {"values": {}}
            found_block_id, element = _find_element(blocks, action_id)
            action = _action(element, action_id, block_id or found_block_id or "", value, ws.next_ts())
            payload["actions"] = [action]
            return payload

    def view_submission_payload(
        self,
        user: str,
        view_callback_id: str,
        state_values: JsonDict,
        private_metadata: str | None = None,
    ) -> JsonDict:
        """A ``view_submission`` of the latest view with that callback id.

        ``state_values`` has Slack's shape: ``{block_id: {action_id: {"type": ..., "value": ...}}}``.
        ``private_metadata=None`` keeps what the bot stored in the view.
        """
        ws = self.workspace
        with ws.lock:
            opened = ws.views_with_callback(view_callback_id)
            view_json = opened[-1].to_api() if opened else _synthetic_view(ws, view_callback_id)
            view_json["state"] = {"values": state_values}
            if private_metadata is not None:
                view_json["private_metadata"] = private_metadata
            payload = self._interaction_base("view_submission", user)
            payload.update({"view": view_json, "response_urls": []})
            return payload

    def message_shortcut_payload(
        self, user: str, channel: str, message_ts: str, callback_id: str
    ) -> JsonDict:
        """A ``message_action`` payload (a message shortcut invoked on ``message_ts``)."""
        ws = self.workspace
        with ws.lock:
            where = ws.require_channel(channel)
            message = ws.find_message(where.id, message_ts)
            if message is None:
                raise KeyError(f"no message {message_ts} in {where.id}")
            payload = self._interaction_base("message_action", user)
            payload.update(self._message_context(where.id, where.name, message_ts, user))
            payload.update(
                {
                    "callback_id": callback_id,
                    "action_ts": ws.next_ts(),
                    "message_ts": message_ts,
                    "message": ws.render_message(message),
                }
            )
            del payload["container"]
            return payload

    def _interaction_base(self, kind: str, user: str) -> JsonDict:
        sender = self.workspace.require_user(user)
        return {
            "type": kind,
            "token": self.workspace.verification_token,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": {"id": sender.id, "username": sender.name, "name": sender.name, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "trigger_id": self._trigger(None, sender.id),
            "is_enterprise_install": False,
            "enterprise": None,
        }

    def _message_context(self, channel_id: str, channel_name: str, message_ts: str, user: str) -> JsonDict:
        return {
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "channel": {"id": channel_id, "name": channel_name},
            "response_url": self.workspace.new_response_url(channel_id, user, message_ts=message_ts),
        }

    def _trigger(self, trigger_id: str | None, user: str) -> str:
        if trigger_id is None:
            return self.workspace.new_trigger_id(user)
        self.workspace.triggers[trigger_id] = user
        return trigger_id


def _find_element(blocks: list[JsonDict], action_id: str) -> tuple[str | None, JsonDict]:
    """The block id and element carrying ``action_id`` (an empty element if there is none)."""
    for block in blocks:
        candidates = [*block.get("elements", []), block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, {}


def _action(element: JsonDict, action_id: str, block_id: str, value: str, action_ts: str) -> JsonDict:
    element_type = str(element.get("type", "button"))
    action: dict[str, Any] = {
        "type": element_type,
        "action_id": action_id,
        "block_id": block_id,
        "action_ts": action_ts,
    }
    options = element.get("options")
    if isinstance(options, list) and element_type != "button":
        chosen = next((o for o in options if isinstance(o, dict) and o.get("value") == value), None)
        action["selected_option"] = chosen or {"text": {"type": "plain_text", "text": value}, "value": value}
    else:
        action["value"] = value
        action["text"] = element.get("text", {"type": "plain_text", "text": value, "emoji": True})
        if element.get("style"):
            action["style"] = element["style"]
    return action


def _synthetic_view(ws: SlackWorkspace, callback_id: str) -> JsonDict:
    payload = {"type": "modal", "callback_id": callback_id, "title": {"type": "plain_text", "text": "Modal"}}
    return View(id=ws.next_id("V"), type="modal", payload=payload).to_api()


@dataclass(frozen=True)
class _SocketEnvelope:
    type: str
    payload: JsonDict
    retry: dict[str, Any]


def _envelope_of(request: SignedRequest) -> _SocketEnvelope:
    """The envelope Slack would send over Socket Mode instead of ``request``."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    if SIGNATURE_HEADER.lower() in headers:
        raise SocketModeUnsupported("a signed request: signatures exist only over HTTP")
    retry: dict[str, Any] = {}
    if "x-slack-retry-num" in headers:
        reason = headers.get("x-slack-retry-reason", "")
        retry = {
            "retry_attempt": int(headers["x-slack-retry-num"]),
            "retry_reason": _SOCKET_RETRY_REASONS.get(reason, reason),
        }
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        text = request.body.decode("utf-8")
        if media_type == FORM:
            form = dict(parse_qsl(text, keep_blank_values=True))
            if "command" in form:
                return _SocketEnvelope("slash_commands", form, retry)
            if "payload" in form:
                return _SocketEnvelope("interactive", _json_object(form["payload"]), retry)
        elif media_type == "application/json":
            body = _json_object(text)
            if body.get("type") == "event_callback":
                return _SocketEnvelope("events_api", body, retry)
            if body.get("type") == "url_verification":
                raise SocketModeUnsupported(
                    "url_verification is the HTTP Request URL check: no Socket Mode twin"
                )
    except (UnicodeDecodeError, ValueError) as error:
        raise SocketModeUnsupported(
            f"not a Slack payload, so nothing Socket Mode can carry: {error}"
        ) from error
    raise SocketModeUnsupported(f"not a Slack payload ({media_type or 'no content type'}): HTTP-only")


def _json_object(text: str) -> JsonDict:
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("the JSON is not an object")
    return parsed


def _ack_response(outcome: DeliveryOutcome) -> httpx.Response:
    envelope = outcome.ack.envelope_id if outcome.ack else outcome.envelope.envelope_id
    extensions = {
        "socket_mode": {
            "envelope_id": envelope,
            "delivery_id": outcome.envelope.delivery_id,
            "retry_attempt": outcome.envelope.retry_attempt,
            "connection": outcome.ack.connection if outcome.ack else outcome.envelope.connection,
        }
    }
    if outcome.ack is None:
        why = {
            "no_connection": "no Socket Mode connection was open",
            "timeout": "the app did not ack it in time (redeliveries included)",
        }.get(outcome.failure, outcome.failure)
        return httpx.Response(504, text=f"no ack for envelope {envelope}: {why}", extensions=extensions)
    if outcome.ack.payload is None:
        return httpx.Response(200, extensions=extensions)
    return httpx.Response(200, json=outcome.ack.payload, extensions=extensions)
