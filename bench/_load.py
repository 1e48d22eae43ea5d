"""The load generator: a child process (its own interpreter, GIL and event loop) that POSTs prepared,
signed requests with ``httpx.AsyncClient`` under a semaphore and returns what happened to each.

    with Loader() as loader:
        outcomes = loader.run(shots, concurrency=50)

A shot with ``at`` > 0 is sent that many seconds after the start (open loop, for offered rates);
with ``at`` = 0 the shots go as fast as ``concurrency`` allows (closed loop). Times are
``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every process of the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import ssl
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import httpx


@dataclass(frozen=True)
class Shot:
    url: str
    body: bytes
    headers: dict[str, str]
    at: float = 0.0


@dataclass(frozen=True)
class Outcome:
    scheduled: float
    sent: float
    done: float
    status: int  # 0: transport error or not sent before the deadline

    @property
    def ms(self) -> float:
        return (self.done - self.sent) * 1000


async def _fire(shots: list[Shot], concurrency: int, timeout: float, deadline: float) -> list[Outcome]:
    # One single-connection client per slot: httpcore's pool scans every connection for each request,
    # which makes one client shared by 50 concurrent requests cost ~15 ms of CPU per request.
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()  # loaded once: each client would otherwise load the CA bundle
    idle = [
        httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False, verify=tls)
        for _ in range(concurrency)
    ]
    clients = list(idle)
    start = time.monotonic() + 0.05
    stop_at = start + deadline

    async def one(shot: Shot) -> Outcome:
        scheduled = start + shot.at
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with semaphore:
            client = idle.pop()
            sent = time.monotonic()
            try:
                if sent > stop_at:
                    return Outcome(scheduled, sent, sent, 0)
                response = await client.post(shot.url, content=shot.body, headers=shot.headers)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            finally:
                idle.append(client)
            return Outcome(scheduled, sent, time.monotonic(), status)

    try:
        return list(await asyncio.gather(*(one(s) for s in shots)))
    finally:
        for client in clients:
            await client.aclose()


def _serve(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops this process in close()
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the parent is gone
            return
        if job is None:
            return
        conn.send(asyncio.run(_fire(*job)))


class Loader:
    """The load-generator process; ``close()`` (or the ``with`` block) always stops it."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process: Any = context.Process(target=_serve, args=(child,), name="bench-loader", daemon=True)
        self._process.start()
        child.close()

    @property
    def pid(self) -> int:
        return int(self._process.pid)

    def run(
        self, shots: list[Shot], *, concurrency: int, timeout: float = 10.0, deadline: float = 120.0
    ) -> list[Outcome]:
        """Send ``shots``; nothing is sent after ``deadline`` seconds, and each request times out."""
        self._conn.send((shots, concurrency, timeout, deadline))
        if not self._conn.poll(deadline + timeout + 30):
            raise TimeoutError("the load generator did not finish")
        outcomes: list[Outcome] = self._conn.recv()
        return outcomes

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._conn.close()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
