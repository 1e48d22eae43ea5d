"""The benchmarks' stand-ins: the Slack emulator with arrival-time recording, and a latency injector.

``RecordingWorkspace`` notes the ``time.monotonic()`` at which every message and channel appears, so
latencies are measured where Slack would see the effect (no polling). Bot posts naming a benchmark
token ``bench-e<number>`` are indexed by that number (the timeline benchmark's events).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.slack.emulator import BaseUrlHolder, Channel, Message, SlackWorkspace, build_slack_emulator

TOKEN = re.compile(r"bench-e(\d+)")


class RecordingWorkspace(SlackWorkspace):
    def __init__(self) -> None:
        self.bot_posts: list[tuple[float, Message]] = []
        self.token_posts: dict[int, list[float]] = defaultdict(list)
        self.channel_times: dict[str, float] = {}
        super().__init__()

    def post_message(self, channel_id: str, **kwargs: Any) -> Message:
        message = super().post_message(channel_id, **kwargs)
        if message.bot_id:
            now = time.monotonic()
            self.bot_posts.append((now, message))
            if message.thread_ts:
                for match in TOKEN.finditer(message.text):
                    self.token_posts[int(match.group(1))].append(now)
        return message

    def add_channel(self, name: str, **kwargs: Any) -> Channel:
        channel = super().add_channel(name, **kwargs)
        self.channel_times[channel.id] = time.monotonic()
        return channel


class Delay:
    """ASGI middleware: every HTTP request waits ``seconds`` before the app sees it; ``calls`` notes
    ``(time the app finished, method, path)`` of each."""

    def __init__(self, app: Any, seconds: float = 0.0) -> None:
        self.app, self.seconds = app, seconds
        self.calls: list[tuple[float, str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.seconds > 0:
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)
        self.calls.append((time.monotonic(), scope["method"], scope["path"]))


@dataclass
class Emulator:
    ws: RecordingWorkspace
    server: RunningServer
    middleware: Delay

    @property
    def api_url(self) -> str:
        return f"{self.server.url}/api/"


@contextmanager
def slack_emulator(delay: float = 0.0) -> Iterator[Emulator]:
    """The Slack emulator on 127.0.0.1 in a thread of this process, with #incident-bridge and #releases."""
    ws = RecordingWorkspace()
    for name in ("incident-bridge", "releases"):
        ws.add_channel(name, members=["U_ALICE", "U_BOB"])
    holder = BaseUrlHolder()
    app = build_slack_emulator(ws, base_url_holder=holder)
    middleware = Delay(app, delay)
    server = serve_in_thread(middleware)
    holder.url = ws.base_url = server.url
    try:
        yield Emulator(ws, server, middleware)
    finally:
        server.stop()


@dataclass
class Served:
    server: RunningServer
    middleware: Delay

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def serving(app: Any, delay: float = 0.0) -> Iterator[Served]:
    """Any fake's ASGI app on 127.0.0.1 in a thread, with ``delay`` seconds on every request."""
    middleware = Delay(app, delay)
    server = serve_in_thread(middleware)
    try:
        yield Served(server, middleware)
    finally:
        server.stop()
