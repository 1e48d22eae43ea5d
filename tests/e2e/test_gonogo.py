"""Issue 7: /gonogo end to end — every gate kind against local fakes (health endpoints, Prometheus,
GitHub checks, manifests on disk, a command), approvals and rejections from the card's buttons, policy
exceptions on the business clock, the objection window, and Deploy through the command deploy tool
into the release ledger. Signed requests in, Slack emulator calls out."""

from __future__ import annotations

import json
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.db.models import AuditLog, GateException, GateResult, GoNoGoDecision, GoNoGoVote, ReleaseRecord
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.slack.emulator import SlackEmulator
from bot.sandbox.vendors.github_checks import GitHubChecksFake
from bot.sandbox.vendors.health import HealthFake
from bot.sandbox.vendors.prometheus import PrometheusFake
from tests.harness import BotHarness, running_bot, wait_until

GITHUB_TOKEN = "ghp-gonogo-test"
VERSION = "v1.4.3"
BURN = 'slo:error_budget_burn:ratio{service="checkout"}'
CANARY = 'checkout:error_rate:5m{service="checkout"}'
DIGEST = "sha256:" + "a" * 64

CONFIG = """
slack: {incident_channel: incident-bridge, release_channel: releases, timezone: UTC}
services:
  - name: checkout
    environments: [staging, prod]
    default_environment: prod
    deploy:
      tool: command
      rollback: [PYTHON, TMP/deploy.py, rollback, "{version}"]
      deploy: [PYTHON, TMP/deploy.py, deploy, "{service}", "{env}", "{version}"]
    prometheus:
      - {name: error rate, query: 'CANARY', unit: "%", warn: 1, critical: 5}
    gates:
      - kind: no_open_incidents
      - kind: no_freeze
      - kind: change_window
        deny: ["fri 12:00-23:59", "sat", "sun"]
        holidays: ["2026-12-25"]
      - {kind: http, name: CI summary, url: "HEALTH/ci/{service}/{version}", json_field: status,
         expect_value: passed, timeout_seconds: HTTP_TIMEOUT}
      - {kind: prometheus, name: error budget burn, query: 'BURN', max: 1.0}
      - {kind: github_checks, repository: acme/checkout, ref: "{version}"}
      - {kind: image_digest, path: "TMP/manifests/{env}"}
      - {kind: command, name: smoke test, argv: [PYTHON, TMP/smoke.py, "{env}", "{version}"]}
      - kind: approvals
  - name: search
    environments: [staging, prod]
    gates:
      - {kind: http, name: CI summary, url: "HEALTH/ci/{service}/{version}", json_field: status,
         expect_value: passed}
access:
  - {action: gonogo.approve, role: sre, usergroups: [S_SRE]}
  - {action: gonogo.approve, role: product, usergroups: [S_PRODUCT]}
  - {action: deploy, usergroups: [S_SRE]}
  - {action: freeze, usergroups: [S_SRE]}
freeze: {on_severities: [sev1]}
gonogo:
  allow_self_approval: false
  required_approvals: {sre: 1, product: 1}
  OBJECTION
"""

DEPLOY_SCRIPT = """
import pathlib, sys
here = pathlib.Path(__file__).parent
with open(here / "deploys.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if (here / "deploy_fails").exists():
    print("error: the cluster said no", file=sys.stderr)
    sys.exit(3)
print(f"deployed {sys.argv[2]} {sys.argv[4]} to {sys.argv[3]}")
"""

SMOKE_SCRIPT = """
import pathlib, sys
if (pathlib.Path(__file__).parent / "smoke_fails").exists():
    print("running 12 smoke tests")
    print("2 of 12 smoke tests failed: checkout_pay, checkout_refund")
    sys.exit(1)
print("running 12 smoke tests")
print(f"12 smoke tests passed on {sys.argv[1]} {sys.argv[2]}")
"""

PINNED = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: checkout}}
spec:
  template:
    spec:
      containers:
        - {{name: app, image: "ghcr.io/acme/checkout@{DIGEST}"}}
        - {{name: envoy, image: "envoyproxy/envoy:v1.29@{DIGEST}"}}
"""


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Rig:
    bot: BotHarness
    health: HealthFake
    prometheus: PrometheusFake
    github: GitHubChecksFake
    tmp: Path

    @property
    def ws(self) -> Any:
        return self.bot.ws

    # --- driving -------------------------------------------------------------------------------------

    def gonogo(self, text: str, user: str = "U_ALICE") -> dict[str, Any]:
        return self.bot.reply_after("/gonogo", text, user=user, channel="releases")

    def decide(self, text: str = f"checkout {VERSION} prod", user: str = "U_ALICE") -> GoNoGoDecision:
        before = {d.id for d in self.decisions()}
        self.gonogo(text, user=user)
        new = wait_until(lambda: [d for d in self.decisions() if d.id not in before], message="a decision")
        decision = new[0]
        assert decision.id is not None
        self.card(decision.id)
        return self.decision(decision.id)

    def press(self, decision_id: int, action: str, user: str) -> dict[str, Any]:
        decision = self.card_posted(decision_id)
        assert decision.message_ts is not None
        payload = self.bot.driver.block_action_payload(
            user, "releases", decision.message_ts, action, str(decision_id)
        )
        before = len(self.bot.responses())
        assert self.bot.driver.interactive(payload).status_code == 200
        wait_until(lambda: len(self.bot.responses()) > before, message=f"a reply to {action}")
        self.bot.settle()
        return self.bot.responses()[before]

    def reject(self, decision_id: int, user: str, reason: str) -> Any:
        decision = self.card_posted(decision_id)
        assert decision.message_ts is not None
        opened = len(self.ws.views_with_callback("gonogo_reject_reason"))
        payload = self.bot.driver.block_action_payload(
            user, "releases", decision.message_ts, "gonogo_reject", str(decision_id)
        )
        assert self.bot.driver.interactive(payload).status_code == 200
        wait_until(
            lambda: len(self.ws.views_with_callback("gonogo_reject_reason")) > opened, message="the modal"
        )
        submission = self.bot.driver.view_submission_payload(
            user,
            "gonogo_reject_reason",
            {"reason_block": {"reason": {"type": "plain_text_input", "value": reason}}},
        )
        return self.bot.driver.interactive(submission)

    # --- reading ------------------------------------------------------------------------------------

    def decisions(self) -> list[GoNoGoDecision]:
        return sorted(self.bot.rows(GoNoGoDecision), key=lambda d: d.id or 0)

    def decision(self, decision_id: int) -> GoNoGoDecision:
        (found,) = self.bot.rows(GoNoGoDecision, GoNoGoDecision.id == decision_id)
        return found

    def fresh(self, decision: GoNoGoDecision) -> GoNoGoDecision:
        assert decision.id is not None
        return self.decision(decision.id)

    def card_posted(self, decision_id: int) -> GoNoGoDecision:
        def posted() -> GoNoGoDecision | None:
            found = self.decision(decision_id)
            return found if found.message_ts else None

        found = wait_until(posted, message=f"the card of GNG-{decision_id}")
        assert found is not None
        return found

    def card(self, decision_id: int) -> str:
        """The card as Slack shows it now (after every pending update)."""
        decision = self.card_posted(decision_id)
        self.bot.settle()
        with self.ws.lock:
            message = self.ws.find_message(decision.channel_id, decision.message_ts)
            assert message is not None
            return dump({"text": message.text, "blocks": message.blocks})

    def gates(self, decision_id: int) -> dict[str, tuple[str, str]]:
        decision = self.decision(decision_id)
        rows = self.bot.rows(
            GateResult, GateResult.decision_id == decision_id, GateResult.evaluation == decision.evaluation
        )
        return {r.name: (r.status, r.evidence) for r in rows}

    def channel_texts(self) -> str:
        with self.ws.lock:
            return "\n".join(dump({"text": m.text, "blocks": m.blocks}) for m in self.ws.messages("releases"))

    def approve_all(self, decision_id: int) -> None:
        self.press(decision_id, "gonogo_approve", "U_BOB")
        self.press(decision_id, "gonogo_approve", "U_CAROL")


def _script(path: Path, body: str) -> None:
    path.write_text(body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def start(
    tmp_path: Path, slack: SlackEmulator, *, objection: int | None = None, http_timeout: float = 3
) -> Iterator[Rig]:
    ws = slack.workspace
    for name in ("carol", "dave", "erin"):
        ws.add_user(name)
    sre = ws.add_usergroup("sre", ["U_ALICE", "U_BOB", "U_ERIN"])
    product = ws.add_usergroup("product", ["U_CAROL", "U_ERIN"])
    health, prometheus, github = (
        HealthFake(hang_seconds=30),
        PrometheusFake(hang_seconds=30),
        GitHubChecksFake(token=GITHUB_TOKEN),
    )
    servers: list[RunningServer] = [serve_in_thread(x.app) for x in (health, prometheus, github)]
    _script(tmp_path / "deploy.py", DEPLOY_SCRIPT)
    _script(tmp_path / "smoke.py", SMOKE_SCRIPT)
    for env in ("staging", "prod"):
        (tmp_path / "manifests" / env).mkdir(parents=True)
        (tmp_path / "manifests" / env / "deployment.yaml").write_text(PINNED, encoding="utf-8")
    for service in ("checkout", "search"):
        health.set(f"/ci/{service}/{VERSION}", json={"status": "passed", "pipeline": 812})
    prometheus.set(BURN, 0.42)
    prometheus.set(CANARY, 0.3)
    github.set_runs(
        "acme/checkout", VERSION, [("build", "completed", "success"), ("e2e", "completed", "success")]
    )
    config = (
        CONFIG.replace("S_SRE", sre)
        .replace("S_PRODUCT", product)
        .replace("HEALTH", servers[0].url)
        .replace("HTTP_TIMEOUT", str(http_timeout))
        .replace("PYTHON", sys.executable)
        .replace("TMP", str(tmp_path))
        .replace("BURN", BURN.replace("'", "''"))
        .replace("CANARY", CANARY.replace("'", "''"))
        .replace("OBJECTION", f"objection_window_minutes: {objection}" if objection else "")
    )
    settings = {
        "prometheus_url": servers[1].url,
        "github_api_url": servers[2].url,
        "github_token": GITHUB_TOKEN,
    }
    try:
        with running_bot(tmp_path, slack, config=config, settings=settings) as bot:
            yield Rig(bot, health, prometheus, github, tmp_path)
    finally:
        health.release()
        prometheus.release()
        github.release()
        for server in servers:
            server.stop()
    assert not github.problems, github.problems


@pytest.fixture
def rig(tmp_path: Path, slack: SlackEmulator) -> Iterator[Rig]:
    yield from start(tmp_path, slack)


# --- GO --------------------------------------------------------------------------------------------------


def test_all_gates_green_plus_approvals_is_go(rig: Rig) -> None:
    reply = rig.gonogo(f"checkout {VERSION} prod")
    assert reply["response_type"] == "ephemeral" and "NO-GO" in dump(reply)
    (decision,) = rig.decisions()
    assert decision.id is not None
    gates = rig.gates(decision.id)
    assert set(gates) == {
        "No open incident",
        "No deploy freeze",
        "Change window",
        "CI summary",
        "error budget burn",
        "GitHub checks",
        "Images pinned by digest",
        "smoke test",
    }
    assert {status for status, _ in gates.values()} == {"pass"}, gates
    assert "status is 'passed'" in gates["CI summary"][1]
    assert "2 check run(s) green on v1.4.3" in gates["GitHub checks"][1]
    assert gates["smoke test"][1] == "12 smoke tests passed on prod v1.4.3"
    assert "all 2 image reference(s) pinned" in gates["Images pinned by digest"][1]
    card = rig.card(decision.id)
    assert f"Release checkout {VERSION} (prod) — GO/NO-GO @ 09:00 UTC" in card
    assert "NO-GO" in card and "approvals (product 0/1, sre 0/1)" in card
    assert card.count(":white_check_mark:") == 8
    for button in ("gonogo_approve", "gonogo_reject", "gonogo_recheck"):
        assert button in card
    assert "gonogo_deploy" not in card

    first = rig.press(decision.id, "gonogo_approve", "U_BOB")
    assert "counts" in dump(first)
    assert rig.decision(decision.id).status == "open"
    rig.press(decision.id, "gonogo_approve", "U_CAROL")
    found = rig.decision(decision.id)
    assert (found.status, found.verdict, found.blockers) == ("go", "go", [])
    card = rig.card(decision.id)
    assert ":large_green_circle: *GO*" in card and "<@U_BOB>" in card and "<@U_CAROL>" in card
    assert "gonogo_deploy" in card  # the command tool can deploy: its dry run says so
    announced = rig.channel_texts()
    assert f"*GO* — release *checkout* `{VERSION}` to *prod*" in announced
    votes = rig.bot.rows(GoNoGoVote, GoNoGoVote.decision_id == decision.id)
    assert sorted((v.user_id, v.vote, v.roles) for v in votes) == [
        ("U_BOB", "approve", ["sre"]),
        ("U_CAROL", "approve", ["product"]),
    ]
    audit = [(a.command, a.user_id, a.outcome) for a in rig.bot.audit()]
    assert ("/gonogo", "U_ALICE", "ok") in audit
    assert ("/gonogo approve", "U_BOB", "ok") in audit and ("gonogo.go", "U_CAROL", "ok") in audit
    assert any(a.command == "gonogo.decision" and "GNG-" in a.text for a in rig.bot.audit())

    status = dump(rig.gonogo("status checkout"))
    assert f"GNG-{decision.id}" in status and "· go · GO" in status and "sre 1/1" in status


# --- each kind of gate failing -----------------------------------------------------------------------------


def _fail(rig: Rig, kind: str) -> str:
    """Make the gate of ``kind`` fail; return the gate's name on the card."""
    if kind == "no_open_incidents":
        rig.bot.command(
            "/incident", "declare sev2 Checkout is slow --service checkout", channel="incident-bridge"
        )
        wait_until(rig.bot.incidents)
        rig.bot.settle()
        return "No open incident"
    if kind == "no_freeze":
        rig.bot.command(
            "/gonogo", "freeze checkout because payment provider migration", user="U_BOB", channel="releases"
        )
        wait_until(lambda: "frozen" in rig.channel_texts(), message="the freeze")
        return "No deploy freeze"
    if kind == "change_window":
        rig.bot.clock.set(datetime(2026, 1, 9, 14, 30, tzinfo=UTC))  # a Friday afternoon
        return "Change window"
    if kind == "http":
        rig.health.set(f"/ci/checkout/{VERSION}", json={"status": "failed"})
        return "CI summary"
    if kind == "prometheus":
        rig.prometheus.set(BURN, 2.5)
        return "error budget burn"
    if kind == "github_checks":
        rig.github.set_runs(
            "acme/checkout", VERSION, [("build", "completed", "success"), ("e2e", "completed", "failure")]
        )
        return "GitHub checks"
    if kind == "image_digest":
        (rig.tmp / "manifests" / "prod" / "worker.yaml").write_text(
            "spec:\n  containers:\n    - {name: worker, image: 'ghcr.io/acme/worker:latest'}\n",
            encoding="utf-8",
        )
        return "Images pinned by digest"
    if kind == "command":
        (rig.tmp / "smoke_fails").write_text("", encoding="utf-8")
        return "smoke test"
    raise AssertionError(kind)


EVIDENCE = {
    "no_open_incidents": "open SEV1/SEV2 on checkout: INC-1 (SEV2, checkout) Checkout is slow",
    "no_freeze": "deploys frozen (checkout: payment provider migration)",
    "change_window": (
        "Fri 2026-01-09 14:30 UTC: inside deny window `fri 12:00-23:59`; opens Mon 2026-01-12 00:00"
    ),
    "http": "status is 'failed' (expected 'passed')",
    "prometheus": "value 2.5 above the maximum 1",
    "github_checks": "v1.4.3: failed: e2e (failure)",
    "image_digest": "1 image(s) not pinned by digest: ghcr.io/acme/worker:latest",
    "command": "exit 1: 2 of 12 smoke tests failed: checkout_pay, checkout_refund",
}


@pytest.mark.parametrize("kind", list(EVIDENCE))
def test_each_gate_kind_failing_is_no_go_naming_it(rig: Rig, kind: str) -> None:
    name = _fail(rig, kind)
    decision = rig.decide()
    assert decision.id is not None
    rig.approve_all(decision.id)
    found = rig.decision(decision.id)
    assert (found.status, found.verdict, found.blockers) == ("open", "no_go", [name])
    status, evidence = rig.gates(decision.id)[name]
    assert status == "fail" and evidence == EVIDENCE[kind]
    others = {n: s for n, (s, _) in rig.gates(decision.id).items() if n != name}
    assert set(others.values()) == {"pass"}, others
    card = rig.card(decision.id)
    assert f":red_circle: *NO-GO* — blocked by: {name}" in card and f":x: *{name}*" in card


def test_missing_approvals_are_no_go_naming_them(rig: Rig) -> None:
    decision = rig.decide()
    assert decision.id is not None
    rig.press(decision.id, "gonogo_approve", "U_CAROL")
    assert rig.decision(decision.id).blockers == ["approvals (sre 0/1)"]
    assert ":hourglass_flowing_sand: sre 0/1" in rig.card(decision.id)


def test_open_sev1_is_no_go(rig: Rig) -> None:
    rig.bot.command("/incident", "declare sev1 Payments down --service checkout", channel="incident-bridge")
    wait_until(rig.bot.incidents)
    rig.bot.settle()
    decision = rig.decide()
    assert decision.id is not None
    assert "No open incident" in decision.blockers
    status, evidence = rig.gates(decision.id)["No open incident"]
    assert status == "fail" and "INC-1 (SEV1, checkout) Payments down" in evidence
    # Another service is not blocked by an incident scoped to checkout.
    other = rig.decide(f"search {VERSION} prod")
    assert other.blockers == []


def test_freeze_is_no_go_and_unfreeze_clears_it_on_recheck(rig: Rig) -> None:
    _fail(rig, "no_freeze")
    decision = rig.decide()
    assert decision.id is not None
    assert "No deploy freeze" in decision.blockers
    rig.bot.command("/gonogo", "unfreeze checkout", user="U_BOB", channel="releases")
    wait_until(lambda: "lifted" in rig.channel_texts(), message="the freeze lifted")
    reply = rig.press(decision.id, "gonogo_recheck", "U_DAVE")
    assert "Re-checked" in dump(reply)
    found = rig.decision(decision.id)
    assert found.evaluation == 2 and "No deploy freeze" not in found.blockers
    assert rig.gates(decision.id)["No deploy freeze"] == ("pass", "no deploy freeze on checkout")


# --- timeouts -----------------------------------------------------------------------------------------------


@pytest.fixture
def slow_rig(tmp_path: Path, slack: SlackEmulator) -> Iterator[Rig]:
    yield from start(tmp_path, slack, http_timeout=1)


def test_a_hung_gate_is_a_warning_within_its_timeout_while_the_others_report(slow_rig: Rig) -> None:
    rig = slow_rig
    rig.health.hang(f"/ci/checkout/{VERSION}")
    started = time.monotonic()
    rig.gonogo(f"checkout {VERSION} prod")
    elapsed = time.monotonic() - started
    assert elapsed < 4, f"the reply took {elapsed:.1f}s"
    (decision,) = rig.decisions()
    assert decision.id is not None
    gates = rig.gates(decision.id)
    assert gates["CI summary"] == ("error", "no answer within 1 s (timed out)")
    assert {s for n, (s, _) in gates.items() if n != "CI summary"} == {"pass"}
    card = rig.card(decision.id)
    assert ":warning: *CI summary* (could not be evaluated)" in card and "blocked by: CI summary" in card
    rig.health.release()
    rig.health.set(f"/ci/checkout/{VERSION}", json={"status": "passed"})
    rig.press(decision.id, "gonogo_recheck", "U_BOB")
    assert rig.gates(decision.id)["CI summary"][0] == "pass"


# --- policy exceptions --------------------------------------------------------------------------------------


def test_an_exception_waives_exactly_one_gate_of_one_service_until_it_expires(rig: Rig) -> None:
    _fail(rig, "http")
    _fail(rig, "prometheus")
    rig.health.set(f"/ci/search/{VERSION}", json={"status": "failed"})
    reply = dump(
        rig.gonogo(
            'exception "CI summary" checkout 2 risk low because CI flakes on the refund suite, fix in PLAT-12'
        )
    )
    assert "Policy exception EX-1" in reply
    (exception,) = rig.bot.rows(GateException)
    assert (exception.service, exception.gate, exception.owner, exception.risk, exception.days) == (
        "checkout",
        "ci-summary",
        "U_ALICE",
        "low",
        2,
    )
    assert exception.expires_at == rig.bot.clock.now() + timedelta(days=2)
    decision = rig.decide()
    assert decision.id is not None
    rig.approve_all(decision.id)
    found = rig.decision(decision.id)
    assert found.blockers == ["error budget burn"] and found.waived == [exception.id]
    card = rig.card(decision.id)
    waived = ":white_check_mark: *CI summary* — passed by exception EX-1"
    assert f"{waived} (owner <@U_ALICE>, expires 2026-01-07 09:00 UTC)" in card
    assert "status is 'failed' (expected 'passed')" in card  # the evidence stays visible
    # The same gate of another service is not waived.
    search = rig.decide(f"search {VERSION} prod")
    assert search.blockers == ["CI summary"]
    status = dump(rig.gonogo("status"))
    assert "EX-1" in status and "risk low" in status and "CI flakes on the refund suite" in status

    rig.prometheus.set(BURN, 0.5)
    rig.press(decision.id, "gonogo_recheck", "U_BOB")
    assert rig.decision(decision.id).status == "go"  # passes only by the exception

    rig.bot.clock.advance(timedelta(days=2, minutes=1))
    rig.bot.tick()
    wait_until(lambda: rig.fresh(decision).status == "open", message="the exception to stop applying")
    found = rig.decision(decision.id)
    assert found.blockers == ["CI summary"] and found.waived == []
    texts = rig.channel_texts()
    assert "Policy exception EX-1 expired" in texts and "GO withdrawn" in texts
    assert "EX-1" not in dump(rig.gonogo("status checkout")).split("Policy exceptions in force")[1]
    assert any(a.command == "gonogo.exception" for a in rig.bot.audit())


def test_an_eight_day_exception_is_refused(rig: Rig) -> None:
    reply = dump(rig.gonogo("exception image_digest checkout 8 because legacy sidecar"))
    assert "at most 7 day(s), not 8" in reply
    assert rig.bot.rows(GateException) == []
    assert [a.outcome for a in rig.bot.audit() if a.command == "/gonogo"] == ["refused"]
    assert "at most 7" not in rig.channel_texts()


# --- approvals and rejections -------------------------------------------------------------------------------


def test_self_approval_and_duplicate_approvals_do_not_count(rig: Rig) -> None:
    decision = rig.decide(user="U_ALICE")  # Alice is in the SRE group
    assert decision.id is not None
    own = dump(rig.press(decision.id, "gonogo_approve", "U_ALICE"))
    assert "does not count" in own and "self-approval is not allowed" in own
    assert rig.decision(decision.id).blockers == ["approvals (product 0/1, sre 0/1)"]
    # Erin holds both roles: she fills one slot, not two.
    rig.press(decision.id, "gonogo_approve", "U_ERIN")
    assert rig.decision(decision.id).blockers == ["approvals (sre 0/1)"] or rig.decision(
        decision.id
    ).blockers == ["approvals (product 0/1)"]
    again = dump(rig.press(decision.id, "gonogo_approve", "U_ERIN"))
    assert "already approved" in again
    refused = dump(rig.press(decision.id, "gonogo_approve", "U_DAVE"))
    assert "You may not approve" in refused
    assert "approvals (" in rig.decision(decision.id).blockers[0]
    # Bob (SRE only) completes it: Erin's approval moves to the product slot.
    rig.press(decision.id, "gonogo_approve", "U_BOB")
    assert rig.decision(decision.id).status == "go"
    card = rig.card(decision.id)
    assert "Not counted: <@U_ALICE> (the requester: self-approval is not allowed)" in card
    votes = rig.bot.rows(GoNoGoVote, GoNoGoVote.decision_id == decision.id)
    assert sorted((v.user_id, v.valid) for v in votes) == [
        ("U_ALICE", False),
        ("U_BOB", True),
        ("U_ERIN", True),
    ]


def test_a_reject_with_a_reason_wins(rig: Rig) -> None:
    decision = rig.decide()
    assert decision.id is not None
    rig.approve_all(decision.id)
    assert rig.decision(decision.id).status == "go"
    empty = rig.reject(decision.id, "U_DAVE", "   ")
    assert empty.json()["response_action"] == "errors" and "reason_block" in empty.json()["errors"]
    assert rig.decision(decision.id).status == "go"
    response = rig.reject(decision.id, "U_DAVE", "Black Friday traffic <!channel> starts in an hour")
    assert response.status_code == 200
    wait_until(lambda: rig.fresh(decision).status == "rejected", message="the rejection")
    found = rig.decision(decision.id)
    assert found.verdict == "no_go" and found.blockers == ["rejected"] and found.active_key is None
    card = rig.card(decision.id)
    assert "*NO-GO — rejected*" in card and "<@U_DAVE>" in card and "&lt;!channel&gt;" in card
    assert "gonogo_approve" not in card
    assert "rejected by <@U_DAVE>: Black Friday traffic" in rig.channel_texts()
    late = dump(rig.bot.reply_after("/gonogo", "status checkout", channel="releases"))
    assert "rejected by <@U_DAVE>" in late
    assert any(a.command == "/gonogo reject" and a.user_id == "U_DAVE" for a in rig.bot.audit())


# --- Deploy -------------------------------------------------------------------------------------------------


def test_the_deploy_button_deploys_once_and_records_the_release(rig: Rig) -> None:
    decision = rig.decide()
    assert decision.id is not None
    rig.approve_all(decision.id)
    refused = dump(rig.press(decision.id, "gonogo_deploy", "U_DAVE"))
    assert "You may not deploy checkout" in refused
    assert not (rig.tmp / "deploys.log").exists()

    reply = dump(rig.press(decision.id, "gonogo_deploy", "U_BOB"))
    assert "deploying checkout" in reply
    wait_until(lambda: rig.fresh(decision).status == "deployed", message="the deploy", timeout=20)
    rig.bot.settle()
    assert (rig.tmp / "deploys.log").read_text().splitlines() == [f"deploy checkout prod {VERSION}"]
    found = rig.decision(decision.id)
    assert found.deploy_ok and found.deployed_by == "U_BOB" and found.active_key is None
    (entry,) = rig.bot.rows(ReleaseRecord)
    assert (
        entry.service,
        entry.environment,
        entry.kind,
        entry.version,
        entry.status,
        entry.actor,
        entry.tool,
    ) == (
        "checkout",
        "prod",
        "deploy",
        VERSION,
        "succeeded",
        "U_BOB",
        "command",
    )
    texts = rig.channel_texts()
    assert f"*Deployed* *checkout* `{VERSION}` to *prod*" in texts
    assert ":large_green_circle: error rate: 0.3%" in texts and "GO/NO-GO card" in texts
    card = rig.card(decision.id)
    assert "GO — deployed" in card and "gonogo_deploy" not in card
    again = dump(rig.press(decision.id, "gonogo_recheck", "U_BOB"))
    assert "is deployed" in again
    assert len((rig.tmp / "deploys.log").read_text().splitlines()) == 1


def test_deploy_runs_the_gates_again_and_a_failed_deploy_can_be_retried(rig: Rig) -> None:
    decision = rig.decide()
    assert decision.id is not None
    rig.approve_all(decision.id)
    _fail(rig, "prometheus")
    refused = dump(rig.press(decision.id, "gonogo_deploy", "U_BOB"))
    assert "no longer GO (blocked by error budget burn)" in refused and "nothing was deployed" in refused
    assert rig.decision(decision.id).status == "open" and not (rig.tmp / "deploys.log").exists()
    rig.prometheus.set(BURN, 0.3)
    rig.press(decision.id, "gonogo_recheck", "U_BOB")
    (rig.tmp / "deploy_fails").write_text("", encoding="utf-8")
    rig.press(decision.id, "gonogo_deploy", "U_BOB")
    wait_until(lambda: rig.fresh(decision).deploy_ok is False, message="the failed deploy", timeout=20)
    rig.bot.settle()
    assert rig.decision(decision.id).status == "go"
    assert [r.status for r in rig.bot.rows(ReleaseRecord)] == ["failed"]
    assert ":x: *Deploy failed*" in rig.channel_texts() and "the cluster said no" in rig.channel_texts()
    (rig.tmp / "deploy_fails").unlink()
    rig.press(decision.id, "gonogo_deploy", "U_BOB")
    wait_until(lambda: rig.fresh(decision).status == "deployed", message="the retried deploy", timeout=20)
    assert sorted(r.status for r in rig.bot.rows(ReleaseRecord)) == ["failed", "succeeded"]


# --- the objection window -----------------------------------------------------------------------------------


@pytest.fixture
def objection_rig(tmp_path: Path, slack: SlackEmulator) -> Iterator[Rig]:
    yield from start(tmp_path, slack, objection=10)


def test_go_is_announced_after_the_objection_window_when_nobody_objects(objection_rig: Rig) -> None:
    rig = objection_rig
    decision = rig.decide()
    assert decision.id is not None
    rig.approve_all(decision.id)
    found = rig.decision(decision.id)
    assert found.status == "objection" and found.objection_until == rig.bot.clock.now() + timedelta(
        minutes=10
    )
    texts = rig.channel_texts()
    assert "If no objections in 10 min, proceeding" in texts and "*GO* — release" not in texts
    rig.bot.clock.advance(timedelta(minutes=9))
    rig.bot.tick()
    assert rig.decision(decision.id).status == "objection"
    rig.bot.clock.advance(timedelta(minutes=2))
    rig.bot.tick()
    wait_until(lambda: rig.fresh(decision).status == "go", message="GO after the window")
    rig.bot.settle()
    assert "*GO* — release *checkout*" in rig.channel_texts()
    assert rig.decision(decision.id).evaluation == 2  # the gates ran again when the window ended


def test_an_objection_in_the_window_stops_the_release(objection_rig: Rig) -> None:
    rig = objection_rig
    decision = rig.decide()
    assert decision.id is not None
    rig.approve_all(decision.id)
    rig.reject(decision.id, "U_DAVE", "the payments team is mid-migration")
    wait_until(lambda: rig.fresh(decision).status == "rejected")
    rig.bot.clock.advance(timedelta(minutes=11))
    rig.bot.tick()
    assert rig.decision(decision.id).status == "rejected"
    assert "*GO* — release" not in rig.channel_texts()


def test_a_new_gonogo_supersedes_the_live_decision(rig: Rig) -> None:
    first = rig.decide()
    second = rig.decide(f"checkout {VERSION} prod")
    assert first.id is not None and second.id is not None
    assert rig.decision(first.id).status == "superseded" and rig.decision(first.id).superseded_by == second.id
    assert f"Superseded* by GNG-{second.id}" in rig.card(first.id)
    usage = dump(rig.gonogo("checkout"))
    assert "Give the version too" in usage and "/gonogo status" in usage
    unknown = dump(rig.gonogo(f"payments {VERSION}"))
    assert "Unknown service `payments`" in unknown
    assert not [a for a in rig.bot.rows(AuditLog) if a.outcome == "error"]
