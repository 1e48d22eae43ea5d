"""aiosqlite with fewer trips to its thread.

aiosqlite runs each call on a sqlite3 connection in the connection's own thread and hands the result
back to the event loop: one *trip* (a queue put, a thread wake-up, a GIL hand-over and an event-loop
wake-up) per call. Through SQLAlchemy a statement made four (create the cursor, execute, fetch the
rows, close the cursor) and every unit of work two more (commit, then the pool's rollback), so a
one-query read cost six trips; under load each waits for the event loop's next turn and costs CPU
on both threads.

Here a statement is one trip: the cursor is created and closed where it is used (sqlite3 objects may
be used from any thread with ``check_same_thread=False``, and SQLAlchemy never uses one connection
for two things at once), and ``execute`` fetches a query's rows in the same trip. ``commit`` and
``rollback`` make no trip when no transaction is open (a unit of work that only read: pysqlite opens
one before the first write only).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager


class _Cursor(aiosqlite.Cursor):
    _rows: list[Any] | None = None

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> _Cursor:
        cursor = self._cursor

        def run() -> list[Any] | None:
            cursor.execute(sql, [] if parameters is None else parameters)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description is not None else None

        self._rows = await self._execute(run)  # type: ignore[no-untyped-call]
        return self

    def _take(self, size: int | None) -> list[Any]:
        assert self._rows is not None
        if size is None:
            taken, self._rows = self._rows, []
        else:
            taken, self._rows = self._rows[:size], self._rows[size:]
        return taken

    async def fetchone(self) -> Any:
        if self._rows is None:
            return await super().fetchone()
        taken = self._take(1)
        return taken[0] if taken else None

    async def fetchmany(self, size: int | None = None) -> Iterable[Any]:
        if self._rows is None:
            return await super().fetchmany(size)
        return self._take(self.arraysize if size is None else size)

    async def fetchall(self) -> Iterable[Any]:
        if self._rows is None:
            return await super().fetchall()
        return self._take(None)

    async def close(self) -> None:
        self._rows = None
        self._cursor.close()


class _Connection(aiosqlite.Connection):
    @contextmanager  # awaitable and an async context manager, like aiosqlite's own
    async def cursor(self) -> aiosqlite.Cursor:
        return _Cursor(self, self._conn.cursor())

    async def commit(self) -> None:
        if self._conn.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await super().rollback()


def async_creator(path: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """``create_async_engine(..., async_creator=...)`` for the SQLite file at ``path``."""

    async def create() -> aiosqlite.Connection:
        connection = _Connection(lambda: sqlite3.connect(path, check_same_thread=False), 64)
        # As SQLAlchemy does for the connections it makes (aiosqlite < 0.22: the connection is the thread).
        thread: Any = getattr(connection, "_thread", connection)
        thread.daemon = True
        return await connection

    return create
