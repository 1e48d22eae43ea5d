"""Statuspage: the public side of an incident.

For the configured severities the bot prepares a customer-facing draft and posts it in the incident
channel with Publish / Edit buttons; only people allowed ``statuspage.publish`` may publish (or the
config publishes automatically). Once a public incident exists, status changes, severity changes and
resolution update it (components follow severity, and go back to operational on resolution).
All Statuspage calls are outbox items ordered per incident, so a retry never creates a second one.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from bot import chat_ops
from bot.db.models import Incident, OutboxItem, StatuspageDraft
from bot.deps import Deps
from bot.errors import Conflict, NotFound, UsageError
from bot.incidents.failures import notify_failed
from bot.incidents.store import add_timeline, get_incident
from bot.outbox import enqueue, redelivery
from bot.ports import ComponentStatus, StatusPageIncident, StatusPageStatus
from bot.render import RenderedMessage

PUBLISH_ACTION = "statuspage_publish"
EDIT_ACTION = "statuspage_edit"
EDIT_VIEW = "statuspage_edit_view"


def _public_status(incident: Incident) -> StatusPageStatus:
    return incident.status


def _components(deps: Deps, incident: Incident) -> dict[str, ComponentStatus]:
    service = deps.config.service(incident.service) if incident.service else None
    if service is None or not service.statuspage_component_id:
        return {}
    if incident.status == "resolved":
        return {service.statuspage_component_id: "operational"}
    status = deps.config.policy(incident.severity).component_status
    return {service.statuspage_component_id: status} if status else {}


def _wants_statuspage(deps: Deps, incident: Incident) -> bool:
    return deps.statuspage is not None and incident.severity in deps.config.statuspage.severities


async def _new_draft(
    session: AsyncSession, deps: Deps, incident: Incident, *, user: str, body: str | None = None
) -> StatuspageDraft:
    text = body or str(deps.renderer.document("statuspage_incident", incident=incident)).strip()
    draft = StatuspageDraft(
        incident_id=incident.id or 0,
        status=_public_status(incident),
        body=text,
        created_by=user,
        created_at=deps.clock.now(),
        channel_id=incident.channel_id,
    )
    session.add(draft)
    await session.flush()
    if deps.config.statuspage.auto_publish:
        await _record_publish(session, deps, incident, draft, user="")
    elif incident.channel_id:
        await _record_card(session, incident, draft)
    return draft


async def publish(deps: Deps, draft_id: int, *, user: str) -> None:
    """The draft's Publish button: permission ``statuspage.publish``."""
    async with deps.db.session() as session:
        draft = await session.get(StatuspageDraft, draft_id)
        if draft is None:
            raise NotFound("That Statuspage draft no longer exists.")
        incident = await get_incident(session, draft.incident_id)
    await deps.access.require(
        action="statuspage.publish",
        user=user,
        service=incident.service,
        what="publish to the public status page",
    )
    async with deps.db.session() as session:
        draft = await session.get(StatuspageDraft, draft_id)
        assert draft is not None
        if draft.state != "draft":
            raise Conflict(f"This draft is already {draft.state}.")
        await _record_publish(session, deps, incident, draft, user=user)


async def editable_draft(deps: Deps, draft_id: int) -> StatuspageDraft:
    """A draft that may still be edited (not published)."""
    async with deps.db.session(read_only=True) as session:
        draft = await session.get(StatuspageDraft, draft_id)
    if draft is None or draft.state != "draft":
        raise Conflict("Only an unpublished draft can be edited.")
    return draft


async def save_edit(deps: Deps, draft_id: int, *, body: str) -> None:
    """The edit modal's text replaces the draft's; its card in the channel follows."""
    async with deps.db.session() as session:
        draft = await session.get(StatuspageDraft, draft_id)
        if draft is None or draft.state != "draft":
            raise Conflict("Only an unpublished draft can be edited.")
        draft.body = body
        incident = await get_incident(session, draft.incident_id)
        if draft.channel_id and draft.message_ts:
            await chat_ops.update(
                session,
                key=f"sp-card:{draft.id}:edit:{deps.clock.now().timestamp()}",
                channel=draft.channel_id,
                ts=draft.message_ts,
                message=_card(deps, incident, draft),
                incident_id=incident.id,
            )


async def draft_update(deps: Deps, incident_id: int, *, user: str, message: str) -> Incident:
    """``/incident statuspage <message>``: a new customer-facing draft in the incident channel."""
    if deps.statuspage is None:
        raise UsageError("Statuspage is not configured: set STATUSPAGE_API_KEY and STATUSPAGE_PAGE_ID.")
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        if incident.channel_id is None:
            raise Conflict(f"{incident.ref} has no channel yet; try again in a moment.")
        await _new_draft(session, deps, incident, user=user, body=message)
    return incident


def _card(deps: Deps, incident: Incident, draft: StatuspageDraft) -> RenderedMessage:
    return deps.renderer.message(
        "statuspage/draft",
        incident=incident,
        draft=draft,
        publish_action=PUBLISH_ACTION,
        edit_action=EDIT_ACTION,
    )


# --- the incident's life: a draft on declaration (or a raise), the public page kept in step ------------


async def on_declared(deps: Deps, session: AsyncSession, incident: Incident) -> None:
    if _wants_statuspage(deps, incident):
        await _new_draft(session, deps, incident, user=incident.declared_by)


async def on_channel_opened(session: AsyncSession, incident: Incident) -> None:
    """The drafts prepared before the channel existed get their cards there."""
    rows = await session.execute(
        select(StatuspageDraft).where(
            StatuspageDraft.incident_id == incident.id, StatuspageDraft.state == "draft"
        )
    )
    for draft in rows.scalars():
        draft.channel_id = incident.channel_id
        await _record_card(session, incident, draft)


async def on_change(deps: Deps, session: AsyncSession, incident: Incident) -> None:
    if deps.statuspage is not None:
        await _record_sync(session, incident, "status")


async def on_severity(deps: Deps, session: AsyncSession, incident: Incident, old: str) -> None:
    if deps.statuspage is None:
        return
    if incident.statuspage_incident_id is None and _wants_statuspage(deps, incident):
        existing = await session.execute(
            select(StatuspageDraft).where(StatuspageDraft.incident_id == incident.id)
        )
        if existing.scalars().first() is None:
            await _new_draft(session, deps, incident, user=incident.commander)
    await _record_sync(session, incident, "severity")


# --- the draft's card in the incident channel -----------------------------------------------------------

POST_CARD = "statuspage.post_card"


async def _record_card(session: AsyncSession, incident: Incident, draft: StatuspageDraft) -> None:
    await enqueue(
        session,
        key=f"sp-card:{draft.id}",
        op=POST_CARD,
        target="slack",
        payload={"draft_id": draft.id},
        ordering_key=incident.channel_id,
        incident_id=incident.id,
    )


async def post_card(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    async with deps.db.session() as session:
        draft = await session.get(StatuspageDraft, item.payload["draft_id"])
        assert draft is not None
        incident = await get_incident(session, draft.incident_id)
    channel = draft.channel_id or incident.channel_id
    assert channel is not None
    if draft.message_ts is not None:
        return {"ts": draft.message_ts}
    msg = _card(deps, incident, draft)
    posted = await chat_ops.deliver_post(deps.chat, item, channel=channel, text=msg.text, blocks=msg.blocks)
    async with deps.db.session() as session:
        row = await session.get(StatuspageDraft, draft.id)
        assert row is not None
        row.message_ts, row.channel_id = posted.ts, posted.channel
    return {"ts": posted.ts}


# --- publishing a draft --------------------------------------------------------------------------------

PUBLISH = "statuspage.publish"


async def _record_publish(
    session: AsyncSession, deps: Deps, incident: Incident, draft: StatuspageDraft, *, user: str
) -> None:
    draft.state = "publishing"
    draft.published_by = user or None
    await enqueue(
        session,
        key=f"sp-publish:{draft.id}",
        op=PUBLISH,
        target="statuspage",
        payload={"draft_id": draft.id},
        ordering_key=f"sp:{incident.id}",
        incident_id=incident.id,
    )


async def publish_draft(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    """Create the public incident (or update it), then record it on the incident and its draft."""
    async with deps.db.session() as session:
        draft = await session.get(StatuspageDraft, item.payload["draft_id"])
        assert draft is not None
        incident = await get_incident(session, draft.incident_id)
    public = await _create_or_update(deps, item, incident, draft)
    async with deps.db.session() as session:
        incident = await get_incident(session, incident.id or 0)
        row = await session.get(StatuspageDraft, draft.id)
        assert row is not None
        incident.statuspage_incident_id = public.id
        row.state, row.published_at = "published", deps.clock.now()
        await add_timeline(
            session,
            incident,
            kind="statuspage",
            author=row.published_by,
            at=deps.clock.now(),
            text=f"Published to the status page ({row.status}): {row.body[:200]}",
        )
        if row.channel_id and row.message_ts:
            await chat_ops.update(
                session,
                key=f"sp-card:{row.id}:published",
                channel=row.channel_id,
                ts=row.message_ts,
                message=_card(deps, incident, row),
                incident_id=incident.id,
            )
    return {"statuspage_incident": public.id}


async def _create_or_update(
    deps: Deps, item: OutboxItem, incident: Incident, draft: StatuspageDraft
) -> StatusPageIncident:
    assert deps.statuspage is not None
    components = _components(deps, incident)
    create_key = f"cmdcenter-inc-{incident.id}"
    found = None
    if incident.statuspage_incident_id is None and (item.attempts > 0 or redelivery(item)):
        # An earlier attempt may have created it and lost the answer (a timeout, a 5xx from a
        # gateway, a replica that died before recording the id): look before creating again.
        found = await deps.statuspage.find_incident(key=create_key)
    if incident.statuspage_incident_id is None and found is None:
        return await deps.statuspage.create_incident(
            name=str(deps.renderer.document("statuspage/name", incident=incident)).strip(),
            status=draft.status,
            body=draft.body,
            components=components,
            key=create_key,
        )
    return await deps.statuspage.update_incident(
        incident_id=incident.statuspage_incident_id or (found.id if found else ""),
        status=draft.status,
        body=draft.body,
        components=components,
    )


async def publish_failed(deps: Deps, item: OutboxItem) -> None:
    async with deps.db.session() as session:
        draft = await session.get(StatuspageDraft, item.payload["draft_id"])
        if draft is not None and draft.state == "publishing":
            draft.state = "draft"  # the Publish button works again
    await notify_failed(deps, item)


# --- the public incident following the incident ----------------------------------------------------------

SYNC = "statuspage.sync"


async def _record_sync(session: AsyncSession, incident: Incident, reason: str) -> None:
    await enqueue(
        session,
        key=f"sp-sync:{incident.id}:{reason}:{incident.status}:{incident.severity}",
        op=SYNC,
        target="statuspage",
        payload={"incident_id": incident.id, "reason": reason},
        ordering_key=f"sp:{incident.id}",
        incident_id=incident.id,
    )


async def sync(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    assert deps.statuspage is not None
    async with deps.db.session() as session:
        incident = await get_incident(session, item.payload["incident_id"])
    if incident.statuspage_incident_id is None:
        return {"skipped": "nothing public yet"}
    body = str(deps.renderer.document("statuspage/update", incident=incident)).strip()
    await deps.statuspage.update_incident(
        incident_id=incident.statuspage_incident_id,
        status=_public_status(incident),
        body=body,
        components=_components(deps, incident),
    )
    async with deps.db.session() as session:
        incident = await get_incident(session, incident.id or 0)
        await add_timeline(
            session,
            incident,
            kind="statuspage",
            at=deps.clock.now(),
            text=f"Status page updated ({_public_status(incident)})",
        )
    return {"status": incident.status}


def register(deps: Deps) -> None:
    deps.incidents.declared.append(partial(on_declared, deps))
    deps.incidents.channel_opened.append(on_channel_opened)
    deps.incidents.status_changed.append(partial(on_change, deps))
    deps.incidents.resolved.append(partial(on_change, deps))
    deps.incidents.severity_changed.append(partial(on_severity, deps))
    deps.outbox.register(POST_CARD, partial(post_card, deps))
    deps.outbox.register(PUBLISH, partial(publish_draft, deps), on_failure=partial(publish_failed, deps))
    deps.outbox.register(SYNC, partial(sync, deps))
