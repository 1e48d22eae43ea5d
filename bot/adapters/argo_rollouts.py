"""Argo Rollouts: the rollouts API server (``kubectl argo rollouts dashboard``) when a URL is set,
else ``kubectl`` with the ``argo rollouts`` plugin.

Releases are the rollout's ReplicaSets (``Release.revision`` is the rollout revision, the version
the tag of the first image); the stable one is ``deployed``. Rollback is an undo to that revision
(``PUT /api/v1/rollouts/{ns}/{rollout}/undo/{revision}`` or ``kubectl argo rollouts undo
--to-revision``): undoing to the stable revision during a canary returns to stable at once; an
older revision is rolled out through the rollout's steps. The undo is asynchronous: success means
Argo Rollouts accepted it. Deploys (setting an image) are left to the service's pipeline.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from bot.adapters._subprocess import JsonHttp, deploy_config, parse_time, run_command, summarise
from bot.config import ArgoRolloutsDeploy, ServiceConfig
from bot.errors import DeployError
from bot.ports import DeployResult, Release
from bot.values import fill_placeholders, placeholder_values

_REVISION_ANNOTATION = "rollout.argoproj.io/revision"
_HASH_LABEL = "rollouts-pod-template-hash"


class ArgoRolloutsDeployer:
    """REST when ``base_url`` is given, the kubectl plugin otherwise."""

    def __init__(
        self,
        base_url: str | None = None,
        kubectl_bin: str = "kubectl",
        client: httpx.AsyncClient | None = None,
        *,
        command_timeout: float = 60.0,
        request_timeout: float = 15.0,
    ) -> None:
        self.kubectl_bin = kubectl_bin
        self.command_timeout = command_timeout
        self._http = (
            JsonHttp(base_url, vendor="Argo Rollouts", client=client, timeout=request_timeout)
            if base_url
            else None
        )

    def __repr__(self) -> str:
        mode = self._http.base_url if self._http else self.kubectl_bin
        return f"ArgoRolloutsDeployer({mode!r})"

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    # --- DeployTool -------------------------------------------------------------------------------

    async def releases(self, *, service: ServiceConfig, environment: str) -> list[Release]:
        namespace, rollout = _target(service, environment)
        if self._http is not None:
            info = await self._http.json(
                "GET", f"{_path(namespace, rollout)}/info", what=f"get rollout {namespace}/{rollout}"
            )
            return parse_rollout_info(info if isinstance(info, dict) else {})
        return await self._cli_releases(namespace, rollout)

    async def rollback(
        self, *, service: ServiceConfig, environment: str, target: Release, dry_run: bool = False
    ) -> DeployResult:
        namespace, rollout = _target(service, environment)
        revision = target.revision.strip()
        if not revision.isdigit():
            raise DeployError(f"rollout revisions are numbers, not {target.revision!r}", retryable=False)
        known = await self.releases(service=service, environment=environment)  # read-only check
        if not any(r.revision == revision for r in known):
            raise DeployError(f"rollout {namespace}/{rollout} has no revision {revision}", retryable=False)
        what = f"undo of rollout {rollout} in {namespace} to revision {revision} ({target.version})"
        if dry_run:
            return DeployResult(ok=True, dry_run=True, summary=f"dry run: would request the {what}")
        if self._http is not None:
            body = {"namespace": namespace, "rollout": rollout, "revision": revision}
            await self._http.json("PUT", f"{_path(namespace, rollout)}/undo/{revision}", json=body, what=what)
            return DeployResult(ok=True, summary=f"Argo Rollouts accepted the {what}")
        return await self._plugin(["undo", rollout, "-n", namespace, f"--to-revision={revision}"], what=what)

    async def deploy(
        self, *, service: ServiceConfig, environment: str, version: str, dry_run: bool = False
    ) -> DeployResult:
        deploy_config(service, ArgoRolloutsDeploy)
        return DeployResult(
            ok=False,
            dry_run=dry_run,
            summary=(
                "Argo Rollouts deploys are not run by cmdcenter (the image comes from the rollout's "
                f"manifests); deploy {service.name} {version} through its pipeline, or roll back instead"
            ),
        )

    # --- Extras -----------------------------------------------------------------------------------

    async def abort(self, *, service: ServiceConfig, environment: str) -> DeployResult:
        """Abort the rollout in progress: traffic goes back to the stable ReplicaSet."""
        namespace, rollout = _target(service, environment)
        what = f"abort of rollout {rollout} in {namespace}"
        if self._http is not None:
            body = {"namespace": namespace, "name": rollout}
            await self._http.json("PUT", f"{_path(namespace, rollout)}/abort", json=body, what=what)
            return DeployResult(ok=True, summary=f"Argo Rollouts accepted the {what}")
        return await self._plugin(["abort", rollout, "-n", namespace], what=what)

    async def promote(self, *, service: ServiceConfig, environment: str, full: bool = False) -> DeployResult:
        """Promote a paused rollout to its next step (``full``: skip all remaining steps)."""
        namespace, rollout = _target(service, environment)
        what = f"{'full ' if full else ''}promotion of rollout {rollout} in {namespace}"
        if self._http is not None:
            body = {"namespace": namespace, "name": rollout, "full": full}
            await self._http.json("PUT", f"{_path(namespace, rollout)}/promote", json=body, what=what)
            return DeployResult(ok=True, summary=f"Argo Rollouts accepted the {what}")
        return await self._plugin(
            ["promote", rollout, "-n", namespace] + (["--full"] if full else []), what=what
        )

    # --- kubectl ----------------------------------------------------------------------------------

    async def _plugin(self, args: list[str], *, what: str) -> DeployResult:
        output = await run_command(
            [self.kubectl_bin, "argo", "rollouts", *args], timeout=self.command_timeout
        )
        if output.ok:
            return DeployResult(
                ok=True, summary=f"Argo Rollouts accepted the {what}", output=output.combined()
            )
        detail = summarise(output) or f"exit status {output.returncode}"
        return DeployResult(ok=False, summary=f"{what} failed: {detail}", output=output.combined())

    async def _cli_releases(self, namespace: str, rollout: str) -> list[Release]:
        ro = await self._kubectl_json(["get", "rollouts.argoproj.io", rollout, "-n", namespace, "-o", "json"])
        sets = await self._kubectl_json(
            ["get", "replicasets", "-n", namespace, "-l", _HASH_LABEL, "-o", "json"]
        )
        return parse_replica_sets(ro, sets, rollout=rollout)

    async def _kubectl_json(self, args: list[str]) -> dict[str, Any]:
        output = await run_command([self.kubectl_bin, *args], timeout=self.command_timeout)
        if not output.ok:
            raise DeployError(f"kubectl {' '.join(args[:3])} failed: {summarise(output)}", retryable=False)
        if output.truncated:
            raise DeployError(f"kubectl {' '.join(args[:2])} printed too much output", retryable=False)
        try:
            data = json.loads(output.stdout)
        except json.JSONDecodeError as exc:
            raise DeployError(f"kubectl {' '.join(args[:2])} did not print JSON", retryable=False) from exc
        return data if isinstance(data, dict) else {}


def _target(service: ServiceConfig, environment: str) -> tuple[str, str]:
    config = deploy_config(service, ArgoRolloutsDeploy)
    values = placeholder_values(service, environment)
    where = f"services.{service.name}.deploy"
    return (
        fill_placeholders(config.namespace, values, where=f"{where}.namespace"),
        fill_placeholders(config.rollout, values, where=f"{where}.rollout"),
    )


def _path(namespace: str, rollout: str) -> str:
    return f"/api/v1/rollouts/{quote(namespace, safe='')}/{quote(rollout, safe='')}"


def image_version(image: str) -> str:
    """The tag of ``registry/repo:tag`` (a short digest for ``repo@sha256:...``)."""
    if "@" in image:
        digest = image.split("@", 1)[1]
        return digest.split(":", 1)[-1][:12]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def parse_rollout_info(info: dict[str, Any]) -> list[Release]:
    """``RolloutInfo.replicaSets`` as releases, newest revision first."""
    releases = []
    for rs in info.get("replicaSets") or []:
        if not isinstance(rs, dict) or not str(rs.get("revision") or "").isdigit():
            continue
        images = [str(i) for i in rs.get("images") or []]
        status = "deployed" if rs.get("stable") else "canary" if rs.get("canary") or rs.get("preview") else ""
        meta = rs.get("objectMeta") or {}
        releases.append(
            Release(
                version=image_version(images[0]) if images else "unknown",
                revision=str(rs["revision"]),
                deployed_at=parse_time(meta.get("creationTimestamp")),
                status=status or "superseded",
                description=" ".join(
                    filter(None, [str(meta.get("name") or ""), str(rs.get("status") or "")])
                ),
            )
        )
    return sorted(releases, key=lambda r: int(r.revision), reverse=True)


def parse_replica_sets(
    rollout_obj: dict[str, Any], replica_sets: dict[str, Any], *, rollout: str
) -> list[Release]:
    """``kubectl get replicasets -o json`` items owned by ``rollout`` as releases, newest first.

    The ReplicaSet whose pod-template hash is the rollout's ``status.stableRS`` is ``deployed``;
    the one it is moving to (``status.currentPodHash``) is ``canary``.
    """
    status = rollout_obj.get("status") or {}
    stable, current = str(status.get("stableRS") or ""), str(status.get("currentPodHash") or "")
    releases = []
    for rs in replica_sets.get("items") or []:
        meta = rs.get("metadata") or {} if isinstance(rs, dict) else {}
        owners = meta.get("ownerReferences") or []
        if not any(o.get("kind") == "Rollout" and o.get("name") == rollout for o in owners):
            continue
        revision = str((meta.get("annotations") or {}).get(_REVISION_ANNOTATION) or "")
        if not revision.isdigit():
            continue
        pod_hash = str((meta.get("labels") or {}).get(_HASH_LABEL) or "")
        containers = ((rs.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
        image = str(containers[0].get("image") or "") if containers else ""
        state = "deployed" if pod_hash == stable else "canary" if pod_hash == current else "superseded"
        replicas = (rs.get("status") or {}).get("replicas") or 0
        releases.append(
            Release(
                version=image_version(image) if image else "unknown",
                revision=revision,
                deployed_at=parse_time(meta.get("creationTimestamp")),
                status=state,
                description=f"{meta.get('name') or ''} replicas={replicas}".strip(),
            )
        )
    return sorted(releases, key=lambda r: int(r.revision), reverse=True)
