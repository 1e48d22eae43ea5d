"""GroupCommit: writes queued together share a transaction; each caller gets its own result or error."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from bot.db.batch import GroupCommit, SharedRead
from bot.db.engine import Database
from bot.db.models import ProcessedEvent
from bot.db.store import insert_ignore
from bot.errors import Unavailable


async def _write(session: AsyncSession, keys: list[str]) -> list[bool]:
    results = []
    for key in keys:
        if key == "poison":
            raise ValueError("a write that can never succeed")
        row = {
            "event_id": key,
            "event_type": "t",
            "payload": {},
            "status": "received",
            "received_at": datetime.now(UTC),
        }
        results.append(await insert_ignore(session, ProcessedEvent, row, conflict=["event_id"]))
    return results


async def _stored(db: Database) -> set[str]:
    async with db.session(read_only=True) as session:
        return {r.event_id for r in (await session.execute(select(ProcessedEvent))).scalars()}


async def test_writes_queued_together_share_transactions_and_get_their_own_results(db: Database) -> None:
    commit = GroupCommit(db, _write)
    keys = [f"k{n}" for n in range(30)] + ["k3"]  # the same key twice: recorded once
    results = await asyncio.gather(*(commit.submit(k) for k in keys))
    assert results == [True] * 30 + [False]
    assert await _stored(db) == {f"k{n}" for n in range(30)}
    assert 1 <= commit.flushes < 5  # the first alone, the rest together
    assert await commit.submit("later") is True  # a lone write goes out at once


async def test_one_bad_write_fails_alone(db: Database) -> None:
    commit = GroupCommit(db, _write)
    outcomes = await asyncio.gather(
        *(commit.submit(k) for k in ("a", "b", "poison", "c")), return_exceptions=True
    )
    assert outcomes[:2] == [True, True] and outcomes[3] is True
    assert isinstance(outcomes[2], ValueError)
    assert await _stored(db) == {"a", "b", "c"}


async def test_an_unavailable_database_fails_the_waiting_writes_and_the_next_ones_go_through(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = GroupCommit(db, _write)
    real = db.session
    down = [True]

    def session(**kwargs: Any) -> Any:
        if down:
            down.clear()
            raise Unavailable("the database is unreachable")
        return real(**kwargs)

    monkeypatch.setattr(db, "session", session)
    outcomes = await asyncio.gather(*(commit.submit(k) for k in ("a", "b")), return_exceptions=True)
    assert all(isinstance(o, Unavailable) for o in outcomes)
    assert await commit.submit("c") is True
    assert await _stored(db) == {"c"}


async def test_a_cancelled_caller_does_not_break_the_batch(db: Database) -> None:
    commit = GroupCommit(db, _write)
    first = asyncio.create_task(commit.submit("a"))
    second = asyncio.create_task(commit.submit("b"))
    await asyncio.sleep(0)
    second.cancel()
    assert await first is True
    with pytest.raises(asyncio.CancelledError):
        await second
    assert "a" in await _stored(db)


async def test_posted_writes_go_out_without_waiting_and_their_flushes_start_as_asked(db: Database) -> None:
    """``post`` queues a write and returns its future at once; the flush task is started by the
    ``start`` given (``Services.spawn`` in the app, so that shutdown waits for it)."""
    started: list[asyncio.Task[None]] = []

    def start(flush: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(flush)
        started.append(task)
        return task

    commit = GroupCommit(db, _write, start=start)
    futures = [commit.post(k) for k in ("a", "b", "a")]
    assert not any(f.done() for f in futures) and len(started) == 1  # one flush for the three
    await asyncio.wait(started)
    assert [f.result() for f in futures] == [True, True, False]
    assert await _stored(db) == {"a", "b"}
    poisoned = commit.post("poison")
    await asyncio.wait(started[1:])
    assert isinstance(poisoned.exception(), ValueError)


# --- SharedRead: concurrent callers of one query share its execution ---------------------------------


async def _keys(session: AsyncSession) -> tuple[str, ...]:
    rows = await session.execute(select(ProcessedEvent.event_id).order_by(ProcessedEvent.event_id))
    return tuple(rows.scalars())


async def test_callers_at_the_same_moment_share_one_read(db: Database) -> None:
    await GroupCommit(db, _write).submit("a")
    shared = SharedRead(db, _keys)
    results = await asyncio.gather(*(shared.get() for _ in range(20)))
    assert results == [("a",)] * 20
    assert shared.executions == 1
    assert await shared.get() == ("a",)  # a later caller: a read of its own
    assert shared.executions == 2


async def test_a_caller_never_joins_a_read_whose_statement_may_be_sent_already(db: Database) -> None:
    """A caller that asks after a write committed sees it, even while an earlier read is running."""
    started, gate = asyncio.Event(), asyncio.Event()

    async def slow_keys(session: AsyncSession) -> tuple[str, ...]:
        started.set()
        await gate.wait()
        return await _keys(session)

    shared = SharedRead(db, slow_keys)
    earlier = asyncio.create_task(shared.get())
    await started.wait()  # the earlier read has its connection and is under way
    await GroupCommit(db, _write).submit("written")
    later = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    gate.set()
    assert await later == ("written",)
    await earlier
    assert shared.executions == 2


async def test_a_failed_read_fails_its_callers_only(db: Database) -> None:
    failures = [ValueError("the query failed")]

    async def flaky(session: AsyncSession) -> tuple[str, ...]:
        if failures:
            raise failures.pop()
        return await _keys(session)

    shared = SharedRead(db, flaky)
    outcomes = await asyncio.gather(shared.get(), shared.get(), return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert await shared.get() == ()


async def test_a_cancelled_caller_does_not_cancel_the_shared_read(db: Database) -> None:
    shared = SharedRead(db, _keys)
    first = asyncio.create_task(shared.get())
    second = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    first.cancel()
    assert await second == ()
    with pytest.raises(asyncio.CancelledError):
        await first
