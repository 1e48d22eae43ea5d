"""The cmdcenter error tree.

Every error the bot raises on purpose is one of these; anything else is a bug and is shown to the
Slack user only as an error id (the id and the traceback go to the log).

    CmdcenterError                      base of everything raised on purpose
    ├── UserError                       expected refusal; its message is shown to the user (ephemeral)
    │   ├── UsageError                  the text could not be parsed; carries the command's usage
    │   ├── NotFound                    INC-999, an unknown service, an unknown release...
    │   ├── PermissionDenied            the user may not do this here (says who may)
    │   ├── Conflict                    the state forbids it (resolved incident, rollback running...)
    │   └── GateRefusal                 NO-GO / freeze refusals raised as errors
    ├── ConfigError                     the YAML config or the settings are invalid (start-up only)
    ├── MigrationError                  the database could not be migrated (start-up only)
    ├── Unavailable                     our own database is unreachable: "temporarily unavailable"
    └── AdapterError                    an external system failed; raised ``from`` the vendor error
        ├── ChatError                   Slack Web API
        ├── PagerError                  PagerDuty Events / REST
        ├── StatusPageError             Atlassian Statuspage
        ├── DeployError                 Helm, Argo CD, Argo Rollouts, GitHub Actions, commands
        └── ProbeError                  health checks, Prometheus

``AdapterError.retryable`` and ``retry_after`` tell the outbox whether (and when) to try again:
a 4xx that will never succeed is not retryable; 429/5xx/connection errors are.
"""

from __future__ import annotations

import uuid


class CmdcenterError(Exception):
    """Base of every error cmdcenter raises on purpose."""


class UserError(CmdcenterError):
    """An expected refusal. ``str(err)`` is written for the Slack user and shown as is."""


class UsageError(UserError):
    """The command text could not be parsed."""

    def __init__(self, message: str, *, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class NotFound(UserError):
    """The thing named does not exist."""


class PermissionDenied(UserError):
    """The user may not do this; ``who`` lists the Slack users / user groups who may."""

    def __init__(self, message: str, *, who: list[str] | None = None) -> None:
        super().__init__(message)
        self.who = who or []


class Conflict(UserError):
    """The current state forbids the action."""


class GateRefusal(UserError):
    """A release gate or freeze refuses the action."""


class ConfigError(CmdcenterError):
    """Invalid configuration; ``problems`` lists every problem with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class MigrationError(CmdcenterError):
    """Pending database migrations failed at start-up (alembic's own output says why)."""


class Unavailable(CmdcenterError):
    """cmdcenter's own storage is unreachable; the user is told to try again shortly."""


class AdapterError(CmdcenterError):
    """An external system failed.

    ``retryable`` is False for errors that will never succeed when repeated (most 4xx);
    ``retry_after`` is the delay the service asked for (seconds), when it said.
    """

    service = "external"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class ChatError(AdapterError):
    service = "slack"


class PagerError(AdapterError):
    service = "pagerduty"


class StatusPageError(AdapterError):
    service = "statuspage"


class DeployError(AdapterError):
    service = "deploy"


class ProbeError(AdapterError):
    service = "probe"


def retryable_http_status(status: int) -> bool:
    """429, 408 and 5xx are worth retrying; other 4xx are not."""
    return status in (408, 425, 429) or status >= 500


def new_error_id() -> str:
    """The id shown to a user instead of an unexpected error's text (the log has the traceback)."""
    return f"E-{uuid.uuid4().hex[:10].upper()}"
