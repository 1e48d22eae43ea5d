"""Issue 6: /rollback end to end, through the fake helm executable, the fake Argo CD server and the
command adapter, with the health-endpoint fake; signed requests in, Slack emulator calls out."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.db.models import AuditLog, ReleaseRecord, RollbackRequest
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.slack.emulator import SlackEmulator
from bot.sandbox.vendors.argocd import ArgoCDFake
from bot.sandbox.vendors.deploy import HelmFakeState, fake_bin_dir
from bot.sandbox.vendors.health import HealthFake
from tests.harness import BotHarness, running_bot, wait_until

HOOK_TOKEN = "hook-test-token"
ARGO_TOKEN = "argocd-test-token"
VERSIONS = ["1.4.0", "1.4.1", "1.4.2"]

CONFIG = """
slack: {incident_channel: incident-bridge, release_channel: releases}
services:
  - name: checkout
    environments: [staging, prod]
    default_environment: prod
    deploy: DEPLOY
    health_checks:
      - url: HEALTH/checkout/prod
        environment: prod
        json_field: status
        expect_value: ok
        timeout_seconds: 1
  - name: search
    environments: [staging, prod]
access:
  - {action: rollback, environments: [staging], usergroups: [S_ENG]}
  - {action: rollback, environments: [prod], usergroups: [S_SRE]}
  - {action: freeze, usergroups: [S_SRE]}
rollback:
  two_person_environments: [prod]
  health_timeout_seconds: 0.6
  health_interval_seconds: 0.1
"""


# --- the deploy tools ---------------------------------------------------------------------------------


@dataclass
class Rig:
    """One deploy tool behind the bot: its config, settings, and what it was asked to do."""

    name: str
    deploy: str  # the service's ``deploy:`` YAML
    settings: dict[str, Any]
    real_runs: Callable[[], int]  # rollbacks that were not dry runs
    fail: Callable[[], None]  # make the next rollbacks fail
    error_text: str  # part of the failure the card and ledger must show
    servers: list[RunningServer] = field(default_factory=list)
    fake: Any = None  # the tool's fake, when it has one


def helm_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    state = HelmFakeState(tmp_path / "helm-state.json")
    for env in ("staging", "prod"):
        state.add_release("checkout", namespace=env, versions=VERSIONS)
    for name, value in state.env().items():
        monkeypatch.setenv(name, value)

    def real_runs() -> int:
        return sum(1 for c in state.calls() if c[1:2] == ["rollback"] and "--dry-run" not in c)

    return Rig(
        name="helm",
        deploy='{tool: helm, release: checkout, namespace: "{env}"}',
        settings={"helm_bin": str(fake_bin_dir() / "helm")},
        real_runs=real_runs,
        fail=lambda: monkeypatch.setenv("CMDCENTER_FAKE_HELM_FAIL", "1"),
        error_text="timed out waiting for the condition",
    )


def argocd_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    fake = ArgoCDFake(token=ARGO_TOKEN)
    for env in ("staging", "prod"):
        fake.add_application(f"checkout-{env}", versions=VERSIONS, auto_sync=True)
    server = serve_in_thread(fake.app)

    def fail() -> None:
        fake.operation_phase = "Failed"
        fake.operation_message = 'Deployment.apps "checkout" is invalid: image pull backoff'

    return Rig(
        name="argocd",
        deploy='{tool: argocd, application: "checkout-{env}"}',
        settings={"argocd_url": server.url, "argocd_token": ARGO_TOKEN},
        real_runs=lambda: sum(1 for r in fake.rollbacks if not r["dryRun"]),
        fail=fail,
        error_text="image pull backoff",
        servers=[server],
        fake=fake,
    )


def command_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    calls, fail_flag = tmp_path / "deploy-calls.jsonl", tmp_path / "deploy-fail"
    script = tmp_path / "deploy.py"
    script.write_text(
        "import json, pathlib, sys\n"
        f"pathlib.Path({str(calls)!r}).open('a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"if pathlib.Path({str(fail_flag)!r}).exists():\n"
        "    sys.exit('deploy.sh: kubectl apply failed: quota exceeded')\n"
        "print('rolled back to', sys.argv[-1])\n",
        encoding="utf-8",
    )
    argv = json.dumps([sys.executable, str(script), "{env}", "--rollback", "--to-version", "{version}"])

    def real_runs() -> int:
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    return Rig(
        name="command",
        deploy=f"{{tool: command, rollback: {argv}}}",
        settings={},
        real_runs=real_runs,
        fail=lambda: fail_flag.write_text("1"),
        error_text="quota exceeded",
    )


RIGS = {"helm": helm_rig, "argocd": argocd_rig, "command": command_rig}


@dataclass
class Env:
    bot: BotHarness
    rig: Rig
    health: HealthFake
    groups: dict[str, str]


def seed_ledger(bot: BotHarness, versions: list[str] = VERSIONS) -> None:
    """The command adapter keeps no history: CI reports its deploys into the ledger."""
    for env in ("staging", "prod"):
        for version in versions:
            response = httpx.post(
                f"{bot.url}/hooks/deploy",
                headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
                json={"service": "checkout", "environment": env, "version": version, "status": "succeeded"},
            )
            assert response.status_code == 201, response.text


@contextmanager
def running_env(
    tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch, tool: str
) -> Iterator[Env]:
    ws = slack.workspace
    ws.add_user("carol", real_name="Carol SRE")
    ws.add_user("mallory", real_name="Mallory Intruder")
    groups = {
        "eng": ws.add_usergroup("eng", ["U_ALICE", "U_BOB", "U_CAROL"]),
        "sre": ws.add_usergroup("sre", ["U_ALICE", "U_BOB"]),
    }
    rig = RIGS[tool](tmp_path, monkeypatch)
    health = HealthFake()
    health.set("/checkout/prod", json={"status": "ok"})
    health_server = serve_in_thread(health.app)
    config = (
        CONFIG.replace("DEPLOY", rig.deploy)
        .replace("HEALTH", health_server.url)
        .replace("S_ENG", groups["eng"])
        .replace("S_SRE", groups["sre"])
    )
    settings = {"deploy_hook_token": HOOK_TOKEN, **rig.settings}
    try:
        with running_bot(tmp_path, slack, config=config, settings=settings) as harness:
            if tool == "command":
                seed_ledger(harness)
            yield Env(harness, rig, health, groups)
    finally:
        for server in [health_server, *rig.servers]:
            server.stop()


@pytest.fixture(params=list(RIGS))
def env(
    request: pytest.FixtureRequest, tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    with running_env(tmp_path, slack, monkeypatch, request.param) as running:
        yield running


@pytest.fixture
def argocd_env(tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with running_env(tmp_path, slack, monkeypatch, "argocd") as running:
        yield running


@pytest.fixture
def command_env(tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with running_env(tmp_path, slack, monkeypatch, "command") as running:
        yield running


@pytest.fixture
def helm_env(tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with running_env(tmp_path, slack, monkeypatch, "helm") as running:
        yield running


# --- helpers -------------------------------------------------------------------------------------------


def rollbacks(bot: BotHarness) -> list[RollbackRequest]:
    return sorted(bot.rows(RollbackRequest), key=lambda r: r.id or 0)


def rollback(bot: BotHarness, rollback_id: int) -> RollbackRequest:
    (row,) = bot.rows(RollbackRequest, RollbackRequest.id == rollback_id)
    return row


def request(env: Env, text: str, *, user: str = "U_ALICE", channel: str = "general") -> RollbackRequest:
    """``/rollback <text>``; waits for its card to be posted."""
    before = {r.id for r in rollbacks(env.bot)}
    env.bot.command("/rollback", text, user=user, channel=channel)
    (row,) = wait_until(
        lambda: [r for r in rollbacks(env.bot) if r.id not in before], message="a rollback row"
    )
    assert row.id is not None
    return wait_until(lambda: (r := rollback(env.bot, row.id or 0)).message_ts and r, message="the card")


def card(env: Env, row: RollbackRequest) -> str:
    assert row.channel_id and row.message_ts
    with env.bot.ws.lock:
        message = env.bot.ws.find_message(row.channel_id, row.message_ts)
        assert message is not None
        return json.dumps({"text": message.text, "blocks": message.blocks}, ensure_ascii=False)


def press(env: Env, row: RollbackRequest, action_id: str, user: str) -> dict[str, Any]:
    """Click a button of the card; returns the payload (to send again: a Slack retry)."""
    assert row.channel_id and row.message_ts
    payload = env.bot.driver.block_action_payload(
        user, row.channel_id, row.message_ts, action_id, str(row.id)
    )
    before = len(env.bot.responses())
    assert env.bot.driver.interactive(payload).status_code == 200
    wait_until(lambda: len(env.bot.responses()) > before, message=f"the answer to {action_id}")
    return payload


def last_answer(env: Env) -> str:
    return json.dumps(env.bot.responses()[-1], ensure_ascii=False)


def wait_state(env: Env, row: RollbackRequest, *states: str, timeout: float = 20.0) -> RollbackRequest:
    found = wait_until(
        lambda: (r := rollback(env.bot, row.id or 0)).state in states and r,
        timeout=timeout,
        message=f"{row.ref} to be {' or '.join(states)}",
    )
    return found


def wait_health(env: Env, row: RollbackRequest, *health: str, timeout: float = 20.0) -> RollbackRequest:
    return wait_until(
        lambda: (r := rollback(env.bot, row.id or 0)).health in health and r,
        timeout=timeout,
        message=f"{row.ref} health to be {' or '.join(health)}",
    )


def channel_text(env: Env, channel: str) -> str:
    with env.bot.ws.lock:
        return "\n".join(
            json.dumps({"text": m.text, "blocks": m.blocks}, ensure_ascii=False)
            for m in env.bot.ws.messages(channel)
        )


def ledger(env: Env, kind: str = "rollback") -> list[ReleaseRecord]:
    return [r for r in env.bot.rows(ReleaseRecord) if r.kind == kind]


# --- the done-when list, for each tool -----------------------------------------------------------------


def test_confirmed_rollback_runs_once_after_confirm_and_not_before(env: Env) -> None:
    row = request(env, "checkout staging because 502s after 1.4.2")
    shown = card(env, row)
    assert "1.4.2" in shown and "1.4.1" in shown and "502s after 1.4.2" in shown
    assert "<@U_ALICE>" in shown and env.rig.name in shown and "Dry run" in shown
    assert "rollback_confirm" in shown and "rollback_cancel" in shown
    assert (row.current_version, row.target_version, row.state) == ("1.4.2", "1.4.1", "pending")
    requested = json.dumps(env.bot.responses()[-1])
    assert row.ref in requested and requested.count("ephemeral") == 1
    env.bot.settle()
    assert env.rig.real_runs() == 0  # the dry run ran; the rollback did not

    payload = press(env, row, "rollback_confirm", "U_ALICE")
    done = wait_state(env, row, "succeeded")
    assert env.rig.real_runs() == 1
    assert done.health == "skipped"  # staging has no health check
    press(env, row, "rollback_confirm", "U_ALICE")  # a double click
    assert "already" in last_answer(env)
    assert env.bot.driver.interactive(payload).status_code == 200  # Slack retrying the first click
    env.bot.settle()
    assert env.rig.real_runs() == 1

    notice = channel_text(env, "releases")
    assert ":warning: Rolling back" in notice and "`1.4.2` to `1.4.1` due to 502s after 1.4.2" in notice
    assert "Rolled back" in card(env, row) and "rollback_confirm" not in card(env, row)
    (entry,) = ledger(env)
    assert (entry.version, entry.previous_version, entry.status, entry.source) == (
        "1.4.1",
        "1.4.2",
        "succeeded",
        "cmdcenter",
    )
    assert done.active_key is None


def test_cancel_runs_nothing(env: Env) -> None:
    row = request(env, "checkout staging")
    press(env, row, "rollback_cancel", "U_ALICE")
    cancelled = wait_state(env, row, "cancelled")
    env.bot.settle()
    assert "Cancelled" in card(env, row) and "rollback_confirm" not in card(env, row)
    press(env, row, "rollback_confirm", "U_ALICE")
    assert "already cancelled" in last_answer(env)
    env.bot.settle()
    assert env.rig.real_runs() == 0 and ledger(env) == []
    assert cancelled.active_key is None
    request(env, "checkout staging")  # the service is free again


def test_unauthorized_user_is_refused(env: Env) -> None:
    reply = json.dumps(env.bot.reply_after("/rollback", "checkout staging", user="U_MALLORY"))
    assert "You may not roll back checkout" in reply and f"<!subteam^{env.groups['eng']}>" in reply
    assert rollbacks(env.bot) == []
    row = request(env, "checkout staging")
    press(env, row, "rollback_confirm", "U_MALLORY")
    assert "You may not confirm" in last_answer(env)
    press(env, row, "rollback_cancel", "U_MALLORY")
    assert "You may not cancel" in last_answer(env)
    env.bot.settle()
    assert rollback(env.bot, row.id or 0).state == "pending" and env.rig.real_runs() == 0
    refused = [a for a in env.bot.rows(AuditLog) if a.outcome == "refused"]
    assert [(a.user_id, a.command) for a in refused] == [
        ("U_MALLORY", "/rollback"),
        ("U_MALLORY", "/rollback confirm"),
        ("U_MALLORY", "/rollback cancel"),
    ]


def test_two_person_rule_in_prod_then_health_verified(env: Env) -> None:
    row = request(env, "checkout because checkout 502s")  # prod is the default environment
    assert (row.environment, row.two_person) == ("prod", True)
    press(env, row, "rollback_confirm", "U_ALICE")  # the requester's own Confirm does not count
    assert "Two-person rule" in last_answer(env)
    env.bot.settle()
    assert rollback(env.bot, row.id or 0).state == "pending" and env.rig.real_runs() == 0
    assert "does not count" in card(env, row)
    press(env, row, "rollback_confirm", "U_CAROL")  # an engineer, but not allowed in prod
    assert "You may not confirm" in last_answer(env)
    env.bot.settle()
    assert env.rig.real_runs() == 0

    press(env, row, "rollback_confirm", "U_BOB")
    done = wait_health(env, row, "healthy")
    assert (
        done.state == "succeeded"
        and done.decided_by == "U_BOB"
        and done.confirmations == ["U_ALICE", "U_BOB"]
    )
    assert env.rig.real_runs() == 1
    env.bot.settle()
    assert "is healthy after rollback" in channel_text(env, "releases")
    assert "Healthy" in card(env, row)
    assert env.health.hit_count("/checkout/prod") >= 1


def test_failing_tool_reports_its_error_in_the_card_and_the_ledger(env: Env) -> None:
    row = request(env, "checkout staging because bad config")
    env.rig.fail()
    press(env, row, "rollback_confirm", "U_BOB")
    failed = wait_state(env, row, "failed")
    env.bot.settle()
    assert env.rig.error_text in failed.result_summary
    assert "Rollback failed" in card(env, row) and env.rig.error_text in card(env, row)
    (entry,) = ledger(env)
    assert entry.status == "failed" and env.rig.error_text in entry.summary
    assert ":x: Rollback" in channel_text(env, "releases")
    assert failed.health is None and failed.active_key is None


def test_health_verification_times_out(env: Env) -> None:
    env.health.set("/checkout/prod", status=503, json={"status": "down"})
    row = request(env, "checkout prod because latency")
    press(env, row, "rollback_confirm", "U_BOB")
    done = wait_health(env, row, "unhealthy")
    assert done.state == "succeeded" and "503" in done.health_detail
    assert env.health.hit_count("/checkout/prod") >= 2  # polled again (every 0.1 s for 0.6 s)
    env.bot.settle()
    assert "still unhealthy" in channel_text(env, "releases") and "Still unhealthy" in card(env, row)
    assert done.active_key is None


# --- more, with Helm ------------------------------------------------------------------------------------


def test_a_second_rollback_while_one_is_pending_is_refused_with_a_pointer(helm_env: Env) -> None:
    row = request(helm_env, "checkout staging")
    reply = json.dumps(helm_env.bot.reply_after("/rollback", "checkout staging", user="U_BOB"))
    assert f"{row.ref} is already in progress for checkout staging" in reply
    assert "http" in reply  # the card's permalink
    assert len(rollbacks(helm_env.bot)) == 1
    request(helm_env, "checkout prod", user="U_BOB")  # another environment is fine


def test_a_second_rollback_while_one_runs_is_refused(helm_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDCENTER_FAKE_BIN_SLEEP", "1.5")  # every helm call now takes 1.5 s
    row = request(helm_env, "checkout staging")
    press(helm_env, row, "rollback_confirm", "U_ALICE")
    wait_state(helm_env, row, "running")
    reply = json.dumps(helm_env.bot.reply_after("/rollback", "checkout staging", user="U_BOB"))
    assert f"{row.ref} is already in progress" in reply and "running" in reply
    wait_state(helm_env, row, "succeeded")
    assert helm_env.rig.real_runs() == 1


def test_concurrent_confirms_run_once(helm_env: Env) -> None:
    row = request(helm_env, "checkout staging")
    assert row.channel_id and row.message_ts
    payloads = [
        helm_env.bot.driver.block_action_payload(
            user, row.channel_id, row.message_ts, "rollback_confirm", str(row.id)
        )
        for user in ("U_ALICE", "U_BOB", "U_CAROL", "U_ALICE")
    ]
    threads = [threading.Thread(target=helm_env.bot.driver.interactive, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_state(helm_env, row, "succeeded")
    helm_env.bot.settle()
    assert helm_env.rig.real_runs() == 1
    assert len(ledger(helm_env)) == 1


def test_rollback_to_a_named_revision_and_history(helm_env: Env) -> None:
    row = request(helm_env, "checkout staging to 1 because back to the first release")
    assert (row.target_version, row.target_revision) == ("1.4.0", "1")
    press(helm_env, row, "rollback_confirm", "U_ALICE")
    wait_state(helm_env, row, "succeeded")
    history = json.dumps(helm_env.bot.reply_after("/rollback", "history checkout staging"))
    assert "1.4.0" in history and "rollback" in history and "What helm lists" in history
    missing = json.dumps(helm_env.bot.reply_after("/rollback", "checkout staging to 9.9.9"))
    assert "No release `9.9.9`" in missing


def test_rolling_back_twice_goes_further_back(helm_env: Env) -> None:
    first = request(helm_env, "checkout staging")
    press(helm_env, first, "rollback_confirm", "U_ALICE")
    wait_state(helm_env, first, "succeeded")
    second = request(helm_env, "checkout staging")  # not forward again to the 1.4.2 just left
    assert (second.current_version, second.target_version) == ("1.4.1", "1.4.0")


def test_rollback_goes_on_the_open_incidents_timeline(helm_env: Env) -> None:
    helm_env.bot.command(
        "/incident", "declare sev3 Checkout slow --service checkout", channel="incident-bridge"
    )
    (incident,) = wait_until(helm_env.bot.incidents)
    helm_env.bot.settle()
    row = request(helm_env, "checkout staging because slow since 1.4.2")
    press(helm_env, row, "rollback_confirm", "U_ALICE")
    wait_state(helm_env, row, "succeeded")
    helm_env.bot.settle()
    assert incident.id is not None
    texts = [e.text for e in helm_env.bot.timeline(incident.id) if e.kind == "rollback"]
    assert len(texts) == 2 and "confirmed: slow since 1.4.2" in texts[0] and "succeeded" in texts[1]
    assert rollback(helm_env.bot, row.id or 0).incident_id == incident.id


def test_usage_and_unknown_names(helm_env: Env) -> None:
    usage = json.dumps(helm_env.bot.reply_after("/rollback", "checkout staging sideways"))
    assert "Unexpected `sideways`" in usage and "/rollback history" in usage
    unknown = json.dumps(helm_env.bot.reply_after("/rollback", "payments"))
    assert "Unknown service `payments`" in unknown
    no_env = json.dumps(helm_env.bot.reply_after("/rollback", "checkout qa"))
    assert "no environment `qa`" in no_env
    no_tool = json.dumps(helm_env.bot.reply_after("/rollback", "search staging"))
    assert "no deploy tool" in no_tool
    helped = json.dumps(helm_env.bot.reply_after("/rollback", "help"))
    assert "/rollback history" in helped
    assert rollbacks(helm_env.bot) == []


# --- Argo CD and the command adapter --------------------------------------------------------------------


def test_argocd_auto_sync_is_suspended_before_the_rollback_and_stays_off(argocd_env: Env) -> None:
    fake: ArgoCDFake = argocd_env.rig.fake
    row = request(argocd_env, "checkout staging")
    assert "automated sync is suspended before the rollback" in card(argocd_env, row)
    assert fake.patches == []  # nothing changes before Confirm
    press(argocd_env, row, "rollback_confirm", "U_ALICE")
    done = wait_state(argocd_env, row, "succeeded")
    assert [p["patch"]["spec"]["syncPolicy"]["automated"] for p in fake.patches] == [None]
    real = [r for r in fake.rollbacks if not r["dryRun"]]
    assert real == [{"application": "checkout-staging", "id": 1, "dryRun": False, "prune": False}]
    assert "suspended Argo CD automated sync" in done.notes
    assert "automated" not in fake.application("checkout-staging")["spec"]["syncPolicy"]


def test_command_adapter_rolls_back_to_the_previous_version_in_the_ledger(
    tmp_path: Path, command_env: Env
) -> None:
    env = command_env
    row = request(env, "checkout staging")
    assert (row.current_version, row.target_version) == ("1.4.2", "1.4.1")
    assert "would run" in card(env, row)
    press(env, row, "rollback_confirm", "U_ALICE")
    wait_state(env, row, "succeeded")
    calls = [json.loads(line) for line in (tmp_path / "deploy-calls.jsonl").read_text().splitlines()]
    assert calls == [["staging", "--rollback", "--to-version", "1.4.1"]]
    again = request(env, "checkout staging")  # the ledger now knows 1.4.1 is live
    assert (again.current_version, again.target_version) == ("1.4.1", "1.4.0")


def test_a_rollback_whose_runner_died_is_reported_interrupted_and_never_rerun(
    helm_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = helm_env.bot
    row = request(helm_env, "checkout staging")
    monkeypatch.setenv("CMDCENTER_FAKE_BIN_SLEEP", "30")  # the tool now hangs
    press(helm_env, row, "rollback_confirm", "U_ALICE")
    wait_state(helm_env, row, "running")
    wait_until(lambda: helm_env.rig.real_runs() == 1, message="helm started")
    for task in list(bot.deps.tasks.running):  # the replica running it dies
        task.get_loop().call_soon_threadsafe(task.cancel)
    bot.clock.advance(60)  # past the lease and the watchdog's due time
    bot.tick()
    interrupted = wait_state(helm_env, row, "interrupted")
    bot.settle()
    assert interrupted.active_key is None and "check the tool" in interrupted.result_summary
    assert "Interrupted" in card(helm_env, row)
    (entry,) = ledger(helm_env)
    assert entry.status == "unknown"
    bot.clock.advance(60)
    bot.tick()
    assert helm_env.rig.real_runs() == 1
