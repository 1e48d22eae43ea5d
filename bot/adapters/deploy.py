"""``DeployTools``: the one ``DeployTool`` the services use, dispatching on ``service.deploy.tool``.

    tools = DeployTools.from_settings(settings)
    releases = await tools.releases(service=svc, environment="prod")

A service without ``deploy`` config, or whose tool needs settings that are not set (Argo CD
without ``ARGOCD_URL``...), gets a ``DeployError`` (not retryable) saying so.
"""

from __future__ import annotations

from types import TracebackType

import httpx

from bot.adapters.argo_rollouts import ArgoRolloutsDeployer
from bot.adapters.argocd import ArgoCDDeployer, application_name
from bot.adapters.command import CommandDeployer
from bot.adapters.github_actions import GitHubActionsDeployer
from bot.adapters.helm import HelmDeployer
from bot.config import ArgoCDDeploy, ServiceConfig
from bot.errors import DeployError
from bot.ports import DeployResult, DeployTool, Release
from bot.settings import Settings


class DeployTools:
    """Routes each call to the adapter of the service's tool.

    ``unavailable`` maps a tool to why it has no adapter (``"ARGOCD_URL is not set"``); a tool
    with neither an adapter nor a reason is reported as not configured.
    """

    def __init__(
        self,
        *,
        helm: HelmDeployer | None = None,
        argocd: ArgoCDDeployer | None = None,
        argo_rollouts: ArgoRolloutsDeployer | None = None,
        github_actions: GitHubActionsDeployer | None = None,
        command: CommandDeployer | None = None,
        unavailable: dict[str, str] | None = None,
    ) -> None:
        self.helm = helm
        self.argocd = argocd
        self.argo_rollouts = argo_rollouts
        self.github_actions = github_actions
        self.command = command
        self._unavailable = dict(unavailable or {})

    @classmethod
    def from_settings(cls, settings: Settings, *, client: httpx.AsyncClient | None = None) -> DeployTools:
        """Every adapter the settings allow; ``client`` (shared, not closed here) for the HTTP ones."""
        unavailable: dict[str, str] = {}
        argocd = None
        if settings.argocd_url and settings.argocd_token:
            argocd = ArgoCDDeployer(settings.argocd_url, settings.argocd_token.get_secret_value(), client)
        else:
            unset = [
                name
                for name, value in (
                    ("ARGOCD_URL", settings.argocd_url),
                    ("ARGOCD_TOKEN", settings.argocd_token),
                )
                if not value
            ]
            unavailable["argocd"] = f"{' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set"
        github = None
        if settings.github_token:
            github = GitHubActionsDeployer(
                settings.github_api_url, settings.github_token.get_secret_value(), client
            )
        else:
            unavailable["github_actions"] = "GITHUB_TOKEN is not set"
        return cls(
            helm=HelmDeployer(settings.helm_bin),
            argocd=argocd,
            argo_rollouts=ArgoRolloutsDeployer(settings.argo_rollouts_url, settings.kubectl_bin, client),
            github_actions=github,
            command=CommandDeployer(),
            unavailable=unavailable,
        )

    async def aclose(self) -> None:
        """Close the HTTP clients the adapters created themselves."""
        for adapter in (self.argocd, self.argo_rollouts, self.github_actions):
            if adapter is not None:
                await adapter.aclose()

    async def __aenter__(self) -> DeployTools:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def adapter(self, service: ServiceConfig) -> DeployTool:
        """The adapter for ``service``'s tool, or a ``DeployError`` saying why there is none."""
        if service.deploy is None:
            raise DeployError(f"service {service.name} has no deploy tool configured", retryable=False)
        tool = service.deploy.tool
        adapters: dict[str, DeployTool | None] = {  # typed: each adapter must satisfy DeployTool
            "helm": self.helm,
            "argocd": self.argocd,
            "argo_rollouts": self.argo_rollouts,
            "github_actions": self.github_actions,
            "command": self.command,
        }
        adapter = adapters.get(tool)
        if adapter is None:
            reason = self._unavailable.get(tool, "no adapter is configured for it")
            raise DeployError(f"service {service.name} deploys with {tool}, but {reason}", retryable=False)
        return adapter

    # --- DeployTool -------------------------------------------------------------------------------

    async def releases(self, *, service: ServiceConfig, environment: str) -> list[Release]:
        return await self.adapter(service).releases(service=service, environment=environment)

    async def rollback(
        self, *, service: ServiceConfig, environment: str, target: Release, dry_run: bool = False
    ) -> DeployResult:
        return await self.adapter(service).rollback(
            service=service, environment=environment, target=target, dry_run=dry_run
        )

    async def deploy(
        self, *, service: ServiceConfig, environment: str, version: str, dry_run: bool = False
    ) -> DeployResult:
        return await self.adapter(service).deploy(
            service=service, environment=environment, version=version, dry_run=dry_run
        )

    # --- Deploy freezes (Argo CD auto-sync) -------------------------------------------------------

    async def suspend_auto_sync(self, *, service: ServiceConfig, environment: str) -> bool:
        """Suspend Argo CD automated sync of the service's application; False for other tools or
        when it was not on. The caller decides when (``ArgoCDDeploy.suspend_sync_on_freeze``)."""
        argocd = self._argocd(service)
        if argocd is None:
            return False
        return await argocd.suspend_auto_sync(application=application_name(service, environment))

    async def resume_auto_sync(self, *, service: ServiceConfig, environment: str) -> bool:
        """Undo ``suspend_auto_sync``; False for other tools or when nothing was suspended."""
        argocd = self._argocd(service)
        if argocd is None:
            return False
        return await argocd.resume_auto_sync(application=application_name(service, environment))

    def _argocd(self, service: ServiceConfig) -> ArgoCDDeployer | None:
        if not isinstance(service.deploy, ArgoCDDeploy):
            return None
        if self.argocd is None:
            self.adapter(service)  # raises, naming the missing setting
        return self.argocd
