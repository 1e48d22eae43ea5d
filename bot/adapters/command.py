"""Deploys through operator-configured commands (``CommandDeploy``): argv templates, never a shell.

Each argument may use ``{service}``, ``{env}``, ``{version}``, ``{revision}``; the same values are
also in the environment as ``CMDCENTER_SERVICE``, ``CMDCENTER_ENV``, ``CMDCENTER_VERSION`` and
``CMDCENTER_REVISION``. The optional ``history`` command must print a JSON list, newest first, of
``{"version": ..., "revision": ..., "deployed_at": ..., "status": ...}`` (the last two optional).
A dry-run rollback or deploy shows the command that would run and runs nothing.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from bot.adapters._subprocess import deploy_config, parse_time, run_command, summarise
from bot.config import CommandDeploy, ServiceConfig
from bot.errors import DeployError
from bot.ports import DeployResult, Release
from bot.values import fill_placeholders, placeholder_values


class CommandDeployer:
    """Runs the argv templates of ``CommandDeploy``."""

    async def releases(self, *, service: ServiceConfig, environment: str) -> list[Release]:
        config = deploy_config(service, CommandDeploy)
        if not config.history:
            return []
        values = placeholder_values(service, environment)
        argv = _argv(config.history, values, where=f"services.{service.name}.deploy.history")
        output = await run_command(argv, timeout=config.timeout_seconds, env=_env(values))
        if not output.ok:
            raise DeployError(
                f"history command failed (exit {output.returncode}): {summarise(output)}", retryable=False
            )
        if output.truncated:
            raise DeployError("history command printed too much output", retryable=False)
        return parse_history(output.stdout)

    async def rollback(
        self, *, service: ServiceConfig, environment: str, target: Release, dry_run: bool = False
    ) -> DeployResult:
        config = deploy_config(service, CommandDeploy)
        values = placeholder_values(service, environment, version=target.version, revision=target.revision)
        argv = _argv(config.rollback, values, where=f"services.{service.name}.deploy.rollback")
        return await _execute(argv, values, verb="rollback", timeout=config.timeout_seconds, dry_run=dry_run)

    async def deploy(
        self, *, service: ServiceConfig, environment: str, version: str, dry_run: bool = False
    ) -> DeployResult:
        config = deploy_config(service, CommandDeploy)
        if not config.deploy:
            return DeployResult(
                ok=False, dry_run=dry_run, summary=f"no deploy command is configured for {service.name}"
            )
        values = placeholder_values(service, environment, version=version)
        argv = _argv(config.deploy, values, where=f"services.{service.name}.deploy.deploy")
        return await _execute(argv, values, verb="deploy", timeout=config.timeout_seconds, dry_run=dry_run)


def _argv(templates: list[str], values: dict[str, str | None], *, where: str) -> list[str]:
    return [fill_placeholders(arg, values, where=f"{where}[{i}]") for i, arg in enumerate(templates)]


def _env(values: dict[str, str | None]) -> dict[str, str]:
    return {f"CMDCENTER_{name.upper()}": value for name, value in values.items() if value is not None}


async def _execute(
    argv: list[str], values: dict[str, str | None], *, verb: str, timeout: float, dry_run: bool
) -> DeployResult:
    shown = shlex.join(argv)
    if dry_run:
        return DeployResult(ok=True, dry_run=True, summary=f"dry run: would run {shown}", output=shown)
    output = await run_command(argv, timeout=timeout, env=_env(values))
    detail = summarise(output)
    if output.ok:
        summary = f"{verb} command succeeded" + (f": {detail}" if detail else "")
        return DeployResult(ok=True, summary=summary, output=output.combined())
    summary = f"{verb} command failed (exit {output.returncode})" + (f": {detail}" if detail else "")
    return DeployResult(ok=False, summary=summary, output=output.combined())


def parse_history(stdout: str) -> list[Release]:
    """The history command's JSON list, in its order (newest first)."""
    try:
        entries: Any = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise DeployError("history command did not print JSON", retryable=False) from exc
    if not isinstance(entries, list):
        raise DeployError("history command must print a JSON list", retryable=False)
    releases = []
    for index, entry in enumerate(entries):
        if (
            not isinstance(entry, dict)
            or not _scalar(entry.get("version"))
            or not _scalar(entry.get("revision"))
        ):
            raise DeployError(
                f"history entry {index} needs a version and a revision (strings or numbers)", retryable=False
            )
        default_status = "deployed" if index == 0 else "superseded"
        releases.append(
            Release(
                version=str(entry["version"]),
                revision=str(entry["revision"]),
                deployed_at=parse_time(entry.get("deployed_at")),
                status=str(entry.get("status") or default_status),
                description=str(entry.get("description") or ""),
            )
        )
    return releases


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""
