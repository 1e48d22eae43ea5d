"""Send requests to the bot under test the way Slack does: signed slash commands, events, interactions.

    driver = SlackDriver(f"{bot.url}/slack/events", signing_secret, workspace)
    driver.command("/incident", "declare sev1 checkout down", user="U_ALICE", channel="general")
    driver.event(workspace.add_reaction("U_BOB", "general", ts, "eyes"))
    driver.interactive(driver.block_action_payload("U_ALICE", "general", ts, "ack", "yes"))

Payload builders register the trigger ids and response URLs they hand out in the workspace, so
``views.open`` accepts those trigger ids and the bot's replies to the response URLs are recorded.
Every sender has an ``a``-prefixed async twin (``acommand``, ``aevent``, ``ainteractive``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from bot.sandbox.slack._models import APP_ID, TEAM_DOMAIN, TEAM_ID, JsonDict, View
from bot.sandbox.slack._responses import record_ack_reply
from bot.sandbox.slack._workspace import SlackWorkspace

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: dict[str, str]


class SlackDriver:
    def __init__(
        self, bot_url: str, signing_secret: str, workspace: SlackWorkspace, *, timeout: float = 10.0
    ) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.workspace = workspace
        self.timeout = timeout

    # --- signing ----------------------------------------------------------------------------

    def signed_headers(
        self, body: bytes, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for ``body``."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        key = (self.signing_secret if secret is None else secret).encode()
        digest = hmac.new(key, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    def sign(
        self, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None
    ) -> SignedRequest:
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        headers.update(self.signed_headers(body))
        headers.update(extra_headers or {})
        return SignedRequest(body, headers)

    # --- sending ----------------------------------------------------------------------------

    def send(self, request: SignedRequest) -> httpx.Response:
        with httpx.Client(timeout=self.timeout) as client:
            response = client.post(self.bot_url, content=request.body, headers=request.headers)
        self._shown(request, response)
        return response

    async def asend(self, request: SignedRequest) -> httpx.Response:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.bot_url, content=request.body, headers=request.headers)
        self._shown(request, response)
        return response

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
