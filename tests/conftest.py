"""Shared fixtures: the Slack emulator and the bot served on 127.0.0.1 (see ``tests/harness.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.db.engine import Database
from bot.db.migrate import upgrade_async
from bot.sandbox.slack.emulator import SlackEmulator, start_slack_emulator
from bot.sandbox.specs import specs_dir
from tests.harness import BotHarness, drop_test_databases, running_bot, test_database_url


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emulator = start_slack_emulator()
    ws = emulator.workspace
    ws.add_channel("incident-bridge", members=["U_ALICE", "U_BOB"])
    ws.add_channel("releases", members=["U_ALICE", "U_BOB"])
    try:
        yield emulator
    finally:
        emulator.stop()
    assert not ws.violations, "the bot broke Slack's rules:\n" + "\n".join(ws.violations)


@pytest.fixture
def bot(tmp_path: Path, slack: SlackEmulator) -> Iterator[BotHarness]:
    with running_bot(tmp_path, slack) as harness:
        yield harness


@pytest.fixture
def shared_specs() -> Path:
    found = specs_dir()
    if found is None:
        pytest.skip("../shared/specs not found: the API specs live outside the repository")
    return found


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    """A migrated database of the test's own (SQLite, or PostgreSQL with CMDCENTER_TEST_DB=postgres)."""
    url = await asyncio.to_thread(test_database_url, tmp_path)
    await upgrade_async(url)
    database = Database(url)
    yield database
    await database.dispose()
    await asyncio.to_thread(drop_test_databases)
