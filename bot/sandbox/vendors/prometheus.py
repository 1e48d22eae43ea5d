"""A programmable Prometheus query API (``/api/v1/query``) for tests, benchmarks and the demo.

    fake = PrometheusFake()
    fake.set('histogram_quantile(0.95, ...)', 0.412, delay=0.3)
    fake.fail("bad(", "parse error at char 4", error_type="bad_data", status=400)
    fake.hang("slow_query")
    with serve_in_thread(fake.app) as server:
        ...  # PrometheusMetrics(server.url)

Answers are Prometheus-shaped JSON; a query that was never set answers an empty vector. Every
query is recorded (with its ``time`` parameter). State may be changed from another thread.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class QueryAnswer:
    value: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    result_type: Literal["vector", "scalar"] = "vector"
    delay: float = 0.0
    error: str | None = None
    error_type: str = "execution"
    status: int = 200
    hang: bool = False


@dataclass(frozen=True)
class QueryHit:
    query: str
    time: str | None


class PrometheusFake:
    """Per-query programmable answers; records every query."""

    def __init__(self, *, hang_seconds: float = 600.0) -> None:
        self.hang_seconds = hang_seconds
        self._answers: dict[str, QueryAnswer] = {}
        self._hits: list[QueryHit] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.app = Starlette(routes=[Route("/api/v1/query", self._handle, methods=["GET"])])

    def set(
        self,
        query: str,
        value: float | None,
        *,
        delay: float = 0.0,
        labels: dict[str, str] | None = None,
        result_type: Literal["vector", "scalar"] = "vector",
    ) -> None:
        """Answer ``query`` with ``value`` (``None``: no series; ``nan`` is sent as ``"NaN"``)."""
        answer = QueryAnswer(value=value, labels=dict(labels or {}), result_type=result_type, delay=delay)
        with self._lock:
            self._answers[query] = answer

    def fail(self, query: str, error: str, *, error_type: str = "execution", status: int = 422) -> None:
        """Answer ``query`` with ``{"status": "error", ...}`` and HTTP ``status``."""
        with self._lock:
            self._answers[query] = QueryAnswer(error=error, error_type=error_type, status=status)

    def hang(self, query: str) -> None:
        """Never answer ``query`` (until the client gives up, :meth:`release`, or ``hang_seconds``)."""
        with self._lock:
            self._answers[query] = QueryAnswer(hang=True)
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self._hits.clear()

    @property
    def hits(self) -> list[QueryHit]:
        with self._lock:
            return list(self._hits)

    @property
    def queries(self) -> list[str]:
        return [hit.query for hit in self.hits]

    async def _handle(self, request: Request) -> Response:
        query = request.query_params.get("query", "")
        at = request.query_params.get("time")
        with self._lock:
            self._hits.append(QueryHit(query=query, time=at))
            answer = self._answers.get(query, QueryAnswer())
        if not query:
            return _error("bad_data", "missing query", 400)
        if answer.hang:
            await self._wait_hung(request)
            return _error("timeout", "query timed out in the fake", 503)
        if answer.delay > 0:
            await asyncio.sleep(answer.delay)
        if answer.error is not None:
            return _error(answer.error_type, answer.error, answer.status)
        return JSONResponse({"status": "success", "data": _data(answer, at)})

    async def _wait_hung(self, request: Request) -> None:
        give_up = time.monotonic() + self.hang_seconds
        while time.monotonic() < give_up and not self._released.is_set():
            if await request.is_disconnected():
                return
            await asyncio.sleep(_POLL_SECONDS)


def _data(answer: QueryAnswer, at: str | None) -> dict[str, Any]:
    ts = float(at) if at is not None else time.time()
    if answer.result_type == "scalar":
        return {"resultType": "scalar", "result": [ts, _format(answer.value)]}
    if answer.value is None:
        return {"resultType": "vector", "result": []}
    return {
        "resultType": "vector",
        "result": [{"metric": answer.labels, "value": [ts, _format(answer.value)]}],
    }


def _format(value: float | None) -> str:
    """Sample values the way Prometheus writes them: ``"1.5"``, ``"NaN"``, ``"+Inf"``."""
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _error(error_type: str, error: str, status: int) -> JSONResponse:
    return JSONResponse({"status": "error", "errorType": error_type, "error": error}, status_code=status)
