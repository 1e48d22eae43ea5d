"""Run an ASGI app with uvicorn in a background thread (tests and the demo console).

    with serve_in_thread(app) as server:
        httpx.get(f"{server.url}/health")

The server binds a loopback address only and gets its own event loop, so a test's
event loop (or a synchronous test) can talk to it over real HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


class RunningServer:
    """A uvicorn server running in a daemon thread; stop it with :meth:`stop` or a ``with`` block."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket) -> None:
        self._server = server
        self._thread = thread
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.host: str = str(host)
        self.port: int = int(port)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down gracefully (finish in-flight requests) and join the thread; idempotent."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningServer(url={self.url!r}, running={self.running})"


def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
) -> RunningServer:
    """Start ``app`` (any ASGI app) on ``host:port`` (0 = a free port) and wait until it listens.

    Raises ``RuntimeError`` if the server does not come up within ``startup_timeout`` seconds
    (for instance when the app's lifespan startup fails).
    """
    if host not in _LOOPBACK_HOSTS:
        raise ValueError(f"serve_in_thread binds loopback only, not {host!r}")
    sock = _bind_loopback(port)
    bound_port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=bound_port,
        log_level="warning",
        log_config=None,
        lifespan="auto",
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # includes uvicorn's SystemExit on startup failure
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-127.0.0.1:{bound_port}", daemon=True)
    thread.start()
    running = RunningServer(server, thread, sock)
    try:
        _wait_started(server, thread, errors, startup_timeout)
    except RuntimeError:
        sock.close()
        raise
    return running


def _bind_loopback(port: int) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # accepted connections inherit it. Without it, Nagle holds a response body back until the
    # client's delayed ACK (40 ms) for its headers: every other reply took 40 ms longer.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def _wait_started(
    server: uvicorn.Server,
    thread: threading.Thread,
    errors: list[BaseException],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            cause = errors[0] if errors else None
            raise RuntimeError(f"uvicorn server failed to start: {cause!r}") from cause
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            raise RuntimeError(f"uvicorn server did not start within {timeout}s")
        time.sleep(0.005)
