"""Cross-replica wake-ups on PostgreSQL: ``LISTEN``/``NOTIFY`` on one connection of their own.

A replica that records outbox items kicks its own worker at once; without this, the other replicas
only see those items at their next pass (``CMDCENTER_WORKER_INTERVAL``). With it, a kick is also sent
as a notification, and every other replica's worker wakes. It only hastens delivery: correctness
never depends on it (the worker's passes and the row leases do that), so a lost connection costs
latency, not items, and it reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "cmdcenter_outbox"
APPLICATION_NAME = "cmdcenter-wakeups"  # how the listening connections show in pg_stat_activity


def asyncpg_dsn(url: str) -> str:
    """The ``postgresql://`` DSN asyncpg takes, from the SQLAlchemy URL the settings hold."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Wakeups:
    """Sends this replica's kicks to the others and turns theirs into ``on_wake()`` calls.

    ``notify()`` is synchronous and cheap: kicks that come while a notification is being sent are
    folded into one more notification after it, so a burst of kicks costs at most two round trips.
    A replica ignores its own notifications (the payload names the sender).
    """

    def __init__(
        self,
        url: str,
        *,
        owner: str,
        on_wake: Callable[[], None],
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 30.0,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.owner = owner
        self.on_wake = on_wake
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.connected = asyncio.Event()  # set while listening (tests wait on it)
        self.received = 0  # notifications from other replicas
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._sending: asyncio.Task[None] | None = None
        self._again = False
        self._busy = asyncio.Lock()  # one operation at a time on the connection

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="cmdcenter-wakeups")

    async def stop(self) -> None:
        for task in (self._task, self._sending):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._close()

    def notify(self) -> None:
        """Wake the other replicas' workers (best effort; never raises, never blocks)."""
        if self._conn is None:
            return
        if self._sending is not None and not self._sending.done():
            self._again = True
            return
        self._sending = asyncio.create_task(self._send(), name="cmdcenter-wakeups-send")

    async def _send(self) -> None:
        while True:
            self._again = False
            conn = self._conn
            if conn is None:
                return
            try:
                async with self._busy:
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, self.owner, timeout=5.0)
            except Exception as exc:  # the listener notices the lost connection and reconnects
                log.debug("wakeups: notify failed: %s", exc)
                return
            if not self._again:
                return

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload != self.owner:
            self.received += 1
            self.on_wake()

    async def _listen(self) -> None:
        delay = self.reconnect_delay
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=5.0, server_settings={"application_name": APPLICATION_NAME}
                )
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._heard)
            except Exception as exc:  # unreachable, refused, bad credentials...: keep trying, quietly
                log.warning("wakeups: cannot listen on PostgreSQL (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_reconnect_delay)
                continue
            self._conn, delay = conn, self.reconnect_delay
            self.connected.set()
            # Items recorded while this replica was not listening: look now rather than at the next pass.
            self.on_wake()
            try:
                await self._watch(conn, lost)
            finally:
                self.connected.clear()
                await self._close()
            log.warning("wakeups: lost the PostgreSQL connection; reconnecting")

    async def _watch(self, conn: Any, lost: asyncio.Event) -> None:
        """Returns when the connection is gone. asyncpg reports a server-side close only once it
        reads from the socket, so an idle connection is probed every few seconds."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=5.0)
                return
            try:
                async with self._busy:
                    await conn.execute("SELECT 1", timeout=5.0)
            except Exception:
                return

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2.0)
