"""The leaner aiosqlite connection (``bot.db._sqlite``): the same results as aiosqlite's own through
SQLAlchemy, in fewer trips to the connection's thread."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.db import _sqlite
from bot.db.engine import Database

META = sa.MetaData()
ITEMS = sa.Table(
    "items",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String, unique=True, nullable=False),
    sa.Column("n", sa.Integer, nullable=False, default=0),
)


class Trips:
    """Counts the calls run on aiosqlite's thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = _sqlite._Connection._execute

        async def counted(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(conn, fn, *args, **kwargs)

        monkeypatch.setattr(_sqlite._Connection, "_execute", counted)


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    path = str(tmp_path / "lean.db")
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", async_creator=_sqlite.async_creator(path))
    async with engine.begin() as conn:
        await conn.run_sync(META.create_all)
    yield engine
    await engine.dispose()


async def test_queries_writes_returning_and_rowcounts(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(
            sa.insert(ITEMS).returning(ITEMS.c.id, ITEMS.c.name), [{"name": "a"}, {"name": "b"}]
        )
        assert sorted(row.name for row in inserted) == ["a", "b"]
        await conn.execute(sa.insert(ITEMS), [{"name": f"x{i}"} for i in range(100)])  # executemany
        updated = await conn.execute(sa.update(ITEMS).where(ITEMS.c.name.like("x%")).values(n=7))
        assert updated.rowcount == 100
        single = await conn.execute(sa.insert(ITEMS).values(name="c"))
        assert single.inserted_primary_key is not None and single.inserted_primary_key[0] == 103
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(ITEMS))).scalar_one() == 103
        assert (await conn.execute(sa.select(ITEMS.c.n).where(ITEMS.c.name == "x5"))).scalar_one() == 7
        rows = (await conn.execute(sa.select(ITEMS.c.name).order_by(ITEMS.c.id).limit(3))).all()
        assert [r.name for r in rows] == ["a", "b", "x0"]
        assert (await conn.execute(sa.select(ITEMS).where(ITEMS.c.name == "none"))).first() is None


async def test_a_failed_unit_of_work_rolls_back_and_constraint_errors_surface(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.insert(ITEMS).values(name="kept"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(sa.insert(ITEMS).values(name="dropped"))
            await conn.execute(sa.insert(ITEMS).values(name="kept"))  # unique violation
    async with engine.connect() as conn:
        names = (await conn.execute(sa.select(ITEMS.c.name))).scalars().all()
    assert names == ["kept"]


async def test_a_read_is_one_trip_and_a_write_commits_once(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = Trips(monkeypatch)
    async with engine.connect() as conn:  # warm: the pool has its connection
        await conn.execute(sa.select(1))
    trips.count = 0
    async with engine.begin() as conn:
        await conn.execute(sa.select(ITEMS))
    assert trips.count == 1  # execute with its rows; no cursor, close, commit or rollback trips
    trips.count = 0
    async with engine.begin() as conn:
        await conn.execute(sa.insert(ITEMS).values(name="w"))
    assert trips.count == 2  # the insert, the commit (the pool's rollback finds nothing to undo)


async def test_buffered_rows_are_served_by_fetchone_and_fetchmany(tmp_path: Path) -> None:
    conn = await _sqlite.async_creator(str(tmp_path / "raw.db"))()
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("select 1 union all select 2 union all select 3 union all select 4")
            assert await cursor.fetchone() == (1,)
            assert list(await cursor.fetchmany(2)) == [(2,), (3,)]
            assert list(await cursor.fetchall()) == [(4,)]
            assert await cursor.fetchone() is None
    finally:
        await conn.close()


async def test_the_database_uses_it_for_sqlite_files(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    try:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, _sqlite._Connection)
    finally:
        await db.dispose()


async def test_a_read_only_unit_of_work_ends_without_a_commit(db: Database) -> None:
    """``Database.session(read_only=True)`` closes the session instead of committing (either
    database): a write made in it by mistake is rolled back, never committed behind the writer lock."""
    async with db.session(read_only=True) as session:
        await session.execute(
            sa.text(
                "insert into audit_log (at, user_id, channel_id, command, text, outcome, detail) "
                "values (CURRENT_TIMESTAMP, 'U1', 'C1', '/incident', '', 'ok', '')"
            )
        )
    async with db.session(read_only=True) as session:
        count = (await session.execute(sa.text("select count(*) from audit_log"))).scalar_one()
    assert count == 0


async def test_reads_do_not_hold_the_writers_connections(tmp_path: Path) -> None:
    """On a SQLite file, read-only units of work have a pool of their own: with every reader
    connection held, a write (a Slack request's record before its ack) still gets a connection at
    once and its result is visible to the next read. Sharing one pool, the write would wait for a
    reader to finish (here: never, so the pool's 10 s timeout)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(META.create_all)
        async with contextlib.AsyncExitStack() as readers:
            for _ in range(3):  # the pool's size: every reader connection is now checked out
                session = await readers.enter_async_context(db.session(read_only=True))
                await session.execute(sa.select(ITEMS))

            async def write() -> None:
                async with db.session(urgent=True) as session:
                    await session.execute(ITEMS.insert().values(name="recorded"))

            await asyncio.wait_for(write(), timeout=5.0)
        async with db.session(read_only=True) as session:
            names = (await session.execute(sa.select(ITEMS.c.name))).scalars().all()
        assert names == ["recorded"]
    finally:
        await db.dispose()
