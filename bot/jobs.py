"""Jobs due at a time (update reminders, SEV1 escalations, scheduled reports), stored in the database.

``schedule`` records a job in the caller's transaction (its ``key`` makes it idempotent);
``run_due`` fires each due job once across replicas (lease by conditional UPDATE) using the business
clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.clock import Clock
from bot.db.engine import Database, record_effects
from bot.db.models import ScheduledJob
from bot.db.store import claim_lease, insert_ignore

log = logging.getLogger(__name__)

JobHandler = Callable[[ScheduledJob], Awaitable[None]]


async def schedule(
    session: AsyncSession, *, key: str, kind: str, due_at: datetime, payload: dict[str, Any]
) -> bool:
    """Record a job in the caller's transaction; ``key`` makes it idempotent."""
    record_effects(session)
    return await insert_ignore(
        session,
        ScheduledJob,
        {"key": key, "kind": kind, "due_at": due_at, "payload": payload, "status": "pending"},
        conflict=["key"],
    )


async def cancel(session: AsyncSession, *, key_prefix: str) -> None:
    await session.execute(
        sa.update(ScheduledJob)
        .where(col(ScheduledJob.key).startswith(key_prefix), col(ScheduledJob.status) == "pending")
        .values(status="cancelled")
    )


class Jobs:
    def __init__(self, db: Database, clock: Clock, *, owner: str, lease: float = 60.0) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        self.lease = timedelta(seconds=lease)
        self._handlers: dict[str, JobHandler] = {}
        self._recurring: dict[str, Callable[[datetime], datetime]] = {}
        self._scheduled: dict[str, str] = {}  # kind -> key of the next occurrence already recorded

    def register(self, kind: str, handler: JobHandler) -> None:
        self._handlers[kind] = handler

    def recurring(self, kind: str, next_due: Callable[[datetime], datetime]) -> None:
        """Keep the next occurrence of ``kind`` scheduled (keyed by its due time: once across replicas)."""
        self._recurring[kind] = next_due

    async def _schedule_recurring(self, now: datetime) -> None:
        for kind, next_due in self._recurring.items():
            due = next_due(now)
            key = f"{kind}:{due.isoformat()}"
            if self._scheduled.get(kind) == key:
                continue
            async with self.db.session() as session:
                await schedule(session, key=key, kind=kind, due_at=due, payload={})
            self._scheduled[kind] = key

    async def run_due(self, *, limit: int = 50) -> int:
        now = self.clock.now()
        await self._schedule_recurring(now)
        async with self.db.session(read_only=True) as session:
            due = list(
                (
                    await session.execute(
                        select(ScheduledJob)
                        .where(ScheduledJob.status == "pending", col(ScheduledJob.due_at) <= now)
                        .order_by(col(ScheduledJob.due_at))
                        .limit(limit)
                    )
                ).scalars()
            )
        fired = 0
        for job in due:
            assert job.id is not None
            async with self.db.session() as session:
                if not await claim_lease(
                    session, ScheduledJob, job.id, owner=self.owner, now=now, lease=self.lease
                ):
                    continue
            handler = self._handlers.get(job.kind)
            try:
                if handler is not None:
                    await handler(job)
                else:
                    log.error("no handler for scheduled job kind %s (%s)", job.kind, job.key)
            except Exception:
                log.exception(
                    "scheduled job %s (%s) failed; it will be retried after its lease", job.key, job.kind
                )
                continue
            async with self.db.session() as session:
                row = await session.get(ScheduledJob, job.id)
                if row is not None and row.status == "pending":
                    row.status = "done"
                    row.done_at = self.clock.now()
            fired += 1
        return fired
