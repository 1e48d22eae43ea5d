"""Reads of Slack messages coalesced per channel (``bot.message_reads``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.errors import ChatError
from bot.message_reads import MessageReads
from bot.ports import JSON


class SlowChat:
    """Answers ``get_messages`` after ``delay``, recording each call's timestamps."""

    def __init__(self, delay: float = 0.05, fail: bool = False) -> None:
        self.delay, self.fail = delay, fail
        self.calls: list[tuple[str, list[str]]] = []

    async def get_messages(self, *, channel: str, timestamps: Sequence[str]) -> dict[str, JSON]:
        self.calls.append((channel, list(timestamps)))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ChatError("conversations.history: ratelimited", retryable=True)
        return {ts: {"ts": ts, "text": f"{channel}/{ts}"} for ts in timestamps if not ts.startswith("9")}


async def test_a_lone_read_goes_at_once_and_reads_made_meanwhile_share_the_next_call() -> None:
    chat = SlowChat()
    reads = MessageReads(chat, readers=1)  # type: ignore[arg-type]
    first = asyncio.create_task(reads.get(channel="C1", ts="1.000001"))
    await asyncio.sleep(0.01)  # the first read is in flight
    rest = [asyncio.create_task(reads.get(channel="C1", ts=f"1.00000{i}")) for i in (2, 3, 4, 2)]
    other = asyncio.create_task(reads.get(channel="C2", ts="1.000009"))
    answers = await asyncio.gather(first, *rest, other)
    assert [a and a["text"] for a in answers] == [
        "C1/1.000001",
        "C1/1.000002",
        "C1/1.000003",
        "C1/1.000004",
        "C1/1.000002",  # the same message asked twice: one read, both answered
        "C2/1.000009",
    ]
    assert sorted(chat.calls) == [
        ("C1", ["1.000001"]),
        ("C1", ["1.000002", "1.000003", "1.000004"]),
        ("C2", ["1.000009"]),
    ]
    assert reads.calls == 3
    assert await reads.get(channel="C1", ts="9.000001") is None  # not found
    assert not reads._readers  # nothing left running


async def test_up_to_readers_reads_are_in_flight_per_channel_and_the_rest_wait_for_the_next() -> None:
    chat = SlowChat()
    reads = MessageReads(chat, readers=2)  # type: ignore[arg-type]
    first = []
    for i in (1, 2):
        first.append(asyncio.create_task(reads.get(channel="C1", ts=f"1.00000{i}")))
        await asyncio.sleep(0.01)  # in flight, on its own
    rest = [asyncio.create_task(reads.get(channel="C1", ts=f"1.00000{i}")) for i in (3, 4, 5)]
    assert all(await asyncio.gather(*first, *rest))
    assert chat.calls == [
        ("C1", ["1.000001"]),
        ("C1", ["1.000002"]),
        ("C1", ["1.000003", "1.000004", "1.000005"]),
    ]
    assert not reads._readers


async def test_a_failed_read_fails_every_read_in_its_batch_and_the_next_batch_still_runs() -> None:
    chat = SlowChat(fail=True)
    reads = MessageReads(chat, readers=1)  # type: ignore[arg-type]
    first = asyncio.create_task(reads.get(channel="C1", ts="1.000001"))
    await asyncio.sleep(0.01)
    batch = [asyncio.create_task(reads.get(channel="C1", ts=f"1.00000{i}")) for i in (2, 3)]
    results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert all(isinstance(r, ChatError) for r in results)
    chat.fail = False
    assert await reads.get(channel="C1", ts="1.000005") == {"ts": "1.000005", "text": "C1/1.000005"}


async def test_cancelling_the_reader_cancels_the_reads_waiting_on_it() -> None:
    chat = SlowChat(delay=10)
    reads = MessageReads(chat, readers=1)  # type: ignore[arg-type]
    waiting = asyncio.create_task(reads.get(channel="C1", ts="1.000001"))
    await asyncio.sleep(0.01)
    later = asyncio.create_task(reads.get(channel="C1", ts="1.000002"))
    await asyncio.sleep(0.01)
    (reader,) = reads._readers["C1"]
    reader.cancel()
    for task in (waiting, later):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not reads._readers and not reads._pending
