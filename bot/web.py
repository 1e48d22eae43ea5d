"""HTTP routes (Starlette/ASGI): Slack requests, health, metrics, webhooks and the JSON API."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.app import Services, Worker

log = logging.getLogger(__name__)

MAX_BODY = 512 * 1024  # Slack payloads are far smaller; refuse anything bigger before parsing it

Endpoint = Callable[[Request], Awaitable[Response]]


def _kind(request: Request, body: bytes) -> str:
    ctype = request.headers.get("content-type", "")
    if "json" in ctype:
        return "event"
    if body.startswith(b"payload="):
        return "interactive"
    return "command"


def build_web(app: AsyncApp, services: Services, *, extra_routes: list[Route] | None = None) -> Starlette:
    handler = AsyncSlackRequestHandler(app)
    assert services.settings.slack_signing_secret is not None
    verifier = SignatureVerifier(services.settings.slack_signing_secret.get_secret_value())
    worker = Worker(services)
    telemetry = services.telemetry

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_BODY:
            return PlainTextResponse("payload too large", status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("payload too large", status_code=413)
        kind = _kind(request, body)
        requests, ack_seconds = telemetry.request_metrics(kind)
        requests.inc()
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return PlainTextResponse("malformed request: not UTF-8", status_code=400)
        if not _signed_by_slack(verifier, body, request):
            return PlainTextResponse("invalid signature", status_code=401)
        problem = malformed(body, request.headers.get("content-type", ""))
        if problem:
            telemetry.errors.labels("malformed").inc()
            return PlainTextResponse(f"malformed request: {problem}", status_code=400)
        try:
            response: Response = await handler.handle(request)
        except Exception:  # Bolt choked on a payload we did not foresee: never a 5xx for bad input
            error_id = new_error_id()
            telemetry.errors.labels("unexpected").inc()
            log.exception("error %s handling a %s request", error_id, kind)
            return PlainTextResponse(f"could not process the request (error id {error_id})", status_code=400)
        ack_seconds.observe(time.perf_counter() - started)
        return response

    async def healthz(_: Request) -> Response:
        ok = await services.db.ping()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "unreachable"},
            status_code=200 if ok else 503,
        )

    async def metrics(_: Request) -> Response:
        return Response(telemetry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        web_client = services.extras.get("web_client")
        shared: aiohttp.ClientSession | None = None
        if web_client is not None and getattr(web_client, "session", None) is None:
            # One connection pool for every Web API call (slack_sdk opens a session per call otherwise).
            # At most 16 connections per host (slack.com, hooks.slack.com): more calls at once only
            # hold more sockets and buffers, since Slack rate-limits per method and channel anyway.
            shared = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=web_client.timeout),
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=16),
            )
            web_client.session = shared
        worker.start()
        services.extras["worker"] = worker
        try:
            yield
        finally:
            await services.drain(services.settings.shutdown_grace)
            await worker.stop()
            await services.db.dispose()
            if shared is not None and web_client is not None:
                web_client.session = None
                await shared.close()

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *services.routes,
        *(extra_routes or []),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


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


def new_error_id() -> str:
    return f"E-{uuid.uuid4().hex[:10].upper()}"


_COMMAND_FIELD = re.compile(rb"(?:^|&)command=([^&]*)")


def malformed(body: bytes, content_type: str) -> str | None:
    """Why a (signed) body is not a Slack payload Bolt can handle, or None when it looks right."""
    try:
        if "json" in content_type:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                return "expected a JSON object with a type"
            if data["type"] == "event_callback" or "event" in data:
                event = data.get("event")
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    return "event without a type"
                if not isinstance(data.get("event_id", ""), str):
                    return "event_id must be a string"
            return None
        if not body.startswith(b"payload=") and b"&payload=" not in body:
            # A slash command (the hot path): only its command field is checked, without parsing
            # the whole form a second time (Bolt parses it).
            found = _COMMAND_FIELD.search(body)
            if found and not unquote_plus(found.group(1).decode("utf-8")).startswith("/"):
                return "command must start with /"
            return None
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        if "payload" in form:
            payload = json.loads(form["payload"][0])
            if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
                return "interactivity payload without a type"
            for key in ("user", "team", "channel", "view", "container", "message"):
                if key in payload and payload[key] is not None and not isinstance(payload[key], dict):
                    return f"{key} must be an object"
            actions = payload.get("actions", [])
            if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
                return "actions must be a list of objects"
            return None
        return None
    except (UnicodeDecodeError, ValueError):
        return "not valid JSON / form data"


def bearer_ok(request: Request, expected: str | None) -> bool:
    import hmac

    if not expected:
        return False
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


async def read_json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ValueError("payload too large")
    return json.loads(body or b"null")
