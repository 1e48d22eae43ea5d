"""Apply alembic migrations programmatically (``cmdcenter migrate`` and at start-up).

Start-up first reads the database's revision with one query (``current_revision``) and imports
alembic only when the database is behind ``HEAD``: an up-to-date database starts ~0.2 s sooner.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
HEAD = "0004"  # the newest revision in migrations/versions (tests/test_migrations.py keeps it true)


def alembic_config(database_url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Run the migrations in a worker thread (alembic's async env runs its own event loop)."""
    await asyncio.to_thread(upgrade, database_url, revision)


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None for a database alembic never touched."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            has_table = await conn.run_sync(lambda c: sa.inspect(c).has_table("alembic_version"))
            if not has_table:
                return None
            row = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).first()
            return str(row[0]) if row else None
    finally:
        await engine.dispose()


def upgrade_if_behind(database_url: str) -> bool:
    """At start-up: apply pending migrations; True when there were any."""
    if asyncio.run(current_revision(database_url)) == HEAD:
        return False
    upgrade(database_url)
    return True
