"""Build the vendor adapters whose settings are present (called by the composition root only)."""

from __future__ import annotations

from typing import TypedDict

from bot.adapters.deploy import DeployTools
from bot.adapters.gate_sources import HttpGateSources
from bot.adapters.health import HttpHealthProbe
from bot.adapters.pagerduty import PagerDutyOnCall, PagerDutyPager
from bot.adapters.prometheus import PrometheusMetrics
from bot.adapters.statuspage import StatuspageClient
from bot.config import Config
from bot.ports import (
    AutoSyncControl,
    Chat,
    DeployTool,
    GateSources,
    HealthProbe,
    Metrics,
    OnCallDirectory,
    Pager,
    StatusPage,
)
from bot.settings import Settings


class Adapters(TypedDict, total=False):
    """The ports, by their ``bot.deps.Deps`` field; one passed to ``bot.app.build`` replaces the default."""

    chat: Chat
    pager: Pager
    oncall: OnCallDirectory
    statuspage: StatusPage
    deploy: DeployTool
    auto_sync: AutoSyncControl
    health: HealthProbe
    metrics: Metrics
    gate_sources: GateSources


def from_settings(settings: Settings, config: Config) -> Adapters:
    """The vendor adapters whose settings are present; an integration without settings is left out."""
    deploy = DeployTools.from_settings(settings)
    github = settings.github_token
    adapters: Adapters = {
        "health": HttpHealthProbe(),
        "deploy": deploy,
        "auto_sync": deploy,
        "gate_sources": HttpGateSources(
            github_api_url=settings.github_api_url,
            github_token=github.get_secret_value() if github else None,
        ),
    }
    key = settings.pagerduty_routing_key
    routing_key = key.get_secret_value() if key else None
    if routing_key or any(s.pagerduty.routing_key for s in config.services):
        # Paging works with per-service routing keys even when PAGERDUTY_ROUTING_KEY is unset.
        adapters["pager"] = PagerDutyPager(routing_key=routing_key, events_url=settings.pagerduty_events_url)
    if settings.pagerduty_api_token is not None:
        adapters["oncall"] = PagerDutyOnCall(
            api_token=settings.pagerduty_api_token.get_secret_value(),
            api_url=settings.pagerduty_api_url,
            from_email=settings.pagerduty_from_email,
        )
    if settings.statuspage_api_key is not None and settings.statuspage_page_id:
        adapters["statuspage"] = StatuspageClient(
            api_key=settings.statuspage_api_key.get_secret_value(),
            page_id=settings.statuspage_page_id,
            base_url=settings.statuspage_api_url,
        )
    if settings.prometheus_url:
        adapters["metrics"] = PrometheusMetrics(settings.prometheus_url)
    return adapters
