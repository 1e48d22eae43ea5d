"""Issue 5: PagerDuty and Statuspage through the durable outbox, against local fake servers speaking
the vendors' APIs (validated against ../shared/specs when present)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.slack.emulator import SlackEmulator
from bot.sandbox.vendors.pagerduty import PagerDutyFake
from bot.sandbox.vendors.pagerduty import create_app as pagerduty_app
from bot.sandbox.vendors.statuspage import StatuspageFake
from bot.sandbox.vendors.statuspage import create_app as statuspage_app
from tests.e2e.test_incident import channel_of, texts
from tests.harness import BotHarness, running_bot, wait_until

ROUTING_KEY = "R" * 32

CONFIG = """
slack: {incident_channel: incident-bridge, release_channel: releases}
services:
  - name: checkout
    statuspage_component_id: cmpapi000001
    pagerduty: {service_id: PSVC01, escalation_policy_id: PEPOLICY1}
access:
  - action: statuspage.publish
    usergroups: [S_COMMS]
"""


@dataclass
class Env:
    bot: BotHarness
    pd: PagerDutyFake
    sp: StatuspageFake


@pytest.fixture
def env(tmp_path: Path, slack: SlackEmulator) -> Iterator[Env]:
    pd, sp = PagerDutyFake(), StatuspageFake()
    servers: list[RunningServer] = [serve_in_thread(pagerduty_app(pd)), serve_in_thread(statuspage_app(sp))]
    ws = slack.workspace
    ws.add_user("ada", real_name="Ada Lovelace", email="ada@example.com")
    ws.add_user("grace", real_name="Grace Hopper", email="grace@example.com")
    ws.add_user("carol", real_name="Carol Comms", email="carol@example.com")
    ws.add_usergroup("comms", ["U_CAROL"])
    settings = {
        "pagerduty_routing_key": ROUTING_KEY,
        "pagerduty_events_url": servers[0].url,
        "pagerduty_api_token": pd.api_token,
        "pagerduty_api_url": servers[0].url,
        "pagerduty_from_email": "cmdcenter@example.com",
        "statuspage_api_key": sp.api_key,
        "statuspage_page_id": sp.page_id,
        "statuspage_api_url": servers[1].url,
    }
    config = CONFIG.replace("S_COMMS", next(g.id for g in ws.usergroups.values() if g.handle == "comms"))
    try:
        with running_bot(tmp_path, slack, config=config, settings=settings) as bot:
            yield Env(bot, pd, sp)
    finally:
        for server in servers:
            server.stop()
    assert not pd.violations, pd.violations
    assert not sp.violations, sp.violations


def declare(env: Env, text: str = "sev1 Checkout 502s") -> int:
    env.bot.command("/incident", f"declare {text}", channel="incident-bridge")
    (incident,) = wait_until(env.bot.incidents)
    env.bot.settle()
    assert incident.id is not None
    return incident.id


def press(bot: BotHarness, channel: str, action_id: str, user: str) -> None:
    def find() -> tuple[str, str] | None:
        with bot.ws.lock:
            for message in reversed(bot.ws.messages(channel)):
                for block in message.blocks:
                    for element in block.get("elements", []) if block.get("type") == "actions" else []:
                        if element.get("action_id") == action_id:
                            return message.ts, str(element.get("value", ""))
        return None

    ts, value = wait_until(find, message=f"a {action_id} button")
    payload = bot.driver.block_action_payload(user, channel, ts, action_id, value)
    assert bot.driver.interactive(payload).status_code == 200


def test_sev1_pages_once_despite_three_500s_then_ack_and_resolve(env: Env) -> None:
    env.pd.fail_next("enqueue", status=500, times=3)
    incident_id = declare(env, "sev1 Checkout 502s")
    key = f"cmdcenter-inc-{incident_id}"
    wait_until(lambda: env.pd.alert_history(key) == ["triggered"], message="the page", timeout=20)
    triggers = [e for e in env.pd.events if e.get("event_action") == "trigger"]
    assert len(triggers) == 1  # three 500s were retried; PagerDuty saw one accepted trigger
    event = triggers[0]
    assert event["dedup_key"] == key and event["routing_key"] == ROUTING_KEY
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["summary"].startswith(f"[SEV1] INC-{incident_id}")
    assert event["payload"]["source"] == "cmdcenter"
    channel = channel_of(env.bot, incident_id)
    env.bot.command("/incident", "ack", channel=channel)
    wait_until(lambda: env.bot.incident(incident_id).acknowledged_at is not None)
    env.bot.command("/incident", "resolve fixed", channel=channel)
    wait_until(lambda: env.pd.alert_history(key) == ["triggered", "acknowledged", "resolved"], timeout=20)
    assert {e["dedup_key"] for e in env.pd.events} == {key}
    kinds = [e.text for e in env.bot.timeline(incident_id) if e.kind == "page"]
    assert any("Paged on-call" in k for k in kinds) and "Acknowledged" in kinds


def test_sev3_does_not_page_and_raising_to_sev2_does(env: Env) -> None:
    incident_id = declare(env, "sev3 Slow search")
    assert env.pd.events == []
    env.bot.command("/incident", "sev sev2 spreading", channel=channel_of(env.bot, incident_id))
    key = f"cmdcenter-inc-{incident_id}"
    wait_until(lambda: env.pd.alert_history(key) == ["triggered"], timeout=20)
    assert env.pd.events[0]["payload"]["severity"] == "error"


def test_oncall_invited_and_first_level_becomes_commander(env: Env) -> None:
    incident_id = declare(env, "sev2 Checkout 502s --service checkout")
    wait_until(lambda: env.bot.incident(incident_id).commander == "U_ADA", message="on-call commander")
    env.bot.settle()
    channel = channel_of(env.bot, incident_id)
    with env.bot.ws.lock:
        assert "U_ADA" in env.bot.ws.require_channel(channel).members
    assert "On-call (level 1) invited" in texts(env.bot, channel)
    listing = json.dumps(env.bot.reply_after("/incident", "oncall checkout"))
    assert "U_ADA" in listing and "U_GRACE" in listing


def test_sev1_escalates_when_not_acknowledged(env: Env) -> None:
    env.bot.command("/incident", "declare sev1 Everything down", channel="incident-bridge")
    (incident,) = wait_until(env.bot.incidents)
    env.bot.settle()
    incident_id = incident.id or 0
    env.bot.clock.advance(timedelta(minutes=16))
    env.bot.tick()
    assert "not been acknowledged after 16 min" in texts(env.bot, "incident-bridge")
    assert env.bot.incident(incident_id).escalation_level == 2


def test_statuspage_draft_published_by_allowed_user_updated_and_resolved(env: Env) -> None:
    incident_id = declare(env, "sev1 Checkout 502s --service checkout")
    channel = channel_of(env.bot, incident_id)
    assert "Status page draft" in texts(env.bot, channel)
    assert env.sp.incidents == {}
    press(env.bot, channel, "statuspage_publish", "U_BOB")  # not in the comms group
    refusal = wait_until(lambda: [r for r in env.bot.responses() if "may not publish" in json.dumps(r)])
    assert "subteam" in json.dumps(refusal)
    env.bot.settle()
    assert env.sp.incidents == {}
    press(env.bot, channel, "statuspage_publish", "U_CAROL")
    wait_until(lambda: env.sp.incidents, message="the public incident", timeout=20)
    env.bot.settle()
    (public_id,) = env.sp.incidents
    assert env.sp.component_statuses()["cmpapi000001"] == "major_outage"
    assert "Published to the status page" in texts(env.bot, channel)
    env.bot.command("/incident", "status identified bad deploy", channel=channel)
    wait_until(lambda: env.sp.status_history(public_id)[-1:] == ["identified"], timeout=20)
    env.bot.command("/incident", "resolve rolled back", channel=channel)
    wait_until(lambda: env.sp.status_history(public_id)[-1:] == ["resolved"], timeout=20)
    assert env.sp.status_history(public_id) == ["investigating", "identified", "resolved"]
    assert env.sp.component_statuses()["cmpapi000001"] == "operational"
    assert len(env.sp.incidents) == 1
    public = json.dumps(env.sp.incidents[public_id])
    assert "U_ALICE" not in public and channel not in public  # customer-facing wording only


def test_statuspage_create_whose_answer_was_lost_is_not_repeated(env: Env) -> None:
    """Statuspage created the incident but the answer never arrived (a 502 from its gateway): the
    retry finds the incident by the key in its metadata instead of creating a second one."""
    incident_id = declare(env, "sev1 Checkout 502s --service checkout")
    channel = channel_of(env.bot, incident_id)
    env.sp.lose_next_answer("create_incident")
    press(env.bot, channel, "statuspage_publish", "U_CAROL")
    wait_until(lambda: "Published to the status page" in texts(env.bot, channel), timeout=30)
    assert len(env.sp.incidents) == 1 and env.sp.hits["create_incident"] == 1
    assert env.sp.hits["unresolved_incidents"] >= 1
    (public_id,) = env.sp.incidents
    assert env.bot.incident(incident_id).statuspage_incident_id == public_id


def test_slack_429_delays_delivery_and_loses_nothing(env: Env) -> None:
    env.bot.ws.fail_next("chat.postMessage", status=429, retry_after=2, times=3)
    started = time.monotonic()
    env.bot.command("/incident", "declare sev3 Rate limited", channel="incident-bridge")
    wait_until(env.bot.incidents)
    env.bot.settle(timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed >= 2.0
    (incident,) = env.bot.incidents()
    assert "Rate limited" in texts(env.bot, "incident-bridge")
    assert [i.status for i in env.bot.outbox()].count("failed") == 0
    rejected = [c for c in env.bot.ws.calls_to("chat.postMessage") if c.status == 429]
    assert len(rejected) == 3
    assert incident.channel_id is not None
