"""PagerDuty: page on-call for an incident, acknowledge, resolve, escalate; on-call lookups.

Every PagerDuty event is an outbox item keyed by a stable ``dedup_key`` derived from the incident id,
so retries (ours, or after a crash) never open a second alert. On-call lookups run once the incident
channel exists: the people on call are invited, and the first level becomes commander unless someone
was assigned the role explicitly.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from bot import chat_ops, jobs
from bot.db.models import Incident, OutboxItem, ScheduledJob, TimelineEntry
from bot.deps import Deps
from bot.errors import NotFound, PagerError, UsageError
from bot.incidents.store import add_timeline, get_incident
from bot.outbox import enqueue
from bot.ports import Link, OnCall, Pager, PageResult


def dedup_key(incident: Incident, service: str | None = None) -> str:
    base = f"cmdcenter-inc-{incident.id}"
    return f"{base}-{service}" if service and service != incident.service else base


def _routing_key(deps: Deps, service: str | None) -> str | None:
    config = deps.config.service(service) if service else None
    return config.pagerduty.routing_key if config else None


async def _oncalls(deps: Deps, service: str | None) -> list[OnCall]:
    config = deps.config.service(service) if service else None
    policy = config.pagerduty.escalation_policy_id if config else None
    if deps.oncall is None or not policy:
        return []
    return await deps.oncall.oncalls(escalation_policy_id=policy)


async def _slack_users(deps: Deps, people: list[OnCall]) -> list[tuple[OnCall, str | None]]:
    """Each person on call with their Slack user id (by email), or None when they cannot be found."""
    mapped: list[tuple[OnCall, str | None]] = []
    for person in people:
        user = await deps.chat.user_by_email(email=person.email) if person.email else None
        mapped.append((person, user.id if user else None))
    return mapped


async def _slack_ids(deps: Deps, people: list[OnCall]) -> tuple[list[str], list[str]]:
    """Slack user ids for the people on call, and the names of those who could not be mapped."""
    mapped = await _slack_users(deps, people)
    return [uid for _, uid in mapped if uid], [person.name for person, uid in mapped if uid is None]


# --- the incident's life: a page on declaration (and escalation), on a raise, a resolve at the end ----


async def on_declared(deps: Deps, session: AsyncSession, incident: Incident) -> None:
    policy = deps.config.policy(incident.severity)
    if policy.page and deps.pager is not None:
        await record_page(session, deps, incident, action="trigger")
        if policy.escalate_after_minutes:
            due = incident.declared_at + timedelta(minutes=policy.escalate_after_minutes)
            await jobs.schedule(
                session,
                key=f"inc{incident.id}:escalate:2",
                kind=ESCALATE,
                due_at=due,
                payload={"incident_id": incident.id, "level": 2},
            )


async def on_channel_opened(deps: Deps, session: AsyncSession, incident: Incident) -> None:
    if deps.oncall is not None and incident.service:
        await _record_oncall_invite(session, incident, key=f"inc{incident.id}:oncall", level=1)


async def on_severity(deps: Deps, session: AsyncSession, incident: Incident, old: str) -> None:
    if deps.config.policy(incident.severity).page and incident.paged_at is None and deps.pager is not None:
        await record_page(session, deps, incident, action="trigger")


async def on_resolved(deps: Deps, session: AsyncSession, incident: Incident) -> None:
    if incident.paged_at is not None and deps.pager is not None:
        await record_page(session, deps, incident, action="resolve")
    await jobs.cancel(session, key_prefix=f"inc{incident.id}:escalate:")


# --- PagerDuty events: trigger, acknowledge, resolve -------------------------------------------------

EVENT = "pagerduty.event"


async def record_page(
    session: AsyncSession, deps: Deps, incident: Incident, *, action: str, service: str | None = None
) -> None:
    key = dedup_key(incident, service)
    await enqueue(
        session,
        key=f"pd:{key}:{action}:{incident.severity if action == 'trigger' else ''}",
        op=EVENT,
        target="pagerduty",
        payload={"incident_id": incident.id, "action": action, "dedup_key": key, "service": service},
        ordering_key=f"pd:{key}",
        incident_id=incident.id,
    )


async def send_event(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    """Send the item's event to PagerDuty (its dedup key makes a repeat harmless), then put it on the
    timeline."""
    if deps.pager is None:
        raise PagerError("PagerDuty is not configured (PAGERDUTY_ROUTING_KEY)", retryable=False)
    async with deps.db.session() as session:
        incident = await get_incident(session, item.payload["incident_id"])
    action, key, service = item.payload["action"], item.payload["dedup_key"], item.payload.get("service")
    service = service or incident.service
    routing_key = _routing_key(deps, service)
    if action == "trigger":
        result = await _trigger(deps, deps.pager, incident, key=key, service=service, routing_key=routing_key)
    elif action == "acknowledge":
        result = await deps.pager.acknowledge(dedup_key=key, routing_key=routing_key)
    else:
        result = await deps.pager.resolve(dedup_key=key, routing_key=routing_key)
    async with deps.db.session() as session:
        incident = await get_incident(session, incident.id or 0)
        now = deps.clock.now()
        if action == "trigger" and incident.paged_at is None:
            incident.paged_at = now
        text = {
            "trigger": f"Paged on-call via PagerDuty ({service or 'default service'})",
            "acknowledge": "PagerDuty alert acknowledged",
            "resolve": "PagerDuty alert resolved",
        }[action]
        await add_timeline(session, incident, kind="page", text=text, at=now)
    return {"dedup_key": result.dedup_key, "status": result.status}


async def _trigger(
    deps: Deps, pager: Pager, incident: Incident, *, key: str, service: str | None, routing_key: str | None
) -> PageResult:
    policy = deps.config.policy(incident.severity)
    links = []
    if incident.channel_id and deps.settings.slack_api_url:
        links.append(
            Link(
                href=f"https://slack.com/app_redirect?channel={incident.channel_id}",
                text=f"Slack #{incident.channel_name}",
            )
        )
    return await pager.trigger(
        dedup_key=key,
        summary=f"[{incident.severity.upper()}] {incident.ref}: {incident.title}",
        severity=policy.pagerduty_severity,
        source="cmdcenter",
        component=service,
        custom_details={
            "incident": incident.ref,
            "severity": incident.severity.upper(),
            "status": incident.status,
            "commander": incident.commander,
            "service": service,
            "slack_channel": incident.channel_name,
        },
        links=links,
        routing_key=routing_key,
    )


# --- the people on call, invited to the channel --------------------------------------------------------

ONCALL_INVITE = "pagerduty.oncall_invite"


async def _record_oncall_invite(session: AsyncSession, incident: Incident, *, key: str, level: int) -> None:
    await enqueue(
        session,
        key=key,
        op=ONCALL_INVITE,
        target="pagerduty",
        payload={"incident_id": incident.id, "level": level},
        incident_id=incident.id,
    )


async def invite_oncall(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    """Invite the people on call at the item's escalation level; the first level's first person
    becomes commander unless someone was assigned the role."""
    async with deps.db.session() as session:
        incident = await get_incident(session, item.payload["incident_id"])
    level = int(item.payload.get("level", 1))
    try:
        people = [o for o in await _oncalls(deps, incident.service) if o.escalation_level == level]
    except PagerError as exc:
        if exc.retryable and item.attempts < 2:
            raise
        people, error = [], str(exc)
    else:
        error = ""
    users, missing = await _slack_ids(deps, people)
    async with deps.db.session() as session:
        incident = await get_incident(session, incident.id or 0)
        await _record_invited(session, deps, incident, level=level, users=users, missing=missing, error=error)
    return {"invited": users, "missing": missing}


async def _record_invited(
    session: AsyncSession,
    deps: Deps,
    incident: Incident,
    *,
    level: int,
    users: list[str],
    missing: list[str],
    error: str,
) -> None:
    assert incident.channel_id is not None
    key = f"inc{incident.id}:oncall:{level}"
    await chat_ops.invite(
        session,
        key=f"{key}:invite",
        channel=incident.channel_id,
        users=users,
        incident_id=incident.id,
    )
    if level == 1 and users and not await _commander_assigned(session, incident):
        incident.commander = users[0]
        await chat_ops.topic(
            session,
            key=f"{key}:topic",
            channel=incident.channel_id,
            text=str(deps.renderer.text("incident/topic", incident=incident)),
            incident_id=incident.id,
        )
    msg = deps.renderer.message(
        "incident/oncall_invited",
        incident=incident,
        users=users,
        missing=missing,
        error=error,
        level=level,
    )
    await chat_ops.post(
        session, key=f"{key}:post", channel=incident.channel_id, message=msg, incident_id=incident.id
    )
    if users:
        await add_timeline(
            session,
            incident,
            kind="page",
            text=f"On-call level {level} invited: " + ", ".join(f"<@{u}>" for u in users),
            at=deps.clock.now(),
        )


# --- escalation when nobody acknowledges ---------------------------------------------------------------

ESCALATE = "incident.escalate"


async def escalate(deps: Deps, job: ScheduledJob) -> None:
    """Not acknowledged in time: say so in the channels and invite the next level on call."""
    level = int(job.payload["level"])
    async with deps.db.session() as session:
        incident = await session.get(Incident, job.payload["incident_id"])
        if incident is None or not incident.is_open or incident.acknowledged_at is not None:
            return
        incident.escalation_level = max(incident.escalation_level, level)
        msg = deps.renderer.message(
            "incident/escalated",
            incident=incident,
            level=level,
            minutes=int((deps.clock.now() - incident.declared_at).total_seconds() // 60),
        )
        for channel in filter(None, (incident.channel_id, deps.config.slack.incident_channel)):
            await chat_ops.post(
                session, key=f"{job.key}:{channel}", channel=channel, message=msg, incident_id=incident.id
            )
        if incident.channel_id and deps.oncall is not None:
            await _record_oncall_invite(
                session, incident, key=f"inc{incident.id}:oncall-level{level}", level=level
            )
        await add_timeline(
            session,
            incident,
            kind="page",
            text=f"Not acknowledged: escalated to level {level}",
            at=deps.clock.now(),
        )


def register(deps: Deps) -> None:
    deps.incidents.declared.append(partial(on_declared, deps))
    deps.incidents.channel_opened.append(partial(on_channel_opened, deps))
    deps.incidents.severity_changed.append(partial(on_severity, deps))
    deps.incidents.resolved.append(partial(on_resolved, deps))
    deps.outbox.register(EVENT, partial(send_event, deps))
    deps.outbox.register(ONCALL_INVITE, partial(invite_oncall, deps))
    deps.jobs.register(ESCALATE, partial(escalate, deps))


async def _commander_assigned(session: AsyncSession, incident: Incident) -> bool:
    rows = await session.execute(
        select(TimelineEntry).where(TimelineEntry.incident_id == incident.id, TimelineEntry.kind == "role")
    )
    return any(e.text.startswith("Commander") for e in rows.scalars())


async def acknowledge(deps: Deps, incident_id: int, *, user: str) -> Incident:
    """``/incident ack``: acknowledge the incident's PagerDuty alert; escalation stops."""
    _require_pager(deps)
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        if incident.paged_at is None:
            raise NotFound(f"{incident.ref} has not paged anyone yet.")
        now = deps.clock.now()
        incident.acknowledged_at = incident.acknowledged_at or now
        await record_page(session, deps, incident, action="acknowledge")
        await add_timeline(session, incident, kind="page", text="Acknowledged", author=user, at=now)
        await jobs.cancel(session, key_prefix=f"inc{incident.id}:escalate:")
    return incident


async def page_on_demand(deps: Deps, incident_id: int, *, user: str, service: str | None) -> Incident:
    """``/incident page [service]``: page on-call for the incident (another service's, if named)."""
    _require_pager(deps)
    if service:
        deps.config.require_service(service)
    async with deps.db.session() as session:
        incident = await get_incident(session, incident_id)
        await record_page(session, deps, incident, action="trigger", service=service)
        await add_timeline(
            session,
            incident,
            kind="page",
            author=user,
            at=deps.clock.now(),
            text=f"Page requested for {service or incident.service or 'the default service'}",
        )
    return incident


async def who_is_on_call(deps: Deps, service: str) -> list[tuple[OnCall, str | None]]:
    """``/incident oncall``: the people on call for the service, with their Slack user ids."""
    deps.config.require_service(service)
    return await _slack_users(deps, await _oncalls(deps, service))


def _require_pager(deps: Deps) -> None:
    if deps.pager is None:
        raise UsageError("PagerDuty is not configured: set PAGERDUTY_ROUTING_KEY.")
