"""The async engine and the unit of work; created by the composition root, never at import.

A unit of work that recorded a side effect (``record_effects``: an outbox item, a job) calls
``Database.on_effects`` once it has committed: the outbox worker is woken at once, and nobody has to
remember to kick it after a transaction.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.db._sqlite import async_creator
from bot.errors import Unavailable


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_EFFECTS = "cmdcenter_effects"


def record_effects(session: AsyncSession) -> None:
    """``session``'s transaction records a side effect: once it commits, ``on_effects`` is called."""
    session.info[_EFFECTS] = True


# True inside a SQLite unit of work (and in tasks it starts): nested units of work do not queue
# behind the one that contains them.
_in_unit = contextvars.ContextVar("cmdcenter_sqlite_unit", default=False)


class _WriterLock:
    """A FIFO lock whose ``urgent`` waiters go before the others: a Slack request waiting to be
    recorded before its ack must not queue behind the work of the requests acked before it."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # ownership passes directly; _held stays True
                    return
        self._held = False


class Database:
    """Owns the engine. ``session()`` gives a unit of work: commit on success, rollback on error.

    SQLite allows one writer at a time, and a connection that finds the file locked sleeps in
    SQLite's busy handler (1 ms, 2 ms … 100 ms). With many concurrent units of work that sleeping
    dominates: at 50 concurrent inserts, p99 went from 8 ms to 1.6 s. So on SQLite this process runs
    its units of work one at a time, in arrival order, except that ``urgent`` ones (recording a Slack
    request before its ack) go first and ``read_only`` ones do not queue at all; other processes on
    the same file still meet the busy handler. PostgreSQL needs none of this (both are ignored there).

    On a SQLite file, ``read_only`` units of work also have connections of their own: were they to
    share the writers' pool, fifty concurrent ``/incident list`` reads would hold its connections and
    a request's record before its ack would wait for one (measured: half of all checkouts waited
    over 1 ms, p99 73 ms). WAL lets those readers run beside the writer.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        readers: AsyncEngine | None = None
        if not self.is_sqlite:  # a SQLite file needs no liveness probe before each unit of work
            kwargs |= {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_timeout": 2.0}
            kwargs["connect_args"] = {"timeout": 2.0, "command_timeout": 5.0}
            self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        else:  # one writer at a time anyway; each connection costs a thread and a page cache
            kwargs |= {"pool_size": 3, "max_overflow": 0, "pool_timeout": 10.0}
            path = sa.make_url(url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                kwargs["async_creator"] = async_creator(path)  # fewer trips to aiosqlite's thread
                readers = create_async_engine(url, **kwargs)  # a file: the same database
            self.engine = create_async_engine(url, **kwargs)
            for engine in filter(None, (self.engine, readers)):
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        self._readers = readers
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(readers or self.engine, expire_on_commit=False)
        self._writer = _WriterLock() if self.is_sqlite else None
        # Called after a unit of work that recorded side effects commits (``Outbox.kick``).
        self.on_effects: Callable[[], None] | None = None

    @asynccontextmanager
    async def session(self, *, urgent: bool = False, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """A transaction. Database connectivity failures surface as ``Unavailable``.

        ``read_only``: the unit of work only reads, so on SQLite it does not queue for the writer
        (WAL readers never wait for a writer), and it ends by closing the session, without a COMMIT;
        writing in it is a bug (the write would be rolled back).
        """
        effects = False
        try:
            async with AsyncExitStack() as stack:
                if self._writer is not None and not read_only and not _in_unit.get():
                    await self._writer.acquire(urgent=urgent)
                    stack.callback(self._writer.release)
                    token = _in_unit.set(True)
                    stack.callback(_in_unit.reset, token)
                sessions = self._read_sessions if read_only else self._sessions
                session = await stack.enter_async_context(sessions())
                if not read_only:  # a read needs no COMMIT: closing the session ends it
                    await stack.enter_async_context(session.begin())
                yield session
                effects = bool(session.info.pop(_EFFECTS, False))
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            if isinstance(exc, DBAPIError) and not exc.connection_invalidated and not _is_connectivity(exc):
                raise
            raise Unavailable("the database is unreachable") from exc
        if effects and self.on_effects is not None:  # committed: wake whoever delivers them
            self.on_effects()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._readers is not None:
            await self._readers.dispose()


def _is_connectivity(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        # SQLite "database is locked" is contention, not an outage: let it surface as a bug if it persists.
        return "locked" not in text
    return False
