"""The load generator: a child process (its own interpreter, GIL and event loop) that POSTs prepared,
signed requests over keep-alive HTTP/1.1 connections (plain asyncio streams) under a semaphore and
returns what happened to each.

    with Loader() as loader:
        outcomes = loader.run(shots, concurrency=50)

A shot with ``at`` > 0 is sent that many seconds after the start (open loop, for offered rates);
with ``at`` = 0 the shots go as fast as ``concurrency`` allows (closed loop). Times are
``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every process of the machine).

Connections outlive a run, as a load balancer's pool of keep-alive connections to a backend does: a
measurement split into rounds measures what one continuous run would, not a burst of new connections
at the start of every round (``fresh_connections=True`` asks for that burst: its own connections,
closed at its end). One idle longer than ``KEEP_IDLE`` is not reused (uvicorn closes a keep-alive
connection after 5 s idle); one that the server closed anyway is replaced once, its time counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit


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


class _Closed(Exception):
    """The server had closed the connection (idle too long) before this request: nothing was answered."""


class _Connection:
    """One keep-alive HTTP/1.1 connection: a request is written whole, its response read whole."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, request: bytes) -> tuple[int, bool]:
        """The response's status, and whether the connection may be used again."""
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except ConnectionResetError as exc:
            raise _Closed from exc
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _Closed from exc  # closed before answering: the request was not taken
            raise
        status_line, *lines = head[:-4].split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get(b"transfer-encoding") == b"chunked":
            while size := int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")  # no trailers are sent to us
        else:
            await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        return status, headers.get(b"connection") != b"close"

    def close(self) -> None:
        self.writer.close()


KEEP_IDLE = 2.0  # seconds; below uvicorn's keep-alive timeout (5 s)


class _Pool:
    """Idle keep-alive connections by address, kept between runs (the loader's event loop lives as
    long as its process)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[tuple[float, _Connection]]] = {}

    def take(self, address: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(address)
        while idle:
            last_used, connection = idle.pop()
            if time.monotonic() - last_used < KEEP_IDLE:
                return connection
            connection.close()
        return None

    def give(self, address: tuple[str, int], connection: _Connection) -> None:
        self._idle.setdefault(address, []).append((time.monotonic(), connection))

    def close(self) -> None:
        for idle in self._idle.values():
            for _, connection in idle:
                connection.close()
        self._idle.clear()


def _request(shot: Shot) -> tuple[tuple[str, int], bytes]:
    """The shot as bytes on the wire, and the address to send them to."""
    url = urlsplit(shot.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = [f"POST {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1", f"host: {url.netloc}"]
    head += [f"{name}: {value}" for name, value in shot.headers.items() if name.lower() != "content-length"]
    head.append(f"content-length: {len(shot.body)}")
    return (host, port), ("\r\n".join(head) + "\r\n\r\n").encode() + shot.body


async def _fire(
    pool: _Pool, shots: list[Shot], concurrency: int, timeout: float, deadline: float, fresh: bool
) -> list[Outcome]:
    # Plain asyncio streams over keep-alive connections, requests built before the clock starts: the
    # load generator shares the machine with the servers it measures, so it must cost them as little
    # CPU as it can (httpx cost about 1.7 ms per request here, most of one of the two cores).
    semaphore = asyncio.Semaphore(concurrency)
    if fresh:
        pool = _Pool()  # this run's own connections, closed at its end
    prepared = [_request(shot) for shot in shots]
    start = time.monotonic() + 0.05
    stop_at = start + deadline

    async def post(address: tuple[str, int], request: bytes) -> tuple[_Connection | None, int, bool]:
        connection = pool.take(address)
        if connection is not None:
            try:
                return (connection, *await connection.post(request))
            except _Closed:
                connection.close()  # closed by the server while idle: once more on a new one
        connection = await _Connection.open(*address)
        return (connection, *await connection.post(request))

    async def one(shot: Shot, address: tuple[str, int], request: bytes) -> Outcome:
        scheduled = start + shot.at
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with semaphore:
            sent = time.monotonic()
            if sent > stop_at:
                return Outcome(scheduled, sent, sent, 0)
            connection: _Connection | None = None
            status, reusable = 0, False
            try:
                async with asyncio.timeout(timeout):
                    connection, status, reusable = await post(address, request)
            except (
                _Closed,
                OSError,
                TimeoutError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ):
                status = 0
            done = time.monotonic()
            if connection is not None:
                if reusable:
                    pool.give(address, connection)
                else:
                    connection.close()
            return Outcome(scheduled, sent, done, status)

    try:
        return list(await asyncio.gather(*(one(s, a, r) for s, (a, r) in zip(shots, prepared, strict=True))))
    finally:
        if fresh:
            pool.close()


def _serve(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops this process in close()
    loop = asyncio.new_event_loop()  # one loop for the process: connections are kept between runs
    pool = _Pool()
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:  # the parent is gone
                return
            if job is None:
                return
            conn.send(loop.run_until_complete(_fire(pool, *job)))
    finally:
        pool.close()
        loop.close()


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
        self,
        shots: list[Shot],
        *,
        concurrency: int,
        timeout: float = 10.0,
        deadline: float = 120.0,
        fresh_connections: bool = False,
    ) -> list[Outcome]:
        """Send ``shots``; nothing is sent after ``deadline`` seconds, and each request times out.
        ``fresh_connections``: on new connections of this run's own (closed at its end), instead of
        the keep-alive connections earlier runs left open."""
        self._conn.send((shots, concurrency, timeout, deadline, fresh_connections))
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
