"""The post-mortem (RCA) draft, rendered from the incident and its timeline, and follow-up action items.

Durations follow the runbook definitions: detection = declared - first sign of trouble (the
earliest timeline entry, e.g. a captured alert); mitigation = mitigated - declared; total =
resolved - first sign of trouble.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot import chat_ops
from bot.db.models import ActionItem, Incident, OutboxItem, TimelineEntry
from bot.deps import Deps
from bot.incidents.store import add_timeline, get_incident, timeline
from bot.outbox import enqueue


class Durations(BaseModel):
    started_at: datetime
    detection: timedelta | None
    mitigation: timedelta | None
    total: timedelta | None


def durations(incident: Incident, entries: list[TimelineEntry]) -> Durations:
    started = min([incident.declared_at, *(e.occurred_at for e in entries)])
    return Durations(
        started_at=started,
        detection=incident.declared_at - started,
        mitigation=(incident.mitigated_at - incident.declared_at) if incident.mitigated_at else None,
        total=(incident.resolved_at - started) if incident.resolved_at else None,
    )


async def action_items(deps: Deps, incident_id: int) -> list[ActionItem]:
    async with deps.db.session(read_only=True) as session:
        rows = await session.execute(
            select(ActionItem).where(ActionItem.incident_id == incident_id).order_by(col(ActionItem.id))
        )
        return list(rows.scalars())


async def render(deps: Deps, incident_id: int) -> tuple[Incident, str]:
    async with deps.db.session(read_only=True) as session:
        incident = await get_incident(session, incident_id)
        entries = await timeline(session, incident_id)
    items = await action_items(deps, incident_id)
    policy = deps.config.policy(incident.severity)
    text = deps.renderer.document(
        "postmortem/draft",
        incident=incident,
        entries=entries,
        items=items,
        d=durations(incident, entries),
        policy=policy,
        generated_at=deps.clock.now(),
    )
    return incident, text


async def request_draft(deps: Deps, incident_id: int, *, user: str, reason: str = "on request") -> Incident:
    """Record the upload of a fresh draft to the incident channel and its link in #incident-bridge."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        await _record_upload(session, incident, key=str(int(now.timestamp())), user=user, reason=reason)
    return incident


async def add_action(
    deps: Deps, incident_id: int, *, user: str, owner: str, due: date, text: str
) -> Incident:
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        item = ActionItem(
            incident_id=incident_id, owner=owner, due=due, text=text, created_by=user, created_at=now
        )
        session.add(item)
        await add_timeline(
            session,
            incident,
            kind="action",
            text=f"Action item for <@{owner}> due {due}: {text}",
            author=user,
            at=now,
        )
    return incident


# --- the draft's upload, requested or on resolution ----------------------------------------------

UPLOAD = "incident.postmortem_upload"


async def upload_draft(deps: Deps, item: OutboxItem) -> dict[str, str]:
    """Upload the draft to the incident channel (else #incident-bridge) and link it in #incident-bridge."""
    incident, text = await render(deps, item.payload["incident_id"])
    channel = incident.channel_id or deps.config.slack.incident_channel
    file_id = await deps.chat.upload_file(
        channel=channel,
        content=text,
        filename=f"{incident.ref.lower()}-postmortem.md",
        title=f"{incident.ref} post-mortem draft",
        initial_comment=str(deps.renderer.text("postmortem/uploaded", incident=incident)),
    )
    async with deps.db.session() as session:
        await chat_ops.post(
            session,
            key=f"{item.key}:bridge",
            channel=deps.config.slack.incident_channel,
            message=deps.renderer.message("postmortem/linked", incident=incident, file_id=file_id),
            incident_id=incident.id,
        )
    return {"file_id": file_id}


async def on_resolved(session: AsyncSession, incident: Incident) -> None:
    """A resolved incident gets its draft."""
    await _record_upload(session, incident, key="resolved", user="", reason="resolved")


async def _record_upload(
    session: AsyncSession, incident: Incident, *, key: str, user: str, reason: str
) -> None:
    await enqueue(
        session,
        key=f"inc{incident.id}:postmortem:{key}",
        op=UPLOAD,
        target="slack",
        payload={"incident_id": incident.id, "user": user, "reason": reason},
        ordering_key=incident.channel_id,
        incident_id=incident.id,
    )


def register(deps: Deps) -> None:
    deps.outbox.register(UPLOAD, partial(upload_draft, deps))
    deps.incidents.resolved.append(on_resolved)
