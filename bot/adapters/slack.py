"""``SlackChat``: the Chat port over slack_sdk's AsyncWebClient.

Transient failures (429 with ``Retry-After``, 5xx, connection errors) are first retried by slack_sdk's
built-in retry handlers; what still fails is raised as ``ChatError`` with ``retryable``/``retry_after``
so the outbox can try again later.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ChatError, retryable_http_status
from bot.ports import JSON, ChannelRef, ChatUser, PostedMessage

# Errors that will never succeed when repeated.
_PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "invalid_arguments",
    "msg_too_long",
    "no_text",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "missing_scope",
    "name_taken",
    "invalid_name_specials",
    "invalid_name_maxlength",
    "invalid_name_required",
    "user_not_found",
    "users_not_found",
    "cant_invite_self",
    "already_in_channel",
    "message_not_found",
    "cant_update_message",
    "already_pinned",
    "expired_trigger_id",
    "invalid_trigger_id",
}


# get_messages: Slack recommends pages of at most 200 messages.
HISTORY_PAGE = 200
HISTORY_PAGES = 2

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_TS = re.compile(r"^\d+\.\d+$")


def build_web_client(*, token: str, base_url: str, max_retries: int = 2) -> AsyncWebClient:
    """The Web API client with slack_sdk's retry handlers for 429, 5xx and connection errors."""
    client = AsyncWebClient(token=token, base_url=base_url, timeout=10)
    client.retry_handlers.extend(
        [
            AsyncConnectionErrorRetryHandler(max_retry_count=max_retries),
            AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries),
            AsyncServerErrorRetryHandler(max_retry_count=max_retries),
        ]
    )
    return client


@asynccontextmanager
async def shared_session(client: AsyncWebClient) -> AsyncIterator[None]:
    """One connection pool for every Web API call while the bot runs (slack_sdk opens a session per
    call otherwise). At most 16 connections per host (slack.com, hooks.slack.com): more calls at once
    only hold more sockets and buffers, since Slack rate-limits per method and channel anyway."""
    if getattr(client, "session", None) is not None:  # the caller brought its own
        yield
        return
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=client.timeout),
        connector=aiohttp.TCPConnector(limit=64, limit_per_host=16),
    )
    client.session = session
    try:
        yield
    finally:
        client.session = None
        await session.close()


def _to_error(method: str, exc: Exception) -> ChatError:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        code = str(exc.response.get("error", "") or f"http_{status}")
        retry_after: float | None = None
        header = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
        if header:
            try:
                retry_after = float(header if isinstance(header, str) else header[0])
            except (TypeError, ValueError):
                retry_after = None
        retryable = code not in _PERMANENT and (retryable_http_status(status) or code == "ratelimited")
        if status == 200 and code not in _PERMANENT:
            retryable = code in {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}
        return ChatError(f"{method}: {code}", retryable=retryable, retry_after=retry_after, status=status)
    return ChatError(f"{method}: {type(exc).__name__}", retryable=True)


class SlackChat:
    """The Chat port for a real (or emulated) Slack workspace."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._workspace_url: str | None = None  # from auth.test, for permalinks

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            if method in _JSON_METHODS:
                response = await self.client.api_call(method, json=kwargs)
            else:
                response = await self.client.api_call(method, params=_form(kwargs))
        except (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError) as exc:
            raise _to_error(method, exc) from exc
        data: dict[str, Any] = dict(response.data) if isinstance(response.data, dict) else {}
        return data

    async def post_message(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[JSON] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
    ) -> PostedMessage:
        args: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if metadata:
            args["metadata"] = metadata
        if blocks:
            args["blocks"] = blocks
        if thread_ts:
            args["thread_ts"] = thread_ts
            if reply_broadcast:
                args["reply_broadcast"] = True
        data = await self._call("chat.postMessage", **args)
        return PostedMessage(channel=data["channel"], ts=data["ts"])

    async def post_ephemeral(
        self, *, channel: str, user: str, text: str, blocks: list[JSON] | None = None
    ) -> None:
        args: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks:
            args["blocks"] = blocks
        await self._call("chat.postEphemeral", **args)

    async def update_message(
        self, *, channel: str, ts: str, text: str, blocks: list[JSON] | None = None
    ) -> PostedMessage:
        args: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            args["blocks"] = blocks
        data = await self._call("chat.update", **args)
        return PostedMessage(channel=data["channel"], ts=data["ts"])

    async def create_channel(self, *, name: str) -> ChannelRef:
        data = await self._call("conversations.create", name=name, is_private=False)
        return ChannelRef(id=data["channel"]["id"], name=data["channel"]["name"])

    async def find_channel(self, *, name: str) -> ChannelRef | None:
        cursor: str | None = None
        while True:
            args: dict[str, Any] = {"limit": 1000, "exclude_archived": True, "types": "public_channel"}
            if cursor:
                args["cursor"] = cursor
            data = await self._call("conversations.list", **args)
            for channel in data.get("channels", []):
                if channel.get("name") == name:
                    return ChannelRef(id=channel["id"], name=channel["name"])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None

    async def invite(self, *, channel: str, users: list[str]) -> None:
        if not users:
            return
        try:
            # force: invite the others even when one of them is already in (or cannot be invited).
            await self._call("conversations.invite", channel=channel, users=",".join(users), force=True)
        except ChatError as exc:
            if "already_in_channel" not in str(exc) and "cant_invite_self" not in str(exc):
                raise

    async def set_topic(self, *, channel: str, topic: str) -> None:
        await self._call("conversations.setTopic", channel=channel, topic=topic[:250])

    async def pin(self, *, channel: str, ts: str) -> None:
        try:
            await self._call("pins.add", channel=channel, timestamp=ts)
        except ChatError as exc:
            if "already_pinned" not in str(exc):
                raise

    async def add_bookmark(self, *, channel: str, title: str, link: str) -> None:
        await self._call("bookmarks.add", channel_id=channel, title=title, type="link", link=link)

    async def permalink(self, *, channel: str, ts: str, thread_ts: str | None = None) -> str:
        """Built from the workspace URL (``auth.test``, asked once) the way Slack builds permalinks,
        saving a ``chat.getPermalink`` round trip per captured message; that method is the fallback."""
        if self._workspace_url is None:
            with contextlib.suppress(ChatError):  # asked again next time
                self._workspace_url = str((await self._call("auth.test")).get("url") or "")
        if self._workspace_url and _CHANNEL_ID.match(channel) and _TS.match(ts):
            link = f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
            if thread_ts and thread_ts != ts:
                link += f"?thread_ts={thread_ts}&cid={channel}"
            return link
        data = await self._call("chat.getPermalink", channel=channel, message_ts=ts)
        return str(data.get("permalink", ""))

    async def find_posted(
        self, *, channel: str, event_type: str, key: str, thread_ts: str | None = None
    ) -> PostedMessage | None:
        found = await self.find_posted_keys(
            channel=channel, event_type=event_type, keys=[key], thread_ts=thread_ts
        )
        return found.get(key)

    async def find_posted_keys(
        self, *, channel: str, event_type: str, keys: Collection[str], thread_ts: str | None = None
    ) -> dict[str, PostedMessage]:
        if not _CHANNEL_ID.match(channel):
            # Posts may address a channel by name (#incident-bridge); the history methods need its id.
            found = await self.find_channel(name=channel.removeprefix("#"))
            if found is None:
                return {}
            channel = found.id
        if thread_ts:
            data = await self._call(
                "conversations.replies", channel=channel, ts=thread_ts, include_all_metadata=True
            )
        else:
            data = await self._call(
                "conversations.history", channel=channel, limit=200, include_all_metadata=True
            )
        wanted = set(keys)
        posted: dict[str, PostedMessage] = {}
        for message in data.get("messages", []):
            meta = message.get("metadata") or {}
            if meta.get("event_type") != event_type:
                continue
            payload = meta.get("event_payload") or {}
            carried = {payload.get("key"), *(payload.get("keys") or [])}
            for key in wanted & carried:
                posted.setdefault(key, PostedMessage(channel=channel, ts=str(message["ts"])))
        return posted

    async def get_message(self, *, channel: str, ts: str) -> JSON | None:
        data = await self._call(
            "conversations.history", channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
        )
        for message in data.get("messages", []):
            if message.get("ts") == ts:
                return dict(message)
        try:
            data = await self._call("conversations.replies", channel=channel, ts=ts)
        except ChatError as exc:
            if "thread_not_found" in str(exc) or "message_not_found" in str(exc):
                return None
            raise
        for message in data.get("messages", []):
            if message.get("ts") == ts:
                return dict(message)
        return None

    async def get_messages(self, *, channel: str, timestamps: Sequence[str]) -> dict[str, JSON]:
        """One ``conversations.history`` over the range the timestamps span (at most
        ``HISTORY_PAGES`` pages of ``HISTORY_PAGE`` messages); what it does not hold (thread replies,
        messages beyond those pages) is read one by one with ``get_message``."""
        wanted = set(timestamps)
        found: dict[str, JSON] = {}
        if len(wanted) > 1 and all(_TS.match(ts) for ts in wanted):
            cursor = ""
            for _ in range(HISTORY_PAGES):
                data = await self._call(
                    "conversations.history",
                    channel=channel,
                    oldest=min(wanted, key=Decimal),
                    latest=max(wanted, key=Decimal),
                    inclusive=True,
                    limit=HISTORY_PAGE,
                    **({"cursor": cursor} if cursor else {}),
                )
                for message in data.get("messages", []):
                    if message.get("ts") in wanted:
                        found[message["ts"]] = dict(message)
                cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
                if not cursor or len(found) == len(wanted):
                    break
        for ts in sorted(wanted - found.keys()):
            message = await self.get_message(channel=channel, ts=ts)
            if message is not None:
                found[ts] = message
        return found

    async def user(self, *, user_id: str) -> ChatUser:
        data = await self._call("users.info", user=user_id)
        return _user(data["user"])

    async def user_by_email(self, *, email: str) -> ChatUser | None:
        try:
            data = await self._call("users.lookupByEmail", email=email)
        except ChatError as exc:
            if "users_not_found" in str(exc):
                return None
            raise
        return _user(data["user"])

    async def usergroup_members(self, *, usergroup: str) -> list[str]:
        data = await self._call("usergroups.users.list", usergroup=usergroup)
        return [str(u) for u in data.get("users", [])]

    async def open_view(self, *, trigger_id: str, view: JSON) -> None:
        await self._call("views.open", trigger_id=trigger_id, view=view)

    async def upload_file(
        self,
        *,
        channel: str,
        content: str,
        filename: str,
        title: str,
        initial_comment: str = "",
        thread_ts: str | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {
            "channel": channel,
            "content": content,
            "filename": filename,
            "title": title,
        }
        if initial_comment:
            kwargs["initial_comment"] = initial_comment
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            response = await self.client.files_upload_v2(**kwargs)
        except (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError) as exc:
            raise _to_error("files.upload", exc) from exc
        files = response.get("files") or [response.get("file") or {}]
        return str(files[0].get("id", "")) if files else ""

    async def respond(self, *, response_url: str, payload: JSON) -> None:
        """POST the answer to a command's ``response_url``, on the Web API client's shared session
        when the app has one (``bot.web``). A failed connection is tried once more, as slack_sdk's
        webhook client does; slack_sdk's client itself is not used here: built per answer, it cost
        more CPU than the request."""
        body = json.dumps(payload).encode()
        async with contextlib.AsyncExitStack() as stack:
            session = self.client.session
            if session is None:
                session = await stack.enter_async_context(aiohttp.ClientSession())
            for attempt in (1, 2):
                try:
                    async with session.post(
                        response_url, data=body, headers=_JSON_HEADERS, timeout=_RESPOND_TIMEOUT
                    ) as response:
                        status = response.status
                        await response.read()
                    break
                except aiohttp.ClientConnectionError as exc:
                    if attempt == 2:
                        raise ChatError("response_url: connection failed", retryable=True) from exc
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise ChatError("response_url: connection failed", retryable=True) from exc
        if status >= 300:
            raise ChatError(
                f"response_url: HTTP {status}", retryable=retryable_http_status(status), status=status
            )


_JSON_HEADERS = {"Content-Type": "application/json;charset=utf-8"}
_RESPOND_TIMEOUT = aiohttp.ClientTimeout(total=10)

_JSON_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "views.update"}


def _form(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in kwargs.items()}


def _user(data: dict[str, Any]) -> ChatUser:
    profile = data.get("profile") or {}
    return ChatUser(
        id=data["id"],
        name=data.get("name", ""),
        real_name=data.get("real_name") or profile.get("real_name", ""),
        email=profile.get("email"),
        is_bot=bool(data.get("is_bot")),
    )
