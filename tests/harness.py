"""The end-to-end harness: the bot served on 127.0.0.1, talking to the Slack emulator (and the other
fakes) on 127.0.0.1, driven over either transport:

- ``http``: the bot serves ``/slack/events`` and the driver sends it signed requests;
- ``socket``: the bot connects to the emulator's Socket Mode (``bot.socket_mode``) and the driver
  sends it envelopes; the bot's port serves the service routes (``/healthz``, ``/metrics``...).

``BotHarness`` is built by the ``bot`` fixture in ``conftest.py``; tests use its ``driver`` (slash
commands, events, interactivity), ``ws`` (the emulated workspace), ``clock`` (a FakeClock) and
``call`` (run a coroutine against the bot's database from the test thread). ``running_bot`` takes
the transport the ``transport`` fixture chose for the test (``conftest.py``) unless told another.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from anyio.from_thread import BlockingPortal, start_blocking_portal
from sqlmodel import select

from bot.app import App, build
from bot.clock import FakeClock
from bot.config import Config, parse_config
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.db.models import AuditLog, Incident, OutboxItem, TimelineEntry
from bot.deps import Deps
from bot.outbox import RetryPolicy
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.slack.driver import SlackDriver
from bot.sandbox.slack.emulator import SlackEmulator
from bot.settings import Settings
from bot.socket_mode import build_socket_web
from bot.web import build_web

T = TypeVar("T")

TRANSPORTS = ("http", "socket")
_default_transport = ["http"]

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test"

DEFAULT_CONFIG = """
slack:
  incident_channel: incident-bridge
  release_channel: releases
services:
  - name: checkout
    environments: [staging, prod]
    default_environment: prod
    owner_team: payments
  - name: search
    environments: [staging, prod]
"""


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """``wait_until`` for async tests: poll ``condition`` without blocking the event loop."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def wait_until(predicate: Callable[[], T], *, timeout: float = 10.0, message: str = "") -> T:
    """Poll until ``predicate()`` is truthy (the bot works after its ack); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(0.02)
        last = predicate()
    return last


@dataclass
class BotHarness:
    app: App
    server: RunningServer
    driver: SlackDriver
    slack: SlackEmulator
    clock: FakeClock
    portal: BlockingPortal
    db: Database
    extras: dict[str, Any] = field(default_factory=dict)
    transport: str = "http"

    @property
    def deps(self) -> Deps:
        return self.app.deps

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws(self) -> Any:
        return self.slack.workspace

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self.portal.call(fn, *args)

    def rows(self, model: type[T], *where: Any) -> list[T]:
        async def run() -> list[T]:
            async with self.db.session() as session:
                stmt = select(model)
                for clause in where:
                    stmt = stmt.where(clause)
                return list((await session.execute(stmt)).scalars())

        return self.call(run)

    def incidents(self) -> list[Incident]:
        return self.rows(Incident)

    def incident(self, incident_id: int) -> Incident:
        found = [i for i in self.incidents() if i.id == incident_id]
        assert found, f"INC-{incident_id} not in the database"
        return found[0]

    def timeline(self, incident_id: int, *, include_deleted: bool = False) -> list[TimelineEntry]:
        entries = self.rows(TimelineEntry, TimelineEntry.incident_id == incident_id)
        return sorted(
            (e for e in entries if include_deleted or not e.deleted), key=lambda e: (e.occurred_at, e.id or 0)
        )

    def audit(self) -> list[AuditLog]:
        return self.rows(AuditLog)

    def outbox(self) -> list[OutboxItem]:
        return self.rows(OutboxItem)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the outbox has nothing pending that is due (deliveries finished)."""

        def idle() -> bool:
            return not [i for i in self.outbox() if i.status == "pending"]

        wait_until(idle, timeout=timeout, message="the outbox to drain")

    def tick(self) -> None:
        """Let the bot's worker run two full passes (due jobs after moving the clock), then settle."""
        worker = self.app.worker
        target = worker.passes + 2
        wait_until(lambda: worker.passes >= target, message="two worker passes")
        self.settle()

    def command(self, command: str, text: str = "", **kwargs: Any) -> Any:
        response = self.driver.command(command, text, **kwargs)
        assert response.status_code == 200, response.text
        return response

    def last_response(self, timeout: float = 5.0) -> dict[str, Any]:
        """The latest reply the bot sent to a response_url."""

        def latest() -> dict[str, Any] | None:
            with self.ws.lock:
                replies = [r for values in self.ws.response_urls.values() for r in values]
            return replies[-1] if replies else None

        found = wait_until(latest, timeout=timeout, message="a response_url reply")
        return found

    def responses(self) -> list[dict[str, Any]]:
        with self.ws.lock:
            return [r for values in self.ws.response_urls.values() for r in values]

    def reply_after(self, command: str, text: str = "", **kwargs: Any) -> dict[str, Any]:
        """Send a command and wait for its response_url reply."""
        before = len(self.responses())
        self.command(command, text, **kwargs)
        wait_until(lambda: len(self.responses()) > before, message=f"a reply to {command} {text}")
        return self.responses()[before]


PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def test_database_url(tmp_path: Path) -> str:
    """SQLite in the test's folder, or a fresh PostgreSQL database when ``CMDCENTER_TEST_DB=postgres``."""
    if os.environ.get("CMDCENTER_TEST_DB", "sqlite") != "postgres":
        return f"sqlite+aiosqlite:///{tmp_path / 'cmdcenter.db'}"
    name = f"cmdcenter_t_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    _created_databases.append(name)
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


_created_databases: list[str] = []


def drop_test_databases() -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            while _created_databases:
                await conn.execute(f'DROP DATABASE IF EXISTS "{_created_databases.pop()}" WITH (FORCE)')
        finally:
            await conn.close()

    if _created_databases:
        asyncio.run(drop())


test_database_url.__test__ = False  # type: ignore[attr-defined]


def make_settings(tmp_path: Path, slack_api_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack_api_url,
        "database_url": test_database_url(tmp_path),
        "config_path": tmp_path / "cmdcenter.yaml",
        "worker_interval": 0.05,
        "shutdown_grace": 1.0,  # a test's teardown waits at most this for commands left running
    }
    values |= overrides
    return Settings.model_validate(values)


@contextmanager
def default_transport(name: str) -> Iterator[None]:
    """``running_bot`` serves over ``name`` within the block unless told otherwise."""
    if name not in TRANSPORTS:
        raise ValueError(f"unknown transport {name!r}")
    before = _default_transport[0]
    _default_transport[0] = name
    try:
        yield
    finally:
        _default_transport[0] = before


def current_transport() -> str:
    return _default_transport[0]


@contextmanager
def running_bot(
    tmp_path: Path,
    slack: SlackEmulator,
    *,
    config: Config | str = DEFAULT_CONFIG,
    settings: dict[str, Any] | None = None,
    adapters: dict[str, Any] | None = None,
    clock: FakeClock | None = None,
    transport: str | None = None,
) -> Iterator[BotHarness]:
    settings_obj = make_settings(tmp_path, slack.api_url, **(settings or {}))
    cfg = parse_config(config) if isinstance(config, str) else config
    upgrade(settings_obj.database_url)
    clock = clock or FakeClock()
    app = build(
        settings_obj,
        cfg,
        clock=clock,
        retry_policy=RetryPolicy(base=0.05, cap=1.0, max_attempts=5, lease=5.0),
        **(adapters or {}),
    )
    transport = transport or current_transport()
    server, driver = serve_bot(app, slack, transport)
    with start_blocking_portal() as portal:
        db = Database(settings_obj.database_url)
        harness = BotHarness(app, server, driver, slack, clock, portal, db, transport=transport)
        try:
            yield harness
        finally:
            server.stop()
            portal.call(db.dispose)
            drop_test_databases()


def serve_bot(app: App, slack: SlackEmulator, transport: str) -> tuple[RunningServer, SlackDriver]:
    """Serve ``app`` on 127.0.0.1 over ``transport``; the driver that reaches it (over Socket Mode,
    once the bot's websocket is open)."""
    if transport == "http":
        server = serve_in_thread(build_web(app))
        return server, SlackDriver(f"{server.url}/slack/events", SIGNING_SECRET, slack.workspace)
    if transport != "socket":
        raise ValueError(f"unknown transport {transport!r}")
    ws = slack.workspace
    with ws.lock:
        known = len(ws.socket_connections)
    server = serve_in_thread(build_socket_web(app, slack.app_token))

    def connected() -> bool:
        with ws.lock:
            return any(c.is_open for c in ws.socket_connections[known:])

    try:
        wait_until(connected, message="the bot's Socket Mode connection")
    except AssertionError:
        server.stop()
        raise
    return server, SlackDriver.socket(slack)
