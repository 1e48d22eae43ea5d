"""Outbox steps of an incident: open its channel, start the timeline thread, post timeline entries.

Each step is idempotent (it checks what is already done) because the outbox delivers at least once.
A step that fails for good is reported once in the incident channel (or ``#incident-bridge``) with a
pointer to ``/incident show``, where a Retry button puts it back in the queue.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot import chat_ops
from bot.db.models import Incident, OutboxItem, TimelineEntry
from bot.deps import Deps
from bot.errors import ChatError
from bot.incidents.naming import channel_name
from bot.incidents.store import enqueue_timeline_post, timeline
from bot.outbox import enqueue

MAX_NAME_ATTEMPTS = 5
# Timeline entries per thread message: each renders as at most two blocks, Slack allows 50.
TIMELINE_BATCH = 25


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


def register(deps: Deps) -> None:
    outbox = deps.outbox

    async def open_channel(item: OutboxItem) -> dict[str, Any]:
        async with deps.db.session() as session:
            incident = await session.get(Incident, item.payload["incident_id"])
        assert incident is not None and incident.id is not None
        channel_id, name = incident.channel_id, incident.channel_name
        if channel_id is None:
            channel_id, name = await _create_channel(deps, incident)
        async with deps.db.session() as session:
            incident = await session.get(Incident, incident.id)
            assert incident is not None and incident.id is not None
            incident.channel_id, incident.channel_name = channel_id, name
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
                op="incident.start_timeline",
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
        return {"channel": channel_id, "name": name}

    async def open_channel_failed(item: OutboxItem) -> None:
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

    async def start_timeline(item: OutboxItem) -> dict[str, Any]:
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

    async def timeline_post(item: OutboxItem) -> dict[str, Any]:
        return await timeline_posts([item])

    async def timeline_posts(items: list[OutboxItem]) -> dict[str, Any]:
        """Post pending timeline entries of one incident as one thread message (a burst of captures
        would otherwise queue behind Slack's pace of about one message per second per channel)."""
        async with deps.db.session(read_only=True) as session:
            incident = await session.get(Incident, items[0].payload["incident_id"])
            ids = [item.payload["entry_id"] for item in items]
            rows = await session.execute(select(TimelineEntry).where(col(TimelineEntry.id).in_(ids)))
            entries = {entry.id: entry for entry in rows.scalars()}
        if incident is None or incident.channel_id is None or incident.timeline_ts is None:
            return {"skipped": "timeline thread not started yet"}
        todo = [item for item in items if item.payload["entry_id"] in entries]
        if not todo:
            return {"skipped": "timeline entries gone"}
        posted = await chat_ops.deliver_posts(
            deps.chat,
            todo,
            channel=incident.channel_id,
            render=lambda batch: chat_ops.combined(
                deps.renderer.message(
                    "incident/timeline_entry",
                    entry=entries[item.payload["entry_id"]],
                    variant=item.payload.get("variant"),
                )
                for item in batch
            ),
            thread_ts=incident.timeline_ts,
        )
        return {"ts": posted.ts}

    async def notice(item: OutboxItem) -> None:
        msg = deps.renderer.message("incident/step_failed", item=item.payload["failed"])
        await chat_ops.deliver_post(
            deps.chat, item, channel=item.payload["channel"], text=msg.text, blocks=msg.blocks
        )

    outbox.register("incident.open_channel", open_channel, on_failure=open_channel_failed)
    outbox.register("incident.start_timeline", start_timeline)
    outbox.register("incident.timeline_post", timeline_post)
    outbox.register_batch("incident.timeline_post", timeline_posts, size=TIMELINE_BATCH)
    outbox.register("slack.post.notice", notice)

    async def step_failed(item: OutboxItem) -> None:
        await notify_failed(deps, item)

    outbox.default_failure_notifier = step_failed


async def notify_failed(deps: Deps, item: OutboxItem) -> None:
    """Tell the incident channel (else #incident-bridge) once that a step failed for good."""
    if item.op == "slack.post.notice":
        return  # the notice itself failed: do not loop
    async with deps.db.session() as session:
        incident = await session.get(Incident, item.incident_id) if item.incident_id else None
        channel = (incident.channel_id if incident else None) or deps.config.slack.incident_channel
        await enqueue(
            session,
            key=f"step-failed:{item.id}:{item.attempts}",
            op="slack.post.notice",
            target="slack",
            payload={
                "channel": channel,
                "failed": {
                    "op": item.op,
                    "attempts": item.attempts,
                    "last_error": item.last_error,
                    "incident_id": item.incident_id,
                },
            },
            incident_id=item.incident_id,
        )
