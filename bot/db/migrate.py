"""Apply alembic migrations programmatically (``cmdcenter migrate`` and at start-up).

At start-up a child process (``python -m bot.db.migrate``) reads the database's revision with one
query (``current_revision``) and runs alembic only when it is behind ``HEAD``; the server goes on
starting meanwhile and never holds alembic, mako and the migration scripts in memory (~9 MB).
"""

from __future__ import annotations

import asyncio
import gc
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
    """Start-up migrations running in a child process: ``wait()`` for them before serving."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def wait(self) -> bool:
        """Block until the database is at ``HEAD``; True when migrations were applied."""
        assert self.process.stdout is not None
        with self.process.stdout:
            out = self.process.stdout.read()
        status = self.process.wait()
        if status != 0:
            raise MigrationError(
                f"database migrations failed (exit status {status}): the database could not be reached"
                " or a migration failed; the output above says which"
            )
        return out.decode().strip().endswith("migrated")


def start_upgrade_if_behind(database_url: str) -> PendingUpgrade:
    """At start-up: check the database's revision and apply pending migrations in a child process
    (``python -m bot.db.migrate``), while the server goes on importing and wiring itself. The server
    never imports alembic (its migration scripts and mako stay out of its memory: ~9 MB). The URL
    goes to the child on its stdin, not its command line, where ``ps`` would show a password."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.db.migrate"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdin is not None
    with process.stdin:
        process.stdin.write(database_url.encode() + b"\n")
    return PendingUpgrade(process)


def upgrade_if_behind(database_url: str) -> bool:
    """Apply pending migrations (in a child process) and wait for them; True when there were any."""
    return start_upgrade_if_behind(database_url).wait()


def _child() -> None:
    """``python -m bot.db.migrate``: the database URL on stdin; says ``migrated`` or ``current``."""
    gc.disable()  # a short-lived process that makes little garbage: no collections (as at start-up)
    url = sys.stdin.readline().strip()
    behind = asyncio.run(current_revision(url)) != HEAD
    if behind:
        upgrade(url)
    print("migrated" if behind else "current", flush=True)


if __name__ == "__main__":
    _child()
