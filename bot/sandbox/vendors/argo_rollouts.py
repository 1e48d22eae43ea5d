"""A fake Argo Rollouts API server (``kubectl argo rollouts dashboard``) for tests and the demo.

    fake = ArgoRolloutsFake()
    fake.add_rollout("checkout", namespace="prod", images=["reg/checkout:1.4.0", "reg/checkout:1.5.0"])
    with serve_in_thread(fake.app) as server:
        ...  # ArgoRolloutsDeployer(server.url)
    fake.actions  # [{"action": "undo", "namespace": "prod", "rollout": "checkout", "revision": "1", ...}]

Endpoints: ``GET /api/v1/rollouts/{ns}/{name}/info`` and ``PUT .../undo/{revision}``, ``.../abort``,
``.../promote``. Bodies are checked against the swagger's ``rollout.UndoRolloutRequest`` /
``AbortRolloutRequest`` / ``PromoteRolloutRequest`` when the specs are present (a mismatch answers
400 and is kept in ``problems``); the body's names must match the path. An undo to an unknown
revision answers 500 like the real server (its error is not a gRPC status). An undo renumbers the
target ReplicaSet to the next revision and makes it stable, as the controller would.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.sandbox.vendors.deploy import ARGO_ROLLOUTS_SPEC, body_problems, definition_validator


@dataclass
class _ReplicaSet:
    revision: int
    image: str
    pod_hash: str
    created: str


@dataclass
class _Rollout:
    replica_sets: list[_ReplicaSet]
    stable: str  # pod-template hash
    current: str


@dataclass
class ArgoRolloutsFake:
    validate: bool = True
    actions: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rollouts: dict[tuple[str, str], _Rollout] = {}
        self._failures: list[tuple[int, str]] = []
        self._validators = {
            kind: definition_validator(ARGO_ROLLOUTS_SPEC, f"rollout.{kind}RolloutRequest")
            for kind in ("Undo", "Abort", "Promote")
        }
        base = "/api/v1/rollouts/{namespace}"
        self.app = Starlette(
            routes=[
                Route(base + "/{name}/info", self._info, methods=["GET"]),
                Route(base + "/{name}/undo/{revision}", self._undo, methods=["PUT"]),
                Route(base + "/{name}/abort", self._abort, methods=["PUT"]),
                Route(base + "/{name}/promote", self._promote, methods=["PUT"]),
            ]
        )

    def add_rollout(self, name: str, *, namespace: str, images: list[str], stable: int | None = None) -> None:
        """One ReplicaSet per image (revisions 1..n); ``stable`` (a revision) defaults to the last."""
        base = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        sets = [
            _ReplicaSet(i + 1, image, f"{i + 1:04d}abcd", (base + timedelta(hours=i)).isoformat())
            for i, image in enumerate(images)
        ]
        with self._lock:
            self._rollouts[(namespace, name)] = _Rollout(
                sets, stable=sets[(stable or len(sets)) - 1].pod_hash, current=sets[-1].pod_hash
            )

    def info(self, name: str, *, namespace: str) -> dict[str, Any]:
        with self._lock:
            return self._info_of(namespace, name)

    def fail_next(self, status: int = 503, message: str = "service unavailable", *, times: int = 1) -> None:
        with self._lock:
            self._failures += [(status, message)] * times

    # --- HTTP ---------------------------------------------------------------------------------

    async def _begin(self, request: Request, kind: str | None) -> tuple[dict[str, Any], JSONResponse | None]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return {}, _error(400, "request body is not JSON")
        with self._lock:
            self.calls.append((request.method, request.url.path))
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return body, _error(*failure)
        if kind is None:
            return body, None
        if not isinstance(body, dict):
            return {}, _error(400, "request body must be a JSON object")
        problems = body_problems(self._validators[kind], body) if self.validate else []
        params = request.path_params
        for key, value in (
            ("namespace", params["namespace"]),
            ("rollout" if kind == "Undo" else "name", params["name"]),
        ):
            if key in body and body[key] != value:
                problems.append(f"body {key}={body[key]!r} does not match the path ({value!r})")
        if problems:
            with self._lock:
                self.problems += [f"{kind}: {p}" for p in problems]
            return body, _error(400, f"fake argo rollouts: {'; '.join(problems)}")
        return body, None

    async def _info(self, request: Request) -> JSONResponse:
        _, error = await self._begin(request, None)
        if error is not None:
            return error
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        with self._lock:
            if (namespace, name) not in self._rollouts:
                return _not_found(name)
            return JSONResponse(self._info_of(namespace, name))

    async def _undo(self, request: Request) -> JSONResponse:
        body, error = await self._begin(request, "Undo")
        if error is not None:
            return error
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        revision = request.path_params["revision"]
        with self._lock:
            rollout = self._rollouts.get((namespace, name))
            if rollout is None:
                return _not_found(name)
            self.actions.append(
                {
                    "action": "undo",
                    "namespace": namespace,
                    "rollout": name,
                    "revision": revision,
                    "body": body,
                }
            )
            target = next((rs for rs in rollout.replica_sets if str(rs.revision) == revision), None)
            if target is None:
                return _error(500, f"unable to find specified revision {revision} in history", code=2)
            if target.pod_hash != rollout.current:
                target.revision = max(rs.revision for rs in rollout.replica_sets) + 1
                rollout.current = rollout.stable = target.pod_hash
            return JSONResponse(self._rollout_object(namespace, name))

    async def _abort(self, request: Request) -> JSONResponse:
        body, error = await self._begin(request, "Abort")
        if error is not None:
            return error
        return self._act(request, "abort", body)

    async def _promote(self, request: Request) -> JSONResponse:
        body, error = await self._begin(request, "Promote")
        if error is not None:
            return error
        return self._act(request, "promote", body)

    def _act(self, request: Request, action: str, body: dict[str, Any]) -> JSONResponse:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        with self._lock:
            rollout = self._rollouts.get((namespace, name))
            if rollout is None:
                return _not_found(name)
            self.actions.append({"action": action, "namespace": namespace, "rollout": name, "body": body})
            if action == "abort":
                rollout.current = rollout.stable
            else:
                rollout.stable = rollout.current
            return JSONResponse(self._rollout_object(namespace, name))

    # --- Shapes (call with the lock held) -------------------------------------------------------

    def _info_of(self, namespace: str, name: str) -> dict[str, Any]:
        rollout = self._rollouts[(namespace, name)]
        sets = []
        for rs in sorted(rollout.replica_sets, key=lambda r: r.revision, reverse=True):
            stable, canary = rs.pod_hash == rollout.stable, rs.pod_hash == rollout.current != rollout.stable
            sets.append(
                {
                    "objectMeta": {
                        "name": f"{name}-{rs.pod_hash}",
                        "namespace": namespace,
                        "creationTimestamp": rs.created,
                    },
                    "status": "Healthy" if stable or canary else "ScaledDown",
                    "revision": str(rs.revision),
                    "stable": stable,
                    "canary": canary,
                    "replicas": 2 if stable else 1 if canary else 0,
                    "available": 2 if stable else 1 if canary else 0,
                    "images": [rs.image],
                }
            )
        progressing = rollout.current != rollout.stable
        return copy.deepcopy(
            {
                "objectMeta": {"name": name, "namespace": namespace},
                "status": "Paused" if progressing else "Healthy",
                "strategy": "Canary",
                "replicaSets": sets,
            }
        )

    def _rollout_object(self, namespace: str, name: str) -> dict[str, Any]:
        rollout = self._rollouts[(namespace, name)]
        return {
            "metadata": {"name": name, "namespace": namespace},
            "status": {"stableRS": rollout.stable, "currentPodHash": rollout.current},
        }


def _error(status: int, message: str, *, code: int | None = None) -> JSONResponse:
    grpc = code if code is not None else {400: 3, 404: 5, 503: 14}.get(status, 2)
    return JSONResponse({"error": message, "code": grpc, "message": message}, status_code=status)


def _not_found(name: str) -> JSONResponse:
    return _error(404, f'rollouts.argoproj.io "{name}" not found')
