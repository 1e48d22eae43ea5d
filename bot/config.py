"""The YAML configuration: channels, severity policy, services and access rules.

Loaded once by the composition root (``load_config``) and passed down. ``${ENV_VAR}`` in any string
value is replaced from the environment; a missing variable is a config error naming its location.
See ``cmdcenter.example.yaml`` for a commented example of every field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError, NotFound

Severity = Literal["sev1", "sev2", "sev3", "sev4"]
SEVERITIES: tuple[Severity, ...] = ("sev1", "sev2", "sev3", "sev4")
_PAGING_SEVERITIES: tuple[Severity, ...] = ("sev1", "sev2")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackConfig(_Model):
    incident_channel: str = "incident-bridge"
    release_channel: str = "releases"
    # Pattern for incident channel names; {date} is yyyymmdd, {n} the incident number, {slug} the title.
    incident_channel_pattern: str = "inc-{date}-{n}-{slug}"
    timeline_emojis: list[str] = Field(default_factory=lambda: ["memo", "pushpin"])
    timezone: str = "UTC"

    @field_validator("incident_channel", "release_channel")
    @classmethod
    def _strip_hash(cls, value: str) -> str:
        return value.lstrip("#")

    @field_validator("incident_channel_pattern")
    @classmethod
    def _pattern_has_n(cls, value: str) -> str:
        if "{n}" not in value:
            raise ValueError("must contain {n} so that every incident gets its own channel")
        unknown = set(re.findall(r"{(\w*)}", value)) - {"date", "n", "slug"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use {{date}}, {{n}}, {{slug}}")
        return value


class SeverityPolicy(_Model):
    description: str
    update_minutes: int | None = Field(default=None, ge=1, description="status update cadence")
    page: bool = False
    escalate_after_minutes: int | None = Field(default=None, ge=1)
    statuspage: bool = False
    freeze: bool = False
    pagerduty_severity: Literal["critical", "error", "warning", "info"] = "info"
    component_status: (
        Literal["operational", "degraded_performance", "partial_outage", "major_outage"] | None
    ) = None


def _default_severities() -> dict[Severity, SeverityPolicy]:
    return {
        "sev1": SeverityPolicy(
            description="service down or data loss for all users",
            update_minutes=15,
            page=True,
            escalate_after_minutes=15,
            statuspage=True,
            freeze=True,
            pagerduty_severity="critical",
            component_status="major_outage",
        ),
        "sev2": SeverityPolicy(
            description="major feature down or degraded for many",
            update_minutes=30,
            page=True,
            statuspage=True,
            freeze=True,
            pagerduty_severity="error",
            component_status="partial_outage",
        ),
        "sev3": SeverityPolicy(
            description="minor feature degraded for some",
            update_minutes=120,
            pagerduty_severity="warning",
            component_status="degraded_performance",
        ),
        "sev4": SeverityPolicy(description="cosmetic, no user impact", pagerduty_severity="info"),
    }


class HelmDeploy(_Model):
    tool: Literal["helm"]
    release: str
    namespace: str = "{env}"
    kube_context: str | None = None
    timeout_seconds: int = Field(default=300, ge=1)


class ArgoCDDeploy(_Model):
    tool: Literal["argocd"]
    application: str = Field(description="Argo CD application name; may contain {env}")
    suspend_sync_on_freeze: bool = False


class ArgoRolloutsDeploy(_Model):
    tool: Literal["argo_rollouts"]
    rollout: str
    namespace: str = "{env}"


class GitHubActionsDeploy(_Model):
    tool: Literal["github_actions"]
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    workflow: str = Field(description="workflow file name or id, e.g. rollback.yml")
    ref: str = "main"
    inputs: dict[str, str] = Field(default_factory=dict)


class CommandDeploy(_Model):
    tool: Literal["command"]
    # argv templates; placeholders {service} {env} {version} {revision}. Never run through a shell.
    rollback: list[str] = Field(min_length=1)
    deploy: list[str] | None = None
    history: list[str] | None = None
    timeout_seconds: int = Field(default=600, ge=1)


DeployConfig = Annotated[
    HelmDeploy | ArgoCDDeploy | ArgoRolloutsDeploy | GitHubActionsDeploy | CommandDeploy,
    Field(discriminator="tool"),
]


class HealthCheck(_Model):
    url: str
    environment: str | None = None
    expect_status: int = 200
    json_field: str | None = Field(default=None, description="dotted path, e.g. status")
    expect_value: str | None = None
    timeout_seconds: float = Field(default=3.0, gt=0)


class PrometheusQuery(_Model):
    name: str
    query: str
    warn: float | None = None
    critical: float | None = None
    unit: str = ""
    direction: Literal["above", "below"] = "above"
    baseline_query: str | None = None
    baseline_warn_pct: float = 30.0
    baseline_critical_pct: float = 60.0


class PagerDutyService(_Model):
    service_id: str | None = None
    escalation_policy_id: str | None = None
    routing_key: str | None = None


class GateConfig(_Model):
    """One release gate; the kind decides which other fields matter (see the example config)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: Literal[
        "no_open_incidents",
        "no_freeze",
        "change_window",
        "approvals",
        "http",
        "prometheus",
        "github_checks",
        "image_digest",
        "command",
    ]
    name: str | None = None
    environments: list[str] | None = None
    advisory: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0)


class ServiceConfig(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    environments: list[str] = Field(default_factory=lambda: ["staging", "prod"], min_length=1)
    default_environment: str | None = None
    owner_team: str = ""
    runbook_url: str | None = None
    deploy: DeployConfig | None = None
    health_checks: list[HealthCheck] = Field(default_factory=list)
    prometheus: list[PrometheusQuery] = Field(default_factory=list)
    statuspage_component_id: str | None = None
    pagerduty: PagerDutyService = Field(default_factory=PagerDutyService)
    gates: list[GateConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _default_env_known(self) -> ServiceConfig:
        if self.default_environment and self.default_environment not in self.environments:
            raise ValueError(
                f"default_environment {self.default_environment!r} is not one of {self.environments}"
            )
        return self

    @property
    def default_env(self) -> str:
        return self.default_environment or self.environments[-1]

    def environment(self, name: str | None) -> str:
        """``name`` as configured (any case); the default environment for None."""
        if name is None:
            return self.default_env
        found = next((e for e in self.environments if e.lower() == name.lower()), None)
        if found is None:
            raise NotFound(
                f"{self.name} has no environment `{name}` (it has {', '.join(self.environments)})."
            )
        return found


class AccessRule(_Model):
    """Who may do an action. ``action`` is e.g. ``rollback``, ``deploy``, ``freeze``,
    ``statuspage.publish``, ``gonogo.approve``; ``*`` matches any service/environment."""

    action: str
    services: list[str] = Field(default_factory=lambda: ["*"])
    environments: list[str] = Field(default_factory=lambda: ["*"])
    users: list[str] = Field(default_factory=list)
    usergroups: list[str] = Field(default_factory=list)
    role: str | None = Field(default=None, description="approval role name (gonogo)")


class RollbackConfig(_Model):
    two_person_environments: list[str] = Field(default_factory=lambda: ["prod", "production"])
    health_timeout_seconds: float = Field(default=300, gt=0)
    health_interval_seconds: float = Field(default=10, gt=0)


class FreezeConfig(_Model):
    on_severities: list[Severity] = Field(default_factory=lambda: list(_PAGING_SEVERITIES))
    scope: Literal["service", "all"] = "service"


class StatuspageConfig(_Model):
    auto_publish: bool = False
    severities: list[Severity] = Field(default_factory=lambda: list(_PAGING_SEVERITIES))


class GoNoGoConfig(_Model):
    allow_self_approval: bool = False
    required_approvals: dict[str, int] = Field(
        default_factory=lambda: {"sre": 1}, description="approval role -> count"
    )
    objection_window_minutes: int | None = None
    max_exception_days: int = Field(default=7, ge=1, le=7)


class ReportsConfig(_Model):
    digest_channel: str | None = None
    digest_time: time | None = None
    weekly_channel: str | None = None
    weekly_weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    weekly_time: time = time(9, 0)
    deploy_correlation_minutes: int = 60


class Config(_Model):
    slack: SlackConfig = Field(default_factory=SlackConfig)
    severities: dict[Severity, SeverityPolicy] = Field(default_factory=_default_severities)
    services: list[ServiceConfig] = Field(default_factory=list)
    access: list[AccessRule] = Field(default_factory=list)
    rollback: RollbackConfig = Field(default_factory=RollbackConfig)
    freeze: FreezeConfig = Field(default_factory=FreezeConfig)
    statuspage: StatuspageConfig = Field(default_factory=StatuspageConfig)
    gonogo: GoNoGoConfig = Field(default_factory=GoNoGoConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)

    @field_validator("severities")
    @classmethod
    def _all_severities(cls, value: dict[Severity, SeverityPolicy]) -> dict[Severity, SeverityPolicy]:
        defaults = _default_severities()
        return {sev: value.get(sev, defaults[sev]) for sev in SEVERITIES}

    def policy(self, severity: Severity) -> SeverityPolicy:
        """What a severity means here: paging, update cadence, Statuspage, freeze (every severity has
        one: the defaults fill in those the file leaves out)."""
        return self.severities[severity]

    @model_validator(mode="after")
    def _unique_services(self) -> Config:
        names = [s.name for s in self.services]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate service name(s): {', '.join(dupes)}")
        return self

    def service(self, name: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.name == name), None)

    def require_service(self, name: str) -> ServiceConfig:
        """The service named ``name``; a user-facing ``NotFound`` listing the known ones otherwise."""
        found = self.service(name)
        if found is None:
            known = ", ".join(s.name for s in self.services) or "none configured"
            raise NotFound(f"Unknown service `{name}` (known: {known}).")
        return found


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _interpolate(node: Any, env: Mapping[str, str], where: str, problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {
            k: _interpolate(v, env, f"{where}.{k}" if where else str(k), problems) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_interpolate(v, env, f"{where}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(f"{where}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(sub, node)
    return node


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(text: str, *, source: str = "config", env: Mapping[str, str] | None = None) -> Config:
    """Parse YAML text into a Config, raising ConfigError with every problem and its location."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError([f"{where}: invalid YAML ({getattr(exc, 'problem', 'syntax error')})"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: the top level must be a mapping"])
    env_problems: list[str] = []
    data = _interpolate(raw, os.environ if env is None else env, "", env_problems)
    problems = [f"{source}: {p}" for p in env_problems]
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += [f"{source}: {_location(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(problems) from exc
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: Path, *, env: Mapping[str, str] | None = None, required: bool = False) -> Config:
    """Load the config file; a missing file gives the defaults unless ``required``."""
    if not path.exists():
        if required:
            raise ConfigError([f"{path}: file not found"])
        return Config()
    return parse_config(path.read_text(encoding="utf-8"), source=str(path), env=env)
