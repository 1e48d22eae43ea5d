"""Scheduled jobs fire once, whichever replica (or how many) runs them; recurring jobs are recorded once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot import jobs
from bot.clock import FakeClock
from bot.db.engine import Database
from bot.db.models import ScheduledJob


async def test_a_due_job_fires_once_across_replicas(db: Database) -> None:
    clock = FakeClock()
    fired: list[str] = []

    async def handler(job: ScheduledJob) -> None:
        fired.append(job.key)
        await asyncio.sleep(0.05)

    replicas = [jobs.Jobs(db, clock, owner=f"r{n}") for n in range(3)]
    for replica in replicas:
        replica.register("remind", handler)
    async with db.session() as session:
        await jobs.schedule(
            session, key="k1", kind="remind", due_at=clock.now() + timedelta(minutes=5), payload={}
        )
        assert not await jobs.schedule(session, key="k1", kind="remind", due_at=clock.now(), payload={})
    assert sum(await asyncio.gather(*(r.run_due() for r in replicas))) == 0  # not due yet
    clock.advance(timedelta(minutes=5))
    results = await asyncio.gather(*(r.run_due() for r in replicas))
    assert sum(results) == 1 and fired == ["k1"]
    assert sum(await asyncio.gather(*(r.run_due() for r in replicas))) == 0


async def test_recurring_occurrences_are_recorded_once(db: Database) -> None:
    clock = FakeClock()
    replicas = [jobs.Jobs(db, clock, owner=f"r{n}") for n in range(2)]
    for replica in replicas:
        replica.recurring("report", lambda now: now.replace(hour=0, minute=0, second=0) + timedelta(days=1))
    await asyncio.gather(*(r.run_due() for r in replicas))
    async with db.session() as session:
        from sqlmodel import select

        rows = list((await session.execute(select(ScheduledJob))).scalars())
    assert [r.kind for r in rows] == ["report"]
