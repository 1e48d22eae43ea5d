"""The composition root: settings and config in, one wired cmdcenter out.

    app = build(settings, config)            # adapters, stores, every area wired, the Bolt app
    web = bot.web.build_web(app)             # HTTP mode; or bot.socket_mode.build_socket_web(app, token)

Nothing else builds clients, engines or adapters. Tests call ``build`` with their own clock, retry
policy and adapters (``chat=``, ``pager=``...), which replace the defaults.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Unpack

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

import commands
from bot import chat_ops
from bot.adapters import factory
from bot.adapters.factory import Adapters
from bot.adapters.slack import SlackChat, build_web_client, shared_session
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.db.batch import GroupCommit
from bot.db.engine import Database
from bot.deps import Deps
from bot.gonogo import wiring as gonogo
from bot.inbox import Inbox
from bot.incidents import wiring as incidents
from bot.incidents.timeline import record_captures
from bot.jobs import Jobs
from bot.outbox import Outbox, RetryPolicy
from bot.ports import AutoSyncControl
from bot.releases import wiring as releases
from bot.render import Renderer
from bot.settings import Settings
from bot.status import wiring as status
from bot.telemetry import Telemetry
from bot.worker import Worker


@dataclass
class App:
    """One cmdcenter: its dependencies, the Bolt app and the worker. ``running()`` brackets its life."""

    deps: Deps
    bolt: AsyncApp
    worker: Worker
    slack_client: AsyncWebClient

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start the worker (and one Slack connection pool); on exit let running work finish for
        ``CMDCENTER_SHUTDOWN_GRACE``, stop the worker and close the database."""
        deps = self.deps
        async with shared_session(self.slack_client):
            self.worker.start()
            try:
                yield
            finally:
                await deps.tasks.drain(deps.settings.shutdown_grace)
                await self.worker.stop()
                await deps.db.dispose()


def build(
    settings: Settings,
    config: Config,
    *,
    clock: Clock | None = None,
    retry_policy: RetryPolicy | None = None,
    **adapters: Unpack[Adapters],
) -> App:
    """Every adapter, store and area, wired; nothing runs until ``App.running``."""
    deps, slack_client = build_deps(settings, config, clock=clock, retry_policy=retry_policy, **adapters)
    worker = Worker(
        outbox=deps.outbox, jobs=deps.jobs, inbox=deps.inbox, db=deps.db, interval=settings.worker_interval
    )
    return App(deps=deps, bolt=build_bolt(deps, slack_client), worker=worker, slack_client=slack_client)


def build_deps(
    settings: Settings,
    config: Config,
    *,
    clock: Clock | None = None,
    retry_policy: RetryPolicy | None = None,
    **adapters: Unpack[Adapters],
) -> tuple[Deps, AsyncWebClient]:
    """The dependencies with every area wired into them (outbox steps, jobs, hooks)."""
    slack_token, _ = settings.slack_credentials()
    owner = uuid.uuid4().hex[:8]
    db = Database(settings.database_url)
    telemetry = Telemetry()
    clock = clock or SystemClock()
    slack_client = build_web_client(token=slack_token, base_url=settings.slack_api_url)
    ports: Adapters = {**factory.from_settings(settings, config), "chat": SlackChat(slack_client), **adapters}
    if "deploy" in adapters and "auto_sync" not in adapters:  # the deploy tools given control auto-sync
        deploy = adapters["deploy"]
        if isinstance(deploy, AutoSyncControl):
            ports["auto_sync"] = deploy
        else:
            ports.pop("auto_sync", None)
    outbox = Outbox(
        db,
        telemetry,
        policy=retry_policy or RetryPolicy(base=settings.outbox_backoff, lease=settings.outbox_lease),
        owner=owner,
    )
    deps = Deps(
        settings=settings,
        config=config,
        db=db,
        renderer=Renderer(),
        clock=clock,
        telemetry=telemetry,
        outbox=outbox,
        jobs=Jobs(db, clock, owner=owner),
        inbox=Inbox(db, stale_after=settings.inbox_stale, max_pending=settings.max_pending_commands),
        timeline_captures=GroupCommit(db, record_captures),
        **ports,
    )
    chat_ops.wire(deps.outbox, deps.chat)
    incidents.wire(deps)
    releases.wire(deps)
    gonogo.wire(deps)
    status.wire(deps)
    return deps, slack_client


def build_bolt(deps: Deps, client: AsyncWebClient) -> AsyncApp:
    """The Bolt app with every listener of the action registry (``commands.register_all``)."""
    _, signing_secret = deps.settings.slack_credentials()
    bolt = AsyncApp(
        # Named, so Bolt does not call inspect.stack() for a name (it reads every frame's source
        # file: ~50 ms of start-up).
        name="cmdcenter",
        client=client,
        signing_secret=signing_secret,
        # Listeners ack, start their work and return: Bolt answers Slack as soon as they return
        # instead of polling every 10 ms for the ack (``commands._runner.CommandRunner.start``).
        process_before_response=True,
        # Verified before Bolt sees the request (``bot.web``: signature, timestamp, size): not twice.
        request_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )
    commands.register_all(bolt, deps)
    return bolt
