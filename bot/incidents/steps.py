"""Outbox steps of an incident: open its channel, start the timeline thread.

Each step is idempotent (it checks what is already done) because the outbox delivers at least once.
A step that fails for good is reported once (``failures``); when the channel cannot be opened, the
announcement in ``#incident-bridge`` says so instead of pointing to a channel.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import chat_ops
from bot.db.models import Incident, OutboxItem
from bot.deps import Deps
from bot.errors import ChatError
from bot.incidents.naming import channel_name
from bot.incidents.store import timeline
from bot.incidents.timeline_posts import enqueue_timeline_post
from bot.outbox import enqueue

MAX_NAME_ATTEMPTS = 5

# --- the incident channel -------------------------------------------------------------------------

OPEN_CHANNEL = "incident.open_channel"


async def open_channel(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    """Create the channel (unless an earlier attempt did), then record what follows in it."""
    async with deps.db.session() as session:
        incident = await session.get(Incident, item.payload["incident_id"])
    assert incident is not None and incident.id is not None
    channel_id, name = incident.channel_id, incident.channel_name
    if channel_id is None:
        channel_id, name = await _create_channel(deps, incident)
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident.id)
        assert incident is not None
        incident.channel_id, incident.channel_name = channel_id, name
        await _record_channel_opened(session, deps, incident, channel_id)
    return {"channel": channel_id, "name": name}


async def _create_channel(deps: Deps, incident: Incident) -> tuple[str, str]:
    assert incident.id is not None
    for attempt in range(MAX_NAME_ATTEMPTS):
        name = channel_name(
            deps.config.slack.incident_channel_pattern,
            number=incident.id,
            title=incident.title,
            when=incident.declared_at,
            suffix=f"-{attempt + 1}" if attempt else "",
        )
        try:
            ref = await deps.chat.create_channel(name=name)
            return ref.id, ref.name
        except ChatError as exc:
            if "name_taken" not in str(exc):
                raise
    raise ChatError(f"conversations.create: name_taken ({MAX_NAME_ATTEMPTS} names tried)", retryable=False)


async def _record_channel_opened(
    session: AsyncSession, deps: Deps, incident: Incident, channel_id: str
) -> None:
    """The people invited, the topic, the pinned declaration, the timeline thread, the hooks of the
    other areas, and the announcement in #incident-bridge."""
    assert incident.id is not None
    key = f"inc{incident.id}"
    await chat_ops.invite(
        session,
        key=f"{key}:invite",
        channel=channel_id,
        users=[incident.declared_by, incident.commander],
        incident_id=incident.id,
    )
    await chat_ops.topic(
        session,
        key=f"{key}:topic",
        channel=channel_id,
        text=str(deps.renderer.text("incident/topic", incident=incident)),
        incident_id=incident.id,
    )
    await chat_ops.post(
        session,
        key=f"{key}:declaration",
        channel=channel_id,
        message=deps.renderer.message("incident/declared", incident=incident),
        pin=True,
        incident_id=incident.id,
    )
    await enqueue(
        session,
        key=f"{key}:timeline-root",
        op=START_TIMELINE,
        target="slack",
        payload={"incident_id": incident.id},
        ordering_key=channel_id,
        incident_id=incident.id,
    )
    await deps.incidents.run("channel_opened", session, incident)
    await chat_ops.post(
        session,
        key=f"{key}:announce",
        channel=deps.config.slack.incident_channel,
        message=deps.renderer.message("incident/announce", incident=incident),
        incident_id=incident.id,
    )


async def open_channel_failed(deps: Deps, item: OutboxItem) -> None:
    """No channel: the announcement in #incident-bridge says why."""
    async with deps.db.session() as session:
        incident = await session.get(Incident, item.payload["incident_id"])
        if incident is None:
            return
        await chat_ops.post(
            session,
            key=f"inc{incident.id}:announce-nochannel",
            channel=deps.config.slack.incident_channel,
            message=deps.renderer.message(
                "incident/announce", incident=incident, channel_error=item.last_error
            ),
            incident_id=incident.id,
        )


# --- the timeline thread --------------------------------------------------------------------------

START_TIMELINE = "incident.start_timeline"


async def start_timeline(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    """Post and pin the thread's root (unless an earlier attempt did), then record the posts of the
    entries recorded so far."""
    async with deps.db.session() as session:
        incident = await session.get(Incident, item.payload["incident_id"])
    assert incident is not None and incident.channel_id is not None
    ts = incident.timeline_ts
    if ts is None:
        root = deps.renderer.message("incident/timeline_root", incident=incident)
        posted = await chat_ops.deliver_post(
            deps.chat, item, channel=incident.channel_id, text=root.text, blocks=root.blocks
        )
        await deps.chat.pin(channel=posted.channel, ts=posted.ts)
        ts = posted.ts
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident.id)
        assert incident is not None
        incident.timeline_ts = ts
        for entry in await timeline(session, incident.id or 0):
            await enqueue_timeline_post(session, incident, entry)
    return {"ts": ts}


def register(deps: Deps) -> None:
    deps.outbox.register(
        OPEN_CHANNEL, partial(open_channel, deps), on_failure=partial(open_channel_failed, deps)
    )
    deps.outbox.register(START_TIMELINE, partial(start_timeline, deps))
