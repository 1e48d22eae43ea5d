"""Incident queries and timeline writes: they take a session and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import Incident, TimelineEntry
from bot.errors import NotFound, UsageError
from bot.incidents.timeline_posts import enqueue_timeline_post


async def get_incident(session: AsyncSession, incident_id: int) -> Incident:
    incident = await session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"INC-{incident_id} does not exist. `/incident list` shows the open incidents.")
    return incident


async def incident_for(session: AsyncSession, *, ref: int | None, channel_id: str) -> Incident:
    """The incident named by ``ref``, else the one whose channel this is."""
    if ref is not None:
        return await get_incident(session, ref)
    found = await incident_in_channel(session, channel_id)
    if found is None:
        raise UsageError(
            "This is not an incident channel: run the command in the incident's channel, "
            "or put the incident id first, e.g. `/incident status INC-42 identified`."
        )
    return found


async def incident_in_channel(session: AsyncSession, channel_id: str) -> Incident | None:
    if not channel_id:
        return None
    rows = await session.execute(select(Incident).where(Incident.channel_id == channel_id))
    return rows.scalars().first()


async def add_timeline(
    session: AsyncSession,
    incident: Incident,
    *,
    kind: str,
    text: str,
    at: datetime,
    author: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
    source: tuple[str, str] | None = None,
    permalink: str | None = None,
) -> TimelineEntry:
    """Record a timeline entry and (once the channel exists) its post in the timeline thread."""
    assert incident.id is not None
    entry = TimelineEntry(
        incident_id=incident.id,
        kind=kind,
        text=text,
        author=author,
        actor=actor,
        occurred_at=occurred_at or at,
        recorded_at=at,
        source_channel=source[0] if source else None,
        source_ts=source[1] if source else None,
        permalink=permalink,
    )
    session.add(entry)
    await session.flush()
    await enqueue_timeline_post(session, incident, entry)
    return entry


async def timeline(
    session: AsyncSession, incident_id: int, *, include_deleted: bool = False
) -> list[TimelineEntry]:
    stmt = select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
    if not include_deleted:
        stmt = stmt.where(col(TimelineEntry.deleted).is_(False))
    rows = await session.execute(stmt.order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id)))
    return list(rows.scalars())
