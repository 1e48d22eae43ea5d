"""Ports: the small typed interfaces services use to reach the outside world.

Services depend on these Protocols only. Vendor adapters live in ``bot/adapters/`` (one module per
vendor) and raise the ``AdapterError`` subclass of their port (see ``bot/errors.py``), ``from`` the
vendor's own exception. Every method is keyword-only and returns pydantic models.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from bot.config import ServiceConfig

JSON = dict[str, Any]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- Chat (Slack Web API) -------------------------------------------------------------------------


class PostedMessage(_Out):
    channel: str
    ts: str


class ChannelRef(_Out):
    id: str
    name: str


class ChatUser(_Out):
    id: str
    name: str
    real_name: str = ""
    email: str | None = None
    is_bot: bool = False


class Chat(Protocol):
    async def post_message(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[JSON] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
    ) -> PostedMessage: ...

    async def find_posted(
        self, *, channel: str, event_type: str, key: str, thread_ts: str | None = None
    ) -> PostedMessage | None:
        """A recent message of ours carrying ``metadata`` {event_type, event_payload: {key}} (or that
        key among the ``keys`` of a message posted for several items)."""
        ...

    async def find_posted_keys(
        self, *, channel: str, event_type: str, keys: Collection[str], thread_ts: str | None = None
    ) -> dict[str, PostedMessage]:
        """Which of ``keys`` recent messages of ours already carry (see ``find_posted``), with the
        message each is in: one history (or thread) read for them all."""
        ...

    async def post_ephemeral(
        self, *, channel: str, user: str, text: str, blocks: list[JSON] | None = None
    ) -> None: ...

    async def update_message(
        self, *, channel: str, ts: str, text: str, blocks: list[JSON] | None = None
    ) -> PostedMessage: ...

    async def create_channel(self, *, name: str) -> ChannelRef: ...

    async def find_channel(self, *, name: str) -> ChannelRef | None: ...

    async def invite(self, *, channel: str, users: list[str]) -> None: ...

    async def set_topic(self, *, channel: str, topic: str) -> None: ...

    async def pin(self, *, channel: str, ts: str) -> None: ...

    async def add_bookmark(self, *, channel: str, title: str, link: str) -> None: ...

    async def permalink(self, *, channel: str, ts: str, thread_ts: str | None = None) -> str:
        """A link to the message at (channel, ts); ``thread_ts`` when it is a thread reply."""
        ...

    async def get_message(self, *, channel: str, ts: str) -> JSON | None:
        """The message at (channel, ts), a thread reply included; None if it does not exist."""
        ...

    async def get_messages(self, *, channel: str, timestamps: Sequence[str]) -> dict[str, JSON]:
        """Several messages of one channel, by ts, read together where the API allows; those that
        do not exist are left out."""
        ...

    async def user(self, *, user_id: str) -> ChatUser: ...

    async def user_by_email(self, *, email: str) -> ChatUser | None: ...

    async def usergroup_members(self, *, usergroup: str) -> list[str]: ...

    async def open_view(self, *, trigger_id: str, view: JSON) -> None: ...

    async def upload_file(
        self,
        *,
        channel: str,
        content: str,
        filename: str,
        title: str,
        initial_comment: str = "",
        thread_ts: str | None = None,
    ) -> str: ...

    async def respond(self, *, response_url: str, payload: JSON) -> None: ...


# --- Pager (PagerDuty Events API v2 + REST) -------------------------------------------------------

PagerSeverity = Literal["critical", "error", "warning", "info"]


class Link(_Out):
    href: str
    text: str


class PageResult(_Out):
    dedup_key: str
    status: str = "success"
    message: str = ""


class OnCall(_Out):
    name: str
    email: str | None
    escalation_level: int
    user_id: str = ""


class PagerIncident(_Out):
    id: str
    title: str
    status: str
    urgency: str = ""
    service_id: str = ""
    html_url: str = ""
    created_at: datetime | None = None


class Pager(Protocol):
    async def trigger(
        self,
        *,
        dedup_key: str,
        summary: str,
        severity: PagerSeverity,
        source: str,
        component: str | None = None,
        custom_details: JSON | None = None,
        links: list[Link] | None = None,
        routing_key: str | None = None,
    ) -> PageResult: ...

    async def acknowledge(self, *, dedup_key: str, routing_key: str | None = None) -> PageResult: ...

    async def resolve(self, *, dedup_key: str, routing_key: str | None = None) -> PageResult: ...


class OnCallDirectory(Protocol):
    async def oncalls(self, *, escalation_policy_id: str) -> list[OnCall]: ...

    async def open_incidents(self, *, service_ids: list[str]) -> list[PagerIncident]: ...


# --- StatusPage (Atlassian Statuspage v1) ---------------------------------------------------------

StatusPageStatus = Literal["investigating", "identified", "monitoring", "resolved"]
ComponentStatus = Literal[
    "operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"
]


class StatusPageIncident(_Out):
    id: str
    name: str
    status: str
    shortlink: str | None = None


class Component(_Out):
    id: str
    name: str
    status: str


class StatusPage(Protocol):
    async def create_incident(
        self,
        *,
        name: str,
        status: StatusPageStatus,
        body: str,
        components: dict[str, ComponentStatus] | None = None,
        key: str | None = None,
    ) -> StatusPageIncident:
        """``key`` is stored with the incident (its metadata) for ``find_incident``."""
        ...

    async def find_incident(self, *, key: str) -> StatusPageIncident | None:
        """The unresolved incident created with ``key`` (a create whose answer was lost)."""
        ...

    async def update_incident(
        self,
        *,
        incident_id: str,
        status: StatusPageStatus,
        body: str,
        components: dict[str, ComponentStatus] | None = None,
    ) -> StatusPageIncident: ...

    async def components(self) -> list[Component]: ...


# --- DeployTool (Helm, Argo CD, Argo Rollouts, GitHub Actions, command) ---------------------------


class Release(_Out):
    """One release as the deploy tool knows it, newest first in lists."""

    version: str
    revision: str
    deployed_at: datetime | None = None
    status: str = "deployed"  # deployed | superseded | failed | ...
    description: str = ""


class DeployResult(_Out):
    ok: bool
    summary: str  # one or two lines, safe to show in Slack
    output: str = ""  # captured output, truncated
    dry_run: bool = False
    url: str | None = None


class DeployTool(Protocol):
    async def releases(self, *, service: ServiceConfig, environment: str) -> list[Release]: ...

    async def rollback(
        self, *, service: ServiceConfig, environment: str, target: Release, dry_run: bool = False
    ) -> DeployResult: ...

    async def deploy(
        self, *, service: ServiceConfig, environment: str, version: str, dry_run: bool = False
    ) -> DeployResult: ...


@runtime_checkable
class AutoSyncControl(Protocol):
    """Argo CD's automated sync of a service's application, suspended while deploys are frozen (and
    before a rollback, so Argo CD does not redeploy what was rolled back). True when it changed."""

    async def suspend_auto_sync(self, *, service: ServiceConfig, environment: str) -> bool: ...

    async def resume_auto_sync(self, *, service: ServiceConfig, environment: str) -> bool: ...


# --- Probes (health endpoints, Prometheus) --------------------------------------------------------


class HealthResult(_Out):
    url: str
    ok: bool
    status_code: int | None = None
    latency_ms: float | None = None
    detail: str = ""


class HealthProbe(Protocol):
    async def check(
        self,
        *,
        url: str,
        expect_status: int = 200,
        json_field: str | None = None,
        expect_value: str | None = None,
        timeout: float = 3.0,
    ) -> HealthResult: ...


class Sample(_Out):
    value: float | None  # None: the query returned no series
    labels: dict[str, str] = Field(default_factory=dict)


class Metrics(Protocol):
    async def instant(self, *, query: str, timeout: float = 3.0, at: datetime | None = None) -> Sample: ...


# --- GateSources (what /gonogo's release gates read outside) ---------------------------------------


class HttpAnswer(_Out):
    """An HTTP answer, whatever its status: the gate judges it."""

    status: int
    body: Any = None  # decoded JSON, or None when the body is not JSON
    text: str = ""


class CheckRun(_Out):
    name: str
    status: str  # queued | in_progress | completed (| waiting | requested | pending)
    conclusion: str | None = None  # success | failure | neutral | cancelled | skipped | timed_out | ...
    url: str | None = None


class CommandRun(_Out):
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class GateSources(Protocol):
    """JSON endpoints, GitHub check runs, deployment manifests and commands, for the release gates.
    Transport failures raise ``ProbeError`` with a message fit for the decision card."""

    async def get(self, *, url: str, timeout: float) -> HttpAnswer: ...

    async def check_runs(self, *, repository: str, ref: str, timeout: float) -> list[CheckRun]: ...

    async def manifests(self, *, path: str | None, url: str | None, timeout: float) -> list[tuple[str, str]]:
        """(source, text) of a file, a folder of YAML/JSON files (recursively), or a URL."""
        ...

    async def run(self, *, argv: list[str], env: dict[str, str], timeout: float) -> CommandRun: ...
