"""What a person does in the demo workspace, sent to the bot exactly like Slack sends it.

Slash commands, messages, reactions, button presses and modal submissions all go through the
emulated workspace (``SlackWorkspace``) for state and through ``SlackDriver`` for the signed
request to ``/slack/events``. Shared by the console and the scenario runner.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.sandbox.slack.driver import SlackDriver
from bot.sandbox.slack.emulator import APP_ID, TEAM_DOMAIN, TEAM_ID, Ephemeral, SlackWorkspace

JsonDict = dict[str, Any]
KNOWN_COMMANDS = ("/incident", "/gonogo", "/rollback", "/prodstatus")


class InteractionError(Exception):
    """A request the console cannot turn into a Slack interaction (shown to the person)."""


class Interactor:
    def __init__(self, workspace: SlackWorkspace, driver: SlackDriver) -> None:
        self.ws = workspace
        self.driver = driver
        self._ephemeral_by_token: dict[str, str] = {}  # response URL token -> ephemeral ts

    # --- composer ---------------------------------------------------------------------------

    async def send_text(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> JsonDict:
        """A slash command (``/incident ...``) or a plain message, as ``user`` in ``channel``."""
        text = text.strip()
        if not text:
            raise InteractionError("Nothing to send.")
        if text.startswith("/") and thread_ts is None:
            command, _, rest = text.partition(" ")
            if command not in KNOWN_COMMANDS:
                raise InteractionError(f"{command} is not a valid command. Try {', '.join(KNOWN_COMMANDS)}.")
            response = await self.driver.acommand(command, rest.strip(), user=user, channel=channel)
            return {"kind": "command", "status": response.status_code, "body": response.text[:2000]}
        _, envelope = self.ws.post_user_message(user, channel, text, thread_ts=thread_ts)
        response = await self.driver.aevent(envelope)
        return {"kind": "message", "status": response.status_code}

    # --- reactions ----------------------------------------------------------------------------

    async def react(
        self, user: str, channel: str, ts: str, emoji: str, *, add: bool | None = None
    ) -> JsonDict:
        """Add (or, when ``add`` is None and the user already reacted, remove) a reaction."""
        name = emoji.strip(":")
        if not re.fullmatch(r"[a-z0-9_+\-']{1,64}", name):
            raise InteractionError(f"{emoji!r} is not an emoji name.")
        with self.ws.lock:
            found = self.ws.require_channel(channel)
            message = self.ws.find_message(found.id, ts)
            if message is None or message.deleted:
                raise InteractionError("That message is gone.")
            mine = user in message.reactions.get(name, [])
            adding = (not mine) if add is None else add
            if adding:
                envelope = self.ws.add_reaction(user, found.id, ts, name)
            else:
                envelope = self.ws.remove_reaction(user, found.id, ts, name)
        response = await self.driver.aevent(envelope)
        return {"reaction": name, "added": adding, "status": response.status_code}

    # --- buttons and menus --------------------------------------------------------------------

    async def click(
        self,
        user: str,
        channel: str,
        ts: str,
        action_id: str,
        value: str,
        *,
        block_id: str | None = None,
        ephemeral: bool = False,
    ) -> JsonDict:
        """Press a button (or choose a menu option) of a message, an ephemeral message included."""
        if ephemeral:
            payload = self._ephemeral_action(user, channel, ts, action_id, value, block_id)
        else:
            payload = self.driver.block_action_payload(user, channel, ts, action_id, value, block_id=block_id)
        response = await self.driver.ainteractive(payload)
        return {"status": response.status_code}

    async def view_action(self, user: str, view_id: str, action_id: str, value: str) -> JsonDict:
        payload = self.driver.block_action_payload(user, "", "", action_id, value, view=view_id)
        response = await self.driver.ainteractive(payload)
        return {"status": response.status_code}

    def superseded_ephemerals(self) -> set[str]:
        """Ephemeral messages a later ``replace_original``/``delete_original`` reply replaced."""
        gone = set()
        for token, ts in list(self._ephemeral_by_token.items()):
            for body in self.ws.responses(token):
                if _truthy(body.get("replace_original")) or _truthy(body.get("delete_original")):
                    gone.add(ts)
        return gone

    def _ephemeral_action(
        self, user: str, channel: str, ts: str, action_id: str, value: str, block_id: str | None
    ) -> JsonDict:
        with self.ws.lock:
            where = self.ws.require_channel(channel)
            found = _ephemeral(self.ws.ephemerals, where.id, user, ts)
            if found is None:
                raise InteractionError("That message was only visible to someone else.")
            owner_block, element = find_element(found.blocks, action_id)
            response_url = self.ws.new_response_url(where.id, user)
            self._ephemeral_by_token[response_url.rsplit("/", 1)[-1]] = ts
            payload = self.interaction_base("block_actions", user)
            payload |= {
                "container": {
                    "type": "message",
                    "message_ts": ts,
                    "channel_id": where.id,
                    "is_ephemeral": True,
                },
                "channel": {"id": where.id, "name": where.name},
                "response_url": response_url,
                "state": {"values": {}},
                "actions": [
                    action_json(element, action_id, block_id or owner_block, value, self.ws.next_ts())
                ],
            }
            return payload

    # --- modals -------------------------------------------------------------------------------

    async def submit_view(self, user: str, view_id: str, values: dict[str, dict[str, Any]]) -> JsonDict:
        """Submit a modal; ``values``: block id -> action id -> the raw value(s) the person chose."""
        with self.ws.lock:
            view = self.ws.view(view_id)
            if view.user != user or view.closed:
                raise InteractionError("That modal is not open for you.")
            view_json = view.to_api()
            view_json["state"] = {"values": state_values(view.blocks, values)}
            payload = self.interaction_base("view_submission", user) | {
                "view": view_json,
                "response_urls": [],
            }
        response = await self.driver.ainteractive(payload)
        body: Any = None
        if response.content.strip():
            try:
                body = json.loads(response.content)
            except ValueError:
                body = None
        body = body if isinstance(body, dict) else {}
        action = body.get("response_action")
        with self.ws.lock:
            if action == "errors":
                return {"status": response.status_code, "errors": body.get("errors") or {}}
            if action in ("update", "push") and isinstance(body.get("view"), dict):
                view.payload, view.hash = dict(body["view"]), self.ws.next_ts()
                return {"status": response.status_code, "errors": {}}
            for other in self.ws.views.values():
                if other.user == user and (action == "clear" or other.id == view_id):
                    other.closed = True
        return {"status": response.status_code, "errors": {}, "closed": response.status_code == 200}

    def close_view(self, user: str, view_id: str) -> None:
        with self.ws.lock:
            view = self.ws.view(view_id)
            if view.user == user:
                view.closed = True

    def interaction_base(self, kind: str, user: str) -> JsonDict:
        sender = self.ws.require_user(user)
        return {
            "type": kind,
            "token": self.ws.verification_token,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": {"id": sender.id, "username": sender.name, "name": sender.name, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "trigger_id": self.ws.new_trigger_id(sender.id),
            "is_enterprise_install": False,
            "enterprise": None,
        }


def _ephemeral(ephemerals: list[Ephemeral], channel: str, user: str, ts: str) -> Ephemeral | None:
    return next((e for e in ephemerals if e.channel == channel and e.user == user and e.ts == ts), None)


def find_element(blocks: list[JsonDict], action_id: str) -> tuple[str, JsonDict]:
    for block in blocks:
        for element in [*block.get("elements", []), block.get("accessory"), block.get("element")]:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    raise InteractionError(f"No element {action_id!r} in that message.")


def action_json(element: JsonDict, action_id: str, block_id: str, value: str, action_ts: str) -> JsonDict:
    kind = str(element.get("type", "button"))
    action: JsonDict = {"type": kind, "action_id": action_id, "block_id": block_id, "action_ts": action_ts}
    if kind == "button":
        action |= {"value": value, "text": element.get("text", {"type": "plain_text", "text": value})}
        if element.get("style"):
            action["style"] = element["style"]
        return action
    options = [o for o in element.get("options", []) if isinstance(o, dict)]
    chosen = next((o for o in options if o.get("value") == value), None)
    action["selected_option"] = chosen or {"text": {"type": "plain_text", "text": value}, "value": value}
    return action


def state_values(blocks: list[JsonDict], raw: dict[str, dict[str, Any]]) -> JsonDict:
    """Slack's ``view.state.values`` for the input blocks of a view from the console's raw values."""
    state: JsonDict = {}
    for block in blocks:
        element = block.get("element")
        if block.get("type") != "input" or not isinstance(element, dict):
            continue
        block_id, action_id = str(block.get("block_id", "")), str(element.get("action_id", ""))
        value = raw.get(block_id, {}).get(action_id)
        state.setdefault(block_id, {})[action_id] = element_state(element, value)
    return state


def element_state(element: JsonDict, value: Any) -> JsonDict:
    kind = str(element.get("type", ""))
    options = {str(o.get("value")): o for o in _options(element)}
    values = [str(v) for v in (value if isinstance(value, list) else [value]) if v not in (None, "")]
    if kind in ("static_select", "radio_buttons"):
        return {"type": kind, "selected_option": options.get(values[0]) if values else None}
    if kind in ("multi_static_select", "checkboxes"):
        return {"type": kind, "selected_options": [options[v] for v in values if v in options]}
    if kind == "users_select":
        return {"type": kind, "selected_user": values[0] if values else None}
    if kind == "multi_users_select":
        return {"type": kind, "selected_users": values}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": values[0] if values else None}
    if kind == "datepicker":
        return {"type": kind, "selected_date": values[0] if values else None}
    if kind == "timepicker":
        return {"type": kind, "selected_time": values[0] if values else None}
    return {"type": kind or "plain_text_input", "value": values[0] if values else None}


def _options(element: JsonDict) -> list[JsonDict]:
    found = [o for o in element.get("options", []) if isinstance(o, dict)]
    for group in element.get("option_groups", []):
        found += [o for o in group.get("options", []) if isinstance(o, dict)]
    return found


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
