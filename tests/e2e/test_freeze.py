"""Issue 6: deploy freezes — set by a SEV1/SEV2 declaration until resolution, by hand with
``/gonogo freeze|unfreeze`` (permissioned), visible in ``/incident show``; rollbacks stay allowed;
Argo CD auto-sync suspended while frozen where configured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.db.models import AuditLog, DeployFreeze
from bot.releases.freeze import ActiveFreeze, active_freezes, freezes_for
from bot.sandbox.server import serve_in_thread
from bot.sandbox.slack.emulator import SlackEmulator
from bot.sandbox.vendors.argocd import ArgoCDFake
from bot.sandbox.vendors.deploy import HelmFakeState, fake_bin_dir
from tests.e2e.test_incident import channel_of
from tests.harness import BotHarness, running_bot, wait_until

ARGO_TOKEN = "argocd-test-token"

CONFIG = """
slack: {incident_channel: incident-bridge, release_channel: releases}
services:
  - name: checkout
    environments: [staging, prod]
    deploy: {tool: helm, release: checkout, namespace: "{env}"}
  - name: search
    environments: [staging, prod]
    deploy: {tool: argocd, application: "search-{env}", suspend_sync_on_freeze: true}
access:
  - {action: freeze, usergroups: [S_SRE]}
  - {action: freeze, services: [checkout], users: [U_CAROL]}
  - {action: rollback, usergroups: [S_SRE]}
rollback: {two_person_environments: []}
freeze: {on_severities: [sev1, sev2], scope: SCOPE}
"""


@dataclass
class Env:
    bot: BotHarness
    argocd: ArgoCDFake
    helm: HelmFakeState


def start(
    tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch, *, scope: str
) -> Iterator[Env]:
    ws = slack.workspace
    ws.add_user("mallory", real_name="Mallory Intruder")
    ws.add_user("carol", real_name="Carol Checkout")
    sre = ws.add_usergroup("sre", ["U_ALICE", "U_BOB"])
    argocd = ArgoCDFake(token=ARGO_TOKEN)
    for env in ("staging", "prod"):
        argocd.add_application(f"search-{env}", versions=["2.0.0", "2.1.0"], auto_sync=True)
    helm = HelmFakeState(tmp_path / "helm-state.json")
    helm.add_release("checkout", namespace="prod", versions=["1.4.1", "1.4.2"])
    for name, value in helm.env().items():
        monkeypatch.setenv(name, value)
    server = serve_in_thread(argocd.app)
    settings = {
        "argocd_url": server.url,
        "argocd_token": ARGO_TOKEN,
        "helm_bin": str(fake_bin_dir() / "helm"),
    }
    config = CONFIG.replace("S_SRE", sre).replace("SCOPE", scope)
    try:
        with running_bot(tmp_path, slack, config=config, settings=settings) as bot:
            yield Env(bot, argocd, helm)
    finally:
        server.stop()


@pytest.fixture
def env(tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from start(tmp_path, slack, monkeypatch, scope="service")


@pytest.fixture
def env_all(tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from start(tmp_path, slack, monkeypatch, scope="all")


def declare(bot: BotHarness, text: str) -> int:
    before = {i.id for i in bot.incidents()}
    bot.command("/incident", f"declare {text}", channel="incident-bridge")
    (new,) = wait_until(lambda: [i for i in bot.incidents() if i.id not in before], message="the incident")
    bot.settle()
    assert new.id is not None
    return new.id


def freezes(bot: BotHarness, service: str | None = None) -> list[ActiveFreeze]:
    """Through the public functions, on the test's own engine (asyncpg connections are per loop)."""
    reader = SimpleNamespace(db=bot.db)
    if service is None:
        return bot.call(active_freezes, reader)
    return bot.call(lambda: freezes_for(reader, service=service))


def releases_text(bot: BotHarness) -> str:
    with bot.ws.lock:
        return "\n".join(m.text for m in bot.ws.messages("releases"))


def test_sev1_declaration_freezes_the_service_until_resolved(env: Env) -> None:
    bot = env.bot
    incident_id = declare(bot, "sev1 Checkout down --service checkout")
    (frozen,) = freezes(bot)
    assert (frozen.service, frozen.source, frozen.incident_id) == ("checkout", "incident", incident_id)
    assert frozen.reason.startswith(f"INC-{incident_id} (SEV1)")
    assert [f.id for f in freezes(bot, "checkout")] == [frozen.id]
    assert freezes(bot, "search") == []
    assert f"Deploys of checkout are frozen: INC-{incident_id}" in releases_text(bot)
    shown = json.dumps(bot.reply_after("/incident", f"show INC-{incident_id}"))
    assert ":snowflake: *Deploy freeze*: checkout" in shown

    bot.command("/incident", "resolve fixed", channel=channel_of(bot, incident_id))
    wait_until(lambda: not freezes(bot), message="the freeze to be lifted")
    bot.settle()
    (row,) = bot.rows(DeployFreeze)
    assert (
        row.lifted_at is not None
        and row.lift_reason == f"INC-{incident_id} resolved"
        and row.active_key is None
    )
    assert "Deploy freeze on checkout lifted" in releases_text(bot)
    assert "Deploy freeze" not in json.dumps(bot.reply_after("/incident", f"show INC-{incident_id}"))


def test_severity_changes_set_and_lift_the_freeze(env: Env) -> None:
    bot = env.bot
    incident_id = declare(bot, "sev3 Checkout slow --service checkout")
    assert freezes(bot) == []
    channel = channel_of(bot, incident_id)
    bot.command("/incident", "sev sev2 getting worse", channel=channel)
    wait_until(lambda: freezes(bot), message="a freeze after raising to SEV2")
    bot.command("/incident", "sev sev1 down", channel=channel)  # still frozen, once
    wait_until(lambda: bot.incident(incident_id).severity == "sev1")
    assert len(freezes(bot)) == 1
    bot.command("/incident", "sev sev3 mitigated", channel=channel)
    wait_until(lambda: not freezes(bot), message="the freeze lifted after lowering to SEV3")
    (row,) = bot.rows(DeployFreeze)
    assert row.lift_reason == f"INC-{incident_id} lowered to SEV3"


def test_scope_all_freezes_every_service(env_all: Env) -> None:
    declare(env_all.bot, "sev2 Payments degraded --service checkout")
    (frozen,) = freezes(env_all.bot)
    assert frozen.service is None and frozen.scope == "all services"
    assert freezes(env_all.bot, "search") == [frozen]


def test_manual_freeze_and_unfreeze_are_permissioned(env: Env) -> None:
    bot = env.bot
    refused = json.dumps(
        bot.reply_after("/gonogo", "freeze checkout because release train", user="U_MALLORY")
    )
    assert "You may not freeze deploys of checkout" in refused and "subteam" in refused
    assert freezes(bot) == []
    usage = json.dumps(bot.reply_after("/gonogo", "freeze checkout"))
    assert "Say why" in usage and "/gonogo freeze" in usage

    done = json.dumps(bot.reply_after("/gonogo", "freeze checkout because <!channel> release train"))
    assert "Deploys of checkout are frozen" in done and "&lt;!channel&gt;" in done
    (frozen,) = freezes(bot)
    assert (frozen.service, frozen.source, frozen.created_by) == ("checkout", "manual", "U_ALICE")
    again = json.dumps(bot.reply_after("/gonogo", "freeze checkout because again", user="U_BOB"))
    assert "already frozen" in again
    nothing = json.dumps(bot.reply_after("/gonogo", "unfreeze"))
    assert "are not frozen (frozen: checkout)" in nothing
    denied = json.dumps(bot.reply_after("/gonogo", "unfreeze checkout", user="U_MALLORY"))
    assert "You may not unfreeze" in denied
    lifted = json.dumps(bot.reply_after("/gonogo", "unfreeze checkout", user="U_BOB"))
    assert "Lifted the deploy freeze on checkout" in lifted
    assert freezes(bot) == []
    bot.settle()
    assert "Deploy freeze on checkout lifted" in releases_text(bot)
    outcomes = [(a.user_id, a.outcome) for a in bot.rows(AuditLog) if a.user_id == "U_MALLORY"]
    assert outcomes == [("U_MALLORY", "refused"), ("U_MALLORY", "refused")]
    helped = json.dumps(bot.reply_after("/gonogo", "help"))
    assert "/gonogo freeze" in helped


def test_a_rule_for_one_service_does_not_allow_freezing_all(env: Env) -> None:
    refused = json.dumps(env.bot.reply_after("/gonogo", "freeze because everything", user="U_CAROL"))
    assert "You may not freeze deploys of all services" in refused
    assert freezes(env.bot) == []
    done = json.dumps(env.bot.reply_after("/gonogo", "freeze checkout because checkout only", user="U_CAROL"))
    assert "Deploys of checkout are frozen" in done
    assert [f.service for f in freezes(env.bot)] == ["checkout"]


def test_unfreeze_lifts_an_incident_freeze_by_hand(env: Env) -> None:
    incident_id = declare(env.bot, "sev1 Checkout down --service checkout")
    assert len(freezes(env.bot)) == 1
    env.bot.reply_after("/gonogo", "unfreeze checkout")
    assert freezes(env.bot) == []
    env.bot.command("/incident", "resolve fixed", channel=channel_of(env.bot, incident_id))
    wait_until(lambda: env.bot.incident(incident_id).status == "resolved")
    env.bot.settle()
    assert len(env.bot.rows(DeployFreeze)) == 1  # nothing left to lift, nothing new


def test_rollbacks_stay_allowed_during_a_freeze(env_all: Env) -> None:
    bot = env_all.bot
    bot.reply_after("/gonogo", "freeze because quarter end")
    bot.command("/rollback", "checkout prod because 502s")
    from tests.e2e.test_rollback import rollbacks

    (row,) = wait_until(lambda: [r for r in rollbacks(bot) if r.message_ts], message="the card")
    with bot.ws.lock:
        message = bot.ws.find_message(row.channel_id or "", row.message_ts or "")
        assert message is not None
        card = json.dumps(message.blocks)
    assert "Deploys of checkout are frozen (quarter end): rollbacks stay allowed" in card
    payload = bot.driver.block_action_payload(
        "U_BOB", row.channel_id or "", row.message_ts or "", "rollback_confirm", str(row.id)
    )
    bot.driver.interactive(payload)
    wait_until(lambda: [r for r in rollbacks(bot) if r.state == "succeeded"], message="the rollback")
    assert [c for c in env_all.helm.calls() if c[1:2] == ["rollback"] and "--dry-run" not in c]


def test_argocd_auto_sync_is_suspended_while_frozen(env: Env) -> None:
    bot, argocd = env.bot, env.argocd
    bot.reply_after("/gonogo", "freeze search because migration")
    wait_until(lambda: len(argocd.patches) == 2, message="auto-sync suspended in both environments")
    bot.settle()
    for name in ("search-staging", "search-prod"):
        assert "automated" not in argocd.application(name)["spec"]["syncPolicy"]
    (row,) = bot.rows(DeployFreeze)
    assert row.sync_suspended == ["search/prod", "search/staging"]
    assert any("suspended Argo CD auto-sync of search/prod" in n for n in row.sync_notes)

    bot.reply_after("/gonogo", "unfreeze search")
    wait_until(lambda: len(argocd.patches) == 4, message="auto-sync resumed")
    bot.settle()
    for name in ("search-staging", "search-prod"):
        assert argocd.application(name)["spec"]["syncPolicy"]["automated"] == {
            "prune": True,
            "selfHeal": True,
        }
    assert argocd.problems == []


def test_a_rollback_keeps_auto_sync_off_after_the_freeze(env: Env) -> None:
    bot, argocd = env.bot, env.argocd
    bot.reply_after("/gonogo", "freeze search because incident")
    wait_until(lambda: len(argocd.patches) == 2, message="auto-sync suspended")
    bot.settle()
    from tests.e2e.test_rollback import rollbacks

    bot.command("/rollback", "search prod")
    (row,) = wait_until(lambda: [r for r in rollbacks(bot) if r.message_ts], message="the card")
    payload = bot.driver.block_action_payload(
        "U_ALICE", row.channel_id or "", row.message_ts or "", "rollback_confirm", str(row.id)
    )
    bot.driver.interactive(payload)
    wait_until(lambda: [r for r in rollbacks(bot) if r.state == "succeeded"], message="the rollback")
    bot.reply_after("/gonogo", "unfreeze search")
    wait_until(lambda: len(argocd.patches) == 3, message="staging resumed")
    bot.settle()
    assert argocd.application("search-staging")["spec"]["syncPolicy"]["automated"]
    assert "automated" not in argocd.application("search-prod")["spec"]["syncPolicy"]
