"""Shared fixtures: the Slack emulator and the bot served on 127.0.0.1 (see ``tests/harness.py``).

Every test under ``tests/e2e/`` (and every module marked ``transports``) runs once per transport,
``[http]`` and ``[socket]``: the autouse ``transport`` fixture makes ``running_bot`` (and so the
``bot`` fixture) serve over it. A test about HTTP itself (signatures, ``/slack/events``'s answers)
is marked ``http_only``; one about Socket Mode itself ``socket_only``. Other tests run over HTTP.

On PostgreSQL (``CMDCENTER_TEST_DB=postgres``) the socket pass is left out but for the
``socket_only`` tests: the transports differ above the database, and the second pass would add
about four minutes to each CI run. ``CMDCENTER_TEST_TRANSPORTS="http socket"`` runs it anyway.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.db.engine import Database
from bot.db.migrate import upgrade_async
from bot.sandbox.slack.emulator import SlackEmulator, start_slack_emulator
from bot.sandbox.specs import specs_dir
from tests.harness import (
    TRANSPORTS,
    BotHarness,
    default_transport,
    drop_test_databases,
    running_bot,
    test_database_url,
)

E2E = Path(__file__).parent / "e2e"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "transports: run the module's tests over HTTP and over Socket Mode")
    config.addinivalue_line(
        "markers", "http_only: a test about the HTTP transport itself (not run over Socket Mode)"
    )
    config.addinivalue_line("markers", "socket_only: a test about the Socket Mode transport itself")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    definition = metafunc.definition
    if E2E not in Path(str(definition.path)).parents and definition.get_closest_marker("transports") is None:
        return
    if definition.get_closest_marker("http_only"):
        chosen = ["http"]
    elif definition.get_closest_marker("socket_only"):
        chosen = ["socket"]
    else:
        chosen = _transports()
    metafunc.parametrize("transport", chosen, indirect=True)


def _transports() -> list[str]:
    """Both on SQLite, HTTP only on PostgreSQL, unless ``CMDCENTER_TEST_TRANSPORTS`` names them."""
    named = os.environ.get("CMDCENTER_TEST_TRANSPORTS", "").split()
    if named:
        unknown = set(named) - set(TRANSPORTS)
        if unknown:
            raise pytest.UsageError(f"CMDCENTER_TEST_TRANSPORTS: unknown {sorted(unknown)}")
        return named
    return ["http"] if os.environ.get("CMDCENTER_TEST_DB") == "postgres" else list(TRANSPORTS)


@pytest.fixture(autouse=True)
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """The transport the test's bots are served over (``http`` unless the test is parametrized)."""
    name: str = getattr(request, "param", "http")
    with default_transport(name):
        yield name


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
