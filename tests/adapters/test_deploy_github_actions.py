"""GitHubActionsDeployer against the GitHub Actions fake served on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from bot.adapters.github_actions import GitHubActionsDeployer
from bot.config import ServiceConfig
from bot.errors import DeployError
from bot.ports import Release
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.vendors.github import GitHubFake

TOKEN = "ghp_fake_token_for_tests"
SERVICE = ServiceConfig.model_validate(
    {
        "name": "checkout",
        "deploy": {
            "tool": "github_actions",
            "repository": "acme/deploy",
            "workflow": "rollback.yml",
            "ref": "release",
            "inputs": {"reason": "rollback of {service} in {env} to r{revision}"},
        },
    }
)
TARGET = Release(version="1.4.0", revision="41")
INPUTS = {
    "service": "checkout",
    "environment": "prod",
    "version": "1.4.0",
    "reason": "rollback of checkout in prod to r41",
}


@pytest.fixture
def fake() -> GitHubFake:
    return GitHubFake(token=TOKEN, polls_to_complete=2)


@pytest.fixture
def server(fake: GitHubFake) -> Iterator[RunningServer]:
    with serve_in_thread(fake.app) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def deployer(server: RunningServer, client: httpx.AsyncClient, **kwargs: float) -> GitHubActionsDeployer:
    return GitHubActionsDeployer(server.url, TOKEN, client, **{"poll_interval": 0.01, **kwargs})


async def test_rollback_dispatches_and_follows_the_run(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    old = fake.add_run("acme/deploy", "rollback.yml", ref="release", conclusion="failure")
    result = await deployer(server, client).rollback(service=SERVICE, environment="prod", target=TARGET)
    assert result.ok and result.summary == "GitHub Actions rollback rollback.yml run #2 succeeded"
    assert result.url == f"https://github.com/acme/deploy/actions/runs/{old + 1}"
    assert fake.dispatches == [
        {"repository": "acme/deploy", "workflow": "rollback.yml", "ref": "release", "inputs": INPUTS}
    ]
    assert fake.problems == []
    assert fake.calls[:2] == [
        ("GET", "/repos/acme/deploy/actions/workflows/rollback.yml/runs"),
        ("POST", "/repos/acme/deploy/actions/workflows/rollback.yml/dispatches"),
    ]


async def test_failed_run(fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient) -> None:
    fake.conclusion = "failure"
    result = await deployer(server, client).rollback(service=SERVICE, environment="prod", target=TARGET)
    assert not result.ok and result.summary == "GitHub Actions rollback rollback.yml run #1 failure"
    assert result.url is not None


async def test_run_that_shows_up_late(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    fake.appear_after_lists = 3
    svc = SERVICE.model_copy(update={"deploy": SERVICE.deploy.model_copy(update={"inputs": {}})})  # type: ignore[union-attr]
    result = await deployer(server, client).deploy(service=svc, environment="staging", version="1.6.0")
    assert result.ok and result.summary == "GitHub Actions deploy rollback.yml run #1 succeeded"
    assert fake.dispatches[0]["inputs"] == {
        "service": "checkout",
        "environment": "staging",
        "version": "1.6.0",
    }


async def test_dry_run_calls_nothing(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    result = await deployer(server, client).rollback(
        service=SERVICE, environment="prod", target=TARGET, dry_run=True
    )
    assert result.ok and result.dry_run
    assert result.summary.startswith(
        "dry run: would dispatch rollback.yml on acme/deploy@release with service=checkout"
    )
    assert json.loads(result.output) == {"ref": "release", "inputs": INPUTS}
    assert fake.calls == []


async def test_undeclared_inputs_are_refused(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    fake.declared_inputs = {"service", "environment", "version"}
    with pytest.raises(DeployError, match=r'HTTP 422.*Unexpected inputs provided: \["reason"\]') as caught:
        await deployer(server, client).rollback(service=SERVICE, environment="prod", target=TARGET)
    assert (caught.value.retryable, caught.value.status) == (False, 422)


async def test_deploy_cannot_use_revision(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(DeployError, match=r"inputs\.reason: \{revision\} is not available here"):
        await deployer(server, client).deploy(service=SERVICE, environment="prod", version="1.6.0")
    assert fake.calls == []


async def test_run_that_never_completes_times_out(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    fake.polls_to_complete = 10_000
    with pytest.raises(
        DeployError, match=r"run still (queued|in_progress) after 0\.3 s; see https://github"
    ) as caught:
        await deployer(server, client, timeout=0.3).rollback(
            service=SERVICE, environment="prod", target=TARGET
        )
    assert caught.value.retryable is False


async def test_run_that_never_appears(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    fake.appear_after_lists = 10_000
    with pytest.raises(DeployError, match=r"no run appeared within 0\.2 s"):
        await deployer(server, client, find_run_timeout=0.2).rollback(
            service=SERVICE, environment="prod", target=TARGET
        )


async def test_bad_credentials(server: RunningServer, client: httpx.AsyncClient) -> None:
    github = GitHubActionsDeployer(server.url, "wrong", client, poll_interval=0.01)
    with pytest.raises(DeployError, match=r"HTTP 401.*Bad credentials") as caught:
        await github.rollback(service=SERVICE, environment="prod", target=TARGET)
    assert caught.value.retryable is False


async def test_server_error_is_retryable(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    fake.fail_next(502, "Server Error")
    with pytest.raises(DeployError, match="HTTP 502") as caught:
        await deployer(server, client).rollback(service=SERVICE, environment="prod", target=TARGET)
    assert caught.value.retryable is True
    assert fake.dispatches == []


async def test_releases_are_left_to_the_ledger(
    fake: GitHubFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    assert await deployer(server, client).releases(service=SERVICE, environment="prod") == []
    assert fake.calls == []
