"""Running a confirmed rollback: approved → running → succeeded / failed (or interrupted).

    rollback.execute  (EXECUTE, outbox)   claim approved → running once, then run the tool beside the worker
    rollback.watchdog (WATCHDOG, job)     a run whose lease lapsed (its replica died) → interrupted

The claim is one conditional UPDATE (approved → running), so a double click, a Slack retry or a second
replica runs nothing. The tool runs outside the worker loop (a rollback may take minutes) under a lease
on the row (``bot.tool_runs``); its outcome is recorded with retries while the database is down (the
tool ran: that must not be lost). A run whose replica died is reported ``interrupted`` by the
watchdog, never run again on its own. A step of a rollback that never ran and failed for good
(its card could not be posted, it could not be started) frees the service and says why.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import ArgoCDDeploy
from bot.db.models import OutboxItem, RollbackRequest, RollbackState, ScheduledJob
from bot.deps import Deps
from bot.errors import DeployError, Unavailable
from bot.jobs import cancel as cancel_jobs
from bot.jobs import schedule
from bot.ports import DeployResult, Release
from bot.releases import freeze, ledger
from bot.releases.rollback import card, health, store
from bot.tool_runs import holding_lease, run_tool

log = logging.getLogger(__name__)

EXECUTE = "rollback.execute"
WATCHDOG = "rollback.watchdog"
FINISH_ATTEMPTS = 12  # ~5 minutes of retries when the database is down as the tool finishes


async def execute(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    """The ``rollback.execute`` step recorded by Confirm: claim the row, then run it in the background."""
    rollback_id = int(item.payload["rollback_id"])
    if not await claim(deps, rollback_id):
        return {"skipped": "already started or no longer approved"}
    deps.tasks.spawn(run(deps, rollback_id), what=f"rollback RB-{rollback_id}")
    return {"started": rollback_id}


async def execute_failed(deps: Deps, item: OutboxItem) -> None:
    await gave_up(deps, item, state="failed", why="it could not be started")


async def card_failed(deps: Deps, item: OutboxItem) -> None:
    await gave_up(deps, item, state="expired", why="its card could not be posted", card_too=False)


async def claim(deps: Deps, rollback_id: int) -> bool:
    """approved → running (once), with the ledger row, the card update and the watchdog."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        claimed = await session.execute(
            sa.update(RollbackRequest)
            .where(col(RollbackRequest.id) == rollback_id, col(RollbackRequest.state) == "approved")
            .values(
                state="running",
                started_at=now,
                lease_owner=deps.outbox.owner,
                lease_until=now + deps.outbox.lease,
            )
        )
        if not getattr(claimed, "rowcount", 0):
            return False
        row = await store.load(session, rollback_id)
        await ledger.record(
            session,
            key=f"rollback:{row.id}",
            service=row.service,
            environment=row.environment,
            kind="rollback",
            version=row.target_version,
            revision=row.target_revision,
            previous_version=row.current_version,
            status="started",
            source="cmdcenter",
            actor=row.requested_by,
            tool=row.tool,
            summary=row.reason,
            rollback_id=row.id,
            at=now,
        )
        await card.step(session, row)
        await _schedule_watchdog(session, deps, row, attempt=1)
    return True


async def _schedule_watchdog(
    session: AsyncSession, deps: Deps, row: RollbackRequest, *, attempt: int
) -> None:
    await schedule(
        session,
        key=f"rollback:{row.id}:watch:{attempt}",
        kind=WATCHDOG,
        due_at=deps.clock.now() + 2 * deps.outbox.lease,
        payload={"rollback_id": row.id, "attempt": attempt},
    )


async def run(deps: Deps, rollback_id: int) -> None:
    """Call the tool (the row is ``running`` and ours), then record the outcome."""
    lease = holding_lease(
        deps.outbox, RollbackRequest, rollback_id, state=("state", "running"), now=deps.clock.now
    )
    async with lease:
        async with deps.db.session() as session:
            row = await store.load(session, rollback_id)
        notes: list[str] = []
        result = await run_tool(lambda: _call_tool(deps, row, notes), what=f"rollback {row.ref}")
        for attempt in range(FINISH_ATTEMPTS):  # the tool ran: keep trying to record how it went
            try:
                await _finish(deps, rollback_id, result, notes)
                break
            except Unavailable:
                log.warning("%s: database unavailable; recording the outcome again shortly", row.ref)
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))


async def _call_tool(deps: Deps, row: RollbackRequest, notes: list[str]) -> DeployResult:
    service = deps.config.service(row.service)
    if service is None or deps.deploy is None:
        raise DeployError(f"{row.service} is no longer configured for rollbacks", retryable=False)
    control = deps.auto_sync
    if isinstance(service.deploy, ArgoCDDeploy) and control is not None:
        suspended = await control.suspend_auto_sync(service=service, environment=row.environment)
        notes.append(
            "suspended Argo CD automated sync" if suspended else "Argo CD automated sync was already off"
        )
    target = Release(version=row.target_version, revision=row.target_revision)
    return await deps.deploy.rollback(
        service=service, environment=row.environment, target=target, dry_run=False
    )


async def _finish(deps: Deps, rollback_id: int, result: DeployResult, notes: list[str]) -> None:
    """running → succeeded (then the health check) or failed, unless declared interrupted meanwhile."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        row = await store.load(session, rollback_id)
        if row.state != "running":
            return  # declared interrupted meanwhile: that report stands
        row.state = "succeeded" if result.ok else "failed"
        row.result_summary = result.summary[:1000]
        row.result_output = result.output[:3000]
        row.result_url = result.url
        row.finished_at, row.lease_owner, row.lease_until = now, None, None
        row.notes = [*row.notes, *notes]
        service = deps.config.service(row.service)
        if isinstance(service.deploy if service else None, ArgoCDDeploy):
            await freeze.forget_suspended(session, service=row.service, environment=row.environment)
        await ledger.finish(
            session,
            key=f"rollback:{row.id}",
            status=row.state,
            at=now,
            summary=result.summary,
            url=result.url,
        )
        await cancel_jobs(session, key_prefix=f"rollback:{row.id}:watch:")
        if result.ok:
            await health.start(session, deps, row, service)
        else:
            row.active_key = None
        await card.announce(session, deps, row, "rollback/outcome", kind="outcome")


async def interrupt(session: AsyncSession, deps: Deps, row: RollbackRequest) -> None:
    """The replica running ``row`` died (its lease lapsed): say so; never run it again on our own."""
    row.state, row.active_key, row.finished_at = "interrupted", None, deps.clock.now()
    row.lease_owner, row.lease_until = None, None
    row.result_summary = (
        "cmdcenter stopped while the deploy tool was running: check the tool for the outcome "
        "before rolling back again"
    )
    await ledger.finish(
        session, key=f"rollback:{row.id}", status="unknown", at=deps.clock.now(), summary=row.result_summary
    )
    await card.announce(session, deps, row, "rollback/outcome", kind="outcome")


async def watchdog(deps: Deps, job: ScheduledJob) -> None:
    """The ``rollback.watchdog`` job: a run whose lease lapsed is interrupted; else look again later."""
    rollback_id, attempt = int(job.payload["rollback_id"]), int(job.payload["attempt"])
    async with deps.db.session() as session:
        row = await store.load(session, rollback_id)
        if row.state != "running":
            return
        if row.lease_until is not None and row.lease_until < deps.clock.now():
            await interrupt(session, deps, row)
        else:
            await _schedule_watchdog(session, deps, row, attempt=attempt + 1)


async def gave_up(
    deps: Deps, item: OutboxItem, *, state: RollbackState, why: str, card_too: bool = True
) -> None:
    """A step of a rollback that never ran failed for good: free the service and say why."""
    async with deps.db.session() as session:
        row = await store.load(session, int(item.payload["rollback_id"]))
        if row.state not in ("pending", "approved"):
            return
        row.state, row.active_key, row.finished_at = state, None, deps.clock.now()
        row.result_summary = f"{why}: {item.last_error}"[:1000]
        await card.announce(session, deps, row, "rollback/outcome", kind="outcome", card=card_too)
