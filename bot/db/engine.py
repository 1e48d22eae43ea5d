"""The async engine and session factory; created by the composition root, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.errors import Unavailable


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """Owns the engine. ``session()`` gives a unit of work: commit on success, rollback on error."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
        if not self.is_sqlite:
            kwargs |= {"pool_size": 10, "max_overflow": 10, "pool_timeout": 2.0}
            kwargs["connect_args"] = {"timeout": 2.0, "command_timeout": 5.0}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A transaction. Database connectivity failures surface as ``Unavailable``."""
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            if isinstance(exc, DBAPIError) and not exc.connection_invalidated and not _is_connectivity(exc):
                raise
            raise Unavailable("the database is unreachable") from exc

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()


def _is_connectivity(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        # SQLite "database is locked" is contention, not an outage: let it surface as a bug if it persists.
        return "locked" not in text
    return False
