"""HelmDeployer against the fake ``helm`` executable (bot/sandbox/vendors/fake_bin/helm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.helm import HelmDeployer, parse_history
from bot.config import ServiceConfig
from bot.errors import DeployError
from bot.ports import Release
from bot.sandbox.vendors.deploy import HelmFakeState, fake_bin_dir

HELM = str(fake_bin_dir() / "helm")


def service(**deploy: object) -> ServiceConfig:
    return ServiceConfig.model_validate(
        {"name": "checkout", "deploy": {"tool": "helm", "release": "{service}", **deploy}}
    )


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HelmFakeState:
    fake = HelmFakeState(tmp_path / "state.json")
    fake.add_release("checkout", namespace="prod", versions=["1.3.0", "1.4.0", "1.5.0"])
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


@pytest.fixture
def helm() -> HelmDeployer:
    return HelmDeployer(helm_bin=HELM)


async def test_history_newest_first(state: HelmFakeState, helm: HelmDeployer) -> None:
    releases = await helm.releases(service=service(), environment="prod")
    assert [(r.revision, r.version, r.status) for r in releases] == [
        ("3", "1.5.0", "deployed"),
        ("2", "1.4.0", "superseded"),
        ("1", "1.3.0", "superseded"),
    ]
    assert releases[0].deployed_at is not None and releases[0].deployed_at > releases[1].deployed_at  # type: ignore[operator]
    assert releases[2].description == "Install complete"
    assert state.calls() == [["helm", "history", "checkout", "-n", "prod", "-o", "json", "--max", "20"]]


async def test_kube_context_and_placeholders(state: HelmFakeState, helm: HelmDeployer) -> None:
    state.add_release("checkout-eu", namespace="shop-prod", versions=["2.0.0"])
    svc = service(release="{service}-eu", namespace="shop-{env}", kube_context="eu-{env}")
    releases = await helm.releases(service=svc, environment="prod")
    assert [r.version for r in releases] == ["2.0.0"]
    assert state.calls()[-1] == [
        "helm", "history", "checkout-eu", "-n", "shop-prod", "--kube-context", "eu-prod",
        "-o", "json", "--max", "20",
    ]  # fmt: skip


async def test_rollback_to_the_previous_revision(state: HelmFakeState, helm: HelmDeployer) -> None:
    previous = (await helm.releases(service=service(), environment="prod"))[1]
    result = await helm.rollback(service=service(timeout_seconds=120), environment="prod", target=previous)
    assert result.ok and not result.dry_run
    assert result.summary == "helm rolled back checkout in prod to revision 2 (1.4.0)"
    assert state.calls()[-1] == [
        "helm",
        "rollback",
        "checkout",
        "2",
        "-n",
        "prod",
        "--wait",
        "--timeout",
        "120s",
    ]
    newest = state.history("checkout", namespace="prod")[-1]
    assert (newest["revision"], newest["app_version"], newest["status"]) == (4, "1.4.0", "deployed")
    assert newest["description"] == "Rollback to 2"


async def test_dry_run_changes_nothing(state: HelmFakeState, helm: HelmDeployer) -> None:
    before = state.history("checkout", namespace="prod")
    target = Release(version="1.4.0", revision="2")
    result = await helm.rollback(service=service(), environment="prod", target=target, dry_run=True)
    assert result.ok and result.dry_run and result.summary.endswith("(dry run)")
    assert state.calls()[-1][-1] == "--dry-run"
    assert state.history("checkout", namespace="prod") == before


async def test_failed_rollback_is_summarised(
    state: HelmFakeState, helm: HelmDeployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CMDCENTER_FAKE_HELM_FAIL", "1")
    result = await helm.rollback(
        service=service(), environment="prod", target=Release(version="1.4.0", revision="2")
    )
    assert not result.ok
    assert result.summary == (
        "helm rollback failed: Error: timed out waiting for the condition: rollback of checkout to revision 2"
    )
    assert "warning: skipped value" in result.output
    assert state.history("checkout", namespace="prod")[-1]["status"] == "failed"


async def test_unknown_revision_is_a_tool_failure(state: HelmFakeState, helm: HelmDeployer) -> None:
    result = await helm.rollback(
        service=service(), environment="prod", target=Release(version="?", revision="9")
    )
    assert not result.ok and "release has no 9 version" in result.summary


async def test_unknown_release_raises(state: HelmFakeState, helm: HelmDeployer) -> None:
    with pytest.raises(DeployError, match="helm history nope failed: Error: release: not found") as caught:
        await helm.releases(service=service(release="nope"), environment="prod")
    assert caught.value.retryable is False


async def test_non_numeric_revision_is_rejected_before_running(
    state: HelmFakeState, helm: HelmDeployer
) -> None:
    with pytest.raises(DeployError, match="helm revisions are numbers"):
        await helm.rollback(
            service=service(), environment="prod", target=Release(version="1", revision="abc")
        )
    assert state.calls() == []


async def test_unknown_placeholder_is_rejected_before_running(
    state: HelmFakeState, helm: HelmDeployer
) -> None:
    with pytest.raises(DeployError, match=r"deploy\.namespace: unknown placeholder \{region\}"):
        await helm.releases(service=service(namespace="{region}"), environment="prod")
    assert state.calls() == []


async def test_missing_helm_binary(state: HelmFakeState) -> None:
    with pytest.raises(DeployError, match="/nonexistent/helm not found"):
        await HelmDeployer(helm_bin="/nonexistent/helm").releases(service=service(), environment="prod")


async def test_hung_helm_times_out(state: HelmFakeState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDCENTER_FAKE_BIN_SLEEP", "30")
    with pytest.raises(DeployError, match=r"timed out after 0\.5 s"):
        await HelmDeployer(helm_bin=HELM, read_timeout=0.5).releases(service=service(), environment="prod")


async def test_deploy_is_not_run(state: HelmFakeState, helm: HelmDeployer) -> None:
    result = await helm.deploy(service=service(), environment="prod", version="1.6.0")
    assert not result.ok and "not run by cmdcenter" in result.summary
    assert state.calls() == []


def test_version_falls_back_to_the_chart_version() -> None:
    stdout = (
        '[{"revision": 1, "updated": "2024-05-01T09:00:00.123456789Z", "status": "superseded",'
        ' "chart": "my-app-2-1.0.0-rc.1", "app_version": "", "description": "Install complete"},'
        ' {"revision": 2, "updated": "2024-05-02T09:00:00Z", "status": "deployed",'
        ' "chart": "weird", "app_version": null, "description": "Upgrade complete"}]'
    )
    assert [(r.revision, r.version) for r in parse_history(stdout)] == [("2", "weird"), ("1", "1.0.0-rc.1")]


def test_history_that_is_not_json() -> None:
    with pytest.raises(DeployError, match="did not print JSON"):
        parse_history("REVISION UPDATED")
