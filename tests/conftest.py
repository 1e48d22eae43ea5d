"""Shared fixtures: the Slack emulator and the bot served on 127.0.0.1 (see ``tests/harness.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox.slack_emulator import SlackEmulator, start_slack_emulator
from bot.sandbox.specs import specs_dir
from tests.harness import BotHarness, running_bot


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
