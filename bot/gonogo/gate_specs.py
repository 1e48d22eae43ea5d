"""The gate kinds' config and the gates of a service (pure: config in, data out).

    gates = gates_for(service, "prod")         # the gates that apply to prod, in config order
    gate = find_gate(service, "ci")            # by key, name or (when unique) kind
    problems = config_problems(config)         # every bad gate, with its location (start-up, check-config)

A gate's fields beyond ``kind``/``name``/``environments``/``advisory``/``timeout_seconds`` are the
kind's own (``SPECS``; ``config_problems`` checks them all at start-up)::

    no_open_incidents  scope: service|all (service; service-less incidents count), severities ([sev1, sev2])
    no_freeze          —  (the freezes in force: ``bot.releases.freeze``)
    change_window      allow: [specs], deny: [specs], holidays: [dates], timezone (slack.timezone)
    approvals          required: {role: count} (gonogo.required_approvals) — judged from the votes
    http               url, expect_status (200), json_field, expect_value | min | max
    prometheus         query, max | min, unit, no_data: fail|pass (fail)
    github_checks      repository (owner/name), ref ({version}), required: [check names] (all)
    image_digest       path (a file or a folder) | url
    command            argv (exit 0 passes; the last output line is the evidence)

``url``, ``ref``, ``path`` and ``argv`` may use ``{service}``, ``{env}`` and ``{version}``; a gate's
``key`` is stable across environments (what an exception names). A service without gates gets
``DEFAULT_GATES``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.config import Config, GateConfig, ServiceConfig, Severity
from bot.errors import CmdcenterError
from bot.gonogo.windows import ChangeWindow
from bot.values import fill_placeholders

DEFAULT_GATES = ("no_open_incidents", "no_freeze", "approvals")
_PAGING: tuple[Severity, ...] = ("sev1", "sev2")
_SLUG = re.compile(r"[^a-z0-9]+")

# --- the kinds' own fields --------------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_placeholders(value: str) -> str:
    sample = {"service": "s", "env": "e", "version": "v", "revision": None}
    try:
        fill_placeholders(value, sample, where="gate")
    except CmdcenterError as exc:
        raise ValueError(str(exc).removeprefix("gate: ")) from None
    return value


class NoOpenIncidentsSpec(_Spec):
    scope: Literal["service", "all"] = "service"
    severities: list[Severity] = Field(default_factory=lambda: list(_PAGING), min_length=1)


class NoFreezeSpec(_Spec):
    pass


class ChangeWindowSpec(_Spec):
    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)
    timezone: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> ChangeWindowSpec:
        self.window()  # raises ValueError naming the bad spec
        if self.timezone is not None:
            zone(self.timezone)
        return self

    def window(self) -> ChangeWindow:
        return ChangeWindow.parse(
            allow=self.allow, deny=[*self.deny, *(d.isoformat() for d in self.holidays)]
        )


class ApprovalsSpec(_Spec):
    required: dict[str, int] | None = None

    @field_validator("required")
    @classmethod
    def _counts(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is not None and any(n < 0 for n in value.values()):
            raise ValueError("approval counts must be 0 or more")
        return value


class HttpSpec(_Spec):
    url: str
    expect_status: int = Field(default=200, ge=100, le=599)
    json_field: str | None = None
    expect_value: str | None = None
    min: float | None = None
    max: float | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_placeholders(_http_url(value))

    @model_validator(mode="after")
    def _conditions(self) -> HttpSpec:
        if self.json_field is None and (self.expect_value, self.min, self.max) != (None, None, None):
            raise ValueError("expect_value, min and max need a json_field")
        if self.expect_value is not None and (self.min, self.max) != (None, None):
            raise ValueError("use either expect_value or min/max, not both")
        return self


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


class PrometheusSpec(_Spec):
    query: str = Field(min_length=1)
    max: float | None = None
    min: float | None = None
    unit: str = ""
    no_data: Literal["fail", "pass"] = "fail"

    @model_validator(mode="after")
    def _threshold(self) -> PrometheusSpec:
        if self.max is None and self.min is None:
            raise ValueError("set max (the value must stay at or below it) or min")
        return self


class GitHubChecksSpec(_Spec):
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    ref: str = "{version}"
    required: list[str] = Field(default_factory=list)

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        return _check_placeholders(value)


class ImageDigestSpec(_Spec):
    path: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ImageDigestSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("set exactly one of path (a file or a folder) and url")
        for value in (self.path, self.url):
            if value is not None:
                _check_placeholders(value)
        if self.url is not None:
            _http_url(self.url)
        return self


class CommandSpec(_Spec):
    argv: list[str] = Field(min_length=1)

    @field_validator("argv")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        return [_check_placeholders(arg) for arg in value]


SPECS: dict[str, type[_Spec]] = {
    "no_open_incidents": NoOpenIncidentsSpec,
    "no_freeze": NoFreezeSpec,
    "change_window": ChangeWindowSpec,
    "approvals": ApprovalsSpec,
    "http": HttpSpec,
    "prometheus": PrometheusSpec,
    "github_checks": GitHubChecksSpec,
    "image_digest": ImageDigestSpec,
    "command": CommandSpec,
}

DEFAULT_NAMES = {
    "no_open_incidents": "No open incident",
    "no_freeze": "No deploy freeze",
    "change_window": "Change window",
    "approvals": "Approvals",
    "http": "HTTP check",
    "prometheus": "Prometheus",
    "github_checks": "GitHub checks",
    "image_digest": "Images pinned by digest",
    "command": "Command",
}


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


# --- the gates of a service --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    key: str  # stable across environments: what an exception names
    name: str
    kind: str
    advisory: bool
    timeout: float
    spec: Any  # the kind's _Spec
    environments: tuple[str, ...] | None = None


def slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-") or "gate"


def _spec(config: GateConfig) -> _Spec:
    return SPECS[config.kind].model_validate(config.model_extra or {})


def service_gates(service: ServiceConfig) -> list[Gate]:
    """Every gate of the service (all environments), with unique keys; the defaults when none."""
    configs = service.gates or [GateConfig(kind=kind) for kind in DEFAULT_GATES]
    gates: list[Gate] = []
    seen: set[str] = set()
    for config in configs:
        base = slug(config.name) if config.name else config.kind
        key, n = base, 1
        while key in seen:
            n += 1
            key = f"{base}-{n}"
        seen.add(key)
        gates.append(
            Gate(
                key=key,
                name=config.name or DEFAULT_NAMES[config.kind],
                kind=config.kind,
                advisory=config.advisory,
                timeout=config.timeout_seconds,
                spec=_spec(config),
                environments=tuple(config.environments) if config.environments is not None else None,
            )
        )
    return gates


def gates_for(service: ServiceConfig, environment: str) -> list[Gate]:
    """The gates that apply to one environment, in config order."""
    return [g for g in service_gates(service) if g.environments is None or environment in g.environments]


def find_gate(service: ServiceConfig, word: str) -> Gate | None:
    """The gate named by ``word``: its key, its name (any case) or, when unique, its kind."""
    gates = service_gates(service)
    lowered = word.strip().lower()
    exact = [g for g in gates if g.key == lowered or g.name.lower() == lowered or g.key == slug(word)]
    if exact:
        return exact[0]
    by_kind = [g for g in gates if g.kind == lowered]
    return by_kind[0] if len(by_kind) == 1 else None


def required_approvals(gate: Gate | None, config: Config) -> dict[str, int]:
    """Role -> count the approvals gate asks for (none without an approvals gate)."""
    if gate is None:
        return {}
    required = gate.spec.required if gate.spec.required is not None else config.gonogo.required_approvals
    return {role: count for role, count in required.items() if count > 0}


def config_problems(config: Config) -> list[str]:
    """Every problem in the services' gates, with its location (for start-up and ``check-config``)."""
    problems: list[str] = []
    roles = {r.role for r in config.access if r.action == "gonogo.approve" and r.role}
    for s_index, service in enumerate(config.services):
        for g_index, gate in enumerate(service.gates):
            where = f"services[{s_index}].gates[{g_index}] ({gate.kind})"
            try:
                spec = _spec(gate)
            except ValidationError as exc:
                problems += [
                    f"{where}: {_loc(e['loc'])}{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
                ]
                continue
            if gate.environments:
                unknown = sorted(set(gate.environments) - set(service.environments))
                if unknown:
                    problems.append(f"{where}.environments: unknown environment(s) {', '.join(unknown)}")
            if isinstance(spec, ApprovalsSpec):
                wanted = spec.required if spec.required is not None else config.gonogo.required_approvals
                missing = sorted(r for r, n in wanted.items() if n > 0 and r not in roles)
                if missing:
                    listed = ", ".join(missing)
                    problems.append(f"{where}: no gonogo.approve access rule gives the role(s) {listed}")
    return problems


def _loc(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") + (
        ": " if loc else ""
    )
