"""ArgoRolloutsDeployer: REST against the rollouts API fake, CLI against the fake ``kubectl``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bot.adapters.argo_rollouts import ArgoRolloutsDeployer, image_version
from bot.config import ServiceConfig
from bot.errors import DeployError
from bot.ports import Release
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.vendors.argo_rollouts import ArgoRolloutsFake
from bot.sandbox.vendors.deploy import HelmFakeState, fake_bin_dir

KUBECTL = str(fake_bin_dir() / "kubectl")
SERVICE = ServiceConfig.model_validate(
    {
        "name": "checkout",
        "deploy": {"tool": "argo_rollouts", "rollout": "{service}", "namespace": "shop-{env}"},
    }
)
IMAGES = ["registry.example.com/shop/checkout:1.3.0", "registry.example.com/shop/checkout:1.4.0"]
PREVIOUS = Release(version="1.3.0", revision="1")


# --- REST -------------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> ArgoRolloutsFake:
    rollouts = ArgoRolloutsFake()
    rollouts.add_rollout("checkout", namespace="shop-prod", images=IMAGES)
    return rollouts


@pytest.fixture
def server(fake: ArgoRolloutsFake) -> Iterator[RunningServer]:
    with serve_in_thread(fake.app) as running:
        yield running


@pytest.fixture
async def rest(server: RunningServer) -> AsyncIterator[ArgoRolloutsDeployer]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield ArgoRolloutsDeployer(server.url, client=http)


async def test_rest_history_newest_first(rest: ArgoRolloutsDeployer) -> None:
    releases = await rest.releases(service=SERVICE, environment="prod")
    assert [(r.revision, r.version, r.status) for r in releases] == [
        ("2", "1.4.0", "deployed"),
        ("1", "1.3.0", "superseded"),
    ]
    assert releases[0].description == "checkout-0002abcd Healthy"


async def test_rest_canary_in_progress(fake: ArgoRolloutsFake, rest: ArgoRolloutsDeployer) -> None:
    fake.add_rollout("checkout", namespace="shop-prod", images=[*IMAGES, IMAGES[0][:-5] + "1.5.0"], stable=2)
    releases = await rest.releases(service=SERVICE, environment="prod")
    assert [(r.version, r.status) for r in releases] == [
        ("1.5.0", "canary"),
        ("1.4.0", "deployed"),
        ("1.3.0", "superseded"),
    ]


async def test_rest_rollback_undoes_to_the_revision(
    fake: ArgoRolloutsFake, rest: ArgoRolloutsDeployer
) -> None:
    result = await rest.rollback(service=SERVICE, environment="prod", target=PREVIOUS)
    assert result.ok and result.summary == (
        "Argo Rollouts accepted the undo of rollout checkout in shop-prod to revision 1 (1.3.0)"
    )
    assert fake.actions == [
        {
            "action": "undo",
            "namespace": "shop-prod",
            "rollout": "checkout",
            "revision": "1",
            "body": {"namespace": "shop-prod", "rollout": "checkout", "revision": "1"},
        }
    ]
    assert fake.problems == []
    newest = (await rest.releases(service=SERVICE, environment="prod"))[0]
    assert (newest.revision, newest.version, newest.status) == ("3", "1.3.0", "deployed")


async def test_rest_dry_run_only_reads(fake: ArgoRolloutsFake, rest: ArgoRolloutsDeployer) -> None:
    result = await rest.rollback(service=SERVICE, environment="prod", target=PREVIOUS, dry_run=True)
    assert result.ok and result.dry_run and result.summary.startswith("dry run: would request the undo")
    assert {method for method, _ in fake.calls} == {"GET"} and fake.actions == []


async def test_rest_unknown_revision_is_refused_before_undo(
    fake: ArgoRolloutsFake, rest: ArgoRolloutsDeployer
) -> None:
    with pytest.raises(DeployError, match="rollout shop-prod/checkout has no revision 9") as caught:
        await rest.rollback(service=SERVICE, environment="prod", target=Release(version="?", revision="9"))
    assert caught.value.retryable is False and fake.actions == []


async def test_rest_errors(fake: ArgoRolloutsFake, rest: ArgoRolloutsDeployer) -> None:
    fake.fail_next(503)
    with pytest.raises(DeployError, match="Argo Rollouts answered HTTP 503") as caught:
        await rest.releases(service=SERVICE, environment="prod")
    assert caught.value.retryable is True
    with pytest.raises(DeployError, match=r'rollouts\.argoproj\.io "checkout" not found') as caught:
        await rest.releases(service=SERVICE, environment="staging")
    assert caught.value.retryable is False


async def test_rest_abort_and_promote(fake: ArgoRolloutsFake, rest: ArgoRolloutsDeployer) -> None:
    assert (await rest.abort(service=SERVICE, environment="prod")).ok
    assert (await rest.promote(service=SERVICE, environment="prod", full=True)).ok
    assert [(a["action"], a["body"]) for a in fake.actions] == [
        ("abort", {"namespace": "shop-prod", "name": "checkout"}),
        ("promote", {"namespace": "shop-prod", "name": "checkout", "full": True}),
    ]
    assert fake.problems == []


async def test_deploy_is_not_run(rest: ArgoRolloutsDeployer) -> None:
    result = await rest.deploy(service=SERVICE, environment="prod", version="1.5.0")
    assert not result.ok and "not run by cmdcenter" in result.summary


def test_image_versions() -> None:
    assert image_version("registry:5000/shop/checkout:1.4.0") == "1.4.0"
    assert image_version("checkout") == "latest"
    assert image_version("checkout@sha256:0123456789abcdef0123") == "0123456789ab"


# --- kubectl ----------------------------------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HelmFakeState:
    fake = HelmFakeState(tmp_path / "state.json")
    fake.add_rollout("checkout", namespace="shop-prod", images=IMAGES)
    fake.add_rollout("payments", namespace="shop-prod", images=["reg/payments:9.0.0"])
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


@pytest.fixture
def cli() -> ArgoRolloutsDeployer:
    return ArgoRolloutsDeployer(kubectl_bin=KUBECTL)


GETS = [
    ["kubectl", "get", "rollouts.argoproj.io", "checkout", "-n", "shop-prod", "-o", "json"],
    ["kubectl", "get", "replicasets", "-n", "shop-prod", "-l", "rollouts-pod-template-hash", "-o", "json"],
]


async def test_cli_history_of_this_rollout_only(state: HelmFakeState, cli: ArgoRolloutsDeployer) -> None:
    releases = await cli.releases(service=SERVICE, environment="prod")
    assert [(r.revision, r.version, r.status) for r in releases] == [
        ("2", "1.4.0", "deployed"),
        ("1", "1.3.0", "superseded"),
    ]
    assert state.calls() == GETS


async def test_cli_rollback(state: HelmFakeState, cli: ArgoRolloutsDeployer) -> None:
    result = await cli.rollback(service=SERVICE, environment="prod", target=PREVIOUS)
    assert result.ok and result.output == "rollout 'checkout' undo"
    assert state.calls() == [
        *GETS,
        ["kubectl", "argo", "rollouts", "undo", "checkout", "-n", "shop-prod", "--to-revision=1"],
    ]
    assert (await cli.releases(service=SERVICE, environment="prod"))[0].version == "1.3.0"


async def test_cli_dry_run_only_reads(state: HelmFakeState, cli: ArgoRolloutsDeployer) -> None:
    result = await cli.rollback(service=SERVICE, environment="prod", target=PREVIOUS, dry_run=True)
    assert result.ok and result.dry_run
    assert state.calls() == GETS


async def test_cli_failure_is_summarised(
    state: HelmFakeState, cli: ArgoRolloutsDeployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CMDCENTER_FAKE_KUBECTL_FAIL", "1")
    result = await cli.rollback(service=SERVICE, environment="prod", target=PREVIOUS)
    assert not result.ok
    assert result.summary.startswith(
        "undo of rollout checkout in shop-prod to revision 1 (1.3.0) failed: Error:"
    )
    assert "is forbidden" in result.summary


async def test_cli_abort_and_promote(state: HelmFakeState, cli: ArgoRolloutsDeployer) -> None:
    assert (await cli.abort(service=SERVICE, environment="prod")).ok
    assert (await cli.promote(service=SERVICE, environment="prod", full=True)).ok
    assert state.calls()[-2:] == [
        ["kubectl", "argo", "rollouts", "abort", "checkout", "-n", "shop-prod"],
        ["kubectl", "argo", "rollouts", "promote", "checkout", "-n", "shop-prod", "--full"],
    ]


async def test_cli_unknown_rollout_raises(state: HelmFakeState, cli: ArgoRolloutsDeployer) -> None:
    with pytest.raises(DeployError, match=r'rollouts\.argoproj\.io "checkout" not found'):
        await cli.releases(service=SERVICE, environment="staging")


async def test_cli_missing_kubectl(state: HelmFakeState) -> None:
    with pytest.raises(DeployError, match="/nonexistent/kubectl not found"):
        await ArgoRolloutsDeployer(kubectl_bin="/nonexistent/kubectl").releases(
            service=SERVICE, environment="prod"
        )
