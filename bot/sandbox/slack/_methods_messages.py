"""Web API handlers for messages and conversations: chat.*, conversations.*, pins.*, reactions.*."""

from __future__ import annotations

import re
from decimal import Decimal

from bot.sandbox.slack._context import Handler, MethodContext
from bot.sandbox.slack._models import (
    BASE_TIME,
    BOT_ID,
    BOT_USER_ID,
    Channel,
    Ephemeral,
    JsonDict,
    Message,
    ts_index,
)

CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
MAX_CHANNEL_NAME = 80
MAX_TOPIC = 250


def permalink(base_url: str, message: Message) -> str:
    link = f"{base_url}/archives/{message.channel}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
    return link


# --- chat.* -----------------------------------------------------------------------------------


def chat_post_message(ctx: MethodContext) -> JsonDict:
    channel = ctx.writable_channel(allow_name=True)
    text, blocks, attachments = ctx.message_content()
    thread_ts = ctx.thread_root(channel)
    message = ctx.ws.post_message(
        channel.id,
        text=text,
        blocks=blocks,
        attachments=attachments,
        thread_ts=thread_ts,
        reply_broadcast=thread_ts is not None and ctx.flag("reply_broadcast"),
        metadata=ctx.metadata(),
    )
    return {"channel": channel.id, "ts": message.ts, "message": ctx.ws.render_message(message)}


def chat_post_ephemeral(ctx: MethodContext) -> JsonDict:
    channel = ctx.writable_channel(allow_name=True)
    user = ctx.user()
    if user.id not in channel.members:
        ctx.fail("user_not_in_channel")
    text, blocks, _ = ctx.message_content()
    ephemeral = Ephemeral(
        ts=ctx.ws.next_ts(),
        channel=channel.id,
        user=user.id,
        text=text,
        blocks=blocks or [],
        thread_ts=ctx.optional_text("thread_ts"),
    )
    ctx.ws.ephemerals.append(ephemeral)
    return {"message_ts": ephemeral.ts}


def chat_update(ctx: MethodContext) -> JsonDict:
    channel = ctx.writable_channel()
    message = ctx.message(channel)
    if message.bot_id != BOT_ID:
        ctx.fail("cant_update_message")
    text, blocks, attachments = ctx.message_content()
    if "text" in ctx.args or "markdown_text" in ctx.args:
        message.text = text
    if blocks is not None:
        message.blocks = blocks
    if attachments is not None:
        message.attachments = attachments
    metadata = ctx.metadata()
    if metadata is not None:
        message.metadata = metadata
    message.edited = {"user": BOT_USER_ID, "ts": ctx.ws.next_ts()}
    rendered = ctx.ws.render_message(message)
    return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": rendered}


def chat_delete(ctx: MethodContext) -> JsonDict:
    channel = ctx.writable_channel()
    message = ctx.message(channel)
    if message.bot_id != BOT_ID:
        ctx.fail("cant_delete_message")
    message.deleted = True
    return {"channel": channel.id, "ts": message.ts}


def chat_get_permalink(ctx: MethodContext) -> JsonDict:
    channel = ctx.channel()
    message = ctx.message(channel, "message_ts")
    return {"channel": channel.id, "permalink": permalink(ctx.base_url, message)}


# --- conversations.* --------------------------------------------------------------------------


def channel_name_problem(name: str) -> tuple[str, str] | None:
    """Slack's error code and an explanation if ``name`` is not a valid channel name."""
    if not name:
        return "invalid_name_required", "channel name is empty"
    if len(name) > MAX_CHANNEL_NAME:
        return "invalid_name_maxlength", f"channel name is {len(name)} chars (max {MAX_CHANNEL_NAME})"
    if not CHANNEL_NAME_RE.match(name):
        return "invalid_name_specials", f"channel name {name!r} may only contain a-z, 0-9, '-' and '_'"
    if not name.strip("-_"):
        return "invalid_name_punctuation", f"channel name {name!r} is only punctuation"
    return None


def conversations_create(ctx: MethodContext) -> JsonDict:
    name = ctx.text("name")
    problem = channel_name_problem(name)
    if problem is not None:
        ctx.fail(*problem)
    if ctx.ws.channel_by_name(name) is not None:
        ctx.fail("name_taken")
    channel = ctx.ws.add_channel(name, is_private=ctx.flag("is_private"))
    return {"channel": channel.to_api()}


def conversations_invite(ctx: MethodContext) -> JsonDict:
    channel = ctx.member_channel()
    user_ids = ctx.csv("users")
    if not user_ids:
        ctx.fail("no_user", "users is empty")
    if len(user_ids) > 1000:
        ctx.fail("too_many_users", f"{len(user_ids)} users (max 1000)")
    errors = [
        {"user": user_id, "ok": False, "error": error}
        for user_id in user_ids
        if (error := _invite_error(ctx, channel, user_id)) is not None
    ]
    if errors and not ctx.flag("force"):
        ctx.fail(str(errors[0]["error"]), errors=errors)
    failed = {e["user"] for e in errors}
    channel.members.update(u for u in user_ids if u not in failed)
    return {"channel": channel.to_api()}


def _invite_error(ctx: MethodContext, channel: Channel, user_id: str) -> str | None:
    if user_id not in ctx.ws.users:
        return "user_not_found"
    if user_id == BOT_USER_ID:
        return "cant_invite_self"
    if user_id in channel.members:
        return "already_in_channel"
    return None


def conversations_join(ctx: MethodContext) -> JsonDict:
    channel = ctx.writable_channel()
    if channel.is_private or channel.is_im:
        ctx.fail("method_not_supported_for_channel_type")
    response: JsonDict = {}
    if BOT_USER_ID in channel.members:
        response = {
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    channel.members.add(BOT_USER_ID)
    return {"channel": channel.to_api(), **response}


def conversations_open(ctx: MethodContext) -> JsonDict:
    """Open (or find) the bot's DM with one user; multi-person DMs are not emulated."""
    if ctx.optional_text("channel") is not None:
        channel = ctx.channel()
    else:
        users = ctx.csv("users")
        if len(users) != 1:
            ctx.fail("not_implemented_in_emulator", "conversations.open with several users (MPIM)")
        channel = ctx.ws.dm_channel(ctx.user("users").id)
    rendered = channel.to_api() if ctx.flag("return_im") else {"id": channel.id}
    return {"channel": rendered}


def conversations_set_topic(ctx: MethodContext) -> JsonDict:
    channel = ctx.member_channel()
    channel.topic = _bounded_text(ctx, "topic")
    return {"channel": channel.to_api()}


def conversations_set_purpose(ctx: MethodContext) -> JsonDict:
    channel = ctx.member_channel()
    channel.purpose = _bounded_text(ctx, "purpose")
    return {"channel": channel.to_api()}


def _bounded_text(ctx: MethodContext, name: str) -> str:
    value = ctx.text(name)
    if len(value) > MAX_TOPIC:
        ctx.fail("too_long", f"{name} is {len(value)} chars (max {MAX_TOPIC})")
    return value


def conversations_info(ctx: MethodContext) -> JsonDict:
    return {"channel": ctx.channel().to_api()}


def conversations_list(ctx: MethodContext) -> JsonDict:
    types = set(ctx.csv("types") or ["public_channel"])
    exclude_archived = ctx.flag("exclude_archived")
    channels = [
        c.to_api()
        for c in ctx.ws.channels.values()
        if _channel_kind(c) in types
        and not (exclude_archived and c.is_archived)
        and not (c.is_private and BOT_USER_ID not in c.members)
    ]
    page, cursor = ctx.paginate(channels)
    return {"channels": page, "response_metadata": {"next_cursor": cursor}}


def _channel_kind(channel: Channel) -> str:
    if channel.is_im:
        return "im"
    return "private_channel" if channel.is_private else "public_channel"


def conversations_history(ctx: MethodContext) -> JsonDict:
    channel = ctx.channel()
    if BOT_USER_ID not in channel.members:
        ctx.fail("not_in_channel")
    oldest, latest = ctx.text("oldest", "0"), ctx.optional_text("latest")
    inclusive = ctx.flag("inclusive")
    messages = ctx.ws.channel_messages[channel.id]
    try:  # the messages are in ts order: bisect for the range instead of testing each one
        start = ts_index(messages, oldest or "0", after=not inclusive)
        end = ts_index(messages, latest, after=inclusive) if latest else len(messages)
    except ArithmeticError:
        ctx.fail("invalid_ts_latest" if latest and not _is_ts(latest) else "invalid_ts_oldest")
    visible = [
        m for m in reversed(messages[start:end]) if not m.deleted and (not m.is_reply or m.reply_broadcast)
    ]
    page, cursor = ctx.paginate(visible, max_limit=999)
    return {
        "messages": [ctx.ws.render_message(m) for m in page],
        "has_more": bool(cursor),
        "pin_count": sum(1 for m in visible if m.pinned),
        "response_metadata": {"next_cursor": cursor},
    }


def _is_ts(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except ArithmeticError:
        return False


def conversations_replies(ctx: MethodContext) -> JsonDict:
    channel = ctx.channel()
    message = ctx.ws.find_message(channel.id, ctx.text("ts"))
    if message is None or message.deleted:
        ctx.fail("thread_not_found")
    root_ts = message.thread_ts if message.is_reply and message.thread_ts else message.ts
    thread = ctx.ws.thread(channel.id, root_ts)
    page, cursor = ctx.paginate(thread, default_limit=1000)
    return {
        "messages": [ctx.ws.render_message(m) for m in page],
        "has_more": bool(cursor),
        "response_metadata": {"next_cursor": cursor},
    }


def conversations_members(ctx: MethodContext) -> JsonDict:
    channel = ctx.channel()
    page, cursor = ctx.paginate(sorted(channel.members))
    return {"members": page, "response_metadata": {"next_cursor": cursor}}


def conversations_archive(ctx: MethodContext) -> JsonDict:
    channel = ctx.channel()
    if channel.is_archived:
        ctx.fail("already_archived")
    if channel.name == "general":
        ctx.fail("cant_archive_general")
    if BOT_USER_ID not in channel.members:
        ctx.fail("not_in_channel")
    channel.is_archived = True
    return {}


# --- pins.* and reactions.* -----------------------------------------------------------------


def pins_add(ctx: MethodContext) -> JsonDict:
    channel = ctx.member_channel()
    message = ctx.message(channel, "timestamp")
    if message.pinned:
        ctx.fail("already_pinned")
    message.pinned = True
    return {}


def pins_remove(ctx: MethodContext) -> JsonDict:
    channel = ctx.member_channel()
    message = ctx.message(channel, "timestamp")
    if not message.pinned:
        ctx.fail("not_pinned")
    message.pinned = False
    return {}


def pins_list(ctx: MethodContext) -> JsonDict:
    channel = ctx.channel()
    pinned = [m for m in ctx.ws.channel_messages[channel.id] if m.pinned and not m.deleted]
    items = [
        {
            "type": "message",
            "created": BASE_TIME,
            "created_by": BOT_USER_ID,
            "channel": channel.id,
            "message": ctx.ws.render_message(m),
        }
        for m in pinned
    ]
    return {"items": items}


def reactions_add(ctx: MethodContext) -> JsonDict:
    channel = ctx.writable_channel()
    message = ctx.message(channel, "timestamp")
    users = message.reactions.setdefault(_emoji_name(ctx), [])
    if BOT_USER_ID in users:
        ctx.fail("already_reacted")
    users.append(BOT_USER_ID)
    return {}


def reactions_remove(ctx: MethodContext) -> JsonDict:
    channel = ctx.writable_channel()
    message = ctx.message(channel, "timestamp")
    name = _emoji_name(ctx)
    users = message.reactions.get(name, [])
    if BOT_USER_ID not in users:
        ctx.fail("no_reaction")
    users.remove(BOT_USER_ID)
    if not users:
        del message.reactions[name]
    return {}


def reactions_get(ctx: MethodContext) -> JsonDict:
    channel = ctx.channel()
    message = ctx.message(channel, "timestamp")
    return {"type": "message", "channel": channel.id, "message": ctx.ws.render_message(message)}


def _emoji_name(ctx: MethodContext) -> str:
    name = ctx.text("name").strip(":")
    if not name or " " in name:
        ctx.fail("invalid_name", f"reaction name {ctx.text('name')!r} is not an emoji name")
    return name


MESSAGE_HANDLERS: dict[str, Handler] = {
    "chat.postMessage": chat_post_message,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.getPermalink": chat_get_permalink,
    "conversations.create": conversations_create,
    "conversations.invite": conversations_invite,
    "conversations.join": conversations_join,
    "conversations.open": conversations_open,
    "conversations.setTopic": conversations_set_topic,
    "conversations.setPurpose": conversations_set_purpose,
    "conversations.info": conversations_info,
    "conversations.list": conversations_list,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
    "conversations.members": conversations_members,
    "conversations.archive": conversations_archive,
    "pins.add": pins_add,
    "pins.remove": pins_remove,
    "pins.list": pins_list,
    "reactions.add": reactions_add,
    "reactions.remove": reactions_remove,
    "reactions.get": reactions_get,
}
