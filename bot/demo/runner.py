"""Build and serve the whole demo in one process, on one loopback port.

    sandbox = DemoSandbox.build(data_dir=Path(".cmdcenter-demo"), port=8000)
    with sandbox.serve() as url:
        ...  # the console at url, the bot at url/slack/events

Routes of the one app: ``/`` and ``/console/api/*`` (the console), ``/slack/events``, ``/healthz``,
``/metrics`` (the bot), ``/slack-api/*`` (the Slack workspace emulator: Web API, response URLs,
files, Socket Mode) and ``/standins/<name>/*`` (PagerDuty, Statuspage, Argo CD, health, Prometheus).

With ``socket_mode=True`` (``cmdcenter demo --socket``) the bot is served as ``cmdcenter socket``
serves it (``bot.socket_mode``): no ``/slack/events``; it opens a websocket to the emulator at
``/slack-api/link/`` once the port listens, and the console's driver sends envelopes over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount

from bot.app import App, build
from bot.demo import seed
from bot.demo.console import Console
from bot.demo.interact import Interactor
from bot.demo.progress import ScenarioProgress
from bot.demo.standins import StandIns, build_adapters, build_standins, settings_values
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.slack.driver import SlackDriver
from bot.sandbox.slack.emulator import SlackWorkspace, SocketModeServer, build_slack_emulator
from bot.settings import Settings
from bot.socket_mode import build_socket_web
from bot.web import build_web

DB_FILE = "demo.db"
SLACK_PREFIX = "/slack-api"


@dataclass
class DemoSandbox:
    base_url: str
    port: int
    data_dir: Path
    workspace: SlackWorkspace
    standins: StandIns
    world: seed.World
    settings: Settings
    bot: App
    driver: SlackDriver
    interactor: Interactor
    progress: ScenarioProgress
    console: Console
    app: Starlette
    socket_mode: SocketModeServer | None = None
    """The emulator's Socket Mode, when the bot is connected over it (else HTTP)."""

    @classmethod
    def build(
        cls, *, data_dir: Path, port: int = 0, worker_interval: float = 0.2, socket_mode: bool = False
    ) -> DemoSandbox:
        """Everything, wired; nothing listens until :meth:`serve`. The database starts empty."""
        port = port or _free_port()
        base_url = f"http://127.0.0.1:{port}"
        workspace = SlackWorkspace(seed=False, real_time=True)
        workspace.base_url = f"{base_url}{SLACK_PREFIX}"
        groups = seed.seed_workspace(workspace)
        standins = build_standins()
        world = seed.World(standins.health, standins.prometheus, standins.rolled_back)
        settings = _settings(data_dir, base_url, worker_interval)
        config_text = seed.demo_config_yaml(base_url, groups)
        settings.config_path.write_text(config_text, encoding="utf-8")
        from bot.db.migrate import upgrade

        upgrade(settings.database_url)
        bot = build(settings, seed.demo_config(base_url, groups), **build_adapters(base_url, standins))
        socket = SocketModeServer(workspace) if socket_mode else None
        driver = SlackDriver(f"{base_url}/slack/events", seed.SIGNING_SECRET, workspace, socket_mode=socket)
        interactor = Interactor(workspace, driver)
        progress = ScenarioProgress()
        console = Console(workspace, interactor, standins, world, progress)
        sandbox = cls(
            base_url=base_url,
            port=port,
            data_dir=data_dir,
            workspace=workspace,
            standins=standins,
            world=world,
            settings=settings,
            bot=bot,
            driver=driver,
            interactor=interactor,
            progress=progress,
            console=console,
            app=Starlette(),
            socket_mode=socket,
        )
        sandbox.app = sandbox._compose()
        return sandbox

    def _compose(self) -> Starlette:
        web = build_socket_web(self.bot, seed.APP_TOKEN) if self.socket_mode else build_web(self.bot)
        emulator = build_slack_emulator(
            self.workspace, bot_token=seed.BOT_TOKEN, app_token=seed.APP_TOKEN, socket_mode=self.socket_mode
        )
        world = self.world

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with web.router.lifespan_context(web):
                ticker = asyncio.create_task(_tick_forever(world), name="demo-world")
                try:
                    yield
                finally:
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker

        routes = [
            Mount(SLACK_PREFIX, app=emulator),
            *self.standins.routes(),
            *self.console.routes(),
            *web.routes,
        ]
        hosts = ["127.0.0.1", "localhost"]
        middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
        return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on 127.0.0.1:port in a background thread; yields the console URL."""
        server: RunningServer = serve_in_thread(self.app, port=self.port)
        try:
            if self.socket_mode is not None:  # the bot connects once the port listens
                self.socket_mode.wait_for_connection(timeout=10)
            yield f"{server.url}/"
        finally:
            self.console.stopping.set()
            server.stop()

    def person_id(self, role: str) -> str:
        return seed.person(role).id

    def summary_of_standins(self) -> list[str]:
        lines = [f"{name}: {self.base_url}{seed.STANDINS}/{name}" for name in self.standins.apps]
        lines += [f"{name}: unavailable ({why})" for name, why in self.standins.missing.items()]
        return lines


async def _tick_forever(world: seed.World) -> None:
    while True:
        try:
            world.tick()
        except Exception:  # a stand-in answering oddly must not stop the world
            import logging

            logging.getLogger(__name__).exception("demo world tick failed")
        await asyncio.sleep(0.25)


def _settings(data_dir: Path, base_url: str, worker_interval: float) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / DB_FILE
    for stale in (database, database.with_name(DB_FILE + "-wal"), database.with_name(DB_FILE + "-shm")):
        stale.unlink(missing_ok=True)  # the emulated workspace is new at every start; so is the state
    values: dict[str, Any] = {
        "slack_bot_token": seed.BOT_TOKEN,
        "slack_signing_secret": seed.SIGNING_SECRET,
        "slack_app_token": seed.APP_TOKEN,
        "slack_api_url": f"{base_url}{SLACK_PREFIX}/api/",
        "database_url": f"sqlite+aiosqlite:///{database.resolve()}",
        "config_path": data_dir / "cmdcenter.yaml",
        "worker_interval": worker_interval,
        "log_level": "WARNING",
    }
    values |= settings_values(base_url)
    return Settings.model_validate(values)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
