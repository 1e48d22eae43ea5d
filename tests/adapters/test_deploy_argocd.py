"""ArgoCDDeployer against the Argo CD fake served on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bot.adapters.argocd import SUSPENDED_ANNOTATION, ArgoCDDeployer
from bot.config import ServiceConfig
from bot.errors import DeployError
from bot.ports import Release
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.vendors.argocd import ArgoCDFake
from bot.sandbox.vendors.deploy import ARGOCD_SPEC, body_problems, definition_validator

TOKEN = "argocd-secret-token"
SERVICE = ServiceConfig.model_validate(
    {"name": "checkout", "deploy": {"tool": "argocd", "application": "{service}-{env}"}}
)
PREVIOUS = Release(version="1.4.0", revision="1")


@pytest.fixture
def fake() -> ArgoCDFake:
    argo = ArgoCDFake(token=TOKEN)
    argo.add_application("checkout-prod", versions=["1.3.0", "1.4.0", "1.5.0"])
    return argo


@pytest.fixture
def server(fake: ArgoCDFake) -> Iterator[RunningServer]:
    with serve_in_thread(fake.app) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


@pytest.fixture
def argocd(server: RunningServer, client: httpx.AsyncClient) -> ArgoCDDeployer:
    return ArgoCDDeployer(server.url, TOKEN, client, poll_interval=0.01, operation_timeout=5)


async def test_history_newest_first(argocd: ArgoCDDeployer) -> None:
    releases = await argocd.releases(service=SERVICE, environment="prod")
    assert [(r.revision, r.version, r.status) for r in releases] == [
        ("2", "1.5.0", "deployed"),
        ("1", "1.4.0", "superseded"),
        ("0", "1.3.0", "superseded"),
    ]
    assert releases[1].description.startswith("revision ") and releases[1].description.endswith("by admin")
    assert releases[0].deployed_at is not None and releases[0].deployed_at.hour == 11


async def test_chart_sources_use_the_chart_version(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    fake.add_application("checkout-staging", versions=["0.9.0", "1.0.0"], chart="checkout")
    releases = await argocd.releases(service=SERVICE, environment="staging")
    assert [r.version for r in releases] == ["1.0.0", "0.9.0"]


async def test_rollback_to_the_previous_revision(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    result = await argocd.rollback(service=SERVICE, environment="prod", target=PREVIOUS)
    assert result.ok and not result.dry_run
    assert result.summary == "Argo CD rolled back checkout-prod to history 1 (1.4.0)"
    assert result.url is not None and result.url.endswith("/applications/checkout-prod")
    assert fake.rollbacks == [{"application": "checkout-prod", "id": 1, "dryRun": False, "prune": False}]
    assert fake.problems == []
    newest = (await argocd.releases(service=SERVICE, environment="prod"))[0]
    assert (newest.revision, newest.version) == ("3", "1.4.0")


async def test_rollback_waits_for_the_operation(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    fake.operation_polls = 4
    result = await argocd.rollback(service=SERVICE, environment="prod", target=PREVIOUS)
    assert result.ok
    gets = [c for c in fake.calls if c.method == "GET"]
    assert len(gets) == 4


async def test_dry_run_changes_nothing(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    result = await argocd.rollback(service=SERVICE, environment="prod", target=PREVIOUS, dry_run=True)
    assert result.ok and result.dry_run and result.summary.endswith("(dry run)")
    assert fake.rollbacks[-1]["dryRun"] is True
    assert len(fake.application("checkout-prod")["status"]["history"]) == 3


async def test_failed_operation_is_summarised(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    fake.operation_phase = "Failed"
    fake.operation_message = 'one or more objects failed to apply: Deployment.apps "checkout" is invalid'
    result = await argocd.rollback(service=SERVICE, environment="prod", target=PREVIOUS)
    assert not result.ok
    assert result.summary.startswith("Argo CD rollback of checkout-prod failed: one or more objects failed")


async def test_operation_that_never_ends_times_out(
    fake: ArgoCDFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    fake.operation_polls = None
    argocd = ArgoCDDeployer(server.url, TOKEN, client, poll_interval=0.01, operation_timeout=0.2)
    with pytest.raises(DeployError, match=r"rollback of checkout-prod still Running after 0\.2 s") as caught:
        await argocd.rollback(service=SERVICE, environment="prod", target=PREVIOUS)
    assert caught.value.retryable is False


async def test_auto_sync_blocks_rollback_until_suspended(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    fake.add_application("checkout-staging", versions=["1.0.0", "1.1.0"], auto_sync=True)
    with pytest.raises(DeployError, match="rollback cannot be initiated when auto-sync is enabled") as caught:
        await argocd.rollback(
            service=SERVICE, environment="staging", target=Release(version="1.0.0", revision="0")
        )
    assert (caught.value.retryable, caught.value.status) == (False, 400)

    assert await argocd.suspend_auto_sync(application="checkout-staging") is True
    app = fake.application("checkout-staging")
    assert "automated" not in app["spec"]["syncPolicy"]
    assert app["metadata"]["annotations"][SUSPENDED_ANNOTATION] == '{"prune": true, "selfHeal": true}'
    assert await argocd.suspend_auto_sync(application="checkout-staging") is False  # already off

    target = Release(version="1.0.0", revision="0")
    assert (await argocd.rollback(service=SERVICE, environment="staging", target=target)).ok

    assert await argocd.resume_auto_sync(application="checkout-staging") is True
    app = fake.application("checkout-staging")
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert SUSPENDED_ANNOTATION not in app["metadata"]["annotations"]
    assert await argocd.resume_auto_sync(application="checkout-staging") is False
    assert [p["patch"]["spec"]["syncPolicy"]["automated"] for p in fake.patches] == [
        None,
        {"prune": True, "selfHeal": True},
    ]
    assert fake.problems == []


async def test_deploy_syncs_to_the_version(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    fake.add_application("checkout-staging", versions=["1.0.0"], chart="checkout")
    result = await argocd.deploy(service=SERVICE, environment="staging", version="1.1.0")
    assert result.ok and result.summary == "Argo CD synced checkout-staging to 1.1.0"
    assert fake.syncs == [
        {"application": "checkout-staging", "revision": "1.1.0", "dryRun": False, "prune": False}
    ]
    assert (await argocd.releases(service=SERVICE, environment="staging"))[0].version == "1.1.0"


async def test_unknown_history_id(argocd: ArgoCDDeployer) -> None:
    with pytest.raises(DeployError, match="does not have deployment with id 42"):
        await argocd.rollback(service=SERVICE, environment="prod", target=Release(version="x", revision="42"))


async def test_server_errors_are_retryable(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    fake.fail_next(503, "the server is restarting")
    with pytest.raises(DeployError, match=r"HTTP 503.*the server is restarting") as caught:
        await argocd.releases(service=SERVICE, environment="prod")
    assert (caught.value.retryable, caught.value.status) == (True, 503)


async def test_client_errors_are_not(argocd: ArgoCDDeployer) -> None:
    with pytest.raises(DeployError, match=r'applications\.argoproj\.io "checkout-qa" not found') as caught:
        await argocd.releases(service=SERVICE, environment="qa")
    assert (caught.value.retryable, caught.value.status) == (False, 404)


async def test_wrong_token(server: RunningServer, client: httpx.AsyncClient) -> None:
    argocd = ArgoCDDeployer(server.url, "wrong", client)
    with pytest.raises(DeployError, match="HTTP 401") as caught:
        await argocd.releases(service=SERVICE, environment="prod")
    assert caught.value.retryable is False


async def test_unreachable_server_is_retryable(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argocd = ArgoCDDeployer(f"http://127.0.0.1:{port}", TOKEN, client)
    with pytest.raises(DeployError, match="Argo CD unreachable") as caught:
        await argocd.releases(service=SERVICE, environment="prod")
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_slow_server_times_out(
    fake: ArgoCDFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    fake.slow_next(1.0)
    argocd = ArgoCDDeployer(server.url, TOKEN, client, request_timeout=0.2)
    with pytest.raises(DeployError, match=r"timed out after 0\.2 s"):
        await argocd.releases(service=SERVICE, environment="prod")


async def test_slow_rollback_outcome_is_unknown(
    fake: ArgoCDFake, server: RunningServer, client: httpx.AsyncClient
) -> None:
    fake.slow_next(1.0)
    argocd = ArgoCDDeployer(server.url, TOKEN, client, request_timeout=0.2)
    with pytest.raises(DeployError, match="outcome is unknown") as caught:
        await argocd.rollback(service=SERVICE, environment="prod", target=PREVIOUS)
    assert caught.value.retryable is False


async def test_unknown_placeholder_sends_nothing(fake: ArgoCDFake, argocd: ArgoCDDeployer) -> None:
    svc = ServiceConfig.model_validate(
        {"name": "checkout", "deploy": {"tool": "argocd", "application": "{app}"}}
    )
    with pytest.raises(DeployError, match=r"unknown placeholder \{app\}"):
        await argocd.rollback(service=svc, environment="prod", target=PREVIOUS)
    assert fake.calls == []


async def test_own_client_and_no_token_in_repr(server: RunningServer) -> None:
    argocd = ArgoCDDeployer(server.url, TOKEN)
    assert TOKEN not in repr(argocd)
    await argocd.aclose()


def test_the_fake_answers_spec_shaped_applications(fake: ArgoCDFake, shared_specs: Path) -> None:
    validator = definition_validator(ARGOCD_SPEC, "v1alpha1Application")
    assert validator is not None
    assert body_problems(validator, fake.application("checkout-prod")) == []


async def test_the_fake_rejects_bodies_off_the_spec(
    fake: ArgoCDFake, server: RunningServer, shared_specs: Path
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(
            f"{server.url}/api/v1/applications/checkout-prod/rollback",
            json={"id": "1", "dryRun": "yes"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 400
    assert len(fake.problems) == 2 and fake.rollbacks == []
