"""The fictional company of the demo: Acme Shop's people, services, config and stand-in data.

Everything here is data plus the small :class:`World` that plays the production systems: it
breaks a service (health 503, error rate up) when an alert fires and heals it when the deploy
stand-in rolls it back, so a rollback's health verification sees the recovery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from bot.config import Config, parse_config
from bot.sandbox.slack.emulator import SlackWorkspace

COMPANY = "Acme Shop"
DOMAIN = "acmeshop.example"
SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - the sandbox's fixed, public demo secret
APP_TOKEN = "xapp-1-A0001-1-demo-sandbox"  # noqa: S105 - Socket Mode (demo --socket), same emulator
BOT_TOKEN = "xoxb-demo-sandbox-token"  # noqa: S105 - only the in-process emulator accepts it
PAGERDUTY_TOKEN = "pd-demo-token"  # noqa: S105
STATUSPAGE_KEY = "sp-demo-key"
STATUSPAGE_PAGE = "acmeshopdemo"
ARGOCD_TOKEN = "argocd-demo-token"  # noqa: S105
STANDINS = "/standins"  # URL prefix of the stand-ins on the demo's one port


@dataclass(frozen=True)
class Person:
    role: str  # how scenarios and the console's user switcher refer to them
    id: str
    name: str
    real_name: str
    title: str

    @property
    def email(self) -> str:
        return f"{self.name}@{DOMAIN}"


PEOPLE: tuple[Person, ...] = (
    Person("responder", "U_RIYA", "riya", "Riya Patel", "On-call engineer, checkout"),
    Person("scribe", "U_SAM", "sam", "Sam Okafor", "Engineer, scribe"),
    Person("release_captain", "U_MAYA", "maya", "Maya Chen", "Release captain"),
    Person("approver", "U_OMAR", "omar", "Omar Haddad", "SRE, approves prod changes"),
    Person("unauthorized", "U_VIC", "vic", "Vic Larsen", "Contractor, no permissions"),
)
ALERTS = Person("alertmanager", "U_ALERTS", "alertmanager", "Alertmanager", "Prometheus alerts")
DEPLOYS = Person("deploys", "U_DEPLOYS", "argocd-notifications", "Argo CD", "Deploy notifications")
GUIDE = Person("guide", "U_GUIDE", "sandbox-guide", "Sandbox guide", "Explains the demo")
INTEGRATIONS = (ALERTS, DEPLOYS, GUIDE)
ROLES: dict[str, str] = {p.role: p.id for p in (*PEOPLE, *INTEGRATIONS)}


@dataclass(frozen=True)
class DemoService:
    name: str
    owner_team: str
    component: str  # Statuspage component name
    versions: tuple[str, ...]  # release history, oldest first; the last one is live
    oncall: tuple[str, ...]  # person roles, escalation level 1 first
    error_rate: float  # healthy values of the Prometheus queries
    p95_ms: float

    @property
    def component_id(self) -> str:
        return f"cmp{self.name}01"

    @property
    def pd_service(self) -> str:
        return f"PSVC{self.name.upper()}"

    @property
    def pd_policy(self) -> str:
        return f"PEP{self.name.upper()}"

    @property
    def routing_key(self) -> str:
        return f"demo{self.name}{'0' * 32}"[:32]  # Events API v2 keys are 32 characters

    def error_rate_query(self) -> str:
        return f'service:http_5xx_ratio:rate5m{{service="{self.name}"}} * 100'

    def latency_query(self) -> str:
        return f'service:http_latency_p95:rate5m{{service="{self.name}"}} * 1000'


SERVICES: tuple[DemoService, ...] = (
    DemoService(
        "checkout", "payments", "Checkout", ("2.12.0", "2.13.0", "2.13.4", "2.14.0"),
        ("responder", "approver"), 0.2, 180.0,
    ),
    DemoService(
        "search", "discovery", "Search", ("5.7.1", "5.8.0", "5.9.0"), ("scribe", "approver"), 0.1, 95.0
    ),
    DemoService(
        "payments", "payments", "Payments", ("1.30.2", "1.31.0"), ("release_captain", "approver"), 0.05, 140.0
    ),
)  # fmt: skip
ENVIRONMENTS = ("staging", "prod")


def health_path(service: str) -> str:
    """The full path of a service's health endpoint (the HealthFake sees the mount prefix too)."""
    return f"{STANDINS}/health/{service}/healthz"


def person(role_or_id: str) -> Person:
    """A person (or integration) by role, user id or Slack name."""
    for candidate in (*PEOPLE, *INTEGRATIONS):
        if role_or_id in (candidate.role, candidate.id, candidate.name):
            return candidate
    raise KeyError(f"no demo person {role_or_id!r}; one of {', '.join(ROLES)}")


def seed_workspace(ws: SlackWorkspace) -> dict[str, str]:
    """People, user groups and the shared channels; returns user group handle -> id."""
    for p in (*PEOPLE, *INTEGRATIONS):
        is_bot = p in INTEGRATIONS
        ws.add_user(p.name, id=p.id, real_name=p.real_name, email=p.email, is_bot=is_bot)
    humans = [p.id for p in PEOPLE]
    groups = {
        "sre": ws.add_usergroup("sre", [ROLES["approver"]], name="SRE"),
        "engineers": ws.add_usergroup("engineers", [ROLES[r] for r in ("responder", "scribe", "approver")]),
        "comms": ws.add_usergroup("comms", [ROLES["responder"], ROLES["release_captain"]], name="Comms"),
    }
    ws.add_channel("general", members=humans, purpose=f"{COMPANY}, all hands")
    ws.add_channel("incident-bridge", members=humans, purpose="Incident announcements and coordination")
    ws.add_channel("releases", members=humans, purpose="Deploys, rollbacks and GO / NO-GO")
    _post_as(ws, GUIDE, "general", _WELCOME)
    for service in SERVICES:
        version, app = service.versions[-1], f"{service.name}-prod"
        text = f":rocket: *{service.name}* `{version}` synced to *prod* (Argo CD application `{app}`)"
        _post_as(ws, DEPLOYS, "releases", text)
    return groups


_WELCOME = (
    f"*Welcome to the {COMPANY} sandbox.* Nothing here talks to the real Slack.\n"
    "• Pick who you are with the switcher (top left), then try, in #incident-bridge:\n"
    "`/incident declare sev2 Checkout 502s` · `/incident help` · `/rollback checkout prod because 502s` · "
    "`/prodstatus`\n"
    "• React to messages in an incident channel with :memo: to put them on its timeline.\n"
    "• The right-hand panel shows what PagerDuty, Statuspage, Argo CD and the probes received."
)


def _post_as(ws: SlackWorkspace, who: Person, channel: str, text: str) -> None:
    found = ws.require_channel(channel)
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    ws.post_message(found.id, text=text, user=who.id, bot_id=f"B{who.id[2:]}", blocks=[block])


def post_alert(ws: SlackWorkspace, channel: str, text: str, *, who: str = "alertmanager") -> str:
    """An integration (Alertmanager) posts into ``channel``; returns the message ts."""
    sender = person(who)
    found = ws.require_channel(channel)
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    message = ws.post_message(found.id, text=text, user=sender.id, bot_id=f"B{sender.id[2:]}", blocks=[block])
    return message.ts


def demo_config(base_url: str, groups: dict[str, str]) -> Config:
    """The demo company's config (``base_url``: where the stand-ins are served)."""
    return parse_config(demo_config_yaml(base_url, groups), source="demo config", env={})


def demo_config_yaml(base_url: str, groups: dict[str, str]) -> str:
    """The demo company's config as YAML (written to the data directory for the curious)."""
    data: dict[str, Any] = {
        "slack": {"incident_channel": "incident-bridge", "release_channel": "releases"},
        "services": [_service_config(s, base_url) for s in SERVICES],
        "access": _access_rules(groups),
        "rollback": {
            "two_person_environments": ["prod"],
            "health_timeout_seconds": 30,
            "health_interval_seconds": 1,
        },
        "statuspage": {"auto_publish": False, "severities": ["sev1", "sev2"]},
        "gonogo": {"required_approvals": {"sre": 1}},
    }
    header = f"# The config of the cmdcenter demo ({COMPANY}); generated at every start.\n"
    return header + yaml.safe_dump(data, sort_keys=False, width=200)


def _service_config(s: DemoService, base_url: str) -> dict[str, Any]:
    """One demo service: its deploy tool, health check, Prometheus queries, pager and gates."""
    return {
        "name": s.name,
        "environments": list(ENVIRONMENTS),
        "default_environment": "prod",
        "owner_team": s.owner_team,
        "runbook_url": f"https://runbooks.{DOMAIN}/{s.name}",
        "deploy": {"tool": "argocd", "application": f"{s.name}-{{env}}"},
        "health_checks": [
            {
                "url": f"{base_url}{health_path(s.name)}",
                "environment": "prod",
                "json_field": "status",
                "expect_value": "ok",
                "timeout_seconds": 2,
            }
        ],
        "prometheus": _prometheus_queries(s),
        "statuspage_component_id": s.component_id,
        "pagerduty": {
            "service_id": s.pd_service,
            "escalation_policy_id": s.pd_policy,
            "routing_key": s.routing_key,
        },
        "gates": [{"kind": "no_open_incidents"}, {"kind": "no_freeze"}, {"kind": "approvals"}],
    }


def _prometheus_queries(s: DemoService) -> list[dict[str, Any]]:
    return [
        {"name": "error rate", "query": s.error_rate_query(), "unit": "%", "warn": 1, "critical": 5},
        {"name": "p95 latency", "query": s.latency_query(), "unit": "ms", "warn": 300, "critical": 800},
    ]


def _access_rules(groups: dict[str, str]) -> list[dict[str, Any]]:
    """Who may do what in the demo: engineers, SREs, comms and the release captain."""
    captain = ROLES["release_captain"]
    return [
        {"action": "rollback", "environments": ["staging"], "usergroups": [groups["engineers"]]},
        {"action": "rollback", "environments": ["prod"], "usergroups": [groups["sre"]], "users": [captain]},
        {"action": "deploy", "usergroups": [groups["engineers"]], "users": [captain]},
        {"action": "freeze", "usergroups": [groups["sre"]], "users": [captain]},
        {"action": "statuspage.publish", "usergroups": [groups["comms"], groups["sre"]]},
        {"action": "gonogo.approve", "role": "sre", "usergroups": [groups["sre"]]},
    ]


# --- the stand-ins' data ------------------------------------------------------------------------


def pagerduty_oncalls() -> dict[str, list[dict[str, Any]]]:
    oncalls: dict[str, list[dict[str, Any]]] = {}
    for s in SERVICES:
        oncalls[s.pd_policy] = [
            {
                "id": f"P{person(role).name.upper()}",
                "name": person(role).real_name,
                "email": person(role).email,
            }
            | {"level": level}
            for level, role in enumerate(s.oncall, start=1)
        ]
    return oncalls


def statuspage_components() -> dict[str, str]:
    return {s.component_id: s.component for s in SERVICES}


def argocd_history(now: datetime | None = None) -> list[tuple[str, list[str], datetime]]:
    """(application, versions oldest first, first deploy time) for every service and environment."""
    now = now or datetime.now(UTC)
    apps = []
    for s in SERVICES:
        for env in ENVIRONMENTS:
            start = now - timedelta(days=len(s.versions) * 2 + (1 if env == "prod" else 2))
            apps.append((f"{s.name}-{env}", list(s.versions), start))
    return apps


class World:
    """The demo's production: health and metrics per service, broken and healed on cue.

    ``health`` and ``prometheus`` are the HealthFake and PrometheusFake; ``rolled_back`` returns
    keys ``(application, release id)`` of the rollbacks the deploy stand-in completed, watched by
    :meth:`tick`.
    """

    def __init__(
        self,
        health: Any,
        prometheus: Any,
        rolled_back: Callable[[], Iterable[tuple[str, str]]] | None = None,
    ) -> None:
        self.health = health
        self.prometheus = prometheus
        self._rolled_back = rolled_back
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.version = 0
        self.status: dict[str, dict[str, Any]] = {}
        for s in SERVICES:
            self.heal(s.name)

    def _service(self, name: str) -> DemoService:
        found = next((s for s in SERVICES if s.name == name), None)
        if found is None:
            raise KeyError(f"no demo service {name!r}")
        return found

    def set_health(self, service: str, status: int) -> None:
        body = {"status": "ok" if status < 400 else "unavailable", "service": service}
        self.health.set(health_path(self._service(service).name), status=status, json=body)
        self._record(service, "health", status)

    def set_metric(self, service: str, metric: str, value: float) -> None:
        s = self._service(service)
        queries = {"error rate": s.error_rate_query(), "p95 latency": s.latency_query()}
        if metric not in queries:
            raise KeyError(f"unknown metric {metric!r}; one of {sorted(queries)}")
        self.prometheus.set(queries[metric], value, labels={"service": service})
        self._record(service, metric, value)

    def heal(self, service: str) -> None:
        s = self._service(service)
        self.set_health(service, 200)
        self.set_metric(service, "error rate", s.error_rate)
        self.set_metric(service, "p95 latency", s.p95_ms)

    def _record(self, service: str, key: str, value: Any) -> None:
        with self._lock:
            self.status.setdefault(service, {})[key] = value
            self.version += 1

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: dict(values) for name, values in self.status.items()}

    def tick(self) -> None:
        """Heal a service once the deploy stand-in completed a rollback of it in prod."""
        done = set(self._rolled_back()) if self._rolled_back is not None else set()
        for app, _ in sorted(done - self._seen):
            service, _, env = app.rpartition("-")
            if env == "prod" and any(s.name == service for s in SERVICES):
                self.heal(service)
        self._seen |= done
