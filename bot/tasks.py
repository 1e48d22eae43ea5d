"""Work started beside the request that caused it (a command after its ack, a deploy, an audit flush),
kept referenced until it ends and waited for at shutdown.

    tasks = Background()
    tasks.spawn(run_rollback(...), what="rollback RB-7")
    ...
    await tasks.drain(timeout=10)   # SIGTERM: finish what runs, then cancel the rest

A failure is logged with ``what``; nothing is swallowed silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self.running: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], *, what: str) -> asyncio.Task[None]:
        """Run ``coro`` beside the worker loop, kept referenced until it ends; a failure is logged."""
        task = asyncio.create_task(coro)
        self.running.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self.running.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("%s failed", what, exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    async def drain(self, timeout: float) -> int:
        """Shutting down: wait up to ``timeout`` seconds for the work ``spawn`` started (commands
        still running after their ack, reads' audit rows), including what it starts meanwhile; then
        cancel what is left, which stays as a crash would leave it (``Inbox``). Returns how many
        were cancelled."""
        deadline = time.monotonic() + timeout
        while self.running and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self.running), timeout=left)
        running = set(self.running)
        if running:
            log.warning(
                "shutting down: %d unfinished task(s) (commands after their ack, audit rows) "
                "cancelled after %g s",
                len(running),
                timeout,
            )
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=1.0)
        return len(running)
