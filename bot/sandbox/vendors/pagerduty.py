"""A fake PagerDuty: the Events API v2 and the REST endpoints cmdcenter reads, for tests and the sandbox.

    fake = PagerDutyFake()
    with serve_in_thread(create_app(fake)) as server:
        pager = PagerDutyPager(routing_key=..., events_url=server.url)

``POST /v2/enqueue`` bodies are validated against the Events v2 spec's request schema (when the
specs are found, see ``bot.sandbox.specs``) plus the rules PagerDuty applies beyond it; invalid
events get the service's 400 and are recorded in ``violations``. Accepted events are kept in
``events`` and folded into ``alerts`` (one entry per dedup key, with its status history).
REST calls need ``Authorization: Token token=<api_token>``; their query strings are checked against
the REST spec's parameters.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.faults import FaultInjection
from bot.sandbox.specs import (
    SchemaValidator,
    load_spec,
    query_parameters,
    query_violations,
    request_validator,
    schema_errors,
)

JSON = dict[str, Any]
EVENTS_SPEC = "pagerduty_events_v2_openapiv3.json"
REST_SPEC = "pagerduty_rest_openapiv3.patched.json"
ENDPOINTS = ("enqueue", "oncalls", "incidents", "users")
_REST_PATHS = {"oncalls": "/oncalls", "incidents": "/incidents", "users": "/users/{id}"}

DEFAULT_ONCALLS: dict[str, list[JSON]] = {
    "PEPOLICY1": [
        {"id": "PUSER02", "name": "Grace Hopper", "email": "grace@example.com", "level": 2},
        {"id": "PUSER01", "name": "Ada Lovelace", "email": "ada@example.com", "level": 1},
        {"id": "PUSER03", "name": "Alan Turing", "email": "alan@example.com", "level": 3},
    ],
}
DEFAULT_INCIDENTS: list[JSON] = [
    {"id": "PINC001", "title": "Checkout latency", "status": "triggered", "service_id": "PSVC01"},
    {"id": "PINC002", "title": "Login errors", "status": "acknowledged", "service_id": "PSVC02"},
    {"id": "PINC003", "title": "Old outage", "status": "resolved", "service_id": "PSVC01"},
]


class PagerDutyFake(FaultInjection):
    """State of the fake. ``oncalls``: escalation policy id -> users ``{id, name, email, level}``;
    ``incidents``: ``{id, title, status, service_id[, urgency, created_at]}``."""

    endpoints = ENDPOINTS

    def __init__(
        self,
        *,
        api_token: str = "pd-test-token",  # noqa: S107  (the fake's own test token)
        oncalls: dict[str, list[JSON]] | None = None,
        incidents: list[JSON] | None = None,
    ) -> None:
        self.api_token = api_token
        self.oncalls = {k: [dict(u) for u in v] for k, v in (oncalls or DEFAULT_ONCALLS).items()}
        self.incidents = [dict(i) for i in (DEFAULT_INCIDENTS if incidents is None else incidents)]
        self.events: list[JSON] = []
        self.alerts: dict[str, JSON] = {}
        self.rest_calls: list[JSON] = []
        self.violations: list[str] = []
        self._init_faults()
        events_spec, rest_spec = load_spec(EVENTS_SPEC), load_spec(REST_SPEC)
        self.validating = events_spec is not None and rest_spec is not None
        self._event_schema: SchemaValidator | None = (
            request_validator(events_spec, "/enqueue", "post") if events_spec else None
        )
        self._query_params = (
            {name: query_parameters(rest_spec, path) for name, path in _REST_PATHS.items()}
            if rest_spec
            else {}
        )

    # --- for tests --------------------------------------------------------------------------------

    def alert_history(self, dedup_key: str) -> list[str]:
        """Statuses the alert went through, e.g. ``["triggered", "acknowledged", "resolved"]``."""
        alert = self.alerts.get(dedup_key)
        return list(alert["history"]) if alert else []

    # --- internals --------------------------------------------------------------------------------

    def _event_problems(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["Event object format is unrecognized"]
        problems = schema_errors(self._event_schema, body) if self._event_schema else []
        # Rules the Events API applies beyond its published schema:
        if len(str(body.get("routing_key", ""))) != 32:
            problems.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        action, dedup_key = body.get("event_action"), body.get("dedup_key")
        if action == "trigger" and not body.get("payload"):
            problems.append("'payload' is missing or blank")
        if action in ("acknowledge", "resolve") and not dedup_key:
            problems.append("'dedup_key' is missing or blank")
        if isinstance(dedup_key, str) and len(dedup_key) > 255:
            problems.append("'dedup_key' is too long (max 255 characters)")
        payload = body.get("payload")
        if isinstance(payload, dict) and len(str(payload.get("summary", ""))) > 1024:
            problems.append("'payload.summary' is too long (max 1024 characters)")
        return problems

    def _apply_event(self, event: JSON, dedup_key: str) -> None:
        """Fold an accepted event into ``alerts`` the way PagerDuty does."""
        action = event["event_action"]
        with self._lock:
            self.events.append(event)
            alert = self.alerts.get(dedup_key)
            if action == "trigger":
                if alert is None or alert["status"] == "resolved":  # a new alert (PagerDuty reopens)
                    history = alert["history"] if alert else []
                    alert = {"dedup_key": dedup_key, "status": "triggered", "triggers": 0}
                    alert["history"] = [*history, "triggered"]
                    self.alerts[dedup_key] = alert
                alert["payload"] = event.get("payload", {})
                alert["links"] = event.get("links", [])
                alert["triggers"] += 1  # repeated triggers of an open alert are deduplicated
            elif alert is not None and alert["status"] != "resolved":
                new_status = "acknowledged" if action == "acknowledge" else "resolved"
                if alert["status"] != new_status:
                    alert["status"] = new_status
                    alert["history"].append(new_status)


def create_app(fake: PagerDutyFake | None = None) -> Starlette:
    """The ASGI app serving ``fake`` (a fresh one when omitted; it is ``app.state.fake``)."""
    state = fake or PagerDutyFake()

    async def enqueue(request: Request) -> Response:
        if (early := await _fault_response(state, "enqueue", events_api=True)) is not None:
            return early
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        problems = state._event_problems(body)
        if problems:
            state.violations.extend(f"POST /v2/enqueue: {p}" for p in problems)
            error = {"status": "invalid event", "message": "Event object is invalid", "errors": problems}
            return JSONResponse(error, status_code=400)
        dedup_key = str(body.get("dedup_key") or uuid.uuid4().hex)
        state._apply_event(body, dedup_key)
        ok = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        return JSONResponse(ok, status_code=202)

    async def oncalls(request: Request) -> Response:
        if (early := await _rest_checks(state, "oncalls", request)) is not None:
            return early
        policies = request.query_params.getlist("escalation_policy_ids[]") or list(state.oncalls)
        full_users = "users" in request.query_params.getlist("include[]")
        entries = [
            {
                "escalation_policy": _ref(policy, "escalation_policy"),
                "escalation_level": user["level"],
                "user": _user(user) if full_users else _ref(user["id"], "user", user["name"]),
                "schedule": None,
                "start": None,
                "end": None,
            }
            for policy in policies
            for user in state.oncalls.get(policy, [])
        ]
        return _page(request, "oncalls", entries, default_limit=25)

    async def incidents(request: Request) -> Response:
        if (early := await _rest_checks(state, "incidents", request)) is not None:
            return early
        services = set(request.query_params.getlist("service_ids[]"))
        statuses = set(request.query_params.getlist("statuses[]"))
        found = [
            _incident(i, n)
            for n, i in enumerate(state.incidents, start=1)
            if (not services or i["service_id"] in services) and (not statuses or i["status"] in statuses)
        ]
        return _page(request, "incidents", found, default_limit=25)

    async def user(request: Request) -> Response:
        if (early := await _rest_checks(state, "users", request)) is not None:
            return early
        user_id = request.path_params["id"]
        for users in state.oncalls.values():
            for candidate in users:
                if candidate["id"] == user_id:
                    return JSONResponse({"user": _user(candidate)})
        return _rest_error(404, "Not Found", 2100)

    app = Starlette(
        routes=[
            Route("/v2/enqueue", enqueue, methods=["POST"]),
            Route("/oncalls", oncalls, methods=["GET"]),
            Route("/incidents", incidents, methods=["GET"]),
            Route("/users/{id}", user, methods=["GET"]),
        ]
    )
    app.state.fake = state
    return app


async def _fault_response(state: PagerDutyFake, endpoint: str, *, events_api: bool) -> Response | None:
    fault = state._take_fault(endpoint)
    if fault is None:
        return None
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.status is None:
        return None
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
    if events_api:
        name = "throttle event" if fault.status == 429 else "error"
        body: JSON = {"status": name, "message": f"Injected failure ({fault.status})"}
    else:
        body = {"error": {"message": f"Injected failure ({fault.status})", "code": 2000 + fault.status}}
    return JSONResponse(body, status_code=fault.status, headers=headers)


async def _rest_checks(state: PagerDutyFake, endpoint: str, request: Request) -> Response | None:
    query = list(request.query_params.multi_items())
    with state._lock:
        state.rest_calls.append({"method": request.method, "path": request.url.path, "query": query})
    if (early := await _fault_response(state, endpoint, events_api=False)) is not None:
        return early
    if request.headers.get("authorization") != f"Token token={state.api_token}":
        return _rest_error(401, "Unauthenticated", 2006)
    problems = query_violations(state._query_params[endpoint], query) if state._query_params else []
    if problems:
        state.violations.extend(f"{request.method} {request.url.path}: {p}" for p in problems)
        return _rest_error(400, "Invalid Input Provided", 2001, problems)
    return None


def _rest_error(status: int, message: str, code: int, errors: list[str] | None = None) -> Response:
    error: JSON = {"message": message, "code": code}
    if errors:
        error["errors"] = errors
    return JSONResponse({"error": error}, status_code=status)


def _page(request: Request, key: str, items: list[JSON], *, default_limit: int) -> Response:
    offset = int(request.query_params.get("offset") or 0)
    limit = min(int(request.query_params.get("limit") or default_limit), 100)
    chunk = items[offset : offset + limit]
    total = len(items) if request.query_params.get("total") == "true" else None
    more = offset + len(chunk) < len(items)
    return JSONResponse({key: chunk, "offset": offset, "limit": limit, "more": more, "total": total})


def _ref(ref_id: str, kind: str, summary: str = "") -> JSON:
    return {"id": ref_id, "type": f"{kind}_reference", "summary": summary or ref_id}


def _user(user: JSON) -> JSON:
    return {
        "id": user["id"],
        "type": "user",
        "summary": user["name"],
        "name": user["name"],
        "email": user.get("email"),
        "html_url": f"https://fake.pagerduty.local/users/{user['id']}",
    }


def _incident(incident: JSON, number: int) -> JSON:
    return {
        "id": incident["id"],
        "type": "incident",
        "incident_number": number,
        "title": incident["title"],
        "summary": f"[#{number}] {incident['title']}",
        "status": incident["status"],
        "urgency": incident.get("urgency", "high"),
        "created_at": incident.get("created_at", "2024-01-01T00:00:00Z"),
        "service": _ref(incident["service_id"], "service"),
        "html_url": f"https://fake.pagerduty.local/incidents/{incident['id']}",
    }
