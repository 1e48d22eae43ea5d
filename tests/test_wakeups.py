"""Cross-replica wake-ups (``bot.db.wakeups``): a kick on one replica wakes the other replicas'
workers through PostgreSQL LISTEN/NOTIFY. Runs in the PostgreSQL pass (``CMDCENTER_TEST_DB=postgres``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from bot.db.engine import Database
from bot.db.wakeups import APPLICATION_NAME, Wakeups, asyncpg_dsn
from bot.worker import Worker
from tests.harness import eventually


@pytest.fixture
def pg(db: Database) -> Database:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's LISTEN/NOTIFY: runs in the PostgreSQL pass (CMDCENTER_TEST_DB=postgres)")
    return db


class Replica:
    def __init__(self, db: Database, owner: str) -> None:
        self.woken = 0
        self.wakeups = Wakeups(db.url, owner=owner, on_wake=self._wake, reconnect_delay=0.05)

    def _wake(self) -> None:
        self.woken += 1


@pytest.fixture
async def two(pg: Database) -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = Replica(pg, "replica-a"), Replica(pg, "replica-b")
    for r in (a, b):
        r.wakeups.start()
    await asyncio.wait_for(asyncio.gather(a.wakeups.connected.wait(), b.wakeups.connected.wait()), 5)
    yield a, b
    for r in (a, b):
        await r.wakeups.stop()


async def test_a_kick_wakes_the_other_replica_and_not_the_sender(two: tuple[Replica, Replica]) -> None:
    a, b = two
    a_before, b_before = a.woken, b.woken
    a.wakeups.notify()
    await eventually(lambda: b.woken == b_before + 1)
    await asyncio.sleep(0.1)
    assert a.woken == a_before  # its own notification comes back to it and is ignored
    assert (a.wakeups.received, b.wakeups.received) == (0, 1)


async def test_a_burst_of_kicks_folds_into_two_notifications_at_most(two: tuple[Replica, Replica]) -> None:
    a, b = two
    for _ in range(100):
        a.wakeups.notify()
    await eventually(lambda: b.wakeups.received >= 1)
    await asyncio.sleep(0.2)
    assert 1 <= b.wakeups.received <= 2


async def test_the_listener_reconnects_after_losing_its_connection(two: tuple[Replica, Replica]) -> None:
    a, b = two
    conn = await asyncpg.connect(asyncpg_dsn(b.wakeups.dsn))
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = $1",
            APPLICATION_NAME,
        )
    finally:
        await conn.close()
    assert killed == 2  # both listeners
    woken = b.woken
    await eventually(lambda: b.woken > woken)  # reconnected, it looks for what it may have missed
    await asyncio.wait_for(a.wakeups.connected.wait(), 5)
    received = b.wakeups.received
    a.wakeups.notify()
    await eventually(lambda: b.wakeups.received == received + 1)


async def test_an_unreachable_database_is_retried_without_raising() -> None:
    r = Replica(Database("postgresql+asyncpg://postgres@127.0.0.1:9/none"), "replica-x")
    r.wakeups.notify()  # not connected: nothing happens
    r.wakeups.start()
    await asyncio.sleep(0.3)
    assert not r.wakeups.connected.is_set()
    await r.wakeups.stop()


async def test_a_workers_kick_wakes_the_other_replicas_worker(pg: Database) -> None:
    """Two workers with a 30 s interval: a kick on one starts a pass on the other at once."""

    def services(owner: str) -> Any:
        async def deliver_due() -> int:
            return 0

        async def nothing() -> Any:
            return None

        outbox = SimpleNamespace(deliver_due=deliver_due, wakeup=asyncio.Event(), owner=owner, broadcast=None)
        outbox.kick = lambda: (outbox.wakeup.set(), outbox.broadcast and outbox.broadcast())
        return Worker(
            db=pg,
            outbox=outbox,
            jobs=SimpleNamespace(run_due=nothing),
            inbox=SimpleNamespace(recover=nothing),
            interval=30.0,
        )

    workers = [services("w-a"), services("w-b")]
    for w in workers:
        w.start()
    try:
        for w in workers:
            assert w.wakeups is not None
            await asyncio.wait_for(w.wakeups.connected.wait(), 5)
        a, b = workers
        await eventually(lambda: a.passes >= 1 and b.passes >= 1)
        await asyncio.sleep(0.1)
        passes = b.passes
        a.outbox.kick()
        await eventually(lambda: b.passes > passes, timeout=3.0)
    finally:
        for w in workers:
            await w.stop()
    assert a.outbox.broadcast is None  # stop() detaches it
