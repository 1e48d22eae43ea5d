"""Helm 3 through its CLI: ``helm history`` for releases, ``helm rollback --wait`` for rollbacks.

The release, namespace and kube context of ``HelmDeploy`` may contain ``{service}``/``{env}``.
Helm revisions are the ``Release.revision``; the version is the chart's ``app_version`` (else the
chart version). cmdcenter does not run ``helm upgrade``: that needs the chart reference and the
values key holding the image tag, which only the service's own pipeline knows.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.adapters._subprocess import CommandOutput, deploy_config, parse_time, run_command, summarise
from bot.config import HelmDeploy, ServiceConfig
from bot.errors import DeployError
from bot.ports import DeployResult, Release
from bot.values import fill_placeholders, placeholder_values

_CHART_VERSION = re.compile(r"-(v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)$")
_TRANSIENT = re.compile(
    r"unreachable|connection refused|i/o timeout|tls handshake|timed out|etcdserver|too many requests",
    re.IGNORECASE,
)
_GRACE_SECONDS = 30.0  # on top of helm's own --timeout before the process is killed


class HelmDeployer:
    """Runs ``helm_bin`` (a path or a name on PATH)."""

    def __init__(self, helm_bin: str = "helm", *, history_max: int = 20, read_timeout: float = 60.0) -> None:
        self.helm_bin = helm_bin
        self.history_max = history_max
        self.read_timeout = read_timeout

    async def releases(self, *, service: ServiceConfig, environment: str) -> list[Release]:
        target = _Target.of(service, environment)
        argv = [self.helm_bin, "history", target.release, *target.scope(), "-o", "json"]
        argv += ["--max", str(self.history_max)]
        output = await run_command(argv, timeout=self.read_timeout)
        if not output.ok:
            raise DeployError(
                f"helm history {target.release} failed: {summarise(output)}",
                retryable=bool(_TRANSIENT.search(output.stderr)),
            )
        return parse_history(output.stdout, truncated=output.truncated)

    async def rollback(
        self, *, service: ServiceConfig, environment: str, target: Release, dry_run: bool = False
    ) -> DeployResult:
        where = _Target.of(service, environment)
        revision = target.revision.strip()
        if not revision.isdigit():
            raise DeployError(f"helm revisions are numbers, not {target.revision!r}", retryable=False)
        timeout = where.config.timeout_seconds
        argv = [self.helm_bin, "rollback", where.release, revision, *where.scope()]
        argv += ["--wait", "--timeout", f"{timeout}s"] + (["--dry-run"] if dry_run else [])
        output = await run_command(argv, timeout=timeout + _GRACE_SECONDS)
        what = f"{where.release} in {where.namespace} to revision {revision} ({target.version})"
        return _result(output, ok_text=f"helm rolled back {what}", dry_run=dry_run)

    async def deploy(
        self, *, service: ServiceConfig, environment: str, version: str, dry_run: bool = False
    ) -> DeployResult:
        deploy_config(service, HelmDeploy)
        return DeployResult(
            ok=False,
            dry_run=dry_run,
            summary=(
                "helm deploys are not run by cmdcenter (it does not know the chart or the values to "
                f"set); deploy {service.name} {version} through its pipeline, or roll back instead"
            ),
        )


class _Target:
    def __init__(self, config: HelmDeploy, release: str, namespace: str, context: str | None) -> None:
        self.config, self.release, self.namespace, self.context = config, release, namespace, context

    @classmethod
    def of(cls, service: ServiceConfig, environment: str) -> _Target:
        config = deploy_config(service, HelmDeploy)
        values = placeholder_values(service, environment)
        where = f"services.{service.name}.deploy"
        context = config.kube_context
        return cls(
            config,
            fill_placeholders(config.release, values, where=f"{where}.release"),
            fill_placeholders(config.namespace, values, where=f"{where}.namespace"),
            fill_placeholders(context, values, where=f"{where}.kube_context") if context else None,
        )

    def scope(self) -> list[str]:
        return ["-n", self.namespace] + (["--kube-context", self.context] if self.context else [])


def _result(output: CommandOutput, *, ok_text: str, dry_run: bool) -> DeployResult:
    suffix = " (dry run)" if dry_run else ""
    if output.ok:
        return DeployResult(ok=True, summary=ok_text + suffix, output=output.combined(), dry_run=dry_run)
    detail = summarise(output) or f"exit status {output.returncode}"
    return DeployResult(
        ok=False, summary=f"helm rollback failed{suffix}: {detail}", output=output.combined(), dry_run=dry_run
    )


def parse_history(stdout: str, *, truncated: bool = False) -> list[Release]:
    """``helm history -o json`` (oldest first) as releases, newest first."""
    if truncated:
        raise DeployError("helm history printed more output than cmdcenter reads", retryable=False)
    try:
        entries: Any = json.loads(stdout or "[]")
    except json.JSONDecodeError as exc:
        raise DeployError("helm history did not print JSON", retryable=False) from exc
    if not isinstance(entries, list):
        raise DeployError("helm history printed JSON that is not a list", retryable=False)
    releases = [_release(entry) for entry in entries if isinstance(entry, dict) and "revision" in entry]
    return sorted(releases, key=lambda r: int(r.revision) if r.revision.isdigit() else -1, reverse=True)


def _release(entry: dict[str, Any]) -> Release:
    chart = str(entry.get("chart") or "")
    app_version = str(entry.get("app_version") or "")
    match = _CHART_VERSION.search(chart)
    version = app_version or (match.group(1) if match else chart)
    return Release(
        version=version or "unknown",
        revision=str(entry["revision"]),
        deployed_at=parse_time(entry.get("updated")),
        status=str(entry.get("status") or "unknown"),
        description=str(entry.get("description") or ""),
    )
