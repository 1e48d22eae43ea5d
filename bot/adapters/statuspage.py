"""Atlassian Statuspage adapter (REST API v1 over ``httpx.AsyncClient``).

Failures become ``StatusPageError``: 429 (with ``Retry-After``), 5xx, timeouts and connection errors
are retryable; other 4xx are not and carry the API's own error message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from bot.adapters._http import retry_after_seconds
from bot.errors import StatusPageError, retryable_http_status
from bot.ports import JSON, Component, ComponentStatus, StatusPageIncident, StatusPageStatus

_PAGE_SIZE = 100  # the API's maximum per_page for components
_MAX_PAGES = 50
_MESSAGE_LIMIT = 300


class StatuspageClient:
    """``StatusPage`` for one page. Pass ``client`` to share a connection pool (you then close it)."""

    def __init__(
        self,
        *,
        api_key: str,
        page_id: str,
        base_url: str = "https://api.statuspage.io/v1",
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._api_key = api_key
        self._page_url = f"{base_url.rstrip('/')}/pages/{quote(page_id, safe='')}"
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._timeout = timeout

    async def create_incident(
        self,
        *,
        name: str,
        status: StatusPageStatus,
        body: str,
        components: dict[str, ComponentStatus] | None = None,
        key: str | None = None,
    ) -> StatusPageIncident:
        payload = _incident_payload(status, body, components) | {"name": name}
        if key:
            payload["metadata"] = {METADATA: {"key": key}}  # top-level values must be objects
        data = await self._request("POST", "/incidents", "create incident", json={"incident": payload})
        return _to_incident(data)

    async def find_incident(self, *, key: str) -> StatusPageIncident | None:
        page = 1
        while True:
            params = {"page": page, "per_page": 100}
            data = await self._request("GET", "/incidents/unresolved", "list incidents", params=params)
            if not isinstance(data, list):
                raise StatusPageError("Statuspage returned a malformed incident list", retryable=True)
            for incident in data:
                metadata = (incident.get("metadata") or {}) if isinstance(incident, dict) else {}
                if (metadata.get(METADATA) or {}).get("key") == key:
                    return _to_incident(incident)
            if len(data) < 100:
                return None
            page += 1

    async def update_incident(
        self,
        *,
        incident_id: str,
        status: StatusPageStatus,
        body: str,
        components: dict[str, ComponentStatus] | None = None,
    ) -> StatusPageIncident:
        payload = _incident_payload(status, body, components)
        path = f"/incidents/{quote(incident_id, safe='')}"
        data = await self._request("PATCH", path, "update incident", json={"incident": payload})
        return _to_incident(data)

    async def components(self) -> list[Component]:
        found: dict[str, Component] = {}
        for page in range(1, _MAX_PAGES + 1):
            params = {"page": page, "per_page": _PAGE_SIZE}
            data = await self._request("GET", "/components", "list components", params=params)
            if not isinstance(data, list):
                raise StatusPageError("Statuspage list components: unexpected response", retryable=True)
            new = [c for c in data if isinstance(c, dict) and str(c.get("id")) not in found]
            for c in new:
                found[str(c["id"])] = Component(
                    id=str(c["id"]), name=str(c.get("name") or ""), status=str(c.get("status") or "")
                )
            if len(data) < _PAGE_SIZE or not new:  # last page (or a server that ignores ``page``)
                break
        return list(found.values())

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"OAuth {self._api_key}", "Accept": "application/json"}
        try:
            response = await self._client.request(
                method, self._page_url + path, headers=headers, timeout=self._timeout, **kwargs
            )
        except httpx.TimeoutException as exc:
            raise StatusPageError(f"Statuspage {what} failed: timed out", retryable=True) from exc
        except httpx.TransportError as exc:
            reason = f"connection failed ({type(exc).__name__})"
            raise StatusPageError(f"Statuspage {what} failed: {reason}", retryable=True) from exc
        try:
            response.raise_for_status()
            return response.json()
        except httpx.HTTPStatusError as exc:
            raise _status_error(response, what, self._api_key) from exc
        except ValueError as exc:  # a 2xx that is not JSON
            raise StatusPageError(f"Statuspage {what}: invalid JSON response", retryable=True) from exc


METADATA = "cmdcenter"  # the incident metadata namespace holding the outbox key


def _incident_payload(status: str, body: str, components: dict[str, ComponentStatus] | None) -> JSON:
    payload: JSON = {"status": status, "body": body}
    if components:
        payload["components"] = dict(components)
        payload["component_ids"] = list(components)
    return payload


def _to_incident(data: Any) -> StatusPageIncident:
    if not isinstance(data, dict) or "id" not in data:
        raise StatusPageError("Statuspage returned an incident without an id", retryable=False)
    return StatusPageIncident(
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        status=str(data.get("status") or ""),
        shortlink=data.get("shortlink") or None,
    )


def _status_error(response: httpx.Response, what: str, api_key: str) -> StatusPageError:
    status = response.status_code
    message = f"Statuspage {what} failed: HTTP {status}"
    detail = _error_detail(response).replace(api_key, "***") if api_key else _error_detail(response)
    if detail:
        message += f": {detail}"
    return StatusPageError(
        message,
        retryable=retryable_http_status(status),
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
        status=status,
    )


def _error_detail(response: httpx.Response) -> str:
    """The API's message: ``{"message": ...}``, ``{"error": "..." | [...]}`` or ``{"errors": [...]}``."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text.strip()[:_MESSAGE_LIMIT]
    if not isinstance(body, dict):
        return ""
    for key in ("message", "error", "errors"):
        value = body.get(key)
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        if value:
            return str(value)[:_MESSAGE_LIMIT]
    return ""
