"""Issue 6: ``POST /hooks/deploy`` — CI reports deploys into the release ledger (bearer token)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.db.models import ReleaseRecord
from bot.sandbox.slack.emulator import SlackEmulator
from tests.harness import BotHarness, running_bot, wait_until

TOKEN = "ci-hook-token"

CONFIG = """
slack: {incident_channel: incident-bridge, release_channel: releases}
services:
  - name: checkout
    environments: [staging, prod]
access:
  - {action: freeze, users: [U_ALICE]}
"""

DEPLOY = {
    "service": "checkout",
    "environment": "prod",
    "version": "v1.4.2",
    "commit": "9f2c1e7",
    "status": "started",
    "url": "https://ci.example.com/runs/812",
}


@pytest.fixture
def hook_bot(tmp_path: Path, slack: SlackEmulator) -> Iterator[BotHarness]:
    with running_bot(tmp_path, slack, config=CONFIG, settings={"deploy_hook_token": TOKEN}) as harness:
        yield harness


def post(
    bot: BotHarness, body: Any = None, *, token: str | None = TOKEN, content: bytes | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = content if content is not None else json.dumps(body).encode()
    return httpx.post(f"{bot.url}/hooks/deploy", content=data, headers=headers, timeout=10)


def ledger(bot: BotHarness) -> list[ReleaseRecord]:
    return sorted(bot.rows(ReleaseRecord), key=lambda r: r.id or 0)


def test_deploys_are_recorded_once_and_updated(hook_bot: BotHarness) -> None:
    created = post(hook_bot, DEPLOY)
    assert created.status_code == 201, created.text
    assert created.json() == {"id": 1, "created": True, "status": "started", "frozen": False}
    again = post(hook_bot, DEPLOY)  # a CI retry
    assert again.status_code == 200 and again.json()["id"] == 1
    done = post(hook_bot, {**DEPLOY, "status": "success", "actor": "deploy-bot"})
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    (row,) = ledger(hook_bot)
    assert (row.service, row.environment, row.version, row.commit, row.status, row.source, row.kind) == (
        "checkout",
        "prod",
        "v1.4.2",
        "9f2c1e7",
        "succeeded",
        "webhook",
        "deploy",
    )
    assert row.url == DEPLOY["url"] and row.actor == "deploy-bot" and row.finished_at is not None
    other = post(hook_bot, {**DEPLOY, "version": "v1.4.3", "commit": None, "status": "failure"})
    assert other.status_code == 201 and other.json()["status"] == "failed"
    history = json.dumps(hook_bot.reply_after("/rollback", "history checkout prod"))
    assert "v1.4.3" in history and "v1.4.2" in history and "deploy-bot" in history


def test_bad_tokens_are_refused(hook_bot: BotHarness) -> None:
    for token in (None, "wrong", TOKEN + "x"):
        response = post(hook_bot, DEPLOY, token=token)
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == "Bearer"
    basic = httpx.post(
        f"{hook_bot.url}/hooks/deploy", json=DEPLOY, headers={"Authorization": f"Basic {TOKEN}"}, timeout=10
    )
    assert basic.status_code == 401
    assert ledger(hook_bot) == []


def test_without_a_configured_token_everything_is_refused(tmp_path: Path, slack: SlackEmulator) -> None:
    with running_bot(tmp_path, slack, config=CONFIG) as bot:
        assert post(bot, DEPLOY, token="anything").status_code == 401
        assert ledger(bot) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"service": "checkout"}, {"environment", "version", "status"}),
        ({**DEPLOY, "status": "maybe"}, {"status"}),
        ({**DEPLOY, "url": "javascript:alert(1)"}, {"url"}),
        ({**DEPLOY, "version": ""}, {"version"}),
        ({**DEPLOY, "service": "payments"}, {"service"}),
        ({**DEPLOY, "environment": "qa"}, {"environment"}),
        ({**DEPLOY, "service": 42}, {"service"}),
        ([DEPLOY], {"body"}),
    ],
)
def test_malformed_reports_get_400_with_field_errors(
    hook_bot: BotHarness, body: Any, fields: set[str]
) -> None:
    response = post(hook_bot, body)
    assert response.status_code == 400, response.text
    assert set(response.json()["fields"]) == fields
    assert ledger(hook_bot) == []


def test_not_json_and_oversized_bodies(hook_bot: BotHarness) -> None:
    broken = post(hook_bot, content=b'{"service": "checkout", ')
    assert broken.status_code == 400 and broken.json()["error"] == "the body is not JSON"
    assert "body" in broken.json()["fields"]
    binary = post(hook_bot, content=b"\xff\xfe\x00")
    assert binary.status_code == 400
    huge = post(hook_bot, {**DEPLOY, "padding": "x" * 70_000})
    assert huge.status_code == 413
    assert ledger(hook_bot) == []


def test_deploys_during_a_freeze_are_called_out_and_on_the_incident_timeline(hook_bot: BotHarness) -> None:
    hook_bot.command("/incident", "declare sev1 Checkout down --service checkout", channel="incident-bridge")
    (incident,) = wait_until(hook_bot.incidents)
    hook_bot.settle()
    response = post(hook_bot, {**DEPLOY, "status": "succeeded"})
    assert response.status_code == 201 and response.json()["frozen"] is True
    hook_bot.settle()
    with hook_bot.ws.lock:
        warnings = [m.text for m in hook_bot.ws.messages("releases") if "during a deploy freeze" in m.text]
    assert warnings == ["checkout v1.4.2 succeeded in prod during a deploy freeze"]
    assert incident.id is not None
    deploys = [e.text for e in hook_bot.timeline(incident.id) if e.kind == "deploy"]
    assert deploys == ["Deploy of checkout v1.4.2 to prod reported by CI: succeeded"]
