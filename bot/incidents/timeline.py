"""The incident timeline: notes, messages captured by reaction or shortcut, and the timeline view.

One entry per captured message, enforced by the ``uq_timeline_source`` constraint (incident, channel,
ts), so duplicate reactions, several capture emojis and Slack's retries never add a second entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import Incident, TimelineEntry
from bot.db.store import insert_ignore_returning
from bot.deps import Capture, Deps
from bot.errors import ChatError
from bot.incidents.store import add_timeline, get_incident, incident_in_channel, timeline
from bot.incidents.timeline_posts import enqueue_timeline_post, timeline_post_row
from bot.outbox import enqueue_rows

PAGE_SIZE = 25
_MENTION = re.compile(r"<@([UW][A-Z0-9_]+)(?:\|([^>]*))?>")


def ts_to_datetime(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=UTC)


async def add_note(deps: Deps, incident_id: int, *, user: str, text: str) -> TimelineEntry:
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        return await add_timeline(session, incident, kind="note", text=text, author=user, actor=user, at=now)


@dataclass(frozen=True)
class TimelinePage:
    incident: Incident
    entries: list[TimelineEntry]
    page: int
    pages: int
    total: int


async def timeline_page(deps: Deps, incident_id: int, *, page: int = 1) -> TimelinePage:
    """One page of the incident's timeline (``PAGE_SIZE`` entries), oldest first."""
    async with deps.db.session(read_only=True) as session:
        incident = await get_incident(session, incident_id)
        entries = await timeline(session, incident_id)
    pages = max(1, -(-len(entries) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = entries[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return TimelinePage(incident, shown, page, pages, len(entries))


async def _resolve_mentions(deps: Deps, text: str) -> str:
    names: dict[str, str] = {}
    for user_id, label in set(_MENTION.findall(text)):
        if label:
            names[user_id] = label
            continue
        try:
            user = await deps.chat.user(user_id=user_id)
            names[user_id] = user.real_name or user.name
        except ChatError:
            names[user_id] = user_id
    return _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)


async def capture(
    deps: Deps, *, channel: str, ts: str, actor: str, message: dict[str, Any] | None = None
) -> TimelineEntry | None:
    """Record the message at (channel, ts) on the timeline of the channel's incident, once.

    ``message`` is the message as Slack sent it (shortcut payloads carry it); otherwise it is fetched.
    Returns None when the channel is not an incident channel or the message is the bot's own
    timeline-thread post. Captures and removals of one message run one at a time, in the order they
    arrived (a removal must not overtake the capture it undoes).
    """
    async with deps.locks.hold(("timeline", channel, ts)):
        return await _capture(deps, channel=channel, ts=ts, actor=actor, message=message)


async def _capture(
    deps: Deps, *, channel: str, ts: str, actor: str, message: dict[str, Any] | None
) -> TimelineEntry | None:
    incident = await _incident_of_channel(deps, channel)
    if incident is None or incident.id is None:
        return None
    if message is None:
        message = await deps.message_reads.get(channel=channel, ts=ts)
    if message is None:
        return None
    if (
        incident.timeline_ts
        and (message.get("thread_ts") == incident.timeline_ts or ts == incident.timeline_ts)
        and (message.get("bot_id") or message.get("subtype") == "bot_message")
    ):
        return None  # our own timeline thread
    text = await _resolve_mentions(deps, str(message.get("text") or ""))
    try:
        thread_ts = message.get("thread_ts")
        permalink = await deps.chat.permalink(
            channel=channel, ts=ts, thread_ts=str(thread_ts) if thread_ts else None
        )
    except ChatError:
        permalink = None
    now = deps.clock.now()
    values: dict[str, Any] = {
        "incident_id": incident.id,
        "kind": "message",
        "text": text,
        "author": message.get("user") or message.get("bot_id"),
        "actor": actor,
        "occurred_at": ts_to_datetime(ts),
        "recorded_at": now,
        "source_channel": channel,
        "source_ts": ts,
        "permalink": permalink,
        "deleted": False,
    }
    return await deps.timeline_captures.submit((incident, values))


_SOURCE = ("incident_id", "source_channel", "source_ts")  # the uq_timeline_source columns


async def record_captures(session: AsyncSession, captures: list[Capture]) -> list[TimelineEntry | None]:
    """Record captured messages with one INSERT of their entries and one of their thread posts. A
    message on the timeline already (captured before, or removed and captured again) is looked up."""
    inserted = {
        tuple(row[1:]): int(row[0])
        for row in await insert_ignore_returning(
            session,
            TimelineEntry,
            [values for _, values in captures],
            conflict=list(_SOURCE),
            returning=("id", *_SOURCE),
        )
    }
    results: list[TimelineEntry | None] = []
    posts: list[dict[str, Any]] = []
    for incident, values in captures:
        new_id = inserted.pop(tuple(values[name] for name in _SOURCE), None)
        if new_id is None:
            results.append(await _captured_before(session, incident, values))
            continue
        entry = TimelineEntry(id=new_id, **values)
        post = timeline_post_row(incident, entry)
        if post is not None:
            posts.append(post)
        results.append(entry)
    await enqueue_rows(session, posts)
    return results


async def _captured_before(
    session: AsyncSession, incident: Incident, values: dict[str, Any]
) -> TimelineEntry | None:
    """The entry of a message captured before; captured again after its reaction was removed, it
    is restored and its thread post says so."""
    assert incident.id is not None
    entry = await _entry_for(session, incident.id, values["source_channel"], values["source_ts"])
    if entry is not None and entry.deleted:
        entry.deleted = False
        entry.recorded_at = values["recorded_at"]
        entry.actor = values["actor"]
        await session.flush()
        await enqueue_timeline_post(session, incident, entry, variant="recaptured")
    return entry


async def _incident_of_channel(deps: Deps, channel: str) -> Incident | None:
    """The incident of an incident channel. Once its timeline thread exists, the fields capture
    uses (id, channel, thread) never change, so it is remembered: one read less per capture."""
    known = deps.timeline_channels.get(channel)
    if known is not None:
        return known
    async with deps.db.session(read_only=True) as session:
        incident = await incident_in_channel(session, channel)
    if incident is not None and incident.timeline_ts:
        deps.remember_channel(channel, incident)
    return incident


async def _entry_for(session: AsyncSession, incident_id: int, channel: str, ts: str) -> TimelineEntry | None:
    rows = await session.execute(
        select(TimelineEntry).where(
            TimelineEntry.incident_id == incident_id,
            TimelineEntry.source_channel == channel,
            TimelineEntry.source_ts == ts,
        )
    )
    entry: TimelineEntry | None = rows.scalars().first()
    return entry


async def uncapture(deps: Deps, *, channel: str, ts: str, reason: str = "reaction removed") -> bool:
    """Remove the captured entry for (channel, ts), unless a capture reaction remains on the message."""
    async with deps.locks.hold(("timeline", channel, ts)):
        return await _uncapture(deps, channel=channel, ts=ts, reason=reason)


async def _uncapture(deps: Deps, *, channel: str, ts: str, reason: str) -> bool:
    async with deps.db.session() as session:
        incident = await incident_in_channel(session, channel)
        if incident is None or incident.id is None:
            return False
        entry = await _entry_for(session, incident.id, channel, ts)
        if entry is None or entry.deleted:
            return False
    if reason == "reaction removed":
        message = await deps.message_reads.get(channel=channel, ts=ts)
        remaining = {r.get("name") for r in (message or {}).get("reactions", []) if r.get("count", 0) > 0}
        if remaining & set(deps.config.slack.timeline_emojis):
            return False
    async with deps.db.session() as session:
        entry = await session.get(TimelineEntry, entry.id)
        incident = await session.get(Incident, incident.id)
        assert entry is not None and incident is not None
        entry.deleted = True
        entry.recorded_at = deps.clock.now()
        await enqueue_timeline_post(session, incident, entry, variant="removed")
    return True


async def edited(deps: Deps, *, channel: str, ts: str, text: str) -> bool:
    async with deps.db.session() as session:
        incident = await incident_in_channel(session, channel)
        if incident is None or incident.id is None:
            return False
        entry = await _entry_for(session, incident.id, channel, ts)
        if entry is None:
            return False
    resolved = await _resolve_mentions(deps, text)
    async with deps.db.session() as session:
        await session.execute(
            sa.update(TimelineEntry).where(col(TimelineEntry.id) == entry.id).values(text=resolved)
        )
    return True
