"""``POST /hooks/deploy``: CI pipelines report their deploys into the release ledger.

    curl -X POST https://cmdcenter.example.com/hooks/deploy \\
      -H "Authorization: Bearer $CMDCENTER_DEPLOY_HOOK_TOKEN" -H "Content-Type: application/json" \\
      -d '{"service": "checkout", "environment": "prod", "version": "v1.4.2",
           "commit": "9f2c1e7", "status": "succeeded", "url": "https://ci.example.com/runs/812"}'

Answers: 201 recorded · 200 the same deploy again (its status updated) · 401 missing or wrong token
(or no token configured) · 400 not JSON, or field errors (``{"error": ..., "fields": {name: why}}``)
· 413 body over 64 KiB · 503 the database is unreachable. ``status`` is started, succeeded, failed
or cancelled (success, failure, in_progress... are understood).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import Services
from bot.errors import Unavailable
from bot.releases import ledger
from bot.web import bearer_ok

PATH = "/hooks/deploy"
MAX_HOOK_BODY = 64 * 1024


def _error(
    status: int, error: str, fields: dict[str, str] | None = None, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if fields:
        body["fields"] = fields
    return JSONResponse(body, status_code=status, headers=headers)


def _field_errors(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in exc.errors()}


def route(svc: Services) -> Route:
    async def deploy_hook(request: Request) -> Response:
        token = svc.settings.deploy_hook_token
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
            return _error(400, "invalid deploy report", _field_errors(exc))
        problems = ledger.check_report(svc, report)
        if problems:
            return _error(400, "invalid deploy report", problems)
        try:
            outcome = await ledger.report_deploy(svc, report)
        except Unavailable:
            return _error(503, "temporarily unavailable")
        return JSONResponse(outcome.model_dump(), status_code=201 if outcome.created else 200)

    return Route(PATH, deploy_hook, methods=["POST"])
