"""The composition root: settings + config in, a wired Bolt ``AsyncApp`` and its services out.

Nothing else in the code base builds clients, engines or adapters. Tests call ``build_services``
with their own settings, clock and adapters, then ``build_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from starlette.routing import Route

from bot.access import Access
from bot.adapters.slack import SlackChat, build_web_client
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.db.engine import Database
from bot.errors import Unavailable
from bot.inbox import Inbox
from bot.incidents.hooks import IncidentHooks
from bot.jobs import Jobs
from bot.locks import KeyedLocks
from bot.message_reads import MessageReads
from bot.outbox import Outbox, RetryPolicy
from bot.ports import Chat, DeployTool, HealthProbe, Metrics, OnCallDirectory, Pager, StatusPage
from bot.render import Renderer
from bot.settings import Settings
from bot.telemetry import Telemetry

if TYPE_CHECKING:
    from bot.db.wakeups import Wakeups

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a listener or service may use; built once per app."""

    settings: Settings
    config: Config
    db: Database
    chat: Chat
    renderer: Renderer
    clock: Clock
    telemetry: Telemetry
    outbox: Outbox
    jobs: Jobs
    inbox: Inbox
    pager: Pager | None = None
    oncall: OnCallDirectory | None = None
    statuspage: StatusPage | None = None
    deploy: DeployTool | None = None
    health: HealthProbe | None = None
    metrics: Metrics | None = None
    hooks: IncidentHooks = field(default_factory=IncidentHooks)
    access: Access = field(init=False)
    message_reads: MessageReads = field(init=False)  # reads of Slack messages, coalesced per channel
    routes: list[Route] = field(default_factory=list)  # extra HTTP routes (webhooks, JSON API)
    extras: dict[str, Any] = field(default_factory=dict)
    background: set[asyncio.Task[None]] = field(default_factory=set)  # see ``spawn``
    locks: KeyedLocks = field(default_factory=KeyedLocks)  # per-key ordering within this process

    def __post_init__(self) -> None:
        self.access = Access(self.config, self.chat)
        self.message_reads = MessageReads(self.chat)

    def spawn(self, coro: Coroutine[Any, Any, None], *, what: str) -> asyncio.Task[None]:
        """Run ``coro`` beside the worker loop (a deploy, a rollback), kept referenced until it ends;
        a failure is logged with ``what``."""
        task = asyncio.create_task(coro)
        self.background.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self.background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("%s failed", what, exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    async def drain(self, timeout: float) -> int:
        """Shutting down: wait up to ``timeout`` seconds for the work ``spawn`` started (commands
        still running after their ack, reads' audit rows), including what it starts meanwhile; then
        cancel what is left, which stays as a crash would leave it (``Inbox``). Returns how many
        were cancelled."""
        deadline = time.monotonic() + timeout
        while self.background and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self.background), timeout=left)
        running = set(self.background)
        if running:
            log.warning(
                "shutting down: %d unfinished task(s) (commands after their ack, audit rows) "
                "cancelled after %g s",
                len(running),
                timeout,
            )
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=1.0)
        return len(running)


def build_services(
    settings: Settings,
    config: Config,
    *,
    clock: Clock | None = None,
    retry_policy: RetryPolicy | None = None,
    **adapters: Any,
) -> Services:
    """Build the services; an adapter passed by keyword (``chat=``, ``pager=``...) replaces the default."""
    settings.require("slack_bot_token", "slack_signing_secret")
    assert settings.slack_bot_token is not None
    owner = f"{uuid.uuid4().hex[:8]}"
    db = Database(settings.database_url)
    telemetry = Telemetry()
    clock = clock or SystemClock()
    web_client = build_web_client(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    defaults: dict[str, Any] = {"chat": SlackChat(web_client)}
    defaults |= _default_adapters(settings, config)
    defaults |= adapters
    services = Services(
        settings=settings,
        config=config,
        db=db,
        renderer=Renderer(),
        clock=clock,
        telemetry=telemetry,
        outbox=Outbox(
            db,
            telemetry,
            policy=retry_policy or RetryPolicy(base=settings.outbox_backoff, lease=settings.outbox_lease),
            owner=owner,
        ),
        jobs=Jobs(db, clock, owner=owner),
        inbox=Inbox(db, stale_after=settings.inbox_stale, max_pending=settings.max_pending_commands),
        **defaults,
    )
    services.extras["web_client"] = web_client
    _register_domains(services)
    return services


def _register_domains(services: Services) -> None:
    """Each area registers its outbox steps, jobs, event handlers and lifecycle hooks."""
    from bot import gonogo, incidents, releases
    from bot.status import prodstatus, reports

    incidents.register(services)
    releases.register(services)
    gonogo.register(services)
    prodstatus.register(services)
    reports.register(services)


def _default_adapters(settings: Settings, config: Config) -> dict[str, Any]:
    """Vendor adapters for the integrations whose settings are present."""
    from bot.adapters import factory

    return factory.from_settings(settings, config)


def build_app(services: Services) -> AsyncApp:
    """The Bolt app with every listener registered (``commands.register_all``)."""
    from commands import register_all

    settings = services.settings
    assert settings.slack_bot_token is not None and settings.slack_signing_secret is not None
    app = AsyncApp(
        # Named, so Bolt does not call inspect.stack() for a name (it reads every frame's source
        # file: ~50 ms of start-up).
        name="cmdcenter",
        client=services.extras["web_client"],
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Listeners ack, start their work and return: Bolt answers Slack as soon as they return
        # instead of polling every 10 ms for the ack (``commands._runner.CommandRunner.start``).
        process_before_response=True,
        # Verified before Bolt sees the request (``bot.web``: signature, timestamp, size): not twice.
        request_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )
    register_all(app, services)
    return app


class Worker:
    """Background loop: outbox deliveries, due jobs, inbox recovery. Started by the web app's lifespan."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.passes = 0  # completed passes (tests wait on it)
        self._recovered_at = float("-inf")
        self.wakeups: Wakeups | None = None

    async def tick(self) -> int:
        """One pass; returns how many outbox items it attempted."""
        svc = self.services
        attempted = await svc.outbox.deliver_due()
        await svc.jobs.run_due()
        now = time.monotonic()
        if now - self._recovered_at >= 1.0:  # it looks for rows seconds old: not on every busy pass
            self._recovered_at = now
            await svc.inbox.recover()
        return attempted

    async def _run(self) -> None:
        interval = self.services.settings.worker_interval
        while not self._stopping.is_set():
            busy = False
            try:
                # A pass that delivered something looks again at once: items recorded meanwhile (by
                # another replica, whose notification came while this pass ran) may have waited
                # behind the run this pass held.
                busy = await self.tick() > 0
                self.passes += 1
            except Unavailable:
                log.warning("worker: database unavailable; retrying")
            except Exception:
                log.exception("worker tick failed")
            wakeup = self.services.outbox.wakeup
            if busy:
                wakeup.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=interval)
            wakeup.clear()

    def start(self) -> None:
        outbox, db = self.services.outbox, self.services.db
        if not db.is_sqlite:  # replicas: kicks reach the other replicas' workers (LISTEN/NOTIFY)
            from bot.db.wakeups import Wakeups  # asyncpg: not imported by a SQLite deployment

            self.wakeups = Wakeups(db.url, owner=outbox.owner, on_wake=outbox.wakeup.set)
            outbox.broadcast = self.wakeups.notify
            self.wakeups.start()
        self._task = asyncio.create_task(self._run(), name="cmdcenter-worker")

    async def stop(self) -> None:
        self._stopping.set()
        self.services.outbox.wakeup.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=10)
        if self.wakeups is not None:
            self.services.outbox.broadcast = None
            await self.wakeups.stop()
