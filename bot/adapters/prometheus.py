"""Prometheus instant queries (the ``Metrics`` port) over the HTTP API ``GET /api/v1/query``.

The first sample of an instant vector (or a scalar) is the value; no series is ``Sample(value=None)``
and so is ``NaN``. Connection errors, timeouts, non-2xx answers and ``"status": "error"`` raise
``ProbeError`` carrying Prometheus' own ``error`` text.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from bot.errors import ProbeError, retryable_http_status
from bot.ports import Sample


class PrometheusMetrics:
    """A Prometheus (or Thanos / Mimir / VictoriaMetrics) query endpoint at ``base_url``."""

    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._client = client
        self._owns_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        """Close the client if this adapter created it."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> PrometheusMetrics:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def instant(self, *, query: str, timeout: float = 3.0, at: datetime | None = None) -> Sample:
        params = {"query": query, "timeout": f"{max(1, int(timeout * 1000))}ms"}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        try:
            async with asyncio.timeout(timeout):
                response = await self._http().get(
                    f"{self._base_url}/api/v1/query", params=params, timeout=timeout
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ProbeError(f"Prometheus query timed out after {timeout:.1f} s") from exc
        except httpx.TransportError as exc:
            raise ProbeError(f"Prometheus unreachable: {type(exc).__name__}: {_first_line(exc)}") from exc
        return _parse(response)


def _parse(response: httpx.Response) -> Sample:
    status = response.status_code
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProbeError(
            f"Prometheus answered HTTP {status} without JSON",
            status=status,
            retryable=retryable_http_status(status),
        ) from exc
    if not isinstance(body, dict):
        raise ProbeError(f"Prometheus answered HTTP {status} with unexpected JSON", status=status)
    if body.get("status") != "success" or not response.is_success:
        error = str(body.get("error") or f"HTTP {status}")
        kind = body.get("errorType")
        raise ProbeError(
            f"Prometheus error ({kind}): {error}" if kind else f"Prometheus error: {error}",
            status=status,
            retryable=retryable_http_status(status) if not response.is_success else False,
        )
    return _sample(body.get("data"))


def _sample(data: Any) -> Sample:
    if not isinstance(data, dict):
        raise ProbeError("Prometheus answer has no data", retryable=False)
    result_type = data.get("resultType")
    result: Any = data.get("result")
    try:
        if result_type == "scalar":
            return Sample(value=_number(result[1]))
        if result_type == "vector":
            if not result:
                return Sample(value=None)
            first = result[0]
            labels = {str(k): str(v) for k, v in (first.get("metric") or {}).items()}
            return Sample(value=_number(first["value"][1]), labels=labels)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ProbeError(f"Prometheus answer is malformed ({result_type})", retryable=False) from exc
    raise ProbeError(
        f"query returned a {result_type}; expected an instant vector or a scalar", retryable=False
    )


def _number(raw: Any) -> float | None:
    value = float(raw)
    return None if math.isnan(value) else value


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""
