"""What a Web API method handler gets: the workspace, typed access to the args, Slack-style errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from bot.sandbox.slack._blocks import MAX_MESSAGE_TEXT, validate_blocks
from bot.sandbox.slack._models import BOT_USER_ID, Channel, JsonDict, Message, User
from bot.sandbox.slack._workspace import SlackWorkspace

T = TypeVar("T")


class ApiError(Exception):
    """A Slack error answer ``{"ok": false, "error": code, **extra}``.

    ``violation`` says why the request broke Slack's rules; errors that only reflect the
    workspace's state (``name_taken``, ``already_in_channel``…) have none.
    """

    def __init__(self, error: str, violation: str | None = None, **extra: Any) -> None:
        super().__init__(error if violation is None else f"{error}: {violation}")
        self.error = error
        self.violation = violation
        self.extra = extra


@dataclass
class MethodContext:
    ws: SlackWorkspace
    method: str
    args: JsonDict
    base_url: str

    def fail(self, error: str, violation: str | None = None, **extra: Any) -> NoReturn:
        raise ApiError(error, violation, **extra)

    def violate(self, detail: str) -> None:
        """Record a violation without failing the call."""
        self.ws.add_violation(f"{self.method}: {detail}")

    # --- typed args -------------------------------------------------------------------------

    def text(self, name: str, default: str = "") -> str:
        value = self.args.get(name)
        return default if value is None else str(value)

    def optional_text(self, name: str) -> str | None:
        value = self.args.get(name)
        return None if value is None or value == "" else str(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.args.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true")

    def integer(self, name: str, default: int) -> int:
        value = self.args.get(name)
        try:
            return default if value is None or value == "" else int(value)
        except (TypeError, ValueError):
            return default

    def csv(self, name: str) -> list[str]:
        value = self.args.get(name)
        items = value if isinstance(value, list) else str(value or "").split(",")
        return [str(item).strip() for item in items if str(item).strip()]

    # --- resolved objects -----------------------------------------------------------------

    def channel(self, name: str = "channel", *, allow_name: bool = False) -> Channel:
        """Resolve a channel arg; names (and user ids) only where Slack accepts them."""
        ref = self.text(name).strip()
        found = self.ws.find_channel(ref) if allow_name and ref else self.ws.channels.get(ref)
        if found is None and not allow_name and ref and self.ws.channel_by_name(ref) is not None:
            self.fail("channel_not_found", f"{name} must be a conversation ID, got {ref!r}")
        if found is None or (found.is_private and BOT_USER_ID not in found.members):
            self.fail("channel_not_found")
        return found

    def writable_channel(self, name: str = "channel", *, allow_name: bool = False) -> Channel:
        found = self.channel(name, allow_name=allow_name)
        if found.is_archived:
            self.fail("is_archived")
        return found

    def member_channel(self, name: str = "channel") -> Channel:
        """A channel the bot is in (``not_in_channel`` otherwise)."""
        found = self.writable_channel(name)
        if BOT_USER_ID not in found.members:
            self.fail("not_in_channel")
        return found

    def message(self, channel: Channel, ts_arg: str = "ts") -> Message:
        found = self.ws.find_message(channel.id, self.text(ts_arg))
        if found is None or found.deleted:
            self.fail("message_not_found")
        return found

    def user(self, name: str = "user") -> User:
        user_id = self.text(name)
        if user_id not in self.ws.users:
            self.fail("user_not_found")
        return self.ws.users[user_id]

    def thread_root(self, channel: Channel) -> str | None:
        """The ``thread_ts`` arg normalised to the thread's parent (Slack accepts a reply's ts)."""
        thread_ts = self.optional_text("thread_ts")
        if thread_ts is None:
            return None
        parent = self.ws.find_message(channel.id, thread_ts)
        if parent is None:
            self.violate(f"thread_ts {thread_ts} is not a message in {channel.id}")
            return thread_ts
        return parent.thread_ts if parent.is_reply else parent.ts

    # --- message content --------------------------------------------------------------------

    def message_content(self) -> tuple[str, list[JsonDict] | None, list[JsonDict] | None]:
        """Validated ``text``, ``blocks`` and ``attachments`` (``None`` = not given)."""
        text = self.text("text")
        markdown = self.optional_text("markdown_text")
        if markdown is not None:
            if text or self.args.get("blocks") is not None:
                self.fail("markdown_text_conflict", "markdown_text cannot be combined with text or blocks")
            if len(markdown) > 12_000:
                self.fail("msg_too_long", f"markdown_text is {len(markdown)} chars (max 12000)")
            text = markdown
        if len(text) > MAX_MESSAGE_TEXT:
            self.fail("msg_too_long", f"message text is {len(text)} chars (max {MAX_MESSAGE_TEXT})")
        blocks = self._blocks_arg()
        attachments = self._attachments_arg()
        return text, blocks, attachments

    def _blocks_arg(self) -> list[JsonDict] | None:
        blocks = self.args.get("blocks")
        if blocks is None:
            return None
        problems = validate_blocks(blocks, surface="message")
        if problems:
            self.fail("invalid_blocks", "; ".join(problems), errors=problems)
        return list(blocks)

    def _attachments_arg(self) -> list[JsonDict] | None:
        attachments = self.args.get("attachments")
        if attachments is None:
            return None
        if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
            self.fail("invalid_attachments", "attachments must be an array of objects")
        if len(attachments) > 100:
            self.fail("too_many_attachments", f"{len(attachments)} attachments (max 100)")
        for index, attachment in enumerate(attachments):
            problems = validate_blocks(attachment.get("blocks", []), surface="message")
            if problems:
                detail = "; ".join(f"attachments[{index}].{p}" for p in problems)
                self.fail("invalid_attachments", detail)
        return list(attachments)

    def metadata(self) -> JsonDict | None:
        metadata = self.args.get("metadata")
        if metadata is None:
            return None
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            self.fail("invalid_metadata_format", "metadata must be {event_type: str, event_payload: object}")
        return metadata

    # --- pagination -----------------------------------------------------------------------

    def paginate(
        self, items: list[T], *, default_limit: int = 100, max_limit: int = 1000
    ) -> tuple[list[T], str]:
        """The page selected by ``cursor``/``limit`` and the next cursor (``""`` at the end)."""
        limit = self.integer("limit", default_limit)
        limit = min(limit if limit > 0 else default_limit, max_limit)
        cursor = self.optional_text("cursor")
        start = self._decode_cursor(cursor) if cursor else 0
        end = start + limit
        next_cursor = _encode_cursor(end) if end < len(items) else ""
        return items[start:end], next_cursor

    def _decode_cursor(self, cursor: str) -> int:
        try:
            prefix, _, offset = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
            if prefix != "next" or not offset.isdigit():
                raise ValueError(cursor)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            self.fail("invalid_cursor", f"cursor {cursor!r} was not issued by this method")
        return int(offset)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"next:{offset}".encode()).decode()


Handler = Callable[[MethodContext], JsonDict]
