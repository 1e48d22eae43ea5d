"""Gate evaluation against local fakes (no bot): every kind's evidence, concurrency and timeouts, the gate
config checks, image references, and the verdict (approval slots, exceptions, advisory gates, Reject)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bot.adapters.gate_sources import HttpGateSources
from bot.adapters.prometheus import PrometheusMetrics
from bot.clock import FakeClock
from bot.config import Config, parse_config
from bot.db.engine import Database
from bot.db.models import DeployFreeze, GateException, GateResult, GoNoGoVote
from bot.deps import Deps
from bot.gonogo import gate_specs as gs
from bot.gonogo import gates as g
from bot.gonogo.assess import assess, tally
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.vendors.github_checks import GitHubChecksFake
from bot.sandbox.vendors.health import HealthFake
from bot.sandbox.vendors.prometheus import PrometheusFake

TOKEN = "ghp-unit"
AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DIGEST = "sha256:" + "0123456789abcdef" * 4


@dataclass
class Fakes:
    health: HealthFake
    prometheus: PrometheusFake
    github: GitHubChecksFake
    servers: list[RunningServer]

    @property
    def health_url(self) -> str:
        return self.servers[0].url


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    health, prometheus, github = (
        HealthFake(hang_seconds=10),
        PrometheusFake(hang_seconds=10),
        GitHubChecksFake(token=TOKEN),
    )
    servers = [serve_in_thread(x.app) for x in (health, prometheus, github)]
    try:
        yield Fakes(health, prometheus, github, servers)
    finally:
        for fake in (health, prometheus, github):
            fake.release()
        for server in servers:
            server.stop()


def services(fakes: Fakes, config: Config, db: Database | None = None) -> Deps:
    """The part of ``Deps`` the gates use (the database only where a test gives one: the incident
    gate is tested end to end)."""
    return cast(
        Deps,
        SimpleNamespace(
            config=config,
            metrics=PrometheusMetrics(fakes.servers[1].url),
            gate_sources=HttpGateSources(github_api_url=fakes.servers[2].url, github_token=TOKEN),
            clock=FakeClock(AT),
            db=db,
        ),
    )


def config(gates_yaml: str, fakes: Fakes | None = None) -> Config:
    text = f"""
services:
  - name: checkout
    environments: [staging, prod]
    gates:
{gates_yaml}
access:
  - {{action: gonogo.approve, role: sre, users: [U_SRE]}}
"""
    return parse_config(text.replace("HEALTH", fakes.health_url if fakes else "http://127.0.0.1:9"))


async def run(svc: Deps, version: str = "v1.4.3", env: str = "prod") -> dict[str, g.GateRun]:
    service = svc.config.services[0]
    runs = await g.evaluate(
        svc, service=service, environment=env, version=version, gates=gs.gates_for(service, env)
    )
    return {r.gate.key: r for r in runs}


def outcome(run: g.GateRun) -> tuple[str, str]:
    return run.status, run.evidence


# --- every kind ---------------------------------------------------------------------------------------------


async def test_a_hung_gate_times_out_while_the_others_report(fakes: Fakes, tmp_path: Path) -> None:
    fakes.health.hang("/ci/hung")
    fakes.health.set("/ci/v1.4.3", json={"status": "passed"})
    fakes.prometheus.hang("slow_query")
    sleeper = tmp_path / "sleep.py"
    sleeper.write_text("import time\nprint('starting')\ntime.sleep(30)\n")
    cfg = config(
        f"""
      - {{kind: http, name: hung, url: "HEALTH/ci/hung", timeout_seconds: 0.5}}
      - {{kind: http, name: ci, url: "HEALTH/ci/{{version}}", json_field: status, expect_value: passed}}
      - {{kind: prometheus, name: slow, query: slow_query, max: 1, timeout_seconds: 0.5}}
      - {{kind: command, name: sleeper, argv: ["{sys.executable}", "{sleeper}"], timeout_seconds: 0.5}}
      - {{kind: change_window, deny: [sat, sun]}}
""",
        fakes,
    )
    started = time.monotonic()
    found = await run(services(fakes, cfg))
    assert time.monotonic() - started < 3
    assert outcome(found["hung"]) == ("error", "no answer within 0.5 s (timed out)")
    assert found["slow"].status == "error" and found["sleeper"].status == "error"
    assert outcome(found["ci"]) == ("pass", "status is 'passed'")
    assert found["change_window"].status == "pass"


@pytest.mark.parametrize(
    ("spec", "answer", "expected"),
    [
        ("expect_status: 204", {"status": "ok"}, ("fail", "HTTP 200 (expected 204)")),
        ("json_field: ready", {"status": "ok"}, ("fail", "HTTP 200 but ready is missing from the answer")),
        ("json_field: plan.ready", {"plan": {"ready": True}}, ("pass", "plan.ready is true")),
        ("json_field: plan.ready", {"plan": {"ready": False}}, ("fail", "plan.ready is false")),
        (
            "{json_field: canary.0.score, min: 0.9}",
            {"canary": [{"score": 0.95}]},
            ("pass", "canary.0.score 0.95 (≥ 0.9)"),
        ),
        ("{json_field: failures, max: 0}", {"failures": 2}, ("fail", "failures 2 above the maximum 0")),
        (
            "{json_field: status, expect_value: passed}",
            {"status": "running"},
            ("fail", "status is 'running' (expected 'passed')"),
        ),
    ],
)
async def test_http_gate_conditions(fakes: Fakes, spec: str, answer: Any, expected: tuple[str, str]) -> None:
    fakes.health.set("/summary", json=answer)
    extra = spec.strip("{}")
    cfg = config(f'      - {{kind: http, url: "HEALTH/summary", {extra}}}', fakes)
    assert outcome((await run(services(fakes, cfg)))["http"]) == expected


async def test_http_gate_fills_placeholders_and_reports_unreachable(fakes: Fakes) -> None:
    fakes.health.set("/ci/checkout/prod/v2", json={"status": "ok"})
    cfg = config(
        """
      - {kind: http, name: ci, url: "HEALTH/ci/{service}/{env}/{version}"}
      - {kind: http, name: down, url: "http://127.0.0.1:9/x"}
""",
        fakes,
    )
    found = await run(services(fakes, cfg), version="v2")
    assert outcome(found["ci"]) == ("pass", "HTTP 200")
    assert found["down"].status == "error" and "127.0.0.1 unreachable" in found["down"].evidence


async def test_prometheus_gate(fakes: Fakes) -> None:
    fakes.prometheus.set("burn", 0.4)
    fakes.prometheus.set("latency", 812.5)
    fakes.prometheus.fail("bad(", "parse error at char 4", error_type="bad_data", status=400)
    cfg = config(
        """
      - {kind: prometheus, name: burn, query: burn, max: 1.0}
      - {kind: prometheus, name: latency, query: latency, max: 300, unit: ms}
      - {kind: prometheus, name: nodata, query: nothing, min: 1}
      - {kind: prometheus, name: nodata ok, query: nothing, min: 1, no_data: pass}
      - {kind: prometheus, name: bad, query: "bad(", max: 1}
""",
        fakes,
    )
    svc = services(fakes, cfg)
    found = await run(svc)
    assert outcome(found["burn"]) == ("pass", "value 0.4 (≤ 1)")
    assert outcome(found["latency"]) == ("fail", "value 812.5ms above the maximum 300ms")
    assert outcome(found["nodata"]) == ("fail", "the query returned no data")
    assert found["nodata-ok"].status == "pass"
    assert outcome(found["bad"]) == ("error", "Prometheus error (bad_data): parse error at char 4")
    cast(Any, svc).metrics = None
    assert outcome((await run(svc))["burn"]) == ("error", "PROMETHEUS_URL is not set")


async def test_github_checks_gate(fakes: Fakes) -> None:
    many = [(f"job-{i}", "completed", "success") for i in range(140)]
    fakes.github.set_runs("acme/checkout", "v1", [*many, ("lint", "completed", "skipped")])
    fakes.github.set_runs(
        "acme/checkout",
        "v2",
        [
            ("build", "completed", "success"),
            ("e2e", "completed", "timed_out"),
            ("deploy-plan", "in_progress", None),
        ],
    )
    fakes.github.set_runs("acme/checkout", "v3", [])
    cfg = config(
        """
      - {kind: github_checks, repository: acme/checkout}
      - {kind: github_checks, name: required, repository: acme/checkout, required: [build, security]}
""",
        fakes,
    )
    svc = services(fakes, cfg)
    v1 = await run(svc, version="v1")
    assert outcome(v1["github_checks"]) == ("pass", "141 check run(s) green on v1")  # two pages
    assert outcome(v1["required"]) == ("fail", "v1: missing: build, security")
    v2 = await run(svc, version="v2")
    assert outcome(v2["github_checks"]) == ("fail", "v2: failed: e2e (timed_out); not finished: deploy-plan")
    assert outcome(v2["required"]) == ("fail", "v2: missing: security")
    assert outcome((await run(svc, version="v3"))["github_checks"]) == (
        "fail",
        "no check runs on v3 in acme/checkout",
    )
    assert outcome((await run(svc, version="v9"))["github_checks"]) == (
        "error",
        "GitHub: no commit v9 in acme/checkout",
    )
    assert not fakes.github.problems
    pages = [r["params"] for r in fakes.github.requests if r["ref"] == "v1"]
    assert {"per_page": "100", "filter": "latest"} in pages
    assert {"per_page": "100", "filter": "latest", "page": "2"} in pages  # followed the Link header
    cast(Any, svc).gate_sources = HttpGateSources(github_api_url=fakes.servers[2].url)  # no token
    assert outcome((await run(svc, version="v1"))["github_checks"]) == ("error", "GITHUB_TOKEN is not set")


async def test_image_digest_gate_reads_files_folders_and_urls(fakes: Fakes, tmp_path: Path) -> None:
    prod = tmp_path / "deploy" / "prod"
    prod.mkdir(parents=True)
    (prod / "app.yaml").write_text(f"containers:\n  - image: ghcr.io/acme/app@{DIGEST}\n")
    (prod / "values.yaml").write_text(
        f"image:\n  repository: ghcr.io/acme/worker\n  tag: v1\n  digest: {DIGEST}\n"
    )
    (tmp_path / "deploy" / "staging").mkdir()
    (tmp_path / "deploy" / "staging" / "app.yaml").write_text(
        "containers:\n  - image: ghcr.io/acme/app:v1\n  - image: redis:latest\n"
    )
    fakes.health.set("/manifests", json={"spec": {"containers": [{"image": f"nginx@{DIGEST}"}]}})
    cfg = config(
        f"""
      - {{kind: image_digest, name: files, path: "{tmp_path}/deploy/{{env}}"}}
      - {{kind: image_digest, name: url, url: "HEALTH/manifests"}}
      - {{kind: image_digest, name: missing, path: "{tmp_path}/nowhere"}}
""",
        fakes,
    )
    svc = services(fakes, cfg)
    prod_runs = await run(svc)
    assert outcome(prod_runs["files"]) == ("pass", "all 2 image reference(s) pinned by @sha256 digest")
    assert outcome(prod_runs["url"]) == ("pass", "all 1 image reference(s) pinned by @sha256 digest")
    assert outcome(prod_runs["missing"]) == ("error", f"{tmp_path}/nowhere does not exist")
    staging = await run(svc, env="staging")
    assert outcome(staging["files"]) == (
        "fail",
        "2 image(s) not pinned by digest: ghcr.io/acme/app:v1, redis:latest",
    )


def test_image_references_in_manifests_values_and_templates() -> None:
    multi = f"kind: A\nimage: a@{DIGEST}\n---\nkind: B\nspec:\n  image: b:1\n"
    assert g.images(multi) == [(f"a@{DIGEST}", True), ("b:1", False)]
    helm = "image:\n  registry: ghcr.io\n  repository: acme/x\n  tag: v2\n"
    assert g.images(helm) == [("ghcr.io/acme/x:v2", False)]
    template = (
        'image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n  image: c:3 # pinned later\n'
    )
    assert g.images(template) == [
        ("{{ .Values.image.repository }}:{{ .Values.image.tag }}", False),
        ("c:3", False),
    ]


async def test_command_gate(fakes: Fakes, tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(
        "import os, sys\nprint('checking')\nprint(os.environ['CMDCENTER_VERSION'], sys.argv[1])\n"
        "sys.exit(0 if sys.argv[1] == 'prod' else 2)\n"
    )
    cfg = config(
        f"""
      - {{kind: command, argv: ["{sys.executable}", "{script}", "{{env}}"]}}
      - {{kind: command, name: missing, argv: ["/nonexistent/check"]}}
""",
        fakes,
    )
    svc = services(fakes, cfg)
    assert outcome((await run(svc))["command"]) == ("pass", "v1.4.3 prod")
    staging = await run(svc, env="staging")
    assert outcome(staging["command"]) == ("fail", "exit 2: v1.4.3 staging")
    assert outcome(staging["missing"]) == (
        "error",
        "/nonexistent/check not found (is it installed and on PATH?)",
    )


async def test_no_freeze_gate_reads_the_freezes_in_force(fakes: Fakes, db: Database) -> None:
    cfg = config("      - {kind: no_freeze}", fakes)
    svc = services(fakes, cfg, db)
    assert outcome((await run(svc))["no_freeze"]) == ("pass", "no deploy freeze on checkout")

    async def freeze(service: str | None, reason: str, key: str) -> None:
        async with db.session() as session:
            session.add(
                DeployFreeze(
                    service=service,
                    reason=reason,
                    source="manual",
                    active_key=key,
                    created_by="U1",
                    created_at=AT,
                )
            )

    await freeze("search", "search reindex", "manual:search")
    assert outcome((await run(svc))["no_freeze"]) == ("pass", "no deploy freeze on checkout")
    await freeze(None, "INC-4 (SEV1): payments down", "incident:4")
    assert outcome((await run(svc))["no_freeze"]) == (
        "fail",
        "deploys frozen (all services: INC-4 (SEV1): payments down)",
    )


async def test_change_window_uses_the_business_clock_and_timezone(fakes: Fakes) -> None:
    cfg = config(
        '      - {kind: change_window, allow: ["mon-fri 10:00-17:00"], timezone: Europe/Paris}', fakes
    )
    svc = services(fakes, cfg)
    assert (await run(svc))["change_window"].status == "pass"  # 10:00 in Paris
    cast(Any, svc).clock = FakeClock(AT - timedelta(minutes=1))
    found = (await run(svc))["change_window"]
    assert found.status == "fail" and "09:59 Europe/Paris: outside allowed window" in found.evidence


# --- config -------------------------------------------------------------------------------------------------


def test_gate_config_problems_name_their_place() -> None:
    cfg = config(
        """
      - {kind: change_window, deny: ["fri 25:00-26:00"]}
      - {kind: http, url: "ftp://example.com"}
      - {kind: prometheus, query: up}
      - {kind: command, argv: [check, "{bogus}"]}
      - {kind: image_digest}
      - {kind: approvals, required: {sre: 1, product: 1}}
      - {kind: github_checks, repository: "not a repo"}
      - {kind: no_freeze, environments: [qa], extra: 1}
      - {kind: change_window, timezone: Mars/Olympus}
"""
    )
    problems = gs.config_problems(cfg)
    expected = [
        "services[0].gates[0] (change_window): 'fri 25:00-26:00': '25:00-26:00' is not a valid time range",
        "services[0].gates[1] (http): url: must be an http(s) URL",
        "services[0].gates[2] (prometheus): set max (the value must stay at or below it) or min",
        "services[0].gates[3] (command): argv: unknown placeholder {bogus}",
        "services[0].gates[4] (image_digest): set exactly one of path (a file or a folder) and url",
        "services[0].gates[5] (approvals): no gonogo.approve access rule gives the role(s) product",
        "services[0].gates[6] (github_checks): repository: String should match pattern",
        "services[0].gates[7] (no_freeze): extra: Extra inputs are not permitted",
        "services[0].gates[8] (change_window): unknown timezone 'Mars/Olympus'",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert not gs.config_problems(config("      - {kind: approvals, required: {sre: 1}}"))


def test_gate_keys_defaults_and_lookup() -> None:
    cfg = config(
        """
      - {kind: http, name: CI summary, url: "https://ci.example.com/a"}
      - {kind: http, url: "https://ci.example.com/b"}
      - {kind: http, url: "https://ci.example.com/c", environments: [staging]}
      - {kind: approvals}
"""
    )
    service = cfg.services[0]
    assert [x.key for x in gs.service_gates(service)] == ["ci-summary", "http", "http-2", "approvals"]
    assert [x.key for x in gs.gates_for(service, "prod")] == ["ci-summary", "http", "approvals"]
    assert (
        gs.find_gate(service, "CI Summary")
        == gs.find_gate(service, "ci-summary")
        == gs.service_gates(service)[0]
    )
    assert gs.find_gate(service, "approvals") is not None and gs.find_gate(service, "nope") is None
    assert gs.required_approvals(gs.find_gate(service, "approvals"), cfg) == {"sre": 1}
    bare = parse_config("services: [{name: search}]").services[0]
    assert [x.kind for x in gs.service_gates(bare)] == ["no_open_incidents", "no_freeze", "approvals"]


# --- the verdict --------------------------------------------------------------------------------------------


def result(position: int, gate: str, status: str, *, advisory: bool = False) -> GateResult:
    return GateResult(
        decision_id=1,
        evaluation=1,
        position=position,
        gate=gate,
        name=gate.replace("-", " "),
        kind="http",
        status=status,
        advisory=advisory,
        evidence=f"{gate} evidence",
        evaluated_at=AT,
    )


def vote(
    user: str, roles: list[str], *, kind: str = "approve", valid: bool = True, reason: str = ""
) -> GoNoGoVote:
    return GoNoGoVote(decision_id=1, user_id=user, vote=kind, roles=roles, valid=valid, reason=reason, at=AT)


def test_a_person_fills_one_slot_and_the_slots_are_matched_to_cover_most() -> None:
    both = tally({"sre": 1, "product": 1}, [("U_ERIN", ["sre", "product"])])
    assert sum(len(t.approvers) for t in both) == 1
    covered = tally({"sre": 1, "product": 1}, [("U_ERIN", ["sre", "product"]), ("U_BOB", ["sre"])])
    assert {t.role: t.approvers for t in covered} == {"product": ["U_ERIN"], "sre": ["U_BOB"]}
    twice = tally({"sre": 2}, [("U_BOB", ["sre"]), ("U_BOB", ["sre"])])
    assert twice[0].approvers == ["U_BOB"] and not twice[0].complete


def test_an_exception_waives_only_its_gate_and_advisory_gates_do_not_block() -> None:
    waiver = GateException(
        id=3,
        service="checkout",
        gate="ci",
        gate_name="ci",
        owner="U_A",
        reason="flaky",
        days=2,
        created_at=AT,
        expires_at=AT + timedelta(days=2),
    )
    found = assess(
        results=[
            result(0, "ci", "fail"),
            result(1, "burn", "error"),
            result(2, "lint", "fail", advisory=True),
        ],
        votes=[vote("U_SRE", ["sre"])],
        exceptions=[waiver],
        required={"sre": 1},
    )
    assert found.verdict == "no_go" and found.blockers == ["burn"] and found.waived == [3]
    assert [(x.key, x.blocking) for x in found.gates] == [("ci", False), ("burn", True), ("lint", False)]


def test_self_approval_does_not_count_and_any_reject_wins() -> None:
    found = assess(
        results=[result(0, "ci", "pass")],
        votes=[vote("U_REQ", ["sre"], valid=False), vote("U_X", [], kind="reject", reason="no")],
        exceptions=[],
        required={"sre": 1},
    )
    assert found.counted == [] and found.blockers == ["approvals (sre 0/1)", "rejected"]
    green = assess(
        results=[result(0, "ci", "pass")], votes=[vote("U_SRE", ["sre"])], exceptions=[], required={"sre": 1}
    )
    assert green.verdict == "go" and green.blockers == [] and green.counted == ["U_SRE"]
