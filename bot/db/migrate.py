"""Apply alembic migrations programmatically (``cmdcenter migrate`` and at start-up).

Start-up first reads the database's revision with one query (``current_revision``); only when the
database is behind ``HEAD`` does it run alembic, in a child process (``python -m bot.db.migrate``),
so the server never holds alembic, mako and the migration scripts in memory (~9 MB).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bot.errors import MigrationError

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


class PendingUpgrade:
    """Start-up migrations running in a child process (or none, when the database is at ``HEAD``)."""

    def __init__(self, process: subprocess.Popen[bytes] | None) -> None:
        self.process = process

    def wait(self) -> bool:
        """Block until the migrations are applied; True when there were any."""
        if self.process is None:
            return False
        status = self.process.wait()
        if status != 0:
            raise MigrationError(f"database migrations failed (exit status {status}); see the output above")
        return True


def start_upgrade_if_behind(database_url: str) -> PendingUpgrade:
    """At start-up: start applying pending migrations, in a child process (``python -m
    bot.db.migrate``), so that the server goes on importing and wiring itself meanwhile; ``wait()``
    before serving. The URL goes to the child on its stdin, not its command line, where ``ps`` would
    show a password."""
    if asyncio.run(current_revision(database_url)) == HEAD:
        return PendingUpgrade(None)
    process = subprocess.Popen([sys.executable, "-m", "bot.db.migrate"], stdin=subprocess.PIPE)
    assert process.stdin is not None
    with process.stdin:
        process.stdin.write(database_url.encode())
    return PendingUpgrade(process)


def upgrade_if_behind(database_url: str) -> bool:
    """Apply pending migrations (in a child process) and wait for them; True when there were any."""
    return start_upgrade_if_behind(database_url).wait()


if __name__ == "__main__":  # the child of upgrade_if_behind: the database URL on stdin
    upgrade(sys.stdin.read().strip())
