"""PagerDuty adapters: paging over the Events API v2, on-call lookup over the REST API v2.

Both wrap the official ``pagerduty`` package, which is synchronous: every call runs in a worker
thread (``asyncio.to_thread``). The package's own retry loops are switched off (see
:func:`_fail_fast`) because the outbox retries with backoff; failures become ``PagerError`` with
``retryable`` / ``retry_after`` set from the HTTP status and ``Retry-After`` header.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import urlsplit

import httpx2
import pagerduty

from bot.adapters._http import retry_after_seconds
from bot.errors import ConfigError, PagerError, retryable_http_status
from bot.ports import JSON, Link, OnCall, PageResult, PagerIncident, PagerSeverity

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SUMMARY_LIMIT = 1024  # Events API v2 truncates longer summaries
_MESSAGE_LIMIT = 300
_OPEN_STATUSES = ["triggered", "acknowledged"]


class PagerDutyPager:
    """``Pager`` over the Events API v2 (``POST {events_url}/v2/enqueue``)."""

    def __init__(
        self,
        *,
        routing_key: str | None,
        events_url: str = "https://events.pagerduty.com",
        timeout: float = 10.0,
    ) -> None:
        _check_base_url(events_url, "PAGERDUTY_EVENTS_URL")
        self._routing_key = routing_key or None
        self._events_url = events_url.rstrip("/")
        self._timeout = timeout
        self._clients: dict[str, pagerduty.EventsApiV2Client] = {}

    async def trigger(
        self,
        *,
        dedup_key: str,
        summary: str,
        severity: PagerSeverity,
        source: str,
        component: str | None = None,
        custom_details: JSON | None = None,
        links: list[Link] | None = None,
        routing_key: str | None = None,
    ) -> PageResult:
        client, key = self._client(routing_key)
        extra: JSON = {"component": component} if component else {}
        link_dicts = [{"href": link.href, "text": link.text} for link in links or []]

        def send() -> str:
            return client.trigger(
                summary[:_SUMMARY_LIMIT],
                source,
                dedup_key=dedup_key,
                severity=severity,
                payload=extra,
                custom_details=dict(custom_details) if custom_details else None,
                links=link_dicts or None,
            )

        return await self._send("trigger", send, key)

    async def acknowledge(self, *, dedup_key: str, routing_key: str | None = None) -> PageResult:
        client, key = self._client(routing_key)
        return await self._send("acknowledge", lambda: client.acknowledge(dedup_key), key)

    async def resolve(self, *, dedup_key: str, routing_key: str | None = None) -> PageResult:
        client, key = self._client(routing_key)
        return await self._send("resolve", lambda: client.resolve(dedup_key), key)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _client(self, routing_key: str | None) -> tuple[pagerduty.EventsApiV2Client, str]:
        key = routing_key or self._routing_key
        if not key:
            raise PagerError(
                "No PagerDuty routing key: set PAGERDUTY_ROUTING_KEY or the service's routing key",
                retryable=False,
            )
        client = self._clients.get(key)
        if client is None:
            client = pagerduty.EventsApiV2Client(key)
            _fail_fast(client, self._events_url, self._timeout)
            self._clients[key] = client
        return client, key

    async def _send(self, action: str, call: Callable[[], str], routing_key: str) -> PageResult:
        what = f"{action} event"
        try:
            dedup_key = await asyncio.to_thread(call)
        except (pagerduty.Error, pagerduty.UrlError, _HttpFailure) as exc:
            raise _pager_error(exc, what, secrets=[routing_key]) from exc
        return PageResult(dedup_key=dedup_key, message="Event processed")


class PagerDutyOnCall:
    """``OnCallDirectory`` over the REST API v2 (``GET /oncalls``, ``GET /incidents``)."""

    def __init__(
        self,
        *,
        api_token: str,
        api_url: str = "https://api.pagerduty.com",
        from_email: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        _check_base_url(api_url, "PAGERDUTY_API_URL")
        self._token = api_token
        self._client = pagerduty.RestApiV2Client(api_token, default_from=from_email)
        _fail_fast(self._client, api_url.rstrip("/"), timeout)

    async def oncalls(self, *, escalation_policy_id: str) -> list[OnCall]:
        params = {"escalation_policy_ids[]": [escalation_policy_id], "include[]": ["users"]}
        entries = await self._list("/oncalls", params, "on-call lookup")
        return _to_oncalls(entries)

    async def open_incidents(self, *, service_ids: list[str]) -> list[PagerIncident]:
        if not service_ids:
            return []  # an empty filter would list every open incident of the account
        params = {"service_ids[]": list(service_ids), "statuses[]": list(_OPEN_STATUSES)}
        entries = await self._list("/incidents", params, "incident lookup")
        return [_to_incident(entry) for entry in entries]

    async def aclose(self) -> None:
        self._client.close()

    async def _list(self, path: str, params: JSON, what: str) -> list[JSON]:
        def fetch() -> list[JSON]:
            return [dict(item) for item in self._client.iter_all(path, params=params)]

        try:
            return await asyncio.to_thread(fetch)
        except (pagerduty.Error, pagerduty.UrlError, _HttpFailure) as exc:
            raise _pager_error(exc, what, secrets=[self._token]) from exc


# --- mapping --------------------------------------------------------------------------------------


def _to_oncalls(entries: Iterable[JSON]) -> list[OnCall]:
    """One ``OnCall`` per (user, level), lowest level first, then by name."""
    seen: dict[tuple[str, int], OnCall] = {}
    for entry in entries:
        user: JSON = entry.get("user") or {}
        level = int(entry.get("escalation_level") or 0)
        user_id = str(user.get("id") or "")
        name = str(user.get("name") or user.get("summary") or user_id)
        email_address = user.get("email")
        oncall = OnCall(
            name=name,
            email=str(email_address) if email_address else None,
            escalation_level=level,
            user_id=user_id,
        )
        seen.setdefault((user_id or name, level), oncall)
    return sorted(seen.values(), key=lambda o: (o.escalation_level, o.name.lower()))


def _to_incident(entry: JSON) -> PagerIncident:
    service: JSON = entry.get("service") or {}
    return PagerIncident(
        id=str(entry["id"]),
        title=str(entry.get("title") or entry.get("summary") or ""),
        status=str(entry.get("status") or ""),
        urgency=str(entry.get("urgency") or ""),
        service_id=str(service.get("id") or ""),
        html_url=str(entry.get("html_url") or ""),
        created_at=entry.get("created_at"),
    )


# --- the package's HTTP behaviour -----------------------------------------------------------------


class _HttpFailure(Exception):
    """An error status, raised from a response hook before the package's retry loop sees it."""

    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.detail = detail


def _fail_fast(client: pagerduty.ApiClient, base_url: str, timeout: float) -> None:
    """Make one attempt per call: the outbox owns retries and backoff.

    ``ApiClient.request`` loops on its own: status codes in ``retry`` (the Events client sets
    500/502/503/504), network errors up to ``max_network_attempts`` and, whatever ``retry`` says,
    429 forever, with ``time.sleep`` cooldowns in between. We empty ``retry``, allow no network
    re-attempts and no sleep, and add an httpx response hook that raises ``_HttpFailure`` on any
    status >= 400 so that the loop never gets to retry (or to sleep on) a 429 or a 5xx.
    """
    client.retry = {}
    client.max_http_attempts = 0
    client.max_network_attempts = 0
    client.sleep_timer = 0
    client.timeout = cast(int, timeout)  # inferred int from its default; httpx takes float seconds
    client.event_hooks = {"response": [_raise_on_error_status]}
    if base_url.startswith("https://"):
        client.url = base_url
    else:
        # The package only accepts https base URLs; _check_base_url let plain http through for
        # loopback only (local fakes and the sandbox).
        setattr(client, "_url", base_url)  # noqa: B010


def _raise_on_error_status(response: httpx2.Response) -> None:
    if response.status_code < 400:
        return
    response.read()
    raise _HttpFailure(
        response.status_code,
        retry_after_seconds(response.headers.get("retry-after")),
        _error_detail(response),
    )


def _check_base_url(url: str, setting: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return
    raise ConfigError([f"{setting} must be an https:// URL (plain http only for loopback): {url!r}"])


def _pager_error(exc: Exception, what: str, *, secrets: list[str]) -> PagerError:
    if isinstance(exc, _HttpFailure):
        status, retry_after, detail = exc.status, exc.retry_after, exc.detail
    elif isinstance(exc, pagerduty.HttpError) and exc.response is not None:
        status, retry_after, detail = exc.response.status_code, None, _error_detail(exc.response)
        if 200 <= status < 300:  # accepted but malformed (no dedup_key); resending is harmless
            return PagerError(f"PagerDuty {what}: unexpected response (HTTP {status})", status=status)
    elif isinstance(exc, pagerduty.UrlError):
        return PagerError(f"PagerDuty {what}: invalid URL", retryable=False)
    else:
        cause = exc.__cause__
        if isinstance(cause, httpx2.TimeoutException):
            reason = "timed out"
        elif cause is not None:
            reason = f"connection failed ({type(cause).__name__})"
        else:
            reason = "unexpected response"  # e.g. a 2xx without a dedup_key
        return PagerError(f"PagerDuty {what} failed: {reason}", retryable=True)
    message = f"PagerDuty {what} failed: HTTP {status}"
    if detail:
        message += f": {_redact(detail, secrets)}"
    return PagerError(
        message,
        retryable=retryable_http_status(status),
        retry_after=retry_after,
        status=status,
    )


def _error_detail(response: httpx2.Response) -> str:
    """The service's own message: Events ``{message, errors}``, REST ``{error: {message, errors}}``."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text.strip()[:_MESSAGE_LIMIT]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message") or body.get("status") or "")]
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors))
    return ": ".join(p for p in parts if p)[:_MESSAGE_LIMIT]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
