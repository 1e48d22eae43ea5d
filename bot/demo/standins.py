"""The demo's stand-ins for the vendors (PagerDuty, Statuspage, Argo CD, health, Prometheus) and the
bot adapters pointed at them.

Each stand-in is one of the sandbox fakes (``bot/sandbox/``), served under ``/standins/<name>`` on
the demo's port. A fake or adapter whose module cannot be imported yet is left out and listed in
``StandIns.missing`` with the reason, so the rest of the demo still runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Mount

from bot.adapters.factory import Adapters
from bot.demo import seed
from bot.sandbox.vendors.health import HealthFake
from bot.sandbox.vendors.prometheus import PrometheusFake

log = logging.getLogger(__name__)


@dataclass
class StandIns:
    health: HealthFake
    prometheus: PrometheusFake
    pagerduty: Any = None  # PagerDutyFake
    statuspage: Any = None  # StatuspageFake
    argocd: Any = None  # ArgoCDFake
    apps: dict[str, Any] = field(default_factory=dict)  # prefix name -> ASGI app
    missing: dict[str, str] = field(default_factory=dict)  # stand-in or adapter -> why it is absent

    def routes(self) -> list[BaseRoute]:
        return [Mount(f"{seed.STANDINS}/{name}", app=app) for name, app in self.apps.items()]

    def rolled_back(self) -> list[tuple[str, str]]:
        """(application, history id) of every rollback the Argo CD stand-in completed."""
        if self.argocd is None:
            return []
        requested = {str(r.get("application")) for r in list(self.argocd.rollbacks)}
        done = []
        for name in sorted(requested):
            history = self.argocd.application(name)["status"]["history"]
            done += [
                (name, str(h["id"]))
                for h in history
                if (h.get("initiatedBy") or {}).get("username") == "cmdcenter"
            ]
        return done


def build_standins() -> StandIns:
    health, prometheus = HealthFake(hang_seconds=5.0), PrometheusFake(hang_seconds=5.0)
    standins = StandIns(health=health, prometheus=prometheus)
    standins.apps = {"health": health.app, "prometheus": prometheus.app}
    try:
        from bot.sandbox.vendors import pagerduty as pagerduty_fake

        standins.pagerduty = pagerduty_fake.PagerDutyFake(
            api_token=seed.PAGERDUTY_TOKEN, oncalls=seed.pagerduty_oncalls(), incidents=[]
        )
        standins.apps["pagerduty"] = pagerduty_fake.create_app(standins.pagerduty)
    except ImportError as exc:
        standins.missing["PagerDuty"] = f"fake not importable: {exc}"
    try:
        from bot.sandbox.vendors import statuspage as statuspage_fake

        standins.statuspage = statuspage_fake.StatuspageFake(
            api_key=seed.STATUSPAGE_KEY, page_id=seed.STATUSPAGE_PAGE, components=seed.statuspage_components()
        )
        standins.apps["statuspage"] = statuspage_fake.create_app(standins.statuspage)
    except ImportError as exc:
        standins.missing["Statuspage"] = f"fake not importable: {exc}"
    try:
        from bot.sandbox.vendors.argocd import ArgoCDFake

        standins.argocd = ArgoCDFake(token=seed.ARGOCD_TOKEN)
        for name, versions, start in seed.argocd_history():
            standins.argocd.add_application(name, versions=versions, start=start)
        standins.apps["argocd"] = standins.argocd.app
    except ImportError as exc:
        standins.missing["Argo CD"] = f"fake not importable: {exc}"
    return standins


def settings_values(base_url: str) -> dict[str, Any]:
    """Settings that point the bot's integrations at the stand-ins (by field name)."""
    root = f"{base_url}{seed.STANDINS}"
    return {
        "pagerduty_routing_key": seed.SERVICES[0].routing_key,
        "pagerduty_events_url": f"{root}/pagerduty",
        "pagerduty_api_token": seed.PAGERDUTY_TOKEN,
        "pagerduty_api_url": f"{root}/pagerduty",
        "pagerduty_from_email": seed.person("approver").email,
        "statuspage_api_key": seed.STATUSPAGE_KEY,
        "statuspage_page_id": seed.STATUSPAGE_PAGE,
        "statuspage_api_url": f"{root}/statuspage",
        "argocd_url": f"{root}/argocd",
        "argocd_token": seed.ARGOCD_TOKEN,
        "prometheus_url": f"{root}/prometheus",
    }


def build_adapters(base_url: str, standins: StandIns) -> Adapters:
    """The adapters for ``bot.app.build(**adapters)``: every one whose stand-in and module exist."""
    root = f"{base_url}{seed.STANDINS}"
    adapters: Adapters = {}
    try:
        from bot.adapters.health import HttpHealthProbe
        from bot.adapters.prometheus import PrometheusMetrics

        adapters["health"] = HttpHealthProbe()
        adapters["metrics"] = PrometheusMetrics(f"{root}/prometheus")
    except ImportError as exc:
        standins.missing["probes"] = f"adapter not importable: {exc}"
    if standins.pagerduty is not None:
        try:
            from bot.adapters.pagerduty import PagerDutyOnCall, PagerDutyPager

            adapters["pager"] = PagerDutyPager(
                routing_key=seed.SERVICES[0].routing_key, events_url=f"{root}/pagerduty"
            )
            adapters["oncall"] = PagerDutyOnCall(
                api_token=seed.PAGERDUTY_TOKEN,
                api_url=f"{root}/pagerduty",
                from_email=seed.person("approver").email,
            )
        except ImportError as exc:
            standins.missing["PagerDuty adapter"] = f"not importable: {exc}"
    if standins.statuspage is not None:
        try:
            from bot.adapters.statuspage import StatuspageClient

            adapters["statuspage"] = StatuspageClient(
                api_key=seed.STATUSPAGE_KEY, page_id=seed.STATUSPAGE_PAGE, base_url=f"{root}/statuspage"
            )
        except ImportError as exc:
            standins.missing["Statuspage adapter"] = f"not importable: {exc}"
    if standins.argocd is not None:
        try:
            from bot.adapters.argocd import ArgoCDDeployer
            from bot.adapters.deploy import DeployTools

            argocd = ArgoCDDeployer(f"{root}/argocd", seed.ARGOCD_TOKEN, poll_interval=0.3)
            adapters["deploy"] = DeployTools(argocd=argocd)
        except ImportError as exc:
            standins.missing["Argo CD adapter"] = f"not importable: {exc}"
    return adapters
