"""The incident lifecycle: declare, status, severity, roles, resolve; and what ``/incident show`` shows.

Each function is one transaction: it changes the incident, records its timeline entries, and records
every Slack post as an outbox item in that same transaction (its commit wakes the worker). Nothing a
responder did is lost when Slack (or the process) fails half-way. The functions return the incident;
``dispatch`` renders the reply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot import chat_ops
from bot.config import SEVERITIES, Severity
from bot.db.models import ActionItem, Incident, OutboxItem
from bot.deps import Deps
from bot.errors import Conflict
from bot.incidents import postmortem, reminders, steps
from bot.incidents.parse import Role, Status
from bot.incidents.store import add_timeline, get_incident, incident_for
from bot.outbox import enqueue
from bot.render import Mrkdwn, RenderedMessage

DOUBLE_SUBMIT_WINDOW = timedelta(minutes=5)


def severity_rank(severity: str) -> int:
    """sev1 → 1 (most severe) ... sev4 → 4."""
    return SEVERITIES.index(severity) + 1 if severity in SEVERITIES else 9


def _declare_key(user: str, title: str, now: datetime) -> str:
    bucket = int(now.timestamp() // DOUBLE_SUBMIT_WINDOW.total_seconds())
    digest = hashlib.sha256(" ".join(title.lower().split()).encode()).hexdigest()[:16]
    return f"{user}:{digest}:{bucket}"


async def _recent_duplicate(session: AsyncSession, user: str, title: str, now: datetime) -> Incident | None:
    rows = await session.execute(
        select(Incident)
        .where(Incident.declared_by == user, col(Incident.declared_at) >= now - DOUBLE_SUBMIT_WINDOW)
        .order_by(col(Incident.id).desc())
    )
    norm = " ".join(title.lower().split())
    return next((i for i in rows.scalars() if " ".join(i.title.lower().split()) == norm), None)


async def declare(
    deps: Deps,
    *,
    user: str,
    severity: Severity,
    title: str,
    service: str | None = None,
    description: str = "",
    origin_channel: str = "",
) -> tuple[Incident, bool]:
    """Store the incident and record its steps. Returns (incident, created); a double submit of the
    same title by the same person within five minutes returns the first incident."""
    if service is not None:
        deps.config.require_service(service)
    now = deps.clock.now()
    try:
        async with deps.db.session() as session:
            existing = await _recent_duplicate(session, user, title, now)
            if existing is not None:
                return existing, False
            incident = Incident(
                title=title,
                severity=severity,
                service=service,
                description=description,
                status="investigating",
                commander=user,
                declared_by=user,
                declare_key=_declare_key(user, title, now),
                origin_channel=origin_channel or None,
                declared_at=now,
                last_update_at=now,
            )
            await _record_declared(session, deps, incident)
    except IntegrityError:
        # The same declaration raced in from a retry: return the one that won.
        async with deps.db.session() as session:
            existing = await _recent_duplicate(session, user, title, now)
        if existing is None:
            raise
        return existing, False
    return incident, True


async def _record_declared(session: AsyncSession, deps: Deps, incident: Incident) -> None:
    """The new incident, its first timeline entry, the step opening its channel, its first reminder
    and the other areas' hooks (a page, a freeze, a Statuspage draft)."""
    session.add(incident)
    await session.flush()
    await add_timeline(
        session,
        incident,
        kind="declared",
        text=f"Incident declared ({incident.severity.upper()}): {incident.title}",
        author=incident.declared_by,
        at=incident.declared_at,
    )
    await enqueue(
        session,
        key=f"inc{incident.id}:open-channel",
        op=steps.OPEN_CHANNEL,
        target="slack",
        payload={"incident_id": incident.id},
        incident_id=incident.id,
    )
    await reminders.schedule_next(session, deps, incident, after=incident.declared_at)
    await deps.incidents.run("declared", session, incident)


async def find(deps: Deps, *, ref: int | None, channel_id: str) -> Incident:
    """The incident named by ``ref`` (``INC-42``), else the one whose channel this is."""
    async with deps.db.session(read_only=True) as session:
        return await incident_for(session, ref=ref, channel_id=channel_id)


@dataclass(frozen=True)
class Overview:
    """What ``/incident show`` shows: the incident, its pending and failed steps, its action items,
    and the lines the other areas add (by name)."""

    incident: Incident
    steps: list[OutboxItem]
    items: list[ActionItem]
    extra: dict[str, Mrkdwn | str]


async def overview(deps: Deps, incident_id: int) -> Overview:
    async with deps.db.session(read_only=True) as session:
        incident = await get_incident(session, incident_id)
    steps = await deps.outbox.pending_for_incident(incident_id)
    items = await postmortem.action_items(deps, incident_id)
    extra = {name: await provide(incident) for name, provide in deps.incidents.card_lines.items()}
    return Overview(incident, steps, items, extra)


async def set_status(deps: Deps, incident_id: int, *, user: str, status: Status, message: str) -> Incident:
    if status == "resolved":
        return await resolve(deps, incident_id, user=user, summary=message)
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        _require_open(incident)
        incident.status = status
        incident.last_update_at = now
        if status == "identified" and incident.identified_at is None:
            incident.identified_at = now
        if status == "monitoring" and incident.mitigated_at is None:
            incident.mitigated_at = now
        entry = await add_timeline(
            session,
            incident,
            kind="status",
            text=f"Status → {status}" + (f": {message}" if message else ""),
            author=user,
            at=now,
        )
        msg = deps.renderer.message(
            "incident/status_update", incident=incident, status=status, message=message, user=user
        )
        await _post_channel_and_bridge(session, deps, incident, msg, key=f"status:{entry.id}")
        await _update_topic(session, deps, incident, key=f"status:{entry.id}")
        await reminders.reschedule(session, deps, incident, after=now)
        await deps.incidents.run("status_changed", session, incident)
    return incident


async def set_severity(
    deps: Deps, incident_id: int, *, user: str, severity: Severity, reason: str
) -> Incident:
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        _require_open(incident)
        old = incident.severity
        if old == severity:
            raise Conflict(f"{incident.ref} is already {severity.upper()}.")
        incident.severity = severity
        raised = severity_rank(severity) < severity_rank(old)
        entry = await add_timeline(
            session,
            incident,
            kind="severity",
            text=f"Severity {old.upper()} → {severity.upper()}" + (f": {reason}" if reason else ""),
            author=user,
            at=now,
        )
        msg = deps.renderer.message(
            "incident/severity_changed", incident=incident, old=old, raised=raised, reason=reason, user=user
        )
        key = f"sev:{entry.id}"
        if incident.channel_id:
            await chat_ops.post(
                session,
                key=f"{key}:channel",
                channel=incident.channel_id,
                message=msg,
                incident_id=incident.id,
            )
        if raised:
            await chat_ops.post(
                session,
                key=f"{key}:bridge",
                channel=deps.config.slack.incident_channel,
                message=msg,
                incident_id=incident.id,
            )
        await _update_topic(session, deps, incident, key=key)
        await reminders.reschedule(session, deps, incident, after=now)
        await deps.incidents.run_severity(session, incident, old)
    return incident


async def assign(deps: Deps, incident_id: int, *, user: str, role: Role, assignee: str) -> Incident:
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        _require_open(incident)
        setattr(incident, role, assignee)
        entry = await add_timeline(
            session, incident, kind="role", text=f"{role.capitalize()}: <@{assignee}>", author=user, at=now
        )
        key = f"role:{entry.id}"
        if incident.channel_id:
            await chat_ops.invite(
                session,
                key=f"{key}:invite",
                channel=incident.channel_id,
                users=[assignee],
                incident_id=incident.id,
            )
            msg = deps.renderer.message(
                "incident/role_assigned", incident=incident, role=role, assignee=assignee, user=user
            )
            await chat_ops.post(
                session, key=f"{key}:post", channel=incident.channel_id, message=msg, incident_id=incident.id
            )
        if role == "commander":
            await _update_topic(session, deps, incident, key=key)
    return incident


async def resolve(deps: Deps, incident_id: int, *, user: str, summary: str) -> Incident:
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        _require_open(incident)
        incident.status = "resolved"
        incident.resolved_at = now
        incident.last_update_at = now
        incident.mitigated_at = incident.mitigated_at or now
        incident.resolution = summary
        entry = await add_timeline(
            session,
            incident,
            kind="resolved",
            text="Resolved" + (f": {summary}" if summary else ""),
            author=user,
            at=now,
        )
        msg = deps.renderer.message("incident/resolved", incident=incident, summary=summary, user=user)
        await _post_channel_and_bridge(session, deps, incident, msg, key=f"resolve:{entry.id}")
        await _update_topic(session, deps, incident, key=f"resolve:{entry.id}")
        await reminders.cancel_all(session, incident)
        await deps.incidents.run("resolved", session, incident)
    return incident


def _require_open(incident: Incident) -> None:
    if not incident.is_open:
        raise Conflict(
            f"{incident.ref} is resolved (since {incident.resolved_at:%Y-%m-%d %H:%M} UTC); "
            "declare a new incident if the problem is back."
            if incident.resolved_at
            else f"{incident.ref} is resolved."
        )


async def _post_channel_and_bridge(
    session: AsyncSession, deps: Deps, incident: Incident, msg: RenderedMessage, *, key: str
) -> None:
    if incident.channel_id:
        await chat_ops.post(
            session, key=f"{key}:channel", channel=incident.channel_id, message=msg, incident_id=incident.id
        )
    await chat_ops.post(
        session,
        key=f"{key}:bridge",
        channel=deps.config.slack.incident_channel,
        message=msg,
        incident_id=incident.id,
    )


async def _update_topic(session: AsyncSession, deps: Deps, incident: Incident, *, key: str) -> None:
    if incident.channel_id:
        await chat_ops.topic(
            session,
            key=f"{key}:topic",
            channel=incident.channel_id,
            text=str(deps.renderer.text("incident/topic", incident=incident)),
            incident_id=incident.id,
        )
