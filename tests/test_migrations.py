"""Migrations: from an empty database to head, down again, and from every earlier revision up.
Runs on SQLite, and on PostgreSQL when CMDCENTER_TEST_DB=postgres."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.db.migrate import HEAD, alembic_config, current_revision, downgrade, upgrade, upgrade_if_behind
from bot.errors import MigrationError
from tests.harness import drop_test_databases, test_database_url


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_revisions_form_one_line() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert _revisions()[0] == "0001"
    assert script.get_current_head() == HEAD  # start-up skips alembic when the database is at HEAD


def test_start_up_upgrades_only_a_database_behind(tmp_path: Path) -> None:
    url = test_database_url(tmp_path)
    try:
        assert asyncio.run(current_revision(url)) is None
        assert upgrade_if_behind(url) is True
        assert asyncio.run(current_revision(url)) == HEAD
        assert upgrade_if_behind(url) is False
        downgrade(url, _revisions()[-2])
        assert upgrade_if_behind(url) is True
        assert asyncio.run(current_revision(url)) == HEAD
    finally:
        drop_test_databases()


def test_a_failed_start_up_migration_stops_serve_with_a_clear_error(tmp_path: Path) -> None:
    """The migrations run in a child process (the server never imports alembic); its failure is
    reported by ``cmdcenter serve`` in one line and exit status 1, not a traceback of the parent."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'odd.db'}"
    upgrade(url)
    with sqlite3.connect(tmp_path / "odd.db") as conn:  # a revision this code base does not know
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(MigrationError, match="database migrations failed"):
        upgrade_if_behind(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMDCENTER_")} | {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "DATABASE_URL": url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "9"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "error: database migrations failed" in done.stderr
    assert "9999" in done.stderr  # alembic's own message, from the child


@pytest.mark.parametrize("start", _revisions())
def test_upgrade_from_every_revision_and_back(tmp_path: Path, start: str) -> None:
    url = test_database_url(tmp_path)
    try:
        upgrade(url, start)
        upgrade(url, "head")
        downgrade(url, "base")
        upgrade(url, "head")
    finally:
        drop_test_databases()


def test_models_match_the_migrations(tmp_path: Path) -> None:
    """Autogenerate finds nothing to do at head: no model change without its migration."""
    import asyncio

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlmodel import SQLModel

    url = test_database_url(tmp_path)
    upgrade(url, "head")

    async def diff() -> list[object]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            result = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
        await engine.dispose()
        return list(result)

    try:
        assert asyncio.run(diff()) == []
    finally:
        drop_test_databases()
