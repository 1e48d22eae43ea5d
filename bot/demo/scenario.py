"""Scenario files: a scripted incident, step by step (see ``scenarios/checkout-502.yaml``).

A step acts as one demo person (``as``), runs its actions (``do``) in order, then waits until all
its conditions (``wait``) hold, within ``timeout`` seconds. Each action and condition is a mapping
with exactly one key naming its kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.errors import ConfigError

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
FEATURES = ("pagerduty", "statuspage", "timeline-reactions", "deploy-tool", "rollback")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _OneOf(_M):
    @model_validator(mode="after")
    def _exactly_one(self) -> _OneOf:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            kinds = ", ".join(type(self).model_fields)
            raise ValueError(f"give exactly one of {kinds} (got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    @property
    def spec(self) -> Any:
        return getattr(self, self.kind)


# --- actions ------------------------------------------------------------------------------------


class MetricSpec(_M):
    service: str
    name: str
    value: float


class HealthSpec(_M):
    service: str
    status: int = Field(ge=100, le=599)


class PostSpec(_M):
    channel: str
    text: str
    as_: str = Field(default="alertmanager", alias="as")


class CommandSpec(_M):
    channel: str
    text: str = Field(pattern=r"^/")


class SaySpec(_M):
    channel: str
    text: str


class ReactSpec(_M):
    channel: str
    emoji: str
    to: str = Field(description="text of the message to react to (the newest that contains it)")


class ClickSpec(_M):
    channel: str
    button: str = Field(description="the button's label: a prefix, case-insensitive; 'A|B' for either")
    as_: str | None = Field(default=None, alias="as", description="someone else than the step's person")
    optional: bool = Field(default=False, description="no such button: go on instead of failing")


class Action(_OneOf):
    metric: MetricSpec | None = None
    health: HealthSpec | None = None
    post: PostSpec | None = None
    command: CommandSpec | None = None
    say: SaySpec | None = None
    react: ReactSpec | None = None
    click: ClickSpec | None = None
    pause: float | None = Field(default=None, gt=0, le=60, description="seconds")


# --- conditions ---------------------------------------------------------------------------------


class MessageWait(_M):
    channel: str
    contains: str
    replies_only: bool = False


class ChannelWait(_M):
    name: str = Field(description="glob, e.g. inc-*-checkout-502s")
    bind: str | None = Field(default=None, description="variable to bind the channel id to")


class ButtonWait(_M):
    channel: str
    text: str = Field(description="the button's label: a prefix, case-insensitive; 'A|B' for either")


class StandinWait(_M):
    pagerduty: str | None = Field(default=None, description="event action, e.g. trigger")
    statuspage: str | None = Field(default=None, description="incident")
    argocd: str | None = Field(default=None, description="rollback | sync")
    contains: str = ""


class ServiceWait(_M):
    service: str


class FileWait(_M):
    channel: str


class ReplyWait(_M):
    contains: str


class Wait(_OneOf):
    message: MessageWait | None = None
    channel: ChannelWait | None = None
    button: ButtonWait | None = None
    standin: StandinWait | None = None
    outbox_idle: bool | None = None
    healthy: ServiceWait | None = None
    file: FileWait | None = None
    reply: ReplyWait | None = None


class Step(_M):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    as_: str | None = Field(default=None, alias="as")
    do: list[Action] = Field(default_factory=list)
    wait: list[Wait] = Field(default_factory=list)
    timeout: float | None = Field(default=None, gt=0)
    requires: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)


class Scenario(_M):
    name: str
    title: str
    timeout: float = Field(default=20.0, gt=0)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"duplicate step id {step.id!r}")
            unknown = [n for n in step.needs if n not in seen]
            if unknown:
                raise ValueError(f"step {step.id!r} needs {unknown}, which are not earlier steps")
            bad = [f for f in step.requires if f not in FEATURES]
            if bad:
                raise ValueError(f"step {step.id!r} requires unknown feature(s) {bad}; one of {FEATURES}")
            seen.add(step.id)
        return self


def available() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A bundled scenario by name (``checkout-502``) or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIOS / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError([f"scenario {name_or_path!r} not found; bundled: {', '.join(available())}"])
    return parse_scenario(path.read_text(encoding="utf-8"), source=str(path))


def parse_scenario(text: str, *, source: str = "scenario") -> Scenario:
    try:
        raw = yaml.safe_load(text)
        return Scenario.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: invalid YAML ({exc})"]) from exc
    except ValidationError as exc:
        raise ConfigError(
            [
                f"{source}: {'.'.join(str(p) for p in e['loc']) or 'scenario'}: {e['msg']}"
                for e in exc.errors()
            ]
        ) from exc
