"""Work that arrives together shares one trip to the database: writes (``GroupCommit``) and reads
(``SharedRead``).

Under a burst, every Slack request records a row before its ack and marks it done after its work;
one transaction each means one writer-lock turn, one ``BEGIN``/``COMMIT`` and several thread hops
(aiosqlite) each. ``GroupCommit.submit`` queues a write and waits for it; the writes queued while a
flush waits for the database (its turn at SQLite's writer lock, a pooled PostgreSQL connection) go
out together in the next transaction. A lone write goes out at once, so nothing waits for a timer.

A caller's ``submit`` returns only after the transaction holding its write committed, and raises
what that transaction raised (``Unavailable`` when the database is unreachable): the guarantees of
one transaction per write, at a fraction of the cost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.engine import Database
from bot.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[AsyncSession, list[T]], Awaitable[list[R]]]
Start = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class GroupCommit(Generic[T, R]):
    """``write(session, items)`` stores a batch in the caller's transaction and returns one result per
    item, in order. ``urgent``: the flush takes SQLite's urgent lane (a Slack request before its ack).
    ``start``: how a flush's task is started (``Deps.tasks.spawn``, so that shutdown waits for it)."""

    def __init__(
        self, db: Database, write: Write[T, R], *, urgent: bool = False, start: Start | None = None
    ) -> None:
        self.db = db
        self.write = write
        self.urgent = urgent
        self._start: Start = start or asyncio.create_task
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flush: asyncio.Task[None] | None = None
        self.flushes = 0  # transactions committed (tests, benchmarks)

    async def submit(self, item: T) -> R:
        return await self.post(item)

    def post(self, item: T) -> asyncio.Future[R]:
        """Queue a write without waiting for it: the future holds its result (or what its
        transaction raised), for a caller that goes on meanwhile."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flush is None:
            self._flush = self._start(self._run())
        return future

    async def _run(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            async with self.db.session(urgent=self.urgent) as session:
                self._flush = None  # writes queued from now on go in the next flush
                batch, self._pending = self._pending, []
                results = await self.write(session, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, Unavailable):
                await self._one_by_one(batch)  # one bad write must not fail the others with it
                return
            for _, future in self._taken(batch):
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (shutting down): so are the writes waiting on this flush
            for _, future in self._taken(batch):
                future.cancel()
            raise
        self.flushes += 1
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _taken(self, batch: list[tuple[T, asyncio.Future[R]]]) -> list[tuple[T, asyncio.Future[R]]]:
        """The writes a failed flush answers for: its batch, or, when it failed before taking one
        (the database was unreachable), the writes queued for it."""
        if self._flush is asyncio.current_task():
            self._flush = None
            batch, self._pending = self._pending, []
        return batch

    async def _one_by_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        for item, future in batch:
            try:
                async with self.db.session(urgent=self.urgent) as session:
                    (result,) = await self.write(session, [item])
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            self.flushes += 1
            if not future.done():
                future.set_result(result)


Read = Callable[[AsyncSession], Awaitable[R]]


class SharedRead(Generic[R]):
    """Concurrent callers of the same query share one execution of it (a single flight).

    ``get()`` joins the read that is waiting for a connection, or starts one: everyone who joined a
    read gets its result, taken by a statement sent after they asked, so nobody sees data older than
    their request. Under a burst of ``/incident list`` each read costs one trip to the database for
    the whole burst instead of one per command (a trip to aiosqlite's thread costs a few hundred
    microseconds of CPU; the query itself about ten). ``read(session)`` must return data the callers
    only read (frozen values): they share it.
    """

    def __init__(self, db: Database, read: Read[R]) -> None:
        self.db = db
        self.read = read
        # The callers of the read that is waiting for a connection (None: no such read).
        self._joining: list[asyncio.Future[R]] | None = None
        self._running: set[asyncio.Task[None]] = set()  # referenced until they end
        self.executions = 0  # statements sent (tests)

    async def get(self) -> R:
        # Each caller waits on a future of its own, answered by the read itself as soon as it has the
        # rows: one turn of the event loop to the callers (a busy loop's turn takes milliseconds),
        # and a caller giving up (its request cancelled) cancels only its own future.
        mine: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        if self._joining is None:
            self._joining = []
            task = asyncio.create_task(self._run(self._joining))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        self._joining.append(mine)
        return await mine

    async def _run(self, callers: list[asyncio.Future[R]]) -> None:
        try:
            async with self.db.session(read_only=True) as session:
                await session.connection()  # the wait for a pooled connection: callers still join
                if self._joining is callers:
                    self._joining = None  # from here on the statement may already be on its way
                self.executions += 1
                result = await self.read(session)
                for caller in callers:
                    if not caller.done():
                        caller.set_result(result)
        except BaseException as exc:
            if self._joining is callers:  # failed before it took a connection
                self._joining = None
            if isinstance(exc, Exception) and all(caller.done() for caller in callers):
                log.warning("a shared read failed after answering its callers", exc_info=exc)
            for caller in callers:
                if not caller.done():
                    if isinstance(exc, Exception):
                        caller.set_exception(exc)
                    else:
                        caller.cancel()
            if not isinstance(exc, Exception):
                raise
