"""Database helpers of the benchmarks: read-only queries on the bot's database (SQLite or
PostgreSQL) and a fresh PostgreSQL database per benchmark, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg(url: str, sql: str, fetch: bool = True) -> list[tuple[object, ...]]:
    import asyncpg

    async def run() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(url, timeout=3)
        try:
            if fetch:
                return [tuple(r) for r in await conn.fetch(sql)]
            await conn.execute(sql)
            return []
        finally:
            await conn.close()

    return asyncio.run(run())


def query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    """Run a read-only query against the bot's database (SQLite file or PostgreSQL)."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    return _pg(database_url, sql)


def pg_available() -> bool:
    try:
        _pg(PG_ADMIN_URL, "select 1")
        return True
    except Exception:
        return False


def pg_version() -> str:
    try:
        return str(_pg(PG_ADMIN_URL, "show server_version")[0][0])
    except Exception:
        return "unavailable"


class PgDatabase:
    """A fresh PostgreSQL database for one benchmark, dropped on exit."""

    def __init__(self, prefix: str) -> None:
        self.name = f"{prefix}_{os.getpid()}_{time.monotonic_ns() % 10**8}"
        self.url = f"postgresql://postgres@127.0.0.1:5432/{self.name}"

    def __enter__(self) -> PgDatabase:
        _pg(PG_ADMIN_URL, f'CREATE DATABASE "{self.name}"', fetch=False)
        return self

    def __exit__(self, *_: object) -> None:
        _pg(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', fetch=False)
