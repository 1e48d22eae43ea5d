"""Deploy freezes: set by a severe incident until it is resolved, or by hand with ``/gonogo freeze``.

    freezes = await active_freezes(deps)            # /prodstatus, /gonogo, /incident show
    covering = await freezes_for(deps, service="checkout")

A freeze covers one service or all of them (``service`` None). Declaring an incident whose severity
is in ``config.freeze.on_severities`` freezes its service (or everything: ``config.freeze.scope``;
an incident without a service freezes everything); raising an incident into those severities freezes,
lowering it out of them or resolving it lifts its freeze. ``/gonogo unfreeze [service]`` lifts every
freeze of exactly that scope, whoever set it. Rollbacks are never refused by a freeze.

Argo CD services with ``suspend_sync_on_freeze`` get their automated sync suspended while frozen
(outbox steps ``freeze.suspend_sync`` / ``freeze.resume_sync``, best effort, recorded on the freeze).
A rollback that runs meanwhile takes its application off the list: resuming auto-sync would redeploy
what was rolled back.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot import chat_ops
from bot.config import ArgoCDDeploy
from bot.db.models import DeployFreeze, Incident, OutboxItem
from bot.deps import Deps
from bot.errors import Conflict, DeployError
from bot.outbox import enqueue
from bot.render import Mrkdwn

log = logging.getLogger(__name__)


class ActiveFreeze(BaseModel):
    """A freeze in force (field-compatible with ``bot.status.Freeze``)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    service: str | None  # None: every service
    reason: str
    since: datetime
    source: Literal["incident", "manual"]
    incident_id: int | None = None
    created_by: str

    @property
    def scope(self) -> str:
        return self.service or "all services"

    @property
    def incident_ref(self) -> str | None:
        return f"INC-{self.incident_id}" if self.incident_id is not None else None


def _active(row: DeployFreeze) -> ActiveFreeze:
    assert row.id is not None
    return ActiveFreeze(
        id=row.id,
        service=row.service,
        reason=row.reason,
        since=row.created_at,
        source="incident" if row.source == "incident" else "manual",
        incident_id=row.incident_id,
        created_by=row.created_by,
    )


# --- queries ------------------------------------------------------------------------------------------


async def _active_rows(session: AsyncSession, *, for_update: bool = False) -> list[DeployFreeze]:
    stmt = select(DeployFreeze).where(col(DeployFreeze.lifted_at).is_(None)).order_by(col(DeployFreeze.id))
    rows = await session.execute(stmt.with_for_update() if for_update else stmt)
    return list(rows.scalars())


async def freezes_covering(session: AsyncSession, *, service: str | None) -> list[ActiveFreeze]:
    """Freezes in force for ``service`` (its own and the all-services ones); None: all of them."""
    return [
        _active(r) for r in await _active_rows(session) if service is None or r.service in (None, service)
    ]


async def active_freezes(deps: Deps) -> list[ActiveFreeze]:
    """Every freeze in force, oldest first."""
    async with deps.db.session() as session:
        return await freezes_covering(session, service=None)


async def freezes_for(deps: Deps, *, service: str) -> list[ActiveFreeze]:
    """The freezes that stop deploys of ``service`` (for the /gonogo ``no_freeze`` gate)."""
    async with deps.db.session() as session:
        return await freezes_covering(session, service=service)


# --- setting and lifting (in the caller's transaction) ------------------------------------------------


def _argocd_targets(deps: Deps, service: str | None) -> list[tuple[str, str]]:
    """(service, environment) whose Argo CD auto-sync a freeze of ``service`` suspends."""
    return [
        (s.name, env)
        for s in deps.config.services
        if (service is None or s.name == service)
        and isinstance(s.deploy, ArgoCDDeploy)
        and s.deploy.suspend_sync_on_freeze
        for env in s.environments
    ]


async def _start(
    session: AsyncSession,
    deps: Deps,
    *,
    service: str | None,
    reason: str,
    source: Literal["incident", "manual"],
    user: str,
    incident: Incident | None = None,
) -> DeployFreeze:
    now = deps.clock.now()
    key = f"incident:{incident.id}" if incident is not None else f"manual:{service or '*'}"
    row = DeployFreeze(
        service=service,
        reason=reason,
        source=source,
        incident_id=incident.id if incident is not None else None,
        active_key=key,
        created_by=user,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    await chat_ops.post(
        session,
        key=f"freeze:{row.id}:set",
        channel=deps.config.slack.release_channel,
        message=deps.renderer.message("freeze/announce", freeze=_active(row), lifted=False, user=user),
    )
    for name, env in _argocd_targets(deps, service):
        await enqueue(
            session,
            key=f"freeze:{row.id}:suspend:{name}/{env}",
            op=SUSPEND_SYNC,
            target="deploy",
            payload={"freeze_id": row.id, "service": name, "environment": env},
            ordering_key=f"freeze:{row.id}",  # one at a time: each step updates the freeze's lists
        )
    return row


async def _lift(
    session: AsyncSession,
    deps: Deps,
    row: DeployFreeze,
    *,
    user: str | None,
    reason: str,
) -> ActiveFreeze:
    now = deps.clock.now()
    frozen = _active(row)
    row.lifted_at, row.lifted_by, row.lift_reason, row.active_key = now, user, reason, None
    await session.flush()
    await chat_ops.post(
        session,
        key=f"freeze:{row.id}:lifted",
        channel=deps.config.slack.release_channel,
        message=deps.renderer.message(
            "freeze/announce", freeze=frozen, lifted=True, user=user, lift_reason=reason
        ),
    )
    await _hand_over_suspended(session, deps, row)
    return frozen


async def _hand_over_suspended(session: AsyncSession, deps: Deps, row: DeployFreeze) -> None:
    """Resume the auto-sync a lifted freeze suspended, unless another freeze still covers it."""
    others = await _active_rows(session, for_update=True)
    for target in row.sync_suspended:
        name, _, env = target.partition("/")
        heir = next((o for o in others if o.service in (None, name)), None)
        if heir is not None:
            heir.sync_suspended = sorted({*heir.sync_suspended, target})
            continue
        await enqueue(
            session,
            key=f"freeze:{row.id}:resume:{target}",
            op=RESUME_SYNC,
            target="deploy",
            payload={"freeze_id": row.id, "service": name, "environment": env},
            ordering_key=f"freeze:{row.id}",
        )
    row.sync_suspended = []


async def forget_suspended(session: AsyncSession, *, service: str, environment: str) -> bool:
    """A rollback ran on this application: lifting a freeze must not resume its auto-sync (that would
    redeploy what was rolled back). True when a freeze had it on its list."""
    target = f"{service}/{environment}"
    found = False
    for row in await _active_rows(session, for_update=True):
        if target in row.sync_suspended:
            row.sync_suspended = [t for t in row.sync_suspended if t != target]
            found = True
    return found


# --- commands -----------------------------------------------------------------------------------------


def _known_service(deps: Deps, name: str | None) -> None:
    if name is not None:
        deps.config.require_service(name)


async def freeze(deps: Deps, *, service: str | None, reason: str, user: str) -> ActiveFreeze:
    """``/gonogo freeze``: permission ``freeze`` for the service (or all)."""
    _known_service(deps, service)
    await deps.access.require(
        action="freeze",
        user=user,
        service=service or "*",  # all services: only a rule for every service allows it
        what=f"freeze deploys of {service or 'all services'}",
    )
    try:
        async with deps.db.session() as session:
            row = await _start(session, deps, service=service, reason=reason, source="manual", user=user)
            frozen = _active(row)
    except IntegrityError:
        raise Conflict(
            f"Deploys of {service or 'all services'} are already frozen by hand; "
            f"`/gonogo unfreeze{' ' + service if service else ''}` lifts it."
        ) from None
    return frozen


async def unfreeze(deps: Deps, *, service: str | None, user: str) -> list[ActiveFreeze]:
    """``/gonogo unfreeze``: lifts every freeze of exactly that scope (by hand or by an incident)."""
    _known_service(deps, service)
    await deps.access.require(
        action="freeze",
        user=user,
        service=service or "*",  # all services: only a rule for every service allows it
        what=f"unfreeze deploys of {service or 'all services'}",
    )
    async with deps.db.session() as session:
        rows = [r for r in await _active_rows(session) if r.service == service]
        if not rows:
            others = ", ".join(f.scope for f in map(_active, await _active_rows(session)))
            raise Conflict(
                f"Deploys of {service or 'all services'} are not frozen"
                + (f" (frozen: {others})." if others else ".")
            )
        lifted = [await _lift(session, deps, row, user=user, reason="lifted by hand") for row in rows]
    return lifted


# --- incident hooks, the line on /incident show -------------------------------------------------------


def _freezes_on(deps: Deps, severity: str) -> bool:
    return severity in deps.config.freeze.on_severities


async def _incident_freeze(session: AsyncSession, incident: Incident) -> DeployFreeze | None:
    rows = await session.execute(
        select(DeployFreeze).where(DeployFreeze.active_key == f"incident:{incident.id}")
    )
    return rows.scalars().first()


async def _freeze_for_incident(session: AsyncSession, deps: Deps, incident: Incident) -> None:
    if await _incident_freeze(session, incident) is not None:
        return
    service = incident.service if deps.config.freeze.scope == "service" else None
    await _start(
        session,
        deps,
        service=service,
        reason=f"{incident.ref} ({incident.severity.upper()}): {incident.title}",
        source="incident",
        user=incident.commander,
        incident=incident,
    )


async def on_declared(deps: Deps, session: AsyncSession, incident: Incident) -> None:
    """Declaring an incident of a freezing severity freezes deploys."""
    if _freezes_on(deps, incident.severity):
        await _freeze_for_incident(session, deps, incident)


async def on_severity(deps: Deps, session: AsyncSession, incident: Incident, old: str) -> None:
    """Raising an incident into a freezing severity freezes; lowering it out of them lifts its freeze."""
    if _freezes_on(deps, incident.severity):
        await _freeze_for_incident(session, deps, incident)
        return
    row = await _incident_freeze(session, incident)
    if row is not None:
        reason = f"{incident.ref} lowered to {incident.severity.upper()}"
        await _lift(session, deps, row, user=None, reason=reason)


async def on_resolved(deps: Deps, session: AsyncSession, incident: Incident) -> None:
    """Resolving an incident lifts its freeze."""
    row = await _incident_freeze(session, incident)
    if row is not None:
        await _lift(session, deps, row, user=None, reason=f"{incident.ref} resolved")


async def card_line(deps: Deps, incident: Incident) -> Mrkdwn | str:
    """The freezes that concern an incident, as a line of ``/incident show`` ("" for none)."""
    async with deps.db.session() as session:
        covering = [
            f
            for f in await freezes_covering(session, service=incident.service)
            if incident.service is not None or f.incident_id == incident.id or f.service is None
        ]
    return deps.renderer.text("freeze/incident_card", freezes=covering) if covering else ""


# --- outbox steps: Argo CD automated sync -------------------------------------------------------------

SUSPEND_SYNC = "freeze.suspend_sync"
RESUME_SYNC = "freeze.resume_sync"


async def suspend_sync(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    return await _sync_step(deps, item, suspend=True)


async def resume_sync(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    return await _sync_step(deps, item, suspend=False)


async def _sync_step(deps: Deps, item: OutboxItem, *, suspend: bool) -> dict[str, Any]:
    """Suspend (or resume) one application's automated sync and record it on the freeze."""
    freeze_id, name, env = item.payload["freeze_id"], item.payload["service"], item.payload["environment"]
    service = deps.config.service(name)
    control = deps.auto_sync
    if service is None or control is None:
        return {"skipped": "no Argo CD control for this service"}
    verb, done = ("suspend", "suspended") if suspend else ("resume", "resumed")
    try:
        if suspend:
            changed = await control.suspend_auto_sync(service=service, environment=env)
        else:
            changed = await control.resume_auto_sync(service=service, environment=env)
        note = (
            f"{done} Argo CD auto-sync of {name}/{env}"
            if changed
            else f"auto-sync of {name}/{env} was not on"
        )
    except DeployError as exc:
        if exc.retryable:
            raise
        changed, note = False, f"could not {verb} Argo CD auto-sync of {name}/{env}: {exc}"
        log.warning("freeze %s: %s", freeze_id, note)
    async with deps.db.session() as session:
        row = await session.get(DeployFreeze, freeze_id, with_for_update=True)
        if row is not None:
            row.sync_notes = [*row.sync_notes, note][-20:]
            if suspend and changed:
                if row.active:
                    row.sync_suspended = sorted({*row.sync_suspended, f"{name}/{env}"})
                else:  # lifted while we were suspending: put it back at once
                    await enqueue(
                        session,
                        key=f"freeze:{freeze_id}:resume:{name}/{env}",
                        op=RESUME_SYNC,
                        target="deploy",
                        payload=dict(item.payload),
                        ordering_key=f"freeze:{freeze_id}",
                    )
    return {"changed": changed, "note": note}


# --- wiring -------------------------------------------------------------------------------------------


def register(deps: Deps) -> None:
    """The incident hooks, the line on ``/incident show`` and the auto-sync steps."""
    deps.incidents.declared.append(partial(on_declared, deps))
    deps.incidents.severity_changed.append(partial(on_severity, deps))
    deps.incidents.resolved.append(partial(on_resolved, deps))
    deps.incidents.card_lines["freeze"] = partial(card_line, deps)
    deps.outbox.register(SUSPEND_SYNC, partial(suspend_sync, deps))
    deps.outbox.register(RESUME_SYNC, partial(resume_sync, deps))
