"""What a listener hands a service (``Invocation``) and what a service hands back (``Reply``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bot.render import RenderedMessage


def without_nul(value: Any) -> Any:
    """``value`` (text, or JSON-like data) without NUL characters: Slack never means one, and
    PostgreSQL refuses them in text and JSON. Everything a user typed passes through here."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


# Marks a stored slash command run again after a crash (``commands.events``): nobody waits for its ack.
REPLAY = "cmdcenter_replay"


class Invocation(BaseModel):
    """Who asked, where, and how to answer them."""

    user_id: str
    channel_id: str = ""
    channel_name: str = ""
    command: str = ""
    text: str = ""
    trigger_id: str | None = None
    response_url: str | None = None
    team_id: str | None = None
    replayed: bool = False  # run again after a crash: its ack reaches nobody

    @classmethod
    def from_command(cls, body: dict[str, Any]) -> Invocation:
        return cls(
            user_id=str(body.get("user_id", "")),
            channel_id=str(body.get("channel_id", "")),
            channel_name=str(body.get("channel_name", "")),
            command=str(body.get("command", "")),
            text=without_nul(str(body.get("text", ""))),
            trigger_id=body.get("trigger_id"),
            response_url=body.get("response_url"),
            team_id=body.get("team_id"),
            replayed=REPLAY in body,
        )

    @classmethod
    def from_interaction(cls, body: dict[str, Any], *, command: str, text: str = "") -> Invocation:
        channel = body.get("channel") or {}
        container = body.get("container") or {}
        return cls(
            user_id=str((body.get("user") or {}).get("id", "")),
            channel_id=str(channel.get("id") or container.get("channel_id") or ""),
            channel_name=str(channel.get("name", "")),
            command=command,
            text=without_nul(text),
            trigger_id=body.get("trigger_id"),
            response_url=body.get("response_url")
            or next((r.get("response_url") for r in body.get("response_urls") or []), None),
            team_id=(body.get("team") or {}).get("id"),
        )


class Reply(BaseModel):
    """A service's answer. Ephemeral unless ``in_channel``; ``replace_original`` for button clicks."""

    message: RenderedMessage | None = None
    in_channel: bool = False
    replace_original: bool = False

    def payload(self) -> dict[str, Any]:
        assert self.message is not None
        data: dict[str, Any] = self.message.payload()
        data["response_type"] = "in_channel" if self.in_channel else "ephemeral"
        if self.replace_original:
            data["replace_original"] = True
        return data


# --- Slack events, typed (parsed by the listeners in ``commands/events.py``) ------------------------


class Reaction(BaseModel):
    """``reaction_added`` / ``reaction_removed`` on a message."""

    user: str
    reaction: str
    channel: str
    ts: str


class MessageEdited(BaseModel):
    """``message`` with subtype ``message_changed``: the message's new text."""

    channel: str
    ts: str
    text: str


class MessageDeleted(BaseModel):
    """``message`` with subtype ``message_deleted``."""

    channel: str
    ts: str
