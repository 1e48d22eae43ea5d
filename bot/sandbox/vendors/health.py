"""A programmable health-endpoint server for tests, benchmarks and the demo.

    fake = HealthFake()
    fake.set("/checkout/healthz", status=200, json={"status": "ok"}, delay=0.3)
    fake.hang("/search/healthz")
    with serve_in_thread(fake.app) as server:
        ...  # GET {server.url}/checkout/healthz

Many services' paths live on one server. Unconfigured paths answer 404. State may be changed from
the test's thread while the server runs in its own thread. A hung request ends when the client
disconnects, when :meth:`release` is called, or after ``hang_seconds``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class HealthAnswer:
    status: int = 200
    json: Any = field(default_factory=lambda: {"status": "ok"})
    delay: float = 0.0
    hang: bool = False


@dataclass(frozen=True)
class Hit:
    path: str
    at: float  # time.monotonic() when the request arrived


class HealthFake:
    """Per-path programmable answers; records every hit."""

    def __init__(self, *, hang_seconds: float = 600.0) -> None:
        self.hang_seconds = hang_seconds
        self._answers: dict[str, HealthAnswer] = {}
        self._hits: list[Hit] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "HEAD"])])

    def set(self, path: str, *, status: int = 200, json: Any = None, delay: float = 0.0) -> None:
        """Answer ``path`` with ``status`` and ``json`` (default ``{"status": "ok"}``) after ``delay`` s.

        204 and 304 answers have no body."""
        body = {"status": "ok"} if json is None else json
        with self._lock:
            self._answers[_norm(path)] = HealthAnswer(status=status, json=body, delay=delay)

    def hang(self, path: str) -> None:
        """Never answer ``path`` (until the client gives up, :meth:`release`, or ``hang_seconds``)."""
        with self._lock:
            self._answers[_norm(path)] = HealthAnswer(hang=True)
        self._released.clear()

    def release(self) -> None:
        """End every hung request now (they answer 503)."""
        self._released.set()

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self._hits.clear()

    @property
    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def hit_count(self, path: str) -> int:
        wanted = _norm(path)
        return sum(1 for hit in self.hits if hit.path == wanted)

    async def _handle(self, request: Request) -> Response:
        path = _norm(request.url.path)
        with self._lock:
            self._hits.append(Hit(path=path, at=time.monotonic()))
            answer = self._answers.get(path)
        if answer is None:
            return JSONResponse({"status": "unknown path", "path": path}, status_code=404)
        if answer.hang:
            await self._wait_hung(request)
            return JSONResponse({"status": "released"}, status_code=503)
        if answer.delay > 0:
            await asyncio.sleep(answer.delay)
        if answer.status in (204, 304) or answer.status < 200:
            return Response(status_code=answer.status)  # these statuses carry no body
        return JSONResponse(answer.json, status_code=answer.status)

    async def _wait_hung(self, request: Request) -> None:
        give_up = time.monotonic() + self.hang_seconds
        while time.monotonic() < give_up and not self._released.is_set():
            if await request.is_disconnected():
                return
            await asyncio.sleep(_POLL_SECONDS)


def _norm(path: str) -> str:
    return "/" + path.strip("/")
