"""DeployTools: dispatch on ``service.deploy.tool`` and clear errors for missing config."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.adapters.argo_rollouts import ArgoRolloutsDeployer
from bot.adapters.argocd import ArgoCDDeployer
from bot.adapters.command import CommandDeployer
from bot.adapters.deploy import DeployTools
from bot.adapters.github_actions import GitHubActionsDeployer
from bot.adapters.helm import HelmDeployer
from bot.config import ServiceConfig
from bot.errors import DeployError
from bot.ports import DeployTool, Release
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.vendors.argocd import ArgoCDFake
from bot.sandbox.vendors.deploy import HelmFakeState, fake_bin_dir
from bot.settings import Settings, load_settings

TARGET = Release(version="1.4.0", revision="1")
_SETTINGS_ENV = (
    "ARGOCD_URL",
    "ARGOCD_TOKEN",
    "ARGO_ROLLOUTS_URL",
    "GITHUB_TOKEN",
    "GITHUB_API_URL",
    "HELM_BIN",
)


def svc(deploy: dict[str, object] | None) -> ServiceConfig:
    return ServiceConfig.model_validate({"name": "checkout", "deploy": deploy})


HELM = svc({"tool": "helm", "release": "checkout"})
ARGOCD = svc({"tool": "argocd", "application": "checkout-{env}", "suspend_sync_on_freeze": True})
GITHUB = svc({"tool": "github_actions", "repository": "acme/deploy", "workflow": "rollback.yml"})
COMMAND = svc({"tool": "command", "rollback": [sys.executable, "-c", "print('ok')"]})


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


def settings(**values: str) -> Settings:
    return load_settings(_env_file=None, **values)


def test_every_adapter_is_a_deploy_tool() -> None:
    tools: list[DeployTool] = [
        HelmDeployer(),
        ArgoCDDeployer("http://127.0.0.1:1", "t"),
        ArgoRolloutsDeployer(),
        GitHubActionsDeployer("http://127.0.0.1:1", "t"),
        CommandDeployer(),
        DeployTools(),
    ]
    assert len(tools) == 6


async def test_a_service_without_deploy_config() -> None:
    with pytest.raises(DeployError, match="service checkout has no deploy tool configured") as caught:
        await DeployTools(command=CommandDeployer()).releases(service=svc(None), environment="prod")
    assert caught.value.retryable is False


async def test_dispatches_on_the_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = HelmFakeState(tmp_path / "state.json")
    state.add_release("checkout", namespace="prod", versions=["1.3.0", "1.4.0"])
    for name, value in state.env().items():
        monkeypatch.setenv(name, value)
    tools = DeployTools(helm=HelmDeployer(str(fake_bin_dir() / "helm")), command=CommandDeployer())
    assert [r.version for r in await tools.releases(service=HELM, environment="prod")] == ["1.4.0", "1.3.0"]
    result = await tools.rollback(service=COMMAND, environment="prod", target=TARGET)
    assert result.ok and result.summary == "rollback command succeeded: ok"
    dry = await tools.rollback(service=HELM, environment="prod", target=TARGET, dry_run=True)
    assert dry.ok and dry.dry_run
    assert [call[1] for call in state.calls()] == ["history", "rollback"]
    with pytest.raises(DeployError, match="deploys with github_actions, but no adapter is configured for it"):
        await tools.deploy(service=GITHUB, environment="prod", version="1.5.0")


async def test_from_settings_names_missing_settings(settings_env: None) -> None:
    tools = DeployTools.from_settings(settings())
    with pytest.raises(DeployError, match="deploys with argocd, but ARGOCD_URL and ARGOCD_TOKEN are not set"):
        await tools.releases(service=ARGOCD, environment="prod")
    with pytest.raises(
        DeployError, match="deploys with github_actions, but GITHUB_TOKEN is not set"
    ) as caught:
        await tools.rollback(service=GITHUB, environment="prod", target=TARGET)
    assert caught.value.retryable is False
    with pytest.raises(DeployError, match="ARGOCD_TOKEN is not set"):
        await DeployTools.from_settings(settings(ARGOCD_URL="http://127.0.0.1:1")).suspend_auto_sync(
            service=ARGOCD, environment="prod"
        )
    assert isinstance(tools.helm, HelmDeployer) and tools.helm.helm_bin == "helm"
    assert isinstance(tools.argo_rollouts, ArgoRolloutsDeployer) and "kubectl" in repr(tools.argo_rollouts)
    await tools.aclose()


@pytest.fixture
def argocd_server() -> Iterator[tuple[ArgoCDFake, RunningServer]]:
    fake = ArgoCDFake(token="argo-token")
    fake.add_application("checkout-prod", versions=["1.3.0", "1.4.0"], auto_sync=True)
    with serve_in_thread(fake.app) as server:
        yield fake, server


async def test_from_settings_builds_argocd(
    settings_env: None, argocd_server: tuple[ArgoCDFake, RunningServer]
) -> None:
    fake, server = argocd_server
    configured = settings(ARGOCD_URL=server.url, ARGOCD_TOKEN="argo-token", GITHUB_TOKEN="gh")
    async with httpx.AsyncClient(trust_env=False) as http:
        tools = DeployTools.from_settings(configured, client=http)
        assert isinstance(tools.github_actions, GitHubActionsDeployer)
        releases = await tools.releases(service=ARGOCD, environment="prod")
        assert [r.version for r in releases] == ["1.4.0", "1.3.0"]
        assert await tools.suspend_auto_sync(service=ARGOCD, environment="prod") is True
        assert await tools.resume_auto_sync(service=ARGOCD, environment="prod") is True
        assert await tools.suspend_auto_sync(service=HELM, environment="prod") is False
        assert await tools.resume_auto_sync(service=COMMAND, environment="prod") is False
        assert len(fake.patches) == 2 and fake.problems == []
        assert "argo-token" not in repr(tools.argocd)
