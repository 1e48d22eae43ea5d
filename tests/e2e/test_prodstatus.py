"""Issue 8: /prodstatus end to end against fake health endpoints and a fake Prometheus."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.db.models import ProcessedEvent
from bot.sandbox.server import serve_in_thread
from bot.sandbox.slack.emulator import SlackEmulator
from bot.sandbox.vendors.health import HealthFake
from bot.sandbox.vendors.prometheus import PrometheusFake
from tests.harness import BotHarness, running_bot, wait_until

API_TOKEN = "api-token-for-tests"
HOOK_TOKEN = "deploy-hook-token-for-tests"


def config(health_url: str, services: int = 2) -> str:
    lines = [
        "slack: {incident_channel: incident-bridge, release_channel: releases}",
        "reports: {weekly_channel: ops, weekly_weekday: mon, weekly_time: '09:00'}",
        "services:",
    ]
    for n in range(services):
        name = "checkout" if n == 0 else f"svc{n:02d}"
        lines += [
            f"  - name: {name}",
            "    environments: [prod]",
            f"    runbook_url: https://runbooks.example.com/{name}",
            "    health_checks:",
            f"      - {{url: '{health_url}/{name}/healthz', json_field: status, expect_value: ok,",
            "          timeout_seconds: 1}",
        ]
        if n == 0:
            lines += [
                "    prometheus:",
                "      - {name: error rate, query: 'checkout_errors', unit: '%', warn: 1, critical: 5}",
                "      - {name: p95 latency, query: 'checkout_p95', baseline_query: 'checkout_p95_7d',",
                "         unit: ms, warn: 800, critical: 2000}",
                "      - {name: availability, query: 'checkout_availability', unit: '%'}",
                "      - {name: cost, query: 'checkout_cost', unit: USD}",
            ]
    return "\n".join(lines) + "\n"


@dataclass
class Env:
    bot: BotHarness
    health: HealthFake
    prom: PrometheusFake


def _start(tmp_path: Path, slack: SlackEmulator, services: int, **overrides: Any) -> Iterator[Env]:
    health, prom = HealthFake(hang_seconds=30), PrometheusFake(hang_seconds=30)
    health_server, prom_server = serve_in_thread(health.app), serve_in_thread(prom.app)
    for n in range(services):
        health.set(f"/{'checkout' if n == 0 else f'svc{n:02d}'}/healthz", json={"status": "ok"})
    for query, value in {
        "checkout_errors": 0.2,
        "checkout_p95": 210.0,
        "checkout_p95_7d": 200.0,
        "checkout_availability": 99.95,
        "checkout_cost": 1234.0,
    }.items():
        prom.set(query, value)
    slack.workspace.add_channel("ops")
    settings = {"prometheus_url": prom_server.url, "api_token": API_TOKEN, "deploy_hook_token": HOOK_TOKEN}
    settings |= overrides
    try:
        with running_bot(
            tmp_path, slack, config=config(health_server.url, services), settings=settings
        ) as bot:
            yield Env(bot, health, prom)
    finally:
        health.release()
        prom.release()
        health_server.stop()
        prom_server.stop()


@pytest.fixture
def env(tmp_path: Path, slack: SlackEmulator) -> Iterator[Env]:
    yield from _start(tmp_path, slack, services=2)


def report(env: Env, text: str = "") -> str:
    return json.dumps(env.bot.reply_after("/prodstatus", text), ensure_ascii=False)


def test_all_green_is_healthy(env: Env) -> None:
    text = report(env)
    assert "Production: HEALTHY" in text
    assert "checkout" in text and "svc01" in text


def test_threshold_breach_names_the_figure(env: Env) -> None:
    env.prom.set("checkout_errors", 2.5)
    text = report(env)
    assert "Production: DEGRADED" in text and "Attention required" in text
    assert "2.5" in text and "error rate" in text
    env.prom.set("checkout_errors", 7.0)
    assert "Production: UNHEALTHY" in report(env)
    env.prom.set("checkout_errors", 0.2)
    env.prom.set("checkout_p95", 340.0)  # +70 % against the 7-day baseline
    text = report(env)
    assert "Production: UNHEALTHY" in text and "70" in text


def test_regression_is_correlated_with_the_deploy_that_preceded_it(env: Env) -> None:
    """A deploy reported by CI (``POST /hooks/deploy``) lands in the ledger; a p95 regression after
    it names that deploy."""
    deploy = {"service": "checkout", "environment": "prod", "version": "v1.4.2", "status": "succeeded"}
    response = httpx.post(
        f"{env.bot.url}/hooks/deploy", json=deploy, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
    )
    assert response.status_code == 201, response.text
    text = report(env)
    assert "Production: HEALTHY" in text and "since v1.4.2" not in text
    env.prom.set("checkout_p95", 340.0)  # +70 % against the 7-day baseline, right after the deploy
    text = report(env)
    assert "Production: UNHEALTHY" in text
    assert "p95 latency up 70 % since v1.4.2 was deployed" in text


def test_failing_health_check_is_unhealthy(env: Env) -> None:
    env.health.set("/svc01/healthz", json={"status": "degraded"})
    text = report(env, "svc01")
    assert "Production: UNHEALTHY" in text and "degraded" in text


def test_hung_source_is_unknown_and_the_report_still_arrives(env: Env) -> None:
    env.health.hang("/svc01/healthz")
    env.prom.hang("checkout_p95")
    started = time.monotonic()
    text = report(env)
    assert time.monotonic() - started < 10  # the hang is 30 s; the deadline is 4 s
    assert "UNKNOWN" in text and "timed out" in text
    assert "Production: HEALTHY" not in text


def test_the_ack_does_not_wait_for_the_work(env: Env) -> None:
    """The listener waits for the reply at most ``reply_in_ack_within`` (0.5 s), then acks: Slack's
    200 arrives while a hung source still holds the report back, and the report follows through the
    response_url."""
    env.health.hang("/svc01/healthz")
    before = len(env.bot.responses())
    response = env.bot.command("/prodstatus", trigger_id="T.hung.1")
    assert response.text == "" and len(env.bot.responses()) == before  # acked, nothing answered yet
    # Read-only, but its reply missed the ack: recorded before the ack, so a crash now replays it.
    assert [r.status for r in env.bot.rows(ProcessedEvent, ProcessedEvent.event_id == "cmd:T.hung.1")] == [
        "received"
    ]
    wait_until(lambda: len(env.bot.responses()) > before, message="the report", timeout=10)
    assert "timed out" in json.dumps(env.bot.responses()[before])
    assert not env.bot.ws.ack_replies
    wait_until(
        lambda: (
            [r.status for r in env.bot.rows(ProcessedEvent, ProcessedEvent.event_id == "cmd:T.hung.1")]
            == ["done"]
        ),
        message="marked done",
    )


def test_shutting_down_lets_a_command_acked_before_it_answer(tmp_path: Path, slack: SlackEmulator) -> None:
    """A graceful shutdown (SIGTERM: uvicorn stops taking requests, then the lifespan ends) waits up to
    ``CMDCENTER_SHUTDOWN_GRACE`` for commands still running after their ack: the report held back by
    a hung source still reaches the user, and the command is marked done."""
    for env in _start(tmp_path, slack, services=2, shutdown_grace=10.0):
        env.health.hang("/svc01/healthz")
        response = env.bot.command("/prodstatus", trigger_id="T.drain.1")
        assert response.text == "" and env.bot.responses() == []  # acked; the report is on its way
        env.bot.server.stop()  # returns once the lifespan has ended
        (reply,) = env.bot.responses()
        assert "timed out" in json.dumps(reply)
        rows = env.bot.rows(ProcessedEvent, ProcessedEvent.event_id == "cmd:T.drain.1")
        assert [r.status for r in rows] == ["done"]
        assert [(a.command, a.outcome) for a in env.bot.audit()] == [("/prodstatus", "ok")]


def test_shutting_down_cancels_what_outlasts_the_grace(
    tmp_path: Path, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Past ``CMDCENTER_SHUTDOWN_GRACE`` the command is cancelled, logged, and left as a crash would
    leave it: recorded, so the next start replays it (a read is safe to repeat)."""
    for env in _start(tmp_path, slack, services=2, shutdown_grace=0.2):
        env.health.hang("/svc01/healthz")
        env.bot.command("/prodstatus", trigger_id="T.drain.2")
        started = time.monotonic()
        env.bot.server.stop()
        assert time.monotonic() - started < 3  # not the 4 s of the source's deadline
        assert env.bot.responses() == []
        rows = env.bot.rows(ProcessedEvent, ProcessedEvent.event_id == "cmd:T.drain.2")
        assert [r.status for r in rows] == ["received"]
        assert (
            "1 unfinished task(s) (commands after their ack, audit rows) cancelled after 0.2 s" in caplog.text
        )


def test_share_posts_in_channel_and_help(env: Env) -> None:
    reply = env.bot.reply_after("/prodstatus", "share")
    assert reply["response_type"] == "in_channel"
    assert "Usage" in report(env, "help")
    assert "No service or environment called `nosuch`" in report(env, "nosuch")


def test_api_prodstatus_requires_the_token(env: Env) -> None:
    url = f"{env.bot.url}/api/prodstatus"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = httpx.get(url, params={"scope": "checkout"}, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 200
    data = response.json()
    assert data["level"] == "HEALTHY" and [s["name"] for s in data["services"]] == ["checkout"]


def test_weekly_report_has_every_section_with_figures(env: Env) -> None:
    env.bot.command("/incident", "declare sev2 Checkout 502s", channel="incident-bridge")
    wait_until(env.bot.incidents)
    env.bot.settle()
    (incident,) = env.bot.incidents()
    env.bot.command("/incident", "action <@U_BOB> 2026-01-20 add a canary", channel=incident.channel_id or "")
    wait_until(
        lambda: "add a canary" in json.dumps(env.bot.reply_after("/incident", f"show INC-{incident.id}"))
    )
    # the clock starts on Monday 2026-01-05 09:00; the next weekly report is due on Monday the 12th
    env.bot.tick()
    env.bot.clock.advance(timedelta(days=7))
    env.bot.tick()
    env.bot.tick()
    with env.bot.ws.lock:
        posts = [m for m in env.bot.ws.messages("ops") if "Weekly ops report" in m.text]
    assert len(posts) == 1
    text = json.dumps(posts[0].blocks, ensure_ascii=False)
    for section in (
        "Availability",
        "Performance",
        "Errors",
        "Incidents",
        "Deploys and rollbacks",
        "Cost",
        "Open action items",
    ):
        assert f"*{section}" in text, section
    assert "99.95 %" in text and "210 ms" in text and "0.2 %" in text and "1234 USD" in text
    assert "SEV2: 1" in text and "Checkout 502s" in text and "add a canary" in text


def test_sixty_services_fit_the_message_limits(tmp_path: Path, slack: SlackEmulator) -> None:
    for env in _start(tmp_path, slack, services=60):
        env.health.set("/svc07/healthz", status=503)
        text = report(env)
        assert "Production: UNHEALTHY" in text and "svc07" in text
        assert "healthy service(s) not listed" in text
        reply = env.bot.responses()[-1]
        assert len(reply["blocks"]) <= 50
