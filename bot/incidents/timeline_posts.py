"""The posts of timeline entries in an incident's timeline thread, as outbox items.

Every entry recorded (added, removed, captured again) is one item of ``TIMELINE_POST``, ordered by the
incident channel, so the thread follows the timeline in recording order. A burst of entries goes out
as one thread message (``TIMELINE_BATCH`` at most): Slack's pace of about one message per second per
channel would otherwise queue them. An entry recorded before the channel exists has no item: the
thread's start step (``steps.start_timeline``) records the posts of the entries then.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot import chat_ops
from bot.db.models import Incident, OutboxItem, TimelineEntry
from bot.deps import Deps
from bot.outbox import enqueue_rows, outbox_row

TIMELINE_POST = "incident.timeline_post"
# Timeline entries per thread message: each renders as at most two blocks, Slack allows 50.
TIMELINE_BATCH = 25


def timeline_post_row(
    incident: Incident, entry: TimelineEntry, *, variant: str = "added"
) -> dict[str, Any] | None:
    """The outbox row posting ``entry`` in the incident's timeline thread; None before the channel
    exists (the timeline thread's start step posts the entries then)."""
    if incident.channel_id is None or entry.id is None:
        return None
    payload: dict[str, Any] = {"incident_id": incident.id, "entry_id": entry.id, "variant": variant}
    return outbox_row(
        key=f"timeline-post:{entry.id}:{variant}"
        + ("" if variant == "added" else f":{int(entry.recorded_at.timestamp() * 1000)}"),
        op=TIMELINE_POST,
        target="slack",
        payload=payload,
        ordering_key=incident.channel_id,
        incident_id=incident.id,
    )


async def enqueue_timeline_post(
    session: AsyncSession, incident: Incident, entry: TimelineEntry, *, variant: str = "added"
) -> None:
    row = timeline_post_row(incident, entry, variant=variant)
    if row is not None:
        await enqueue_rows(session, [row])


async def post_entry(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    return await post_entries(deps, [item])


async def post_entries(deps: Deps, items: list[OutboxItem]) -> dict[str, Any]:
    """Post pending timeline entries of one incident as one thread message."""
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


def register(deps: Deps) -> None:
    deps.outbox.register(TIMELINE_POST, partial(post_entry, deps))
    deps.outbox.register_batch(TIMELINE_POST, partial(post_entries, deps), size=TIMELINE_BATCH)
