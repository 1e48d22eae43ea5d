"""A fake Argo CD API server (the parts cmdcenter uses) for tests and the demo.

    fake = ArgoCDFake(token="t0k3n")
    fake.add_application("checkout-prod", versions=["1.4.0", "1.5.0"])
    with serve_in_thread(fake.app) as server:
        ...  # ArgoCDDeployer(server.url, "t0k3n")
    fake.rollbacks  # [{"application": "checkout-prod", "id": 1, "dryRun": False, "prune": False}]

Endpoints: ``GET``/``PATCH /api/v1/applications/{name}``, ``POST .../rollback``, ``POST .../sync``.
Requests need ``Authorization: Bearer <token>``. Bodies are checked against the swagger's
``applicationApplicationRollbackRequest`` / ``...SyncRequest`` / ``...PatchRequest`` when the
specs are present; a mismatch answers 400 and is kept in ``problems``. Like Argo CD, a rollback
is refused while automated sync is on, or while another operation runs, or to an unknown history
id. A rollback or sync starts an operation that finishes after ``operation_polls`` GETs of the
application (``None``: never), with ``operation_phase`` (``Succeeded`` appends a history entry
unless it was a dry run). Errors are grpc-gateway shaped: ``{"error", "code", "message"}``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.sandbox.vendors.deploy import ARGOCD_SPEC, body_problems, definition_validator

_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14, 504: 4}


@dataclass(frozen=True)
class ArgoCall:
    method: str
    path: str
    body: Any = None


@dataclass
class _Operation:
    kind: str  # rollback | sync
    dry_run: bool
    started_at: str
    revision: str
    source: dict[str, Any]
    polls_left: int | None


@dataclass
class _Failure:
    status: int
    message: str
    delay: float = 0.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class ArgoCDFake:
    token: str = "argocd-test-token"  # noqa: S105 - the fake's own token, not a secret
    operation_polls: int | None = 1
    operation_phase: str = "Succeeded"
    operation_message: str = "successfully synced (all tasks run)"
    validate: bool = True
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[ArgoCall] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    syncs: list[dict[str, Any]] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: dict[str, _Operation] = {}
        self._failures: list[_Failure] = []
        self._validators = {
            kind: definition_validator(ARGOCD_SPEC, f"applicationApplication{kind}Request")
            for kind in ("Rollback", "Sync", "Patch")
        }
        self.app = Starlette(
            routes=[
                Route("/api/v1/applications/{name}", self._application, methods=["GET", "PATCH"]),
                Route("/api/v1/applications/{name}/rollback", self._rollback, methods=["POST"]),
                Route("/api/v1/applications/{name}/sync", self._sync, methods=["POST"]),
            ]
        )

    # --- Programming the fake -----------------------------------------------------------------

    def add_application(
        self,
        name: str,
        *,
        versions: list[str],
        auto_sync: bool = False,
        chart: str | None = None,
        start: datetime | None = None,
    ) -> None:
        """An application synced once per version (oldest first, history ids 0..n-1).

        Without ``chart`` the source is a git path whose helm parameter ``image.tag`` is the
        version; with ``chart`` it is that Helm chart at the version.
        """
        base = start or datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        history = []
        for index, version in enumerate(versions):
            source = self._source(name, version, chart)
            stamp = (base + timedelta(hours=index)).isoformat().replace("+00:00", "Z")
            history.append(
                {
                    "id": index,
                    "revision": version if chart else _sha(f"{name}:{version}"),
                    "source": source,
                    "deployStartedAt": stamp,
                    "deployedAt": stamp,
                    "initiatedBy": {"username": "admin"} if index % 2 else {"automated": True},
                }
            )
        spec: dict[str, Any] = {
            "project": "default",
            "source": copy.deepcopy(history[-1]["source"]) if history else self._source(name, "", chart),
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
        }
        if auto_sync:
            spec["syncPolicy"] = {"automated": {"prune": True, "selfHeal": True}}
        with self._lock:
            self.applications[name] = {
                "metadata": {"name": name, "namespace": "argocd", "annotations": {}},
                "spec": spec,
                "status": {
                    "history": history,
                    "sync": {"status": "Synced", "revision": history[-1]["revision"] if history else ""},
                    "health": {"status": "Healthy"},
                },
            }

    @staticmethod
    def _source(name: str, version: str, chart: str | None) -> dict[str, Any]:
        if chart:
            return {"repoURL": "https://charts.example.com", "chart": chart, "targetRevision": version}
        return {
            "repoURL": "https://git.example.com/deploy.git",
            "path": f"apps/{name}",
            "targetRevision": "HEAD",
            "helm": {"parameters": [{"name": "image.tag", "value": version}]},
        }

    def application(self, name: str) -> dict[str, Any]:
        """A copy of the application as stored."""
        with self._lock:
            return copy.deepcopy(self.applications[name])

    def fail_next(self, status: int = 503, message: str = "service unavailable", *, times: int = 1) -> None:
        """Answer the next ``times`` requests (any endpoint) with ``status``."""
        with self._lock:
            self._failures += [_Failure(status, message) for _ in range(times)]

    def slow_next(self, seconds: float, *, times: int = 1) -> None:
        """Delay the next ``times`` requests by ``seconds`` (then answer normally)."""
        with self._lock:
            self._failures += [_Failure(0, "", delay=seconds) for _ in range(times)]

    # --- HTTP ---------------------------------------------------------------------------------

    async def _begin(self, request: Request) -> tuple[Any, JSONResponse | None]:
        """Record the call; the body, or the error response to send instead."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        with self._lock:
            self.calls.append(ArgoCall(request.method, request.url.path, body))
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            await asyncio.sleep(failure.delay)
            if failure.status:
                return body, _error(failure.status, failure.message)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return body, _error(401, "no session information")
        if request.method != "GET" and not isinstance(body, dict):
            return body, _error(400, "request body must be a JSON object")
        return body, None

    def _check(self, kind: str, body: Any) -> JSONResponse | None:
        if not self.validate:
            return None
        problems = body_problems(self._validators[kind], body)
        if problems:
            with self._lock:
                self.problems += [f"{kind}: {p}" for p in problems]
            return _error(400, f"fake argocd: {kind} request does not match the spec: {'; '.join(problems)}")
        return None

    async def _application(self, request: Request) -> JSONResponse:
        body, error = await self._begin(request)
        if error is not None:
            return error
        name = request.path_params["name"]
        if request.method == "PATCH":
            return self._patch(name, body)
        with self._lock:
            app = self.applications.get(name)
            if app is None:
                return _not_found(name)
            self._advance(name, app)
            return JSONResponse(copy.deepcopy(app))

    def _patch(self, name: str, body: dict[str, Any]) -> JSONResponse:
        error = self._check("Patch", body)
        if error is not None:
            return error
        if body.get("patchType") != "merge":
            return _error(400, f"fake argocd supports merge patches only, not {body.get('patchType')!r}")
        try:
            patch = json.loads(str(body.get("patch") or ""))
        except json.JSONDecodeError:
            return _error(400, "patch is not valid JSON")
        with self._lock:
            app = self.applications.get(name)
            if app is None:
                return _not_found(name)
            self.patches.append({"application": name, "patch": patch})
            patched = merge_patch(app, patch)
            app["spec"] = patched.get("spec") or {}  # like Argo CD: spec, labels, annotations only
            for key in ("labels", "annotations"):
                app["metadata"][key] = (patched.get("metadata") or {}).get(key) or {}
            return JSONResponse(copy.deepcopy(app))

    async def _rollback(self, request: Request) -> JSONResponse:
        body, error = await self._begin(request)
        if error is not None:
            return error
        error = self._check("Rollback", body)
        if error is not None:
            return error
        name = request.path_params["name"]
        with self._lock:
            app = self.applications.get(name)
            if app is None:
                return _not_found(name)
            record = {"application": name, **body}
            self.rollbacks.append(record)
            automated = ((app["spec"].get("syncPolicy") or {}).get("automated")) or None
            if automated is not None and automated.get("enabled") is not False:
                return _error(400, "rollback cannot be initiated when auto-sync is enabled")
            if not isinstance(body.get("id"), int):
                return _error(400, "rollback needs an integer history id")
            entry = next((h for h in app["status"]["history"] if h["id"] == body["id"]), None)
            if entry is None:
                return _error(400, f"application {name} does not have deployment with id {body['id']}")
            return self._start(name, app, "rollback", body, entry["revision"], entry["source"])

    async def _sync(self, request: Request) -> JSONResponse:
        body, error = await self._begin(request)
        if error is not None:
            return error
        error = self._check("Sync", body)
        if error is not None:
            return error
        name = request.path_params["name"]
        with self._lock:
            app = self.applications.get(name)
            if app is None:
                return _not_found(name)
            self.syncs.append({"application": name, **body})
            revision = str(body.get("revision") or app["spec"]["source"].get("targetRevision") or "HEAD")
            source = {**copy.deepcopy(app["spec"]["source"]), "targetRevision": revision}
            return self._start(name, app, "sync", body, revision, source)

    # --- Operations (call with the lock held) ---------------------------------------------------

    def _start(
        self,
        name: str,
        app: dict[str, Any],
        kind: str,
        body: dict[str, Any],
        revision: str,
        source: dict[str, Any],
    ) -> JSONResponse:
        if name in self._operations:
            return _error(400, "another operation is already in progress")
        operation = {
            "sync": {
                "revision": revision,
                "dryRun": bool(body.get("dryRun")),
                "prune": bool(body.get("prune")),
            },
            "initiatedBy": {"username": "cmdcenter"},
        }
        app["operation"] = operation
        self._operations[name] = _Operation(
            kind=kind,
            dry_run=bool(body.get("dryRun")),
            started_at=_now(),
            revision=revision,
            source=source,
            polls_left=self.operation_polls,
        )
        return JSONResponse(copy.deepcopy(app))

    def _advance(self, name: str, app: dict[str, Any]) -> None:
        op = self._operations.get(name)
        if op is None:
            return
        state = {
            "phase": "Running",
            "message": "",
            "startedAt": op.started_at,
            "operation": app.get("operation"),
        }
        app["status"]["operationState"] = state
        if op.polls_left is None:
            return
        op.polls_left -= 1
        if op.polls_left > 0:
            return
        del self._operations[name]
        app.pop("operation", None)
        state.update(phase=self.operation_phase, message=self.operation_message, finishedAt=_now())
        if self.operation_phase == "Succeeded" and not op.dry_run:
            history = app["status"]["history"]
            history.append(
                {
                    "id": max((h["id"] for h in history), default=-1) + 1,
                    "revision": op.revision,
                    "source": op.source,
                    "deployStartedAt": op.started_at,
                    "deployedAt": state["finishedAt"],
                    "initiatedBy": {"username": "cmdcenter"},
                }
            )
            app["status"]["sync"] = {
                "status": "OutOfSync" if op.kind == "rollback" else "Synced",
                "revision": op.revision,
            }


def _error(status: int, message: str) -> JSONResponse:
    code = _GRPC_CODES.get(status, 2)
    return JSONResponse({"error": message, "code": code, "message": message}, status_code=status)


def _not_found(name: str) -> JSONResponse:
    return _error(404, f'applications.argoproj.io "{name}" not found')
