"""The background worker: outbox deliveries, due jobs, and inbox recovery, one pass at a time.

A pass runs every ``interval`` seconds, at once after a kick (``Outbox.kick``: a unit of work that
recorded a side effect committed), and again at once after a pass that delivered something. On
PostgreSQL a kick also reaches the other replicas' workers (``bot.db.wakeups``: ``NOTIFY`` on the
kick, ``LISTEN`` on a connection of its own); that only hastens delivery, the passes and the
leases are what guarantee it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from bot.db.engine import Database
from bot.errors import Unavailable
from bot.inbox import Inbox
from bot.jobs import Jobs
from bot.outbox import Outbox

if TYPE_CHECKING:
    from bot.db.wakeups import Wakeups

log = logging.getLogger(__name__)


class Worker:
    """Started by the web app's lifespan (or Socket Mode's main), stopped at shutdown."""

    def __init__(self, *, outbox: Outbox, jobs: Jobs, inbox: Inbox, db: Database, interval: float) -> None:
        self.outbox = outbox
        self.jobs = jobs
        self.inbox = inbox
        self.db = db
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.passes = 0  # completed passes (tests wait on it)
        self._recovered_at = float("-inf")
        self.wakeups: Wakeups | None = None

    async def tick(self) -> int:
        """One pass; returns how many outbox items it attempted."""
        attempted = await self.outbox.deliver_due()
        await self.jobs.run_due()
        now = time.monotonic()
        if now - self._recovered_at >= 1.0:  # it looks for rows seconds old: not on every busy pass
            self._recovered_at = now
            await self.inbox.recover()
        return attempted

    async def _run(self) -> None:
        while not self._stopping.is_set():
            busy = False
            try:
                # A pass that delivered something looks again at once: items recorded meanwhile (by
                # another replica, whose notification came while this pass ran) may have waited
                # behind the run this pass held.
                busy = await self.tick() > 0
                self.passes += 1
            except Unavailable:
                log.warning("worker: database unavailable; retrying")
            except Exception:
                log.exception("worker tick failed")
            wakeup = self.outbox.wakeup
            if busy:
                wakeup.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=self.interval)
            wakeup.clear()

    def start(self) -> None:
        if not self.db.is_sqlite:  # replicas: kicks reach the other replicas' workers (LISTEN/NOTIFY)
            from bot.db.wakeups import Wakeups  # asyncpg: not imported by a SQLite deployment

            self.wakeups = Wakeups(self.db.url, owner=self.outbox.owner, on_wake=self.outbox.wakeup.set)
            self.outbox.broadcast = self.wakeups.notify
            self.wakeups.start()
        self._task = asyncio.create_task(self._run(), name="cmdcenter-worker")

    async def stop(self) -> None:
        self._stopping.set()
        self.outbox.wakeup.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=10)
        if self.wakeups is not None:
            self.outbox.broadcast = None
            await self.wakeups.stop()
