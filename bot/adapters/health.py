"""HTTP health checks (the ``HealthProbe`` port).

A failing health check is data, not an error: wrong status, wrong JSON field, a timeout or a refused
connection all come back as ``HealthResult(ok=False, detail=...)``. ``status_code`` is ``None`` when
the endpoint did not answer at all (timeout, connection error), so callers can tell "the service
said it is unhealthy" from "we could not reach it". Only programming errors raise.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import TracebackType
from typing import Any

import httpx

from bot.ports import HealthResult
from bot.values import MISSING, as_text, dig


class HttpHealthProbe:
    """GET a URL and judge the answer. Pass a shared ``httpx.AsyncClient`` or let the probe own one."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._owns_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        """Close the client if the probe created it (a client passed in is left to its owner)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> HttpHealthProbe:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def check(
        self,
        *,
        url: str,
        expect_status: int = 200,
        json_field: str | None = None,
        expect_value: str | None = None,
        timeout: float = 3.0,
    ) -> HealthResult:
        """ok iff the status matches and, when ``json_field`` is given, the field equals ``expect_value``
        (or, without ``expect_value``, is present and truthy). ``timeout`` bounds the whole call."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                response = await self._http().get(url, timeout=timeout)
        except (TimeoutError, httpx.TimeoutException):
            return HealthResult(url=url, ok=False, detail=f"timed out after {timeout:.1f} s")
        except httpx.TransportError as exc:
            return HealthResult(url=url, ok=False, detail=_transport_detail(exc))
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        ok, detail = _judge(response, expect_status, json_field, expect_value)
        return HealthResult(
            url=url, ok=ok, status_code=response.status_code, latency_ms=latency_ms, detail=detail
        )


def _judge(
    response: httpx.Response, expect_status: int, json_field: str | None, expect_value: str | None
) -> tuple[bool, str]:
    if response.status_code != expect_status:
        return False, f"HTTP {response.status_code} (expected {expect_status})"
    if json_field is None:
        return True, f"HTTP {response.status_code}"
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False, f"HTTP {response.status_code} but the body is not JSON (expected {json_field})"
    found = dig(body, json_field)
    if found is MISSING:
        return False, f"{json_field} missing from the JSON body"
    text = as_text(found)
    if expect_value is None:
        ok = bool(found)
        return ok, f"{json_field} is {text}"
    if text != expect_value:
        return False, f"{json_field} is {text!r} (expected {expect_value!r})"
    return True, f"{json_field} is {text!r}"


def _transport_detail(exc: httpx.TransportError) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {_first_line(exc)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
