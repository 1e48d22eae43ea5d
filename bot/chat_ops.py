"""Slack side effects as durable outbox items: record now (``post``, ``update``, ``invite``, ``topic``),
deliver later (``send_post``, ``send_update``, ``send_invite``, ``send_topic``, wired by ``wire``).

Items for one channel share its ``ordering_key`` so they reach Slack in the order they were recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import OutboxItem
from bot.outbox import Outbox, enqueue, redelivery
from bot.ports import Chat, PostedMessage
from bot.render import RenderedMessage

# --- a message ------------------------------------------------------------------------------------

POST = "slack.post"


async def post(
    session: AsyncSession,
    *,
    key: str,
    channel: str,
    message: RenderedMessage,
    thread_ts: str | None = None,
    pin: bool = False,
    incident_id: int | None = None,
) -> None:
    await enqueue(
        session,
        key=key,
        op=POST,
        target="slack",
        payload={
            "channel": channel,
            "text": message.text,
            "blocks": message.blocks,
            "thread_ts": thread_ts,
            "pin": pin,
        },
        ordering_key=channel,
        incident_id=incident_id,
    )


async def send_post(chat: Chat, item: OutboxItem) -> dict[str, Any]:
    p = item.payload
    posted = await deliver_post(
        chat,
        item,
        channel=p["channel"],
        text=p["text"],
        blocks=p.get("blocks"),
        thread_ts=p.get("thread_ts"),
    )
    if p.get("pin"):
        await chat.pin(channel=posted.channel, ts=posted.ts)
    return {"channel": posted.channel, "ts": posted.ts}


# --- a message updated in place ---------------------------------------------------------------------

UPDATE = "slack.update"


async def update(
    session: AsyncSession,
    *,
    key: str,
    channel: str,
    ts: str,
    message: RenderedMessage,
    incident_id: int | None = None,
) -> None:
    await enqueue(
        session,
        key=key,
        op=UPDATE,
        target="slack",
        payload={"channel": channel, "ts": ts, "text": message.text, "blocks": message.blocks},
        ordering_key=channel,
        incident_id=incident_id,
    )


async def send_update(chat: Chat, item: OutboxItem) -> dict[str, Any]:
    p = item.payload
    done = await chat.update_message(channel=p["channel"], ts=p["ts"], text=p["text"], blocks=p.get("blocks"))
    return {"channel": done.channel, "ts": done.ts}


# --- people invited to a channel --------------------------------------------------------------------

INVITE = "slack.invite"


async def invite(
    session: AsyncSession, *, key: str, channel: str, users: list[str], incident_id: int | None = None
) -> None:
    users = sorted({u for u in users if u})
    if users:
        await enqueue(
            session,
            key=key,
            op=INVITE,
            target="slack",
            payload={"channel": channel, "users": users},
            ordering_key=channel,
            incident_id=incident_id,
        )


async def send_invite(chat: Chat, item: OutboxItem) -> None:
    await chat.invite(channel=item.payload["channel"], users=list(item.payload["users"]))


# --- a channel's topic ------------------------------------------------------------------------------

TOPIC = "slack.topic"


async def topic(
    session: AsyncSession, *, key: str, channel: str, text: str, incident_id: int | None = None
) -> None:
    await enqueue(
        session,
        key=key,
        op=TOPIC,
        target="slack",
        payload={"channel": channel, "topic": text},
        ordering_key=channel,
        incident_id=incident_id,
    )


async def send_topic(chat: Chat, item: OutboxItem) -> None:
    await chat.set_topic(channel=item.payload["channel"], topic=item.payload["topic"])


# --- posting once, whatever the retries --------------------------------------------------------------

EVENT_TYPE = "cmdcenter_outbox"


async def deliver_post(
    chat: Chat,
    item: OutboxItem,
    *,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
) -> PostedMessage:
    """Post for an outbox item, once: the message carries the item's key as metadata, and an item taken
    over from a replica that died mid-delivery first looks for the message that replica may have posted."""
    message = RenderedMessage(text=text, blocks=blocks or [])
    return await deliver_posts(chat, [item], channel=channel, render=lambda _: message, thread_ts=thread_ts)


async def deliver_posts(
    chat: Chat,
    items: list[OutboxItem],
    *,
    channel: str,
    render: Callable[[list[OutboxItem]], RenderedMessage],
    thread_ts: str | None = None,
) -> PostedMessage:
    """One message for several outbox items (``deliver_post`` for one), rendered by ``render``; its
    metadata carries every item's key. When an item was taken over from a replica that died
    mid-delivery, the keys already posted are looked up first and only the others are posted."""
    todo = items
    found: dict[str, PostedMessage] = {}
    if any(redelivery(item) for item in items):
        found = await chat.find_posted_keys(
            channel=channel, event_type=EVENT_TYPE, keys=[item.key for item in items], thread_ts=thread_ts
        )
        todo = [item for item in items if item.key not in found]
        if not todo:
            return found[items[-1].key]
    message = render(todo)
    payload: dict[str, Any] = {"key": todo[0].key}
    if len(todo) > 1:
        payload["keys"] = [item.key for item in todo]
    return await chat.post_message(
        channel=channel,
        text=message.text,
        blocks=message.blocks or None,
        thread_ts=thread_ts,
        metadata={"event_type": EVENT_TYPE, "event_payload": payload},
    )


def combined(messages: Iterable[RenderedMessage]) -> RenderedMessage:
    """Several rendered messages as one: texts on separate lines, blocks one after the other."""
    texts: list[str] = []
    blocks: list[dict[str, Any]] = []
    for message in messages:
        texts.append(message.text)
        blocks.extend(message.blocks)
    return RenderedMessage(text="\n".join(texts), blocks=blocks)


def wire(outbox: Outbox, chat: Chat) -> None:
    """The Slack effects every area records (``post``, ``update``, ``invite``, ``topic``), delivered."""
    outbox.register(POST, partial(send_post, chat))
    outbox.register(UPDATE, partial(send_update, chat))
    outbox.register(INVITE, partial(send_invite, chat))
    outbox.register(TOPIC, partial(send_topic, chat))
