"""The inbox of Slack requests: each event id (and each slash command, by its trigger id) is recorded
before Slack gets its 200, and handled once.

Bolt's middleware calls ``record`` while the HTTP request is still open: a retried delivery
(``X-Slack-Retry-Num``) or the same event on another replica finds the row and is answered 200
without running anything. ``process`` runs the handler registered for the event type and marks the
row done; the worker re-processes rows left ``received`` by a crash.

A slash command is marked ``processing`` when it starts; a crash after that does not replay it
(it may have half-happened), unless its area declared it *resumable* (``resumable``): idempotent
by construction, like a declaration, which is deduplicated by declarer and title.

A command its area declared *read-only* (``read_only``; resumable too) is recorded only when its
reply misses the ack (``commands._runner.CommandRunner.answer``): a reply that goes in the ack leaves
nothing to lose after it, and the same read run twice is harmless.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.context import without_nul
from bot.db.batch import GroupCommit
from bot.db.engine import Database
from bot.db.models import ProcessedEvent
from bot.db.store import insert_ignore_returning

log = logging.getLogger(__name__)

ROOM_TIMEOUT = 2.0  # seconds an ack may be held back when too many commands are pending

EventHandler = Callable[[dict[str, Any]], Awaitable[None]]


def command_key(trigger_id: str) -> str:
    return f"cmd:{trigger_id}"


def event_key(event: dict[str, Any]) -> str:
    """The type a handler is registered for: ``message`` events by subtype (``message/message_changed``)."""
    kind = str(event.get("type", ""))
    subtype = event.get("subtype")
    return f"{kind}/{subtype}" if kind == "message" and subtype else kind


async def _insert_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> list[bool]:
    """Record requests with one INSERT; False for one already recorded (a retry, the other replica's
    copy, or the same event twice in this batch)."""
    inserted = await insert_ignore_returning(
        session, ProcessedEvent, rows, conflict=["event_id"], returning="event_id"
    )
    results = []
    for row in rows:
        results.append(row["event_id"] in inserted)
        inserted.discard(row["event_id"])  # a second copy in the same batch was not inserted
    return results


# Built once (its cache key is memoized on it): the keys are an expanding IN parameter. On the table,
# not the ORM entity: nothing here is loaded in the session, and the ORM's bulk-update path (its
# session synchronisation) cost more than the statement.
_EVENTS = ProcessedEvent.__table__  # type: ignore[attr-defined]
_MARK = (
    sa.update(_EVENTS)
    .where(_EVENTS.c.event_id.in_(sa.bindparam("keys", expanding=True)))
    .values(status=sa.bindparam("new_status"), processed_at=sa.bindparam("at"))
)


class Inbox:
    def __init__(
        self, db: Database, *, stale_after: float = 30.0, max_pending: int = 200, max_handling: int = 16
    ) -> None:
        self.db = db
        # Events handled at once: more queue here (recorded already, so nothing is lost) instead of
        # interleaving hundreds of handlers that slow each other down under a burst.
        self._handling = asyncio.Semaphore(max_handling)
        # Requests recorded before their ack, and events marked done after their work, share
        # transactions under a burst (group commit: see bot.db.batch).
        self._inserts = GroupCommit(db, _insert_rows, urgent=True)
        self._marks = GroupCommit(db, self.mark_rows)
        self.stale_after = timedelta(seconds=stale_after)
        self.max_pending = max_pending
        self.room_timeout = ROOM_TIMEOUT
        self._handlers: dict[str, EventHandler] = {}
        self._resumable: list[Callable[[dict[str, Any]], bool]] = []
        self._read_only: list[Callable[[dict[str, Any]], bool]] = []
        self._running: set[str] = set()  # commands this process recorded and has not finished
        self._events_here: set[str] = set()  # events waiting for a handler slot or running here
        self._room: collections.deque[asyncio.Future[None]] = collections.deque()

    def register(self, key: str, handler: EventHandler) -> None:
        self._handlers[key] = handler

    def resumable(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        """Declare slash commands (by their stored body) safe to run again after a crash mid-way."""
        self._resumable.append(predicate)

    def read_only(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        """Declare slash commands (by their body) that only read: no side effect, nothing written but
        their audit row. They may run again after a crash (so they are resumable too), and are
        recorded only when their reply does not go in the ack."""
        self._read_only.append(predicate)
        self._resumable.append(predicate)

    def is_read_only(self, body: dict[str, Any]) -> bool:
        return any(predicate(body) for predicate in self._read_only)

    def is_resumable(self, body: dict[str, Any]) -> bool:
        """A slash command (``{"command": ..., "text": ...}``) that may run again after a crash."""
        return any(predicate(body) for predicate in self._resumable)

    def _may_resume(self, row: ProcessedEvent) -> bool:
        if row.status == "received":
            return True
        return row.event_type == "command" and self.is_resumable(row.payload)

    def handles(self, event: dict[str, Any]) -> bool:
        return event_key(event) in self._handlers

    async def record(self, body: dict[str, Any]) -> bool:
        """Store the event; False when this event id was seen before (a retry or a duplicate)."""
        event_id = str(body.get("event_id") or "")
        if not event_id:
            return True
        return await self._insert(event_id, event_key(body.get("event") or {}), body)

    async def record_command(self, body: dict[str, Any]) -> bool:
        """Store a slash command before it is acked (so a crash right after the ack loses nothing).

        False when this invocation (its trigger id) was recorded before.
        """
        trigger = str(body.get("trigger_id") or "")
        if not trigger:
            return True
        key = command_key(trigger)
        await self._wait_for_room()
        recorded = await self._insert(key, "command", body)
        if recorded:
            self._running.add(key)
        return recorded

    async def _wait_for_room(self) -> None:
        """Backpressure: with ``max_pending`` commands acked and not finished here, hold the next ack
        until one finishes (at most ``room_timeout``, well inside Slack's 3 s), so a burst cannot pile up
        unbounded work (and memory) behind fast acks."""
        if len(self._running) < self.max_pending:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._room.append(waiter)
        try:
            await asyncio.wait_for(waiter, self.room_timeout)
        except TimeoutError:
            log.warning("%d commands pending: acking one more without waiting", len(self._running))
        finally:
            with contextlib.suppress(ValueError):
                self._room.remove(waiter)

    def _finished(self, key: str) -> None:
        if key in self._running:
            self._running.discard(key)
            while self._room:
                waiter = self._room.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break

    async def _insert(self, key: str, kind: str, payload: dict[str, Any]) -> bool:
        # Slack is waiting for the ack behind this insert: it goes before queued background work.
        return await self._inserts.submit(
            {
                "event_id": key,
                "event_type": kind,
                "payload": without_nul(payload),
                "status": "received",
                "received_at": datetime.now(UTC),
            }
        )

    async def mark(self, key: str, status: str) -> None:
        """``processing`` when a command starts (a crash then replays it only if it is resumable),
        ``done`` when it ends (see ``mark_rows`` to do it in a transaction of the caller's). Marks made
        at the same time share one transaction; this returns once it committed."""
        await self._marks.submit((key, status))

    async def mark_rows(self, session: AsyncSession, marks: list[tuple[str, str]]) -> list[None]:
        """Set the status of requests (key, status) in ``session``: one UPDATE per status."""
        by_status: dict[str, list[str]] = collections.defaultdict(list)
        for key, status in marks:
            by_status[status].append(key)
            if status in ("done", "failed"):
                self._finished(key)
        now = datetime.now(UTC)
        for status, keys in by_status.items():
            await session.execute(_MARK, {"keys": keys, "new_status": status, "at": now})
        return [None] * len(marks)

    async def process(self, body: dict[str, Any]) -> None:
        if "command" in body and "event" not in body:
            replay = self._handlers.get("command")
            if replay is not None:
                await replay(body)
            return
        event = body.get("event") or {}
        handler = self._handlers.get(event_key(event))
        event_id = str(body.get("event_id") or "")
        if event_id and event_id in self._events_here:
            return  # already queued or running here (recover found it waiting for a handler slot)
        status = "done"
        if event_id:
            self._events_here.add(event_id)
        try:
            try:
                if handler is not None:
                    async with self._handling:
                        await handler(body)
            except Exception:
                status = "failed"
                log.exception("event %s (%s) failed", event_id, event_key(event))
            if event_id:  # events finishing together share one transaction
                await self._marks.submit((event_id, status))
        finally:
            self._events_here.discard(event_id)

    async def recover(self) -> int:
        """Process events a crashed process recorded but never finished, and resumable commands it
        started but never finished."""
        cutoff = datetime.now(UTC) - self.stale_after
        received = sa.and_(col(ProcessedEvent.status) == "received", col(ProcessedEvent.received_at) < cutoff)
        started = sa.and_(
            col(ProcessedEvent.status) == "processing",
            col(ProcessedEvent.event_type) == "command",
            col(ProcessedEvent.processed_at) < cutoff,
        )
        condition = sa.or_(received, started) if self._resumable else received
        async with self.db.session(read_only=True) as session:
            rows = list(
                (
                    await session.execute(
                        select(ProcessedEvent)
                        .where(condition)
                        .order_by(col(ProcessedEvent.received_at))
                        .limit(100)
                    )
                ).scalars()
            )
        resumed = 0
        for row in rows:
            if (
                row.event_id in self._running
                or row.event_id in self._events_here
                or not self._may_resume(row)
            ):
                continue  # still queued or running here (a burst's backlog), or not safe to repeat
            if row.status == "processing":
                log.warning("resuming command %s interrupted mid-way", row.event_id)
            await self.process(row.payload)
            resumed += 1
        return resumed
