"""Every HTTP route (Starlette/ASGI), with bounded bodies:

    POST /slack/events     Slack: slash commands, events, interactivity (HTTP mode only)
    GET  /healthz          200 with the database's status, 503 when it is unreachable
    GET  /metrics          Prometheus text format
    POST /hooks/deploy     CI reports a deploy into the release ledger (bearer token)
    GET  /api/prodstatus   the /prodstatus report as JSON (bearer token)

``build_web(app)`` serves them all for ``cmdcenter serve``; ``cmdcenter socket`` serves
``service_routes`` (all but ``/slack/events``) beside its websocket (``bot.socket_mode``). A Slack
payload is checked the same way in both transports before Bolt sees it: at most ``MAX_BODY`` bytes,
UTF-8, and the shape checks here (``malformed_event``, ``malformed_interaction``,
``malformed_command``), which ``bot.socket_mode`` applies to each envelope.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from pydantic import ValidationError
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.app import App
from bot.deps import Deps
from bot.errors import NotFound, Unavailable, new_error_id
from bot.releases import ledger
from bot.status.prodstatus import build_report

log = logging.getLogger(__name__)

MAX_BODY = 512 * 1024  # Slack payloads are far smaller; refuse anything bigger before parsing it
MAX_HOOK_BODY = 64 * 1024


def build_web(app: App) -> Starlette:
    """HTTP mode: Slack's requests and the service routes, the app running for the server's life."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with app.running():
            yield

    routes = [Route("/slack/events", SlackEvents(app).handle, methods=["POST"]), *service_routes(app.deps)]
    return Starlette(routes=routes, lifespan=lifespan)


def service_routes(deps: Deps) -> list[Route]:
    """The routes both transports serve: health, metrics, the deploy webhook, the JSON API."""
    return [
        Route("/healthz", _Healthz(deps).handle, methods=["GET"]),
        Route("/metrics", _Metrics(deps).handle, methods=["GET"]),
        Route("/hooks/deploy", _DeployHook(deps).handle, methods=["POST"]),
        Route("/api/prodstatus", _ProdstatusApi(deps).handle, methods=["GET"]),
    ]


# --- Slack -----------------------------------------------------------------------------------------


def _kind(content_type: str, body: bytes) -> str:
    if "json" in content_type:
        return "event"
    if body.startswith(b"payload="):
        return "interactive"
    return "command"


class SlackEvents:
    """``POST /slack/events``: refuse oversized (413), non-UTF-8 or malformed (400) and unsigned or
    stale (401) requests before anything runs; then Bolt, which never makes bad input a 5xx."""

    def __init__(self, app: App) -> None:
        self.handler = AsyncSlackRequestHandler(app.bolt)
        _, secret = app.deps.settings.slack_credentials()
        self.verifier = SignatureVerifier(secret)
        self.telemetry = app.deps.telemetry

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return PlainTextResponse("payload too large", status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("payload too large", status_code=413)
        content_type = request.headers.get("content-type", "")
        kind = _kind(content_type, body)
        requests, ack_seconds = self.telemetry.request_metrics(kind)
        requests.inc()
        if _size_or_encoding(body) is not None:
            return PlainTextResponse("malformed request: not UTF-8", status_code=400)
        if not _signed_by_slack(self.verifier, body, request):
            return PlainTextResponse("invalid signature", status_code=401)
        problem = malformed(body, content_type)
        if problem:
            self.telemetry.errors.labels("malformed").inc()
            return PlainTextResponse(f"malformed request: {problem}", status_code=400)
        try:
            response: Response = await self.handler.handle(request)
        except Exception:  # Bolt choked on a payload we did not foresee: never a 5xx for bad input
            error_id = new_error_id()
            self.telemetry.errors.labels("unexpected").inc()
            log.exception("error %s handling a %s request", error_id, kind)
            return PlainTextResponse(f"could not process the request (error id {error_id})", status_code=400)
        ack_seconds.observe(time.perf_counter() - started)
        return response


def _size_or_encoding(body: bytes) -> tuple[int, str] | None:
    if len(body) > MAX_BODY:
        return 413, "payload too large"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return 400, "malformed request: not UTF-8"
    return None


def _signed_by_slack(verifier: SignatureVerifier, body: bytes, request: Request) -> bool:
    """Slack's signature over the body, made within the last 5 minutes (the two headers read
    directly, not copied with all the others into a dict); a timestamp that is not a number is
    simply not valid."""
    try:
        return verifier.is_valid(
            body=body,
            timestamp=request.headers.get("x-slack-request-timestamp"),
            signature=request.headers.get("x-slack-signature"),
        )
    except ValueError:
        return False


_COMMAND_FIELD = re.compile(rb"(?:^|&)command=([^&]*)")


def malformed(body: bytes, content_type: str) -> str | None:
    """Why a (signed) body is not a Slack payload Bolt can handle, or None when it looks right."""
    try:
        if "json" in content_type:
            return malformed_event(json.loads(body))
        if not body.startswith(b"payload=") and b"&payload=" not in body:
            # A slash command (the hot path): only its command field is checked, without parsing
            # the whole form a second time (Bolt parses it).
            found = _COMMAND_FIELD.search(body)
            return malformed_command(unquote_plus(found.group(1).decode("utf-8"))) if found else None
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        if "payload" in form:
            return malformed_interaction(json.loads(form["payload"][0]))
        return None
    except (UnicodeDecodeError, ValueError):
        return "not valid JSON / form data"


def malformed_command(command: object) -> str | None:
    """Why a slash command's ``command`` field is not one Bolt can route."""
    if not isinstance(command, str) or not command.startswith("/"):
        return "command must start with /"
    return None


def malformed_event(data: Any) -> str | None:
    """Why an Events API body (``event_callback``...) is not one Bolt can handle."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return "expected a JSON object with a type"
    if data["type"] == "event_callback" or "event" in data:
        event = data.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "event without a type"
        if not isinstance(data.get("event_id", ""), str):
            return "event_id must be a string"
    return None


def malformed_interaction(payload: Any) -> str | None:
    """Why an interactivity payload (a button, a modal, a shortcut) is not one Bolt can handle."""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return "interactivity payload without a type"
    for key in ("user", "team", "channel", "view", "container", "message"):
        if key in payload and payload[key] is not None and not isinstance(payload[key], dict):
            return f"{key} must be an object"
    actions = payload.get("actions", [])
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        return "actions must be a list of objects"
    return None


# --- the service routes -------------------------------------------------------------------------------


def bearer_ok(request: Request, expected: str | None) -> bool:
    """A bearer token equal to ``expected`` (compared in constant time); none configured: refused."""
    if not expected:
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


def _error(
    status: int, error: str, fields: dict[str, str] | None = None, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if fields:
        body["fields"] = fields
    return JSONResponse(body, status_code=status, headers=headers)


class _Healthz:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, _: Request) -> Response:
        ok = await self.deps.db.ping()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "unreachable"},
            status_code=200 if ok else 503,
        )


class _Metrics:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, _: Request) -> Response:
        return Response(self.deps.telemetry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


class _DeployHook:
    """``POST /hooks/deploy`` (see the README): 201 recorded · 200 the same deploy again (its status
    updated) · 401 missing or wrong token (or none configured) · 400 not JSON, or field errors
    (``{"error": ..., "fields": {name: why}}``) · 413 body over 64 KiB · 503 database unreachable."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, request: Request) -> Response:
        token = self.deps.settings.deploy_hook_token
        if not bearer_ok(request, token.get_secret_value() if token else None):
            return _error(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        if int(request.headers.get("content-length") or 0) > MAX_HOOK_BODY:
            return _error(413, f"the body must be at most {MAX_HOOK_BODY} bytes")
        body = await request.body()
        if len(body) > MAX_HOOK_BODY:
            return _error(413, f"the body must be at most {MAX_HOOK_BODY} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, "the body is not JSON", {"body": str(exc)[:200]})
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object", {"body": "expected an object"})
        try:
            report = ledger.DeployReport.model_validate(data)
        except ValidationError as exc:
            fields = {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in exc.errors()}
            return _error(400, "invalid deploy report", fields)
        problems = ledger.check_report(self.deps, report)
        if problems:
            return _error(400, "invalid deploy report", problems)
        try:
            outcome = await ledger.report_deploy(self.deps, report)
        except Unavailable:
            return _error(503, "temporarily unavailable")
        return JSONResponse(outcome.model_dump(), status_code=201 if outcome.created else 200)


class _ProdstatusApi:
    """``GET /api/prodstatus[?scope=...]``: the report as JSON for dashboards (bearer token)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, request: Request) -> Response:
        token = self.deps.settings.api_token
        if not bearer_ok(request, token.get_secret_value() if token else None):
            return _error(401, "a valid bearer token (CMDCENTER_API_TOKEN) is required")
        try:
            report = await build_report(self.deps, scope=request.query_params.get("scope") or None)
        except NotFound as exc:
            return _error(404, str(exc))
        return JSONResponse(report.model_dump(mode="json"))
