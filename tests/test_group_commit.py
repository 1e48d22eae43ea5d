"""GroupCommit: writes queued together share a transaction; each caller gets its own result or error."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from bot.db.batch import GroupCommit
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
