"""The background worker: a pass that delivered something is followed by another at once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bot.worker import Worker


async def test_a_busy_pass_is_followed_at_once_and_an_idle_one_waits() -> None:
    """Another replica's items may have queued behind the run this pass held; that replica's kick
    does not reach this process, so the worker looks again instead of sleeping its interval."""
    attempted = [3, 1, 0]
    calls: list[int] = []

    async def deliver_due() -> int:
        calls.append(len(calls))
        return attempted.pop(0) if attempted else 0

    async def nothing() -> Any:
        return 0

    outbox = SimpleNamespace(deliver_due=deliver_due, wakeup=asyncio.Event())
    outbox.kick = outbox.wakeup.set
    parts: Any = dict(
        db=SimpleNamespace(is_sqlite=True),  # no cross-replica wake-ups
        outbox=outbox,
        jobs=SimpleNamespace(run_due=nothing),
        inbox=SimpleNamespace(recover=nothing),
    )
    worker = Worker(**parts, interval=30.0)
    worker.start()
    try:
        for _ in range(200):
            if worker.passes >= 3:
                break
            await asyncio.sleep(0.01)
        assert worker.passes == 3  # two busy passes, each followed at once; then the idle one waits
        await asyncio.sleep(0.2)
        assert worker.passes == 3
    finally:
        await worker.stop()
