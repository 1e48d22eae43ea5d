"""A fake Atlassian Statuspage (incidents and components of one page) for tests and the sandbox.

    fake = StatuspageFake()
    with serve_in_thread(create_app(fake)) as server:
        status_page = StatuspageClient(api_key=fake.api_key, page_id=fake.page_id, base_url=server.url)

Requests need ``Authorization: OAuth <api_key>``. Incident bodies are validated against the spec's
request schemas (``postPagesPageIdIncidents`` / ``patchPagesPageIdIncidents``, when the specs are
found) -> 400; the spec's ``components`` map is only an example object, so its values and ids, and
the documented length limits, are checked by hand -> 422. Problems are recorded in ``violations``.
Incident status and component changes are kept: ``incidents`` (with ``incident_updates``, newest
first, like the API) and ``components`` (id -> component with its current ``status``).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.faults import FaultInjection
from bot.sandbox.specs import SchemaValidator, load_spec, request_validator, schema_errors

JSON = dict[str, Any]
SPEC = "statuspage_openapi_v1.patched.json"
ENDPOINTS = ("create_incident", "update_incident", "get_incident", "unresolved_incidents", "components")
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
DEFAULT_COMPONENTS = {"cmpapi000001": "API", "cmpweb000001": "Website", "cmpdb0000001": "Database"}
_NAME_LIMIT, _BODY_LIMIT = 255, 25000
_INCIDENTS, _INCIDENT = "/pages/{page_id}/incidents", "/pages/{page_id}/incidents/{incident_id}"


class StatuspageFake(FaultInjection):
    """State of the fake page. ``components``: id -> name to seed (all start ``operational``)."""

    endpoints = ENDPOINTS

    def __init__(
        self,
        *,
        api_key: str = "sp-test-key",
        page_id: str = "pagetest0001",
        components: dict[str, str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.page_id = page_id
        now = _now()
        self.components: dict[str, JSON] = {
            cid: {"id": cid, "page_id": page_id, "name": name, "status": "operational", "group": False}
            | {"position": n, "created_at": now, "updated_at": now}
            for n, (cid, name) in enumerate((components or DEFAULT_COMPONENTS).items(), start=1)
        }
        self.incidents: dict[str, JSON] = {}
        self.calls: list[JSON] = []
        self.violations: list[str] = []
        self._init_faults()
        spec = load_spec(SPEC)
        self.validating = spec is not None
        self._schemas: dict[str, SchemaValidator] = (
            {
                "create_incident": request_validator(spec, _INCIDENTS, "post"),
                "update_incident": request_validator(spec, _INCIDENT, "patch"),
            }
            if spec
            else {}
        )

    # --- for tests --------------------------------------------------------------------------------

    def component_statuses(self) -> dict[str, str]:
        return {cid: str(c["status"]) for cid, c in self.components.items()}

    def status_history(self, incident_id: str) -> list[str]:
        """Statuses of the incident's updates, oldest first."""
        return [u["status"] for u in reversed(self.incidents[incident_id]["incident_updates"])]

    # --- internals --------------------------------------------------------------------------------

    def _problems(self, endpoint: str, body: Any) -> tuple[list[str], list[str]]:
        """(schema problems -> 400, semantic problems -> 422)."""
        if not isinstance(body, dict) or not isinstance(body.get("incident"), dict):
            return ["body must be a JSON object with an 'incident' object"], []
        validator = self._schemas.get(endpoint)
        schema = schema_errors(validator, body) if validator else []
        incident: JSON = body["incident"]
        semantic: list[str] = []
        if endpoint == "create_incident" and not incident.get("name"):
            semantic.append("name can't be blank")
        if len(str(incident.get("name", ""))) > _NAME_LIMIT:
            semantic.append(f"name is too long (maximum is {_NAME_LIMIT} characters)")
        if len(str(incident.get("body", ""))) > _BODY_LIMIT:
            semantic.append(f"body is too long (maximum is {_BODY_LIMIT} characters)")
        if "status" in incident and incident["status"] not in INCIDENT_STATUSES:
            semantic.append(f"status {incident['status']!r} is not a realtime incident status")
        components = incident.get("components", {})
        if not isinstance(components, dict):
            semantic.append("components must be a map of component id to status")
            components = {}
        for cid, status in components.items():
            if cid not in self.components:
                semantic.append(f"component {cid!r} not found")
            if status not in COMPONENT_STATUSES:
                semantic.append(f"component status {status!r} is invalid")
        for cid in incident.get("component_ids") or []:
            if cid not in self.components:
                semantic.append(f"component {cid!r} not found")
        return schema, semantic

    def _apply(self, incident_id: str | None, changes: JSON) -> JSON:
        """Create (``incident_id`` None) or update an incident; returns it."""
        now = _now()
        with self._lock:
            if incident_id is None:
                incident_id = uuid.uuid4().hex[:12]
                incident: JSON = {
                    "id": incident_id,
                    "page_id": self.page_id,
                    "name": changes["name"],
                    "status": "investigating",
                    "impact": "none",
                    "shortlink": f"https://stspg.io/{incident_id[:6]}",
                    "created_at": now,
                    "resolved_at": None,
                    "monitoring_at": None,
                    "components": [],
                    "incident_updates": [],
                }
                self.incidents[incident_id] = incident
            incident = self.incidents[incident_id]
            if "metadata" in changes:
                incident["metadata"] = changes["metadata"]
            incident["name"] = changes.get("name", incident["name"])
            incident["status"] = changes.get("status", incident["status"])
            incident["updated_at"] = now
            if incident["status"] in ("monitoring", "resolved"):
                incident[f"{incident['status']}_at"] = now
            affected = self._set_components(changes.get("components") or {})
            ids = [c["id"] for c in incident["components"]]
            ids += [cid for cid in [*(changes.get("component_ids") or []), *affected] if cid not in ids]
            incident["components"] = [dict(self.components[cid]) for cid in ids]
            update = {
                "id": uuid.uuid4().hex[:12],
                "incident_id": incident_id,
                "status": incident["status"],
                "body": changes.get("body", ""),
                "created_at": now,
                "display_at": now,
                "affected_components": list(affected.values()),
            }
            incident["incident_updates"].insert(0, update)
            return dict(incident)

    def _set_components(self, statuses: dict[str, str]) -> dict[str, JSON]:
        affected: dict[str, JSON] = {}
        for cid, status in statuses.items():
            component = self.components[cid]
            affected[cid] = {
                "code": cid,
                "name": component["name"],
                "old_status": component["status"],
                "new_status": status,
            }
            component.update(status=status, updated_at=_now())
        return affected


def create_app(fake: StatuspageFake | None = None) -> Starlette:
    """The ASGI app serving ``fake`` (a fresh one when omitted; it is ``app.state.fake``)."""
    state = fake or StatuspageFake()

    async def create_incident(request: Request) -> Response:
        return await _write(state, request, "create_incident", None, status_code=201)

    async def update_incident(request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        return await _write(state, request, "update_incident", incident_id, status_code=200)

    async def get_incident(request: Request) -> Response:
        if (early := await _checks(state, request, "get_incident")) is not None:
            return early
        incident = state.incidents.get(request.path_params["incident_id"])
        return (
            JSONResponse(incident) if incident else _error(404, "The requested resource could not be found.")
        )

    async def unresolved(request: Request) -> Response:
        if (early := await _checks(state, request, "unresolved_incidents")) is not None:
            return early
        page = int(request.query_params.get("page") or 1)
        per_page = int(request.query_params.get("per_page") or 100)
        with state._lock:
            open_ = [
                dict(i) for i in state.incidents.values() if i["status"] not in ("resolved", "postmortem")
            ]
        return JSONResponse(open_[(page - 1) * per_page : page * per_page])

    async def components(request: Request) -> Response:
        if (early := await _checks(state, request, "components")) is not None:
            return early
        try:
            page = int(request.query_params.get("page") or 1)
            per_page = int(request.query_params.get("per_page") or 100)
        except ValueError:
            return _error(400, "page and per_page must be integers")
        if page < 1 or not 1 <= per_page <= 100:
            state.violations.append(f"GET components: page={page} per_page={per_page} out of range")
            return _error(400, "page must be >= 1 and per_page between 1 and 100")
        listed = list(state.components.values())[(page - 1) * per_page : page * per_page]
        return JSONResponse(listed)

    app = Starlette(
        routes=[
            Route(_INCIDENTS, create_incident, methods=["POST"]),
            Route(_INCIDENTS + "/unresolved", unresolved, methods=["GET"]),
            Route(_INCIDENT, update_incident, methods=["PATCH", "PUT"]),
            Route(_INCIDENT, get_incident, methods=["GET"]),
            Route("/pages/{page_id}/components", components, methods=["GET"]),
        ]
    )
    app.state.fake = state
    return app


async def _checks(
    state: StatuspageFake, request: Request, endpoint: str, body: Any = None
) -> Response | None:
    """Record the call, then injected faults, authentication and the page id."""
    with state._lock:
        state.calls.append(
            {
                "endpoint": endpoint,
                "method": request.method,
                "path": request.url.path,
                "query": list(request.query_params.multi_items()),
                "json": body,
            }
        )
    fault = state._take_fault(endpoint)
    if fault is not None and fault.lost_answer:
        request.state.lost_answer = fault  # ``_write`` applies the change, then answers the error
    elif fault is not None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is not None:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
            return _error(fault.status, f"Injected failure ({fault.status})", headers)
    if request.headers.get("authorization") != f"OAuth {state.api_key}":
        return _error(401, "Could not authenticate")
    if request.path_params.get("page_id") != state.page_id:
        return _error(404, "The requested resource could not be found.")
    return None


async def _write(
    state: StatuspageFake, request: Request, endpoint: str, incident_id: str | None, *, status_code: int
) -> Response:
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    if (early := await _checks(state, request, endpoint, body)) is not None:
        return early
    if incident_id is not None and incident_id not in state.incidents:
        return _error(404, "The requested resource could not be found.")
    schema, semantic = state._problems(endpoint, body)
    where = f"{request.method} {request.url.path}"
    state.violations.extend(f"{where}: {p}" for p in schema + semantic)
    if schema:
        return _error(400, "; ".join(schema))
    if semantic:
        return _error(422, "; ".join(semantic))
    applied = state._apply(incident_id, body["incident"])
    lost = getattr(request.state, "lost_answer", None)
    if lost is not None and lost.status is not None:
        return _error(lost.status, f"Injected failure after the change ({lost.status})")
    return JSONResponse(applied, status_code=status_code)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
