"""GitHub Actions: rollbacks and deploys are ``workflow_dispatch`` runs of a configured workflow.

The workflow gets the inputs ``service``, ``environment`` and ``version`` plus the configured
``inputs`` (which may use placeholders, and override those three); it must declare them all,
or GitHub refuses the dispatch (422). The dispatch API does not say which run it started, so the
adapter lists the workflow's ``workflow_dispatch`` runs on the ref before and after dispatching
and follows the oldest new one until it completes; success means ``conclusion == "success"``.
GitHub keeps no release history cmdcenter could use: ``releases`` is always empty.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

import httpx

from bot.adapters._subprocess import JsonHttp, deploy_config
from bot.config import GitHubActionsDeploy, ServiceConfig
from bot.errors import DeployError
from bot.ports import DeployResult, Release
from bot.values import fill_placeholders, placeholder_values

API_VERSION = "2022-11-28"


class GitHubActionsDeployer:
    """The GitHub REST API at ``api_url`` (``https://api.github.com`` or GHES ``.../api/v3``)."""

    def __init__(
        self,
        api_url: str,
        token: str,
        client: httpx.AsyncClient | None = None,
        poll_interval: float = 5.0,
        timeout: float = 1800.0,
        *,
        find_run_timeout: float = 120.0,
        request_timeout: float = 15.0,
    ) -> None:
        self._http = JsonHttp(
            api_url,
            vendor="GitHub",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            client=client,
            timeout=request_timeout,
        )
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.find_run_timeout = find_run_timeout

    def __repr__(self) -> str:
        return f"GitHubActionsDeployer({self._http.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def releases(self, *, service: ServiceConfig, environment: str) -> list[Release]:
        deploy_config(service, GitHubActionsDeploy)
        return []  # the caller falls back to cmdcenter's own release ledger

    async def rollback(
        self, *, service: ServiceConfig, environment: str, target: Release, dry_run: bool = False
    ) -> DeployResult:
        return await self._run(
            service,
            environment,
            version=target.version,
            revision=target.revision,
            verb="rollback",
            dry_run=dry_run,
        )

    async def deploy(
        self, *, service: ServiceConfig, environment: str, version: str, dry_run: bool = False
    ) -> DeployResult:
        return await self._run(
            service, environment, version=version, revision=None, verb="deploy", dry_run=dry_run
        )

    async def _run(
        self,
        service: ServiceConfig,
        environment: str,
        *,
        version: str,
        revision: str | None,
        verb: str,
        dry_run: bool,
    ) -> DeployResult:
        config = deploy_config(service, GitHubActionsDeploy)
        inputs = dispatch_inputs(service, environment, version=version, revision=revision)
        body = {"ref": config.ref, "inputs": inputs}
        shown = ", ".join(f"{k}={v}" for k, v in inputs.items())
        where = f"{config.workflow} on {config.repository}@{config.ref}"
        if dry_run:
            return DeployResult(
                ok=True,
                dry_run=True,
                summary=f"dry run: would dispatch {where} with {shown}",
                output=json.dumps(body, indent=2),
            )
        deadline = time.monotonic() + self.timeout
        workflow = f"/repos/{config.repository}/actions/workflows/{quote(config.workflow, safe='')}"
        before = {run["id"] for run in await self._runs(workflow, config.ref)}
        await self._http.request("POST", f"{workflow}/dispatches", json=body, what=f"dispatch {where}")
        run = await self._find_run(workflow, config.ref, before, where=where)
        run = await self._wait(config.repository, run, deadline=deadline, where=where)
        conclusion = str(run.get("conclusion") or "unknown")
        label = f"{config.workflow} run #{run.get('run_number', run['id'])}"
        return DeployResult(
            ok=conclusion == "success",
            summary=f"GitHub Actions {verb} {label} {'succeeded' if conclusion == 'success' else conclusion}",
            output=f"{verb} dispatched with {shown}",
            url=str(run.get("html_url") or "") or None,
        )

    async def _runs(self, workflow: str, ref: str) -> list[dict[str, Any]]:
        params = {"event": "workflow_dispatch", "branch": ref, "per_page": "30"}
        data = await self._http.json("GET", f"{workflow}/runs", params=params, what="list workflow runs")
        runs = (data or {}).get("workflow_runs") if isinstance(data, dict) else None
        return [r for r in runs or [] if isinstance(r, dict) and "id" in r]

    async def _find_run(self, workflow: str, ref: str, before: set[Any], *, where: str) -> dict[str, Any]:
        """The oldest dispatched run of ``workflow`` not listed before the dispatch."""
        deadline = time.monotonic() + self.find_run_timeout
        while True:
            new = [run for run in await self._runs(workflow, ref) if run["id"] not in before]
            if new:
                return min(new, key=lambda run: (str(run.get("created_at") or ""), int(run["id"])))
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"dispatched {where} but no run appeared within {self.find_run_timeout:g} s",
                    retryable=False,
                )
            await asyncio.sleep(self.poll_interval)

    async def _wait(
        self, repository: str, run: dict[str, Any], *, deadline: float, where: str
    ) -> dict[str, Any]:
        path = f"/repos/{repository}/actions/runs/{int(run['id'])}"
        while run.get("status") != "completed":
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"{where}: run still {run.get('status') or 'pending'} after {self.timeout:g} s; "
                    f"see {run.get('html_url') or path}",
                    retryable=False,
                )
            await asyncio.sleep(self.poll_interval)
            data = await self._http.json("GET", path, what="get workflow run")
            run = data if isinstance(data, dict) else run
        return run


def dispatch_inputs(
    service: ServiceConfig, environment: str, *, version: str, revision: str | None = None
) -> dict[str, str]:
    """The ``inputs`` of the dispatch: service, environment, version, then the configured ones."""
    config = deploy_config(service, GitHubActionsDeploy)
    values = placeholder_values(service, environment, version=version, revision=revision)
    inputs = {"service": service.name, "environment": environment, "version": version}
    for name, template in config.inputs.items():
        where = f"services.{service.name}.deploy.inputs.{name}"
        inputs[name] = fill_placeholders(template, values, where=where)
    return inputs
