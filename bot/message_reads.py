"""Reads of Slack messages, coalesced per channel.

Every timeline capture reads the reacted message (the ``reaction_added`` event carries only its
channel and ts). One ``conversations.history`` call per reaction costs a round trip each, and Slack
allows only about 50 such calls a minute. ``MessageReads.get`` therefore reads at once while fewer
than ``readers`` reads are in flight in that channel; the messages asked for meanwhile are read
together by the next one (``Chat.get_messages``: one ``conversations.history`` over their range). A
lone read never waits for a timer; under a burst, and when Slack slows down, batches grow by
themselves.
"""

from __future__ import annotations

import asyncio

from bot.ports import JSON, Chat

_Batch = dict[str, list[asyncio.Future[JSON | None]]]  # ts -> the reads waiting for it


class MessageReads:
    """``readers``: reads in flight at once per channel. One would cap a channel's captures at a
    batch per round trip, and under load a round trip includes the time the busy event loop takes
    to get to the answer."""

    def __init__(self, chat: Chat, *, readers: int = 4) -> None:
        self.chat = chat
        self.readers = readers
        self._pending: dict[str, _Batch] = {}
        self._readers: dict[str, set[asyncio.Task[None]]] = {}
        self.calls = 0  # Chat.get_messages calls made (tests, benchmarks)

    async def get(self, *, channel: str, ts: str) -> JSON | None:
        """The message at (channel, ts), a thread reply included; None if it does not exist."""
        future: asyncio.Future[JSON | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(channel, {}).setdefault(ts, []).append(future)
        running = self._readers.setdefault(channel, set())
        if len(running) < self.readers:
            running.add(asyncio.create_task(self._read(channel), name=f"message-reads-{channel}"))
        return await future

    async def _read(self, channel: str) -> None:
        try:
            while batch := self._pending.pop(channel, None):
                try:
                    self.calls += 1
                    found = await self.chat.get_messages(channel=channel, timestamps=sorted(batch))
                except Exception as exc:  # each waiting capture gets the error (the inbox retries it)
                    _answer(batch, error=exc)
                    continue
                except BaseException:  # cancelled (shutting down)
                    _answer(batch, error=None)
                    raise
                _answer(batch, found=found)
        finally:
            running = self._readers[channel]
            running.discard(asyncio.current_task())
            if not running:
                del self._readers[channel]
                _answer(self._pending.pop(channel, {}), error=None)  # left only when cancelled


def _answer(batch: _Batch, *, found: dict[str, JSON] | None = None, error: Exception | None = None) -> None:
    """Each waiter gets its message (``found``), the read's ``error``, or (neither) is cancelled."""
    for ts, futures in batch.items():
        for future in futures:
            if future.done():
                continue
            if found is not None:
                future.set_result(found.get(ts))
            elif error is not None:
                future.set_exception(error)
            else:
                future.cancel()
