"""State records of the Slack workspace emulator and their Slack-shaped JSON renderings."""

from __future__ import annotations

import bisect
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

JsonDict = dict[str, Any]

TEAM_ID = "T0001"
TEAM_NAME = "cmdcenter sandbox"
TEAM_DOMAIN = "cmdcenter-sandbox"
APP_ID = "A0001"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_NAME = "cmdcenter"
BASE_TIME = 1_700_000_000
"""Every timestamp of the emulator is this epoch plus a counter, so runs are deterministic."""


def ts_index(messages: list[Message], ts: str, *, after: bool = False) -> int:
    """Where ``ts`` falls in ``messages`` (in ts order): the index of the first message at ``ts`` or
    later, or with ``after``, of the first one later than ``ts``. Raises ArithmeticError (decimal's
    InvalidOperation) when ``ts`` is not a number."""
    value = Decimal(ts)
    find = bisect.bisect_right if after else bisect.bisect_left
    return find(messages, value, key=lambda m: Decimal(m.ts))


def ts_from_counter(counter: int) -> str:
    """Slack-style message timestamp ``"1700000000.000100"`` for the ``counter``-th event."""
    micros = counter * 100
    return f"{BASE_TIME + micros // 1_000_000}.{micros % 1_000_000:06d}"


def ts_seconds(ts: str) -> int:
    return int(ts.split(".", 1)[0])


@dataclass
class User:
    id: str
    name: str
    real_name: str
    email: str
    is_bot: bool = False
    tz: str = "UTC"
    bot_id: str | None = None
    deleted: bool = False

    def to_api(self) -> JsonDict:
        offset = ZoneInfo(self.tz).utcoffset(datetime.fromtimestamp(BASE_TIME))
        profile: JsonDict = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "email": self.email,
            "team": TEAM_ID,
            "image_48": f"https://avatars.invalid/{self.id}_48.png",
        }
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": BASE_TIME,
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    name: str
    members: list[str] = field(default_factory=list)
    description: str = ""

    def to_api(self, *, include_users: bool) -> JsonDict:
        data: JsonDict = {
            "id": self.id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "name": self.name,
            "description": self.description,
            "handle": self.handle,
            "is_external": False,
            "date_create": BASE_TIME,
            "date_update": BASE_TIME,
            "date_delete": 0,
            "auto_type": None,
            "created_by": BOT_USER_ID,
            "user_count": len(self.members),
        }
        if include_users:
            data["users"] = list(self.members)
        return data


@dataclass
class Channel:
    id: str
    name: str
    topic: str = ""
    purpose: str = ""
    members: set[str] = field(default_factory=set)
    is_private: bool = False
    is_archived: bool = False
    created: int = BASE_TIME
    creator: str = BOT_USER_ID
    im_user: str | None = None
    """For a direct-message channel ("D…"), the human on the other side."""

    @property
    def is_im(self) -> bool:
        return self.im_user is not None

    def to_api(self) -> JsonDict:
        if self.im_user is not None:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "creator": self.creator,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "unlinked": 0,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "is_member": BOT_USER_ID in self.members,
            "topic": _text_meta(self.topic, self.creator, self.created),
            "purpose": _text_meta(self.purpose, self.creator, self.created),
            "previous_names": [],
            "num_members": len(self.members),
        }


def _text_meta(value: str, creator: str, created: int) -> JsonDict:
    return {"value": value, "creator": creator if value else "", "last_set": created if value else 0}


@dataclass
class Message:
    ts: str
    channel: str
    user: str | None
    bot_id: str | None
    text: str
    blocks: list[JsonDict] = field(default_factory=list)
    thread_ts: str | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    pinned: bool = False
    edited: JsonDict | None = None
    """``{"user": ..., "ts": ...}`` once the message was updated."""
    deleted: bool = False
    metadata: JsonDict | None = None
    files: list[JsonDict] = field(default_factory=list)
    attachments: list[JsonDict] = field(default_factory=list)
    subtype: str | None = None
    reply_broadcast: bool = False

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, replies: list[Message] | None = None) -> JsonDict:
        data: JsonDict = {"type": "message", "ts": self.ts, "text": self.text, "team": TEAM_ID}
        optional: JsonDict = {
            "user": self.user,
            "bot_id": self.bot_id,
            "app_id": APP_ID if self.bot_id == BOT_ID else None,
            "subtype": self.subtype,
            "blocks": self.blocks or None,
            "attachments": self.attachments or None,
            "thread_ts": self.thread_ts,
            "edited": self.edited,
            "metadata": self.metadata,
            "files": self.files or None,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        if self.reactions:
            data["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if self.pinned:
            data["pinned_to"] = [self.channel]
        if replies:
            data["reply_count"] = len(replies)
            data["reply_users"] = sorted({r.user for r in replies if r.user})
            data["reply_users_count"] = len(data["reply_users"])
            data["latest_reply"] = replies[-1].ts
        return data

    def all_text(self) -> str:
        """The message text plus every string inside its blocks and attachments (for searching)."""
        parts = [self.text]
        _collect_strings(self.blocks, parts)
        _collect_strings(self.attachments, parts)
        return "\n".join(parts)


def _collect_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, out)


@dataclass
class Ephemeral:
    ts: str
    channel: str
    user: str
    text: str
    blocks: list[JsonDict] = field(default_factory=list)
    thread_ts: str | None = None


@dataclass
class View:
    id: str
    type: str
    payload: JsonDict
    """The view as the app sent it (title, blocks, callback_id, private_metadata…)."""
    user: str | None = None
    trigger_id: str | None = None
    root_view_id: str | None = None
    previous_view_id: str | None = None
    hash: str = ""
    closed: bool = False

    @property
    def callback_id(self) -> str:
        return str(self.payload.get("callback_id", ""))

    @property
    def private_metadata(self) -> str:
        return str(self.payload.get("private_metadata", ""))

    @property
    def blocks(self) -> list[JsonDict]:
        blocks = self.payload.get("blocks", [])
        return blocks if isinstance(blocks, list) else []

    def to_api(self) -> JsonDict:
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "type": self.type,
            "blocks": self.blocks,
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": {}},
            "hash": self.hash,
            "title": self.payload.get("title"),
            "clear_on_close": bool(self.payload.get("clear_on_close", False)),
            "notify_on_close": bool(self.payload.get("notify_on_close", False)),
            "close": self.payload.get("close"),
            "submit": self.payload.get("submit"),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id or self.id,
            "app_id": APP_ID,
            "external_id": str(self.payload.get("external_id", "")),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }


@dataclass
class Bookmark:
    id: str
    channel_id: str
    title: str
    type: str
    link: str = ""
    emoji: str = ""
    created: int = BASE_TIME

    def to_api(self) -> JsonDict:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "title": self.title,
            "link": self.link,
            "emoji": self.emoji,
            "icon_url": None,
            "type": self.type,
            "entity_id": None,
            "date_created": self.created,
            "date_updated": 0,
            "rank": "U",
            "last_updated_by_user_id": BOT_USER_ID,
            "last_updated_by_team_id": TEAM_ID,
            "shortcut_id": None,
            "app_id": None,
        }


@dataclass
class File:
    id: str
    filename: str
    title: str
    declared_length: int
    content: bytes | None = None
    """``None`` until the bytes were POSTed to the upload URL."""
    channels: list[str] = field(default_factory=list)
    initial_comment: str = ""
    thread_ts: str | None = None
    created: int = BASE_TIME
    user: str = BOT_USER_ID
    completed: bool = False

    @property
    def mimetype(self) -> str:
        guessed, _ = mimetypes.guess_type(self.filename)
        return guessed or "application/octet-stream"

    def to_api(self, base_url: str) -> JsonDict:
        extension = self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else "binary"
        download = f"{base_url}/files/{self.id}/{self.filename}"
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.filename,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": extension,
            "pretty_type": extension.upper(),
            "user": self.user,
            "user_team": TEAM_ID,
            "editable": False,
            "size": len(self.content or b""),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": download,
            "url_private_download": download,
            "permalink": f"{base_url}/files/{self.user}/{self.id}/{self.filename}",
            "channels": list(self.channels),
            "groups": [],
            "ims": [],
            "comments_count": 0,
        }


@dataclass(frozen=True)
class Call:
    """One Web API request as the emulator saw it (``args`` without the token)."""

    method: str
    args: JsonDict
    ok: bool
    error: str | None = None
    status: int = 200


@dataclass(frozen=True)
class Fault:
    status: int
    error: str
    retry_after: int | None


@dataclass(frozen=True)
class ResponseTarget:
    """What a response URL was issued for: the channel, the user and maybe the source message."""

    channel: str
    user: str
    message_ts: str | None = None


# --- Socket Mode ------------------------------------------------------------------------------

ENVELOPE_TYPES = ("events_api", "slash_commands", "interactive")


@dataclass
class SocketConnection:
    """One websocket of the app's Socket Mode link, as the emulator saw it (times: ``time.monotonic()``)."""

    id: str
    ticket: str
    opened_at: float
    closed_at: float | None = None
    closed_by: str | None = None
    """``"app"`` (the client closed it) or ``"slack"`` (the emulator did)."""
    disconnect_reason: str | None = None
    """The reason of the ``disconnect`` message the emulator sent on it, if it sent one."""

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass
class Envelope:
    """One envelope the emulator sent (or will send) over Socket Mode.

    A redelivery is a new envelope (new ``envelope_id``, ``retry_attempt`` + 1) of the same
    delivery: ``delivery_id`` is the ``envelope_id`` of the delivery's first envelope.
    """

    envelope_id: str
    type: str
    payload: JsonDict
    accepts_response_payload: bool
    delivery_id: str
    retry_attempt: int = 0
    retry_reason: str = ""
    retry_fields: bool = True
    """Whether the frame carries ``retry_attempt``/``retry_reason`` (Slack's events_api envelopes do)."""
    connection: str | None = None
    sent_at: float | None = None

    def to_api(self) -> JsonDict:
        frame: JsonDict = {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.retry_fields:
            frame["retry_attempt"] = self.retry_attempt
            frame["retry_reason"] = self.retry_reason
        return frame


@dataclass(frozen=True)
class EnvelopeAck:
    """An ack the app sent: ``{"envelope_id": ..., "payload": {...}}`` (the payload is optional)."""

    envelope_id: str
    connection: str
    payload: JsonDict | None
    received_at: float
    duplicate: bool = False
    """The envelope had been acked already."""
    late: bool = False
    """The delivery had already ended without an ack (Slack ignores it)."""
