"""Build the vendor adapters whose settings are present (called by the composition root only)."""

from __future__ import annotations

from typing import Any

from bot.adapters.deploy import DeployTools
from bot.adapters.health import HttpHealthProbe
from bot.adapters.pagerduty import PagerDutyOnCall, PagerDutyPager
from bot.adapters.prometheus import PrometheusMetrics
from bot.adapters.statuspage import StatuspageClient
from bot.config import Config
from bot.settings import Settings


def from_settings(settings: Settings, config: Config) -> dict[str, Any]:
    """Adapters keyed by their ``Services`` field; an integration without settings is left out."""
    adapters: dict[str, Any] = {
        "health": HttpHealthProbe(),
        "deploy": DeployTools.from_settings(settings),
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
