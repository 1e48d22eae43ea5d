"""Argo CD through its API server (``/api/v1/applications``), with a Bearer token.

Releases are the application's ``status.history`` (``Release.revision`` is the history id).
Rollback is ``POST .../rollback`` with that id; deploy is ``POST .../sync`` to a revision. Both
then wait for the operation Argo CD started to finish (``operation`` cleared, ``operationState``
terminal). Argo CD refuses rollbacks while automated sync is on; ``suspend_auto_sync`` removes
``spec.syncPolicy.automated`` (remembering it in an annotation) and ``resume_auto_sync`` puts it
back, both through ``PATCH /api/v1/applications/{name}`` with a JSON merge patch.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

import httpx

from bot.adapters._subprocess import JsonHttp, clip, deploy_config, parse_time
from bot.config import ArgoCDDeploy, ServiceConfig
from bot.errors import DeployError
from bot.ports import DeployResult, Release
from bot.values import fill_placeholders, placeholder_values

SUSPENDED_ANNOTATION = "cmdcenter.io/suspended-automated-sync"
_VERSION_PARAMETERS = ("image.tag", "imageTag", "image.version", "version", "appVersion", "tag")
_TERMINAL = ("Succeeded", "Failed", "Error")


class ArgoCDDeployer:
    """An Argo CD API server at ``base_url`` (e.g. ``https://argocd.example.com``)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        client: httpx.AsyncClient | None = None,
        *,
        poll_interval: float = 2.0,
        operation_timeout: float = 600.0,
        request_timeout: float = 15.0,
    ) -> None:
        self._http = JsonHttp(
            base_url,
            vendor="Argo CD",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            client=client,
            timeout=request_timeout,
        )
        self.poll_interval = poll_interval
        self.operation_timeout = operation_timeout

    def __repr__(self) -> str:
        return f"ArgoCDDeployer({self._http.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- DeployTool -------------------------------------------------------------------------------

    async def releases(self, *, service: ServiceConfig, environment: str) -> list[Release]:
        app = await self.application(name=application_name(service, environment))
        return parse_history(app)

    async def rollback(
        self, *, service: ServiceConfig, environment: str, target: Release, dry_run: bool = False
    ) -> DeployResult:
        name = application_name(service, environment)
        history_id = target.revision.strip()
        if not history_id.isdigit():
            raise DeployError(f"Argo CD history ids are numbers, not {target.revision!r}", retryable=False)
        body = {"id": int(history_id), "dryRun": dry_run, "prune": False}
        app = await self._http.json("POST", f"{_app_path(name)}/rollback", json=body, what=f"rollback {name}")
        done = f"rolled back {name} to history {history_id} ({target.version})"
        return await self._finish(name, app, done=done, verb="rollback", dry_run=dry_run)

    async def deploy(
        self, *, service: ServiceConfig, environment: str, version: str, dry_run: bool = False
    ) -> DeployResult:
        name = application_name(service, environment)
        body = {"revision": version, "dryRun": dry_run, "prune": False}
        app = await self._http.json("POST", f"{_app_path(name)}/sync", json=body, what=f"sync {name}")
        done = f"synced {name} to {version}"
        return await self._finish(name, app, done=done, verb="sync", dry_run=dry_run)

    # --- Extras -----------------------------------------------------------------------------------

    async def application(self, *, name: str) -> dict[str, Any]:
        """The Application object (``GET /api/v1/applications/{name}``)."""
        app = await self._http.json("GET", _app_path(name), what=f"get application {name}")
        if not isinstance(app, dict):
            raise DeployError(f"Argo CD answered application {name} with unexpected JSON", retryable=False)
        return app

    async def suspend_auto_sync(self, *, application: str) -> bool:
        """Turn automated sync off, remembering its settings; False if it was not on."""
        app = await self.application(name=application)
        automated = _automated(app)
        if automated is None or automated.get("enabled") is False:
            return False
        patch = {
            "metadata": {"annotations": {SUSPENDED_ANNOTATION: json.dumps(automated, sort_keys=True)}},
            "spec": {"syncPolicy": {"automated": None}},
        }
        await self._patch(application, patch, what=f"suspend auto-sync of {application}")
        return True

    async def resume_auto_sync(self, *, application: str) -> bool:
        """Restore the automated sync ``suspend_auto_sync`` removed; False if it had not."""
        app = await self.application(name=application)
        saved = ((app.get("metadata") or {}).get("annotations") or {}).get(SUSPENDED_ANNOTATION)
        if saved is None:
            return False
        try:
            automated = json.loads(saved)
        except json.JSONDecodeError:
            automated = {}
        patch = {
            "metadata": {"annotations": {SUSPENDED_ANNOTATION: None}},
            "spec": {"syncPolicy": {"automated": automated if isinstance(automated, dict) else {}}},
        }
        await self._patch(application, patch, what=f"resume auto-sync of {application}")
        return True

    async def _patch(self, name: str, patch: dict[str, Any], *, what: str) -> None:
        body = {"name": name, "patch": json.dumps(patch), "patchType": "merge"}
        await self._http.json("PATCH", _app_path(name), json=body, what=what)

    async def _finish(self, name: str, started: Any, *, done: str, verb: str, dry_run: bool) -> DeployResult:
        """Wait for the operation just started on ``name`` and describe how it ended.

        ``started`` is the application as the POST answered it: its ``operationState`` is still the
        previous operation's, which must not be mistaken for the new one's outcome.
        """
        previous = _operation_stamp(started)
        deadline = time.monotonic() + self.operation_timeout
        url = f"{self._http.base_url}/applications/{quote(name, safe='')}"
        suffix = " (dry run)" if dry_run else ""
        while True:
            app = await self.application(name=name)
            state = (app.get("status") or {}).get("operationState") or {}
            phase = str(state.get("phase") or "")
            if not app.get("operation") and phase in _TERMINAL and _operation_stamp(app) != previous:
                message = clip(" ".join(str(state.get("message") or "").split()), 240)
                if phase == "Succeeded":
                    return DeployResult(
                        ok=True, summary=f"Argo CD {done}{suffix}", output=message, dry_run=dry_run, url=url
                    )
                detail = f": {message}" if message else ""
                return DeployResult(
                    ok=False,
                    summary=f"Argo CD {verb} of {name} {phase.lower()}{suffix}{detail}",
                    output=message,
                    dry_run=dry_run,
                    url=url,
                )
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"Argo CD {verb} of {name} still {phase or 'pending'} after "
                    f"{self.operation_timeout:g} s; see {url}",
                    retryable=False,
                )
            await asyncio.sleep(self.poll_interval)


def application_name(service: ServiceConfig, environment: str) -> str:
    config = deploy_config(service, ArgoCDDeploy)
    values = placeholder_values(service, environment)
    return fill_placeholders(config.application, values, where=f"services.{service.name}.deploy.application")


def _app_path(name: str) -> str:
    return f"/api/v1/applications/{quote(name, safe='')}"


def _operation_stamp(app: Any) -> tuple[str, str] | None:
    state = (app.get("status") or {}).get("operationState") if isinstance(app, dict) else None
    if not isinstance(state, dict):
        return None
    return str(state.get("startedAt") or ""), str(state.get("finishedAt") or "")


def _automated(app: dict[str, Any]) -> dict[str, Any] | None:
    policy = (app.get("spec") or {}).get("syncPolicy") or {}
    automated = policy.get("automated")
    return automated if isinstance(automated, dict) else None


def parse_history(app: dict[str, Any]) -> list[Release]:
    """``status.history`` (oldest first) as releases, newest first; the newest is ``deployed``."""
    history = [h for h in (app.get("status") or {}).get("history") or [] if isinstance(h, dict)]
    history.sort(key=lambda h: _int(h.get("id")), reverse=True)
    releases = []
    for index, entry in enumerate(history):
        revision = str(entry.get("revision") or (entry.get("revisions") or [""])[0])
        who = (entry.get("initiatedBy") or {}).get("username") or (
            "auto-sync" if (entry.get("initiatedBy") or {}).get("automated") else ""
        )
        description = f"revision {revision[:12]}" + (f" by {who}" if who else "") if revision else ""
        releases.append(
            Release(
                version=_version(entry, revision),
                revision=str(_int(entry.get("id"))),
                deployed_at=parse_time(entry.get("deployedAt")),
                status="deployed" if index == 0 else "superseded",
                description=description,
            )
        )
    return releases


def _version(entry: dict[str, Any], revision: str) -> str:
    """A helm parameter naming the image tag, else the chart version, else the git revision."""
    candidates: list[Any] = [entry.get("source"), *(entry.get("sources") or [])]
    sources: list[dict[str, Any]] = [s for s in candidates if isinstance(s, dict)]
    for source in sources:
        params = {
            str(p.get("name")): p.get("value") for p in (source.get("helm") or {}).get("parameters") or []
        }
        for name in _VERSION_PARAMETERS:
            if params.get(name):
                return str(params[name])
    for source in sources:
        if source.get("chart") and source.get("targetRevision"):
            return str(source["targetRevision"])
    return revision[:12] if len(revision) == 40 else revision or "unknown"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
