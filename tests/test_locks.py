"""KeyedLocks: holders of one key run one at a time in arrival order; other keys do not wait."""

from __future__ import annotations

import asyncio

import pytest

from bot.locks import KeyedLocks


async def test_one_key_runs_in_arrival_order_and_other_keys_do_not_wait() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def work(key: str, name: str, *, wait: bool = False) -> None:
        async with locks.hold(key):
            order.append(f"{name} start")
            if wait:
                await release.wait()
            order.append(f"{name} end")

    first = asyncio.create_task(work("m1", "capture", wait=True))
    await asyncio.sleep(0)
    second = asyncio.create_task(work("m1", "removal"))
    other = asyncio.create_task(work("m2", "other"))
    await other
    assert order == ["capture start", "other start", "other end"]
    release.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["capture end", "removal start", "removal end"]
    assert len(locks) == 0  # nothing kept once nobody holds or waits


async def test_a_failing_holder_releases_the_key() -> None:
    locks = KeyedLocks()

    async def fail() -> None:
        async with locks.hold("k"):
            raise RuntimeError("boom")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await fail()
    async with locks.hold("k"):
        assert len(locks) == 1
    assert len(locks) == 0
