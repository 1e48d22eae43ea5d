"""In-memory state of the emulated Slack workspace, plus the helpers tests use to read and drive it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from bot.sandbox.slack._models import (
    APP_ID,
    BASE_TIME,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_ID,
    Bookmark,
    Call,
    Channel,
    Envelope,
    EnvelopeAck,
    Ephemeral,
    Fault,
    File,
    JsonDict,
    Message,
    ResponseTarget,
    SocketConnection,
    User,
    Usergroup,
    View,
    ts_from_counter,
    ts_index,
    ts_seconds,
)

DEFAULT_VERIFICATION_TOKEN = "verification-token"  # noqa: S105 - fake, sent in payloads


class SlackWorkspace:
    """Thread-safe in-memory Slack workspace.

    The emulator's request handlers mutate it from the server thread while a test reads it from
    its own thread; every public method takes ``lock`` (re-entrant), and so should a test that
    reads several attributes that must agree with each other.

    With ``seed=True`` (the default) it holds, besides the bot user ``UBOT``, the users
    ``U_ALICE`` and ``U_BOB`` and a ``#general`` channel (``C0001``) that all three are in.
    """

    def __init__(
        self,
        *,
        seed: bool = True,
        verification_token: str = DEFAULT_VERIFICATION_TOKEN,
        real_time: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.real_time = real_time
        """Message timestamps from the wall clock (the demo) instead of a deterministic counter (tests)."""
        self._last_micros = 0
        self.verification_token = verification_token
        self.base_url: str | None = None
        """Public URL of the emulator (set by ``start_slack_emulator``), used for response URLs."""
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, Usergroup] = {}
        self.channels: dict[str, Channel] = {}
        self.channel_messages: dict[str, list[Message]] = {}
        """Every message of each channel (thread replies and deleted ones included), in ts order:
        only ever appended, with increasing ts, so lookups bisect."""
        self._replies: dict[tuple[str, str], list[Message]] = {}  # (channel, thread ts) -> replies
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.bookmarks: dict[str, Bookmark] = {}
        self.files: dict[str, File] = {}
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.response_urls: dict[str, list[JsonDict]] = {}
        self.ack_replies: set[str] = set()  # response URL tokens whose command was answered in its ack
        self.response_targets: dict[str, ResponseTarget] = {}
        self.triggers: dict[str, str] = {}
        """Trigger ids the driver handed out -> the user who triggered them."""
        self.exchanged_triggers: set[str] = set()
        self.socket_connections: list[SocketConnection] = []
        """Socket Mode: every websocket the app opened, in order (see ``slack/_socket_mode.py``)."""
        self.socket_envelopes: list[Envelope] = []
        """Socket Mode: every envelope sent, redeliveries included, in sending order."""
        self.socket_acks: list[EnvelopeAck] = []
        """Socket Mode: every ack received, in order."""
        self._faults: dict[str, deque[Fault]] = {}
        self._sequences: dict[str, int] = {}
        self._clock = 0
        self.add_user(BOT_NAME, id=BOT_USER_ID, real_name="cmdcenter", is_bot=True, bot_id=BOT_ID)
        if seed:
            self.add_user("alice", real_name="Alice Example")
            self.add_user("bob", real_name="Bob Example")
            self.add_channel("general", members=[*self.users])

    # --- ids and clock ------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A new unique timestamp, strictly greater than every earlier one."""
        with self.lock:
            self._clock += 1
            if not self.real_time:
                return ts_from_counter(self._clock)
            self._last_micros = max(time.time_ns() // 1000, self._last_micros + 100)
            return f"{self._last_micros // 1_000_000}.{self._last_micros % 1_000_000:06d}"

    def next_id(self, prefix: str, width: int = 4) -> str:
        """Sequential ids per prefix: ``next_id("C")`` -> ``"C0001"``, ``"C0002"``…"""
        return f"{prefix}{self._next_number(prefix):0{width}d}"

    def _next_number(self, sequence: str) -> int:
        with self.lock:
            number = self._sequences.get(sequence, 0) + 1
            self._sequences[sequence] = number
            return number

    # --- setup helpers ------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        *,
        id: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        is_bot: bool = False,
        tz: str = "UTC",
        bot_id: str | None = None,
    ) -> User:
        """Add (or replace) a user; the id defaults to ``U_<NAME>``, the email to ``<name>@example.com``."""
        user = User(
            id=id or f"U_{name.upper().replace('.', '_').replace('-', '_')}",
            name=name,
            real_name=real_name or name.title(),
            email=email or f"{name}@example.com",
            is_bot=is_bot,
            tz=tz,
            bot_id=bot_id,
        )
        with self.lock:
            self.users[user.id] = user
        return user

    def add_usergroup(self, handle: str, members: Iterable[str], *, name: str | None = None) -> str:
        with self.lock:
            group = Usergroup(id=self.next_id("S"), handle=handle, name=name or handle, members=list(members))
            self.usergroups[group.id] = group
            return group.id

    def add_channel(
        self,
        name: str,
        *,
        members: Iterable[str] = (),
        is_private: bool = False,
        topic: str = "",
        purpose: str = "",
        bot_member: bool = True,
    ) -> Channel:
        """Create a channel directly (no API call); the bot is a member unless ``bot_member=False``."""
        with self.lock:
            if self.channel_by_name(name) is not None:
                raise ValueError(f"channel #{name} already exists")
            member_ids = set(members) | ({BOT_USER_ID} if bot_member else set())
            channel = Channel(
                id=self.next_id("C"),
                name=name,
                topic=topic,
                purpose=purpose,
                members=member_ids,
                is_private=is_private,
                created=BASE_TIME + self._clock,
            )
            self.channels[channel.id] = channel
            self.channel_messages[channel.id] = []
            return channel

    def dm_channel(self, user_id: str) -> Channel:
        """The bot's direct-message channel with ``user_id`` (created on first use)."""
        with self.lock:
            for channel in self.channels.values():
                if channel.im_user == user_id:
                    return channel
            channel = Channel(
                id=self.next_id("D"), name=user_id, members={BOT_USER_ID, user_id}, im_user=user_id
            )
            self.channels[channel.id] = channel
            self.channel_messages[channel.id] = []
            return channel

    # --- lookups ------------------------------------------------------------------------------

    def channel_by_name(self, name: str) -> Channel | None:
        wanted = name.removeprefix("#")
        with self.lock:
            return next((c for c in self.channels.values() if c.name == wanted and not c.is_im), None)

    def find_channel(self, ref: str) -> Channel | None:
        """A channel by id, ``#name`` or ``name``; a user id gives the DM channel with that user."""
        with self.lock:
            if ref in self.channels:
                return self.channels[ref]
            if ref in self.users:
                return self.dm_channel(ref)
            return self.channel_by_name(ref)

    def require_channel(self, ref: str) -> Channel:
        channel = self.find_channel(ref)
        if channel is None:
            raise KeyError(f"no channel {ref!r} in the emulated workspace")
        return channel

    def require_user(self, user_id: str) -> User:
        with self.lock:
            if user_id not in self.users:
                raise KeyError(f"no user {user_id!r} in the emulated workspace")
            return self.users[user_id]

    def find_user_by_email(self, email: str) -> User | None:
        with self.lock:
            return next((u for u in self.users.values() if u.email.lower() == email.lower()), None)

    def find_message(self, channel_id: str, ts: str) -> Message | None:
        with self.lock:
            messages = self.channel_messages.get(channel_id, [])
            try:
                i = ts_index(messages, ts)
            except ArithmeticError:  # not a timestamp
                return None
            return messages[i] if i < len(messages) and messages[i].ts == ts else None

    def view(self, view_id: str) -> View:
        with self.lock:
            return self.views[view_id]

    def views_with_callback(self, callback_id: str) -> list[View]:
        with self.lock:
            return [v for v in self.views.values() if v.callback_id == callback_id]

    # --- queries for tests --------------------------------------------------------------------

    def messages(
        self, channel: str, *, include_threads: bool = True, include_deleted: bool = False
    ) -> list[Message]:
        """Messages of a channel (id or name) oldest first."""
        with self.lock:
            found = self.require_channel(channel)
            return [
                m
                for m in self.channel_messages[found.id]
                if (include_deleted or not m.deleted) and (include_threads or not m.is_reply)
            ]

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The parent message followed by its replies, oldest first."""
        with self.lock:
            found = self.require_channel(channel)
            return [
                m
                for m in self.channel_messages[found.id]
                if not m.deleted and (m.ts == thread_ts or m.thread_ts == thread_ts)
            ]

    def replies(self, channel_id: str, thread_ts: str) -> list[Message]:
        with self.lock:
            return [m for m in self._replies.get((channel_id, thread_ts), []) if not m.deleted]

    def find_messages(self, text: str) -> list[Message]:
        """Messages anywhere whose text, blocks or attachments contain ``text``."""
        with self.lock:
            return [
                m
                for messages in self.channel_messages.values()
                for m in messages
                if not m.deleted and text in m.all_text()
            ]

    def last_message(self, channel: str, *, include_threads: bool = True) -> Message | None:
        found = self.messages(channel, include_threads=include_threads)
        return found[-1] if found else None

    def pins(self, channel: str) -> list[Message]:
        return [m for m in self.messages(channel) if m.pinned]

    def ephemeral_messages(self, *, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        with self.lock:
            channel_id = self.require_channel(channel).id if channel else None
            return [
                e
                for e in self.ephemerals
                if (channel_id is None or e.channel == channel_id) and (user is None or e.user == user)
            ]

    def calls_to(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def failed_calls(self) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if not c.ok]

    def responses(self, url_or_token: str) -> list[JsonDict]:
        """Bodies posted to a response URL (full URL or its token)."""
        token = url_or_token.rstrip("/").rsplit("/", 1)[-1]
        with self.lock:
            return list(self.response_urls.get(token, []))

    def envelopes_sent(self, type: str | None = None) -> list[Envelope]:
        """Socket Mode envelopes sent (of one type: ``events_api``, ``slash_commands``, ``interactive``)."""
        with self.lock:
            return [e for e in self.socket_envelopes if type is None or e.type == type]

    def acks_received(self, envelope_id: str | None = None) -> list[EnvelopeAck]:
        """Socket Mode acks received (for one envelope)."""
        with self.lock:
            return [a for a in self.socket_acks if envelope_id is None or a.envelope_id == envelope_id]

    def render_message(self, message: Message) -> JsonDict:
        with self.lock:
            replies = None if message.is_reply else self.replies(message.channel, message.ts)
            return message.to_api(replies)

    # --- recording and fault injection ----------------------------------------------------------

    def record_call(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def add_violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = None,
        error: str = "ratelimited",
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        ``status=429`` answers HTTP 429 with a ``Retry-After`` header (``retry_after`` seconds,
        default 1); ``status=200`` answers ``{"ok": false, "error": error}``; any other status
        answers that HTTP status with the same body.
        """
        fault = Fault(status=status, error=error, retry_after=retry_after)
        with self.lock:
            self._faults.setdefault(method, deque()).extend([fault] * times)

    def clear_faults(self, method: str | None = None) -> None:
        """Drop injected failures (of one method, or all)."""
        with self.lock:
            if method is None:
                self._faults.clear()
            else:
                self._faults.pop(method, None)

    def take_fault(self, method: str) -> Fault | None:
        with self.lock:
            pending = self._faults.get(method)
            return pending.popleft() if pending else None

    # --- triggers and response URLs -------------------------------------------------------------

    def new_trigger_id(self, user_id: str = "") -> str:
        """Register a fresh trigger id (what Slack sends with commands and interactions)."""
        with self.lock:
            number = self._next_number("trigger")
            trigger_id = f"{number}.{BASE_TIME}.{number:032x}"
            self.triggers[trigger_id] = user_id
            return trigger_id

    def new_response_url(self, channel_id: str, user_id: str, *, message_ts: str | None = None) -> str:
        """A response URL bound to a channel, a user and optionally the message it came from."""
        with self.lock:
            if self.base_url is None:
                raise RuntimeError("workspace.base_url is not set: start the emulator first")
            token = self.next_id("resp", width=6)
            self.response_targets[token] = ResponseTarget(channel_id, user_id, message_ts)
            return f"{self.base_url}/response_url/{token}"

    # --- writing messages -------------------------------------------------------------------

    def post_message(
        self,
        channel_id: str,
        *,
        text: str,
        user: str = BOT_USER_ID,
        bot_id: str | None = BOT_ID,
        blocks: list[JsonDict] | None = None,
        attachments: list[JsonDict] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JsonDict | None = None,
        files: list[JsonDict] | None = None,
    ) -> Message:
        """Store a new message (no events, no validation) and return it."""
        with self.lock:
            message = Message(
                ts=self.next_ts(),
                channel=channel_id,
                user=user,
                bot_id=bot_id,
                text=text,
                blocks=list(blocks or []),
                attachments=list(attachments or []),
                thread_ts=thread_ts,
                reply_broadcast=reply_broadcast,
                subtype="thread_broadcast" if reply_broadcast and thread_ts else None,
                metadata=metadata,
                files=list(files or []),
            )
            self.channel_messages.setdefault(channel_id, []).append(message)
            if message.is_reply and thread_ts is not None:
                self._replies.setdefault((channel_id, thread_ts), []).append(message)
            return message

    # --- user activity -> Events API payloads -------------------------------------------------

    def post_user_message(
        self, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> tuple[Message, JsonDict]:
        """A human posts a message; returns it and its ``message`` event envelope."""
        with self.lock:
            self.require_user(user)
            found = self.require_channel(channel)
            message = self.post_message(found.id, text=text, user=user, bot_id=None, thread_ts=thread_ts)
            event = {**self._message_event_fields(message, found), "type": "message"}
            return message, self.event_envelope(event)

    def mention_bot(
        self, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> tuple[Message, JsonDict]:
        """A human @-mentions the bot; returns the message and its ``app_mention`` event envelope."""
        mention = f"<@{BOT_USER_ID}>"
        full_text = text if mention in text else f"{mention} {text}"
        with self.lock:
            message, _ = self.post_user_message(user, channel, full_text, thread_ts)
            found = self.require_channel(channel)
            event = {**self._message_event_fields(message, found), "type": "app_mention"}
            event.pop("channel_type", None)
            return message, self.event_envelope(event)

    def add_reaction(self, user: str, channel: str, ts: str, emoji: str) -> JsonDict:
        """``user`` reacts to a message; returns the ``reaction_added`` event envelope."""
        name = emoji.strip(":")
        with self.lock:
            message = self._require_message(channel, ts)
            users = message.reactions.setdefault(name, [])
            if user not in users:
                users.append(user)
            return self._reaction_event("reaction_added", user, message, name)

    def remove_reaction(self, user: str, channel: str, ts: str, emoji: str) -> JsonDict:
        name = emoji.strip(":")
        with self.lock:
            message = self._require_message(channel, ts)
            users = message.reactions.get(name, [])
            if user in users:
                users.remove(user)
            if not users:
                message.reactions.pop(name, None)
            return self._reaction_event("reaction_removed", user, message, name)

    def edit_message(self, channel: str, ts: str, text: str) -> JsonDict:
        """The author edits a message; returns the ``message_changed`` event envelope."""
        with self.lock:
            message = self._require_message(channel, ts)
            previous = self.render_message(message)
            event_ts = self.next_ts()
            message.text = text
            message.edited = {"user": message.user, "ts": event_ts}
            return self._change_event("message_changed", message, previous, event_ts)

    def delete_message(self, channel: str, ts: str) -> JsonDict:
        """The author deletes a message; returns the ``message_deleted`` event envelope."""
        with self.lock:
            message = self._require_message(channel, ts)
            previous = self.render_message(message)
            message.deleted = True
            return self._change_event("message_deleted", message, previous, self.next_ts())

    def event_envelope(self, event: JsonDict) -> JsonDict:
        """Wrap an event the way the Events API delivers it (``event_callback``)."""
        with self.lock:
            event_id = self.next_id("Ev", width=8)
            event_ts = str(event.setdefault("event_ts", self.next_ts()))
            return {
                "token": self.verification_token,
                "team_id": TEAM_ID,
                "enterprise_id": None,
                "api_app_id": APP_ID,
                "event": event,
                "type": "event_callback",
                "event_id": event_id,
                "event_time": ts_seconds(event_ts),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": TEAM_ID,
                        "user_id": BOT_USER_ID,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "authed_users": [BOT_USER_ID],
                "is_ext_shared_channel": False,
                "event_context": f"4-{event_id}",
            }

    def _require_message(self, channel: str, ts: str) -> Message:
        found = self.require_channel(channel)
        message = self.find_message(found.id, ts)
        if message is None or message.deleted:
            raise KeyError(f"no message {ts} in {found.id}")
        return message

    def _message_event_fields(self, message: Message, channel: Channel) -> JsonDict:
        fields: JsonDict = {
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "event_ts": message.ts,
            "channel": channel.id,
            "channel_type": _channel_type(channel),
            "team": TEAM_ID,
            "client_msg_id": f"00000000-0000-4000-8000-{int(message.ts.replace('.', '')):012d}",
            "blocks": [_rich_text_block(message.text)],
        }
        if message.is_reply and message.thread_ts is not None:
            parent = self.find_message(channel.id, message.thread_ts)
            fields["thread_ts"] = message.thread_ts
            fields["parent_user_id"] = parent.user if parent else None
        return fields

    def _reaction_event(self, kind: str, user: str, message: Message, name: str) -> JsonDict:
        event: JsonDict = {
            "type": kind,
            "user": user,
            "reaction": name,
            "item_user": message.user,
            "item": {"type": "message", "channel": message.channel, "ts": message.ts},
            "event_ts": self.next_ts(),
        }
        return self.event_envelope(event)

    def _change_event(self, subtype: str, message: Message, previous: JsonDict, event_ts: str) -> JsonDict:
        channel = self.channels[message.channel]
        event: JsonDict = {
            "type": "message",
            "subtype": subtype,
            "hidden": True,
            "channel": channel.id,
            "channel_type": _channel_type(channel),
            "ts": event_ts,
            "event_ts": event_ts,
            "previous_message": previous,
        }
        if subtype == "message_deleted":
            event["deleted_ts"] = message.ts
        else:
            event["message"] = self.render_message(message)
        return self.event_envelope(event)


def _channel_type(channel: Channel) -> str:
    if channel.is_im:
        return "im"
    return "group" if channel.is_private else "channel"


def _rich_text_block(text: str) -> dict[str, Any]:
    return {
        "type": "rich_text",
        "block_id": "rt0",
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }
