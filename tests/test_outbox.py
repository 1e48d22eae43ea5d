"""The outbox on its own: ordering per key, retry policy, Retry-After, permanent failures, idempotent keys."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.db.engine import Database
from bot.db.migrate import upgrade_async
from bot.db.models import OutboxItem
from bot.errors import ChatError
from bot.outbox import Outbox, RetryPolicy, enqueue
from bot.telemetry import Telemetry
from tests.harness import drop_test_databases, test_database_url


@pytest.fixture
async def outbox(tmp_path: Path) -> Any:
    url = await asyncio.to_thread(test_database_url, tmp_path)
    await upgrade_async(url)
    db = Database(url)
    box = Outbox(db, Telemetry(), policy=RetryPolicy(base=10.0, lease=30.0))
    yield box
    await db.dispose()
    await asyncio.to_thread(drop_test_databases)


async def _items(box: Outbox) -> dict[str, OutboxItem]:
    from sqlmodel import select

    async with box.db.session() as session:
        return {i.key: i for i in (await session.execute(select(OutboxItem))).scalars()}


async def _add(box: Outbox, key: str, *, ordering: str | None = "C1") -> bool:
    async with box.db.session() as session:
        return await enqueue(
            session, key=key, op="test", target="slack", payload={"key": key}, ordering_key=ordering
        )


async def test_same_key_is_recorded_once(outbox: Outbox) -> None:
    assert await _add(outbox, "a") is True
    assert await _add(outbox, "a") is False
    assert list(await _items(outbox)) == ["a"]


async def test_order_is_kept_per_channel_and_a_failure_holds_the_channel(outbox: Outbox) -> None:
    delivered: list[str] = []
    failing = {"a"}

    async def handler(item: OutboxItem) -> None:
        if item.payload["key"] in failing:
            raise ChatError("chat.postMessage: ratelimited", retryable=True, retry_after=30)
        delivered.append(item.payload["key"])

    outbox.register("test", handler)
    for key in ("a", "b"):
        await _add(outbox, key)
    await _add(outbox, "other", ordering="C2")
    await outbox.deliver_due()
    assert delivered == ["other"]  # "b" waits behind "a" in C1
    items = await _items(outbox)
    assert items["a"].attempts == 1 and items["a"].status == "pending"
    wait = (items["a"].next_attempt_at - datetime.now(UTC)).total_seconds()
    assert wait > 25  # Retry-After: 30 honoured over the 10 s backoff's jitter
    assert "ratelimited" in items["a"].last_error
    failing.clear()
    async with outbox.db.session() as session:
        row = await session.get(OutboxItem, items["a"].id)
        assert row is not None
        row.next_attempt_at = datetime.now(UTC)
    await outbox.deliver_due()
    await outbox.deliver_due()
    assert delivered == ["other", "a", "b"]


async def test_permanent_error_fails_at_once_and_notifies_once(outbox: Outbox) -> None:
    notified: list[str] = []

    async def handler(item: OutboxItem) -> None:
        raise ChatError("chat.postMessage: channel_not_found", retryable=False)

    async def notify(item: OutboxItem) -> None:
        notified.append(item.last_error)

    outbox.register("test", handler, on_failure=notify)
    await _add(outbox, "x")
    await outbox.deliver_due()
    await outbox.deliver_due()
    item = (await _items(outbox))["x"]
    assert (item.status, item.attempts, item.failure_notified) == ("failed", 1, True)
    assert notified == ["chat.postMessage: channel_not_found"]
    assert await outbox.retry(item.id or 0) is True
    assert (await _items(outbox))["x"].status == "pending"


async def test_gauges_and_counters(outbox: Outbox) -> None:
    async def handler(item: OutboxItem) -> None:
        return None

    outbox.register("test", handler)
    await _add(outbox, "m")
    await outbox.deliver_due()
    text = outbox.telemetry.render().decode()
    assert 'cmdcenter_outbox_deliveries_total{result="delivered",target="slack"} 1.0' in text
    assert "cmdcenter_outbox_pending 0.0" in text


async def test_a_channel_backlog_goes_out_in_one_pass_in_order(outbox: Outbox) -> None:
    """A burst into one channel (a timeline thread) is not throttled to one post per worker pass;
    a failure in the middle stops the run there and releases the rest for after the retry."""
    delivered: list[str] = []
    failing = {"k05"}

    async def handler(item: OutboxItem) -> None:
        if item.payload["key"] in failing:
            raise ChatError("chat.postMessage: internal_error", retryable=True)
        delivered.append(item.payload["key"])

    outbox.register("test", handler)
    keys = [f"k{n:02d}" for n in range(10)]
    for key in keys:
        await _add(outbox, key)
    assert await outbox.deliver_due() == 6  # k00..k04 delivered, k05 attempted and failed
    assert delivered == keys[:5]
    items = await _items(outbox)
    assert items["k05"].attempts == 1
    assert all(items[k].lease_owner is None and items[k].status == "pending" for k in keys[5:])
    failing.clear()
    async with outbox.db.session() as session:
        row = await session.get(OutboxItem, items["k05"].id)
        assert row is not None
        row.next_attempt_at = datetime.now(UTC)
    assert await outbox.deliver_due() == 5
    assert delivered == keys


async def test_a_batch_handler_takes_consecutive_items_of_its_op_in_one_call(outbox: Outbox) -> None:
    calls: list[list[str]] = []

    async def one(item: OutboxItem) -> None:
        calls.append([item.payload["key"]])

    async def many(items: list[OutboxItem]) -> dict[str, Any]:
        calls.append([item.payload["key"] for item in items])
        return {"combined": len(items)}

    outbox.register("test", one)
    outbox.register("other", one)
    outbox.register_batch("test", many, size=3)
    for key in ("a", "b", "c", "d"):
        await _add(outbox, key)
    async with outbox.db.session() as session:  # an item of another op cuts the batch
        await enqueue(session, key="x", op="other", target="slack", payload={"key": "x"}, ordering_key="C1")
    await _add(outbox, "e")
    await _add(outbox, "lone", ordering="C2")
    assert await outbox.deliver_due() == 7
    assert sorted(calls) == sorted([["a", "b", "c"], ["d"], ["x"], ["e"], ["lone"]])
    assert [c for c in calls if c != ["lone"]] == [["a", "b", "c"], ["d"], ["x"], ["e"]]  # order kept
    items = await _items(outbox)
    assert all(i.status == "done" and i.lease_owner is None for i in items.values())
    assert items["b"].result == {"combined": 3} and items["a"].delivered_at is not None


async def test_a_failed_batch_costs_its_first_item_an_attempt_and_the_rest_wait(outbox: Outbox) -> None:
    calls: list[list[str]] = []
    fail = [True]

    async def one(item: OutboxItem) -> None:
        calls.append([item.payload["key"]])

    async def many(items: list[OutboxItem]) -> None:
        calls.append([item.payload["key"] for item in items])
        if fail[0]:
            raise ChatError("chat.postMessage: ratelimited", retryable=True, retry_after=30)

    outbox.register("test", one)
    outbox.register_batch("test", many, size=10)
    for key in ("a", "b", "c"):
        await _add(outbox, key)
    assert await outbox.deliver_due() == 1
    items = await _items(outbox)
    assert (items["a"].attempts, items["b"].attempts, items["c"].attempts) == (1, 0, 0)
    assert all(i.status == "pending" and i.lease_owner is None for i in items.values())
    assert await outbox.deliver_due() == 0  # the channel waits for "a"'s retry
    fail[0] = False
    async with outbox.db.session() as session:
        row = await session.get(OutboxItem, items["a"].id)
        assert row is not None
        row.next_attempt_at = datetime.now(UTC)
    assert await outbox.deliver_due() == 3
    assert calls == [["a", "b", "c"], ["a", "b", "c"]]
    assert all(i.status == "done" for i in (await _items(outbox)).values())


def test_a_batch_needs_a_single_item_handler_and_room_for_two(outbox: Outbox) -> None:
    async def many(items: list[OutboxItem]) -> None:
        return None

    with pytest.raises(ValueError, match="first"):
        outbox.register_batch("test", many, size=5)

    async def one(item: OutboxItem) -> None:
        return None

    outbox.register("test", one)
    with pytest.raises(ValueError, match="two"):
        outbox.register_batch("test", many, size=1)


async def test_an_item_held_elsewhere_stops_its_run_and_the_rest_is_not_held(outbox: Outbox) -> None:
    """Claims are one UPDATE for every ready item; a run stops at an item another replica holds,
    and the items after it, claimed in the same statement, are given back at once."""
    delivered: list[str] = []

    async def handler(item: OutboxItem) -> None:
        delivered.append(item.payload["key"])

    outbox.register("test", handler)
    for key in ("a", "b", "c"):
        await _add(outbox, key)
    await _add(outbox, "other", ordering="C2")
    items = await _items(outbox)
    async with outbox.db.session() as session:  # another replica is delivering "b"
        row = await session.get(OutboxItem, items["b"].id)
        assert row is not None
        row.lease_owner, row.lease_until = "replica-other", datetime.now(UTC) + timedelta(seconds=30)
    assert await outbox.deliver_due() == 2
    assert sorted(delivered) == ["a", "other"]
    after = await _items(outbox)
    assert after["c"].status == "pending" and after["c"].lease_owner is None
    assert after["b"].lease_owner == "replica-other"
