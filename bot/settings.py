"""Settings from the environment (and an optional ``.env`` file).

Built once by the CLI (``load_settings``) and passed down; nothing reads the environment elsewhere.
Secrets are ``SecretStr`` and never logged. Names are the documented environment variable names.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Slack
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")

    # Storage and config
    database_url: str = Field(default="sqlite+aiosqlite:///./cmdcenter.db", validation_alias="DATABASE_URL")
    config_path: Path = Field(default=Path("cmdcenter.yaml"), validation_alias="CMDCENTER_CONFIG")

    # PagerDuty
    pagerduty_routing_key: SecretStr | None = Field(default=None, validation_alias="PAGERDUTY_ROUTING_KEY")
    pagerduty_events_url: str = Field(
        default="https://events.pagerduty.com", validation_alias="PAGERDUTY_EVENTS_URL"
    )
    pagerduty_api_token: SecretStr | None = Field(default=None, validation_alias="PAGERDUTY_API_TOKEN")
    pagerduty_api_url: str = Field(default="https://api.pagerduty.com", validation_alias="PAGERDUTY_API_URL")
    pagerduty_from_email: str | None = Field(default=None, validation_alias="PAGERDUTY_FROM_EMAIL")

    # Statuspage
    statuspage_api_key: SecretStr | None = Field(default=None, validation_alias="STATUSPAGE_API_KEY")
    statuspage_page_id: str | None = Field(default=None, validation_alias="STATUSPAGE_PAGE_ID")
    statuspage_api_url: str = Field(
        default="https://api.statuspage.io/v1", validation_alias="STATUSPAGE_API_URL"
    )

    # Deploy tools and metrics
    argocd_url: str | None = Field(default=None, validation_alias="ARGOCD_URL")
    argocd_token: SecretStr | None = Field(default=None, validation_alias="ARGOCD_TOKEN")
    argo_rollouts_url: str | None = Field(default=None, validation_alias="ARGO_ROLLOUTS_URL")
    github_token: SecretStr | None = Field(default=None, validation_alias="GITHUB_TOKEN")
    github_api_url: str = Field(default="https://api.github.com", validation_alias="GITHUB_API_URL")
    helm_bin: str = Field(default="helm", validation_alias="HELM_BIN")
    kubectl_bin: str = Field(default="kubectl", validation_alias="KUBECTL_BIN")
    prometheus_url: str | None = Field(default=None, validation_alias="PROMETHEUS_URL")

    # HTTP endpoints of our own
    deploy_hook_token: SecretStr | None = Field(default=None, validation_alias="CMDCENTER_DEPLOY_HOOK_TOKEN")
    api_token: SecretStr | None = Field(default=None, validation_alias="CMDCENTER_API_TOKEN")
    log_level: str = Field(default="INFO", validation_alias="CMDCENTER_LOG_LEVEL")
    # Background worker tick (outbox, reminders, schedules), seconds.
    worker_interval: float = Field(
        default=1.0, gt=0, validation_alias=AliasChoices("CMDCENTER_WORKER_INTERVAL", "worker_interval")
    )

    # Outbox retries: first backoff (seconds, doubled per attempt), and how long a replica's claim on an
    # item lasts (after a crash, another replica or the restarted one takes the item over after this).
    outbox_backoff: float = Field(default=1.0, gt=0, validation_alias="CMDCENTER_OUTBOX_BACKOFF")
    outbox_lease: float = Field(default=60.0, gt=0, validation_alias="CMDCENTER_OUTBOX_LEASE")
    # A Slack request recorded but not started after this long (the process died) is processed again.
    inbox_stale: float = Field(default=30.0, gt=0, validation_alias="CMDCENTER_INBOX_STALE")
    # Slash commands acked but not finished, per process, before the next ack is held back (<= 2 s).
    max_pending_commands: int = Field(default=200, ge=1, validation_alias="CMDCENTER_MAX_PENDING_COMMANDS")
    # A slash command whose reply is ready this soon answers in its ack (no response_url request);
    # a slower one is acked then and replies when done. 0: always ack at once.
    reply_in_ack_within: float = Field(
        default=0.5, ge=0, le=2.0, validation_alias="CMDCENTER_REPLY_IN_ACK_WITHIN"
    )
    # Shutting down (SIGTERM): how long commands still running after their ack (a rollback, a
    # declaration, a read's audit row) may take to finish before they are cancelled.
    shutdown_grace: float = Field(default=10.0, ge=0, le=300, validation_alias="CMDCENTER_SHUTDOWN_GRACE")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept plain ``sqlite:///`` / ``postgresql://`` URLs and pick the asyncio driver."""
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value.removeprefix(prefix)
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    def require(self, *names: str) -> None:
        """Raise ConfigError naming every missing setting (by its environment variable)."""
        missing = []
        for name in names:
            if getattr(self, name) is None:
                field = type(self).model_fields[name]
                missing.append(str(field.validation_alias or name.upper()))
        if missing:
            raise ConfigError([f"{m} is not set" for m in missing])

    def slack_credentials(self) -> tuple[str, str]:
        """The bot token and the signing secret; ``ConfigError`` naming whichever is missing."""
        self.require("slack_bot_token", "slack_signing_secret")
        assert self.slack_bot_token is not None and self.slack_signing_secret is not None
        return self.slack_bot_token.get_secret_value(), self.slack_signing_secret.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(
            [f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
        ) from exc
