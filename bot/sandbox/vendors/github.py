"""A fake GitHub Actions REST API (workflow dispatch and runs) for tests and the demo.

    fake = GitHubFake(token="ghp_test", polls_to_complete=2, conclusion="success")
    with serve_in_thread(fake.app) as server:
        ...  # GitHubActionsDeployer(server.url, "ghp_test", poll_interval=0.01)
    fake.dispatches  # [{"repository": "acme/deploy", "workflow": "rollback.yml", "ref": "main", ...}]

``POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`` answers 204 and creates a
run that appears in ``GET .../workflows/{workflow}/runs`` (filtered by ``event`` and ``branch``,
newest first) after ``appear_after_lists`` listings, and is ``completed`` with ``conclusion``
after ``polls_to_complete`` reads of ``GET /repos/{owner}/{repo}/actions/runs/{id}``.
Checked on every request: ``Authorization: Bearer <token>`` (401 "Bad credentials"),
``Accept: application/vnd.github+json`` and ``X-GitHub-Api-Version: 2022-11-28`` (400 otherwise).
Dispatch bodies must be ``{"ref": str, "inputs": {str: str|number|bool}}`` with at most 25
inputs; with ``declared_inputs`` set, other inputs answer 422 "Unexpected inputs provided" as
GitHub does. Problems are also kept in ``problems``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_VERSION = "2022-11-28"
MAX_INPUTS = 25
_DOCS = "https://docs.github.com/rest"


@dataclass
class _Run:
    id: int
    run_number: int
    repository: str
    workflow: str
    ref: str
    created_at: str
    appear_after: int
    polls_left: int
    conclusion: str

    def as_json(self) -> dict[str, Any]:
        done = self.polls_left <= 0
        return {
            "id": self.id,
            "run_number": self.run_number,
            "name": self.workflow,
            "event": "workflow_dispatch",
            "head_branch": self.ref,
            "path": f".github/workflows/{self.workflow}",
            "status": "completed" if done else ("in_progress" if self.polls_left == 1 else "queued"),
            "conclusion": self.conclusion if done else None,
            "created_at": self.created_at,
            "html_url": f"https://github.com/{self.repository}/actions/runs/{self.id}",
        }


@dataclass
class GitHubFake:
    token: str = "github-test-token"  # noqa: S105 - the fake's own token, not a secret
    polls_to_complete: int = 2
    conclusion: str = "success"
    appear_after_lists: int = 0
    declared_inputs: set[str] | None = None
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: list[_Run] = []
        self._failures: list[tuple[int, str]] = []
        self._next_id = 9_000_000_001
        repo = "/repos/{owner}/{repo}/actions"
        self.app = Starlette(
            routes=[
                Route(repo + "/workflows/{workflow}/dispatches", self._dispatch, methods=["POST"]),
                Route(repo + "/workflows/{workflow}/runs", self._list_runs, methods=["GET"]),
                Route(repo + "/runs/{run_id:int}", self._get_run, methods=["GET"]),
            ]
        )

    def add_run(
        self, repository: str, workflow: str, *, ref: str = "main", conclusion: str = "success"
    ) -> int:
        """An earlier, completed dispatch run (so the adapter must tell new runs from old ones)."""
        with self._lock:
            return self._create(repository, workflow, ref, appear_after=0, polls=0, conclusion=conclusion).id

    def fail_next(self, status: int = 503, message: str = "Service Unavailable", *, times: int = 1) -> None:
        with self._lock:
            self._failures += [(status, message)] * times

    def _create(
        self, repository: str, workflow: str, ref: str, *, appear_after: int, polls: int, conclusion: str
    ) -> _Run:
        run = _Run(
            id=self._next_id,
            run_number=len(self._runs) + 1,
            repository=repository,
            workflow=workflow,
            ref=ref,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            appear_after=appear_after,
            polls_left=polls,
            conclusion=conclusion,
        )
        self._next_id += 1
        self._runs.append(run)
        return run

    # --- HTTP ---------------------------------------------------------------------------------

    def _begin(self, request: Request) -> Response | None:
        with self._lock:
            self.calls.append((request.method, request.url.path))
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return _error(*failure)
        headers = request.headers
        if headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Bad credentials")
        problems = []
        if headers.get("accept") != "application/vnd.github+json":
            problems.append(f"Accept is {headers.get('accept')!r}, not application/vnd.github+json")
        if headers.get("x-github-api-version") != API_VERSION:
            problems.append(f"X-GitHub-Api-Version is {headers.get('x-github-api-version')!r}")
        if problems:
            with self._lock:
                self.problems += problems
            return _error(400, "; ".join(problems))
        return None

    async def _dispatch(self, request: Request) -> Response:
        error = self._begin(request)
        if error is not None:
            return error
        params = request.path_params
        repository = f"{params['owner']}/{params['repo']}"
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return _error(400, "Problems parsing JSON")
        problems = _dispatch_problems(body)
        if problems:
            with self._lock:
                self.problems += problems
            return _error(422, "Invalid request. " + " ".join(problems))
        inputs: dict[str, Any] = body.get("inputs") or {}
        unexpected = sorted(set(inputs) - self.declared_inputs) if self.declared_inputs is not None else []
        with self._lock:
            self.dispatches.append({"repository": repository, "workflow": params["workflow"], **body})
            if unexpected:
                return _error(422, f"Unexpected inputs provided: {json.dumps(unexpected)}")
            self._create(
                repository,
                params["workflow"],
                body["ref"],
                appear_after=self.appear_after_lists,
                polls=self.polls_to_complete,
                conclusion=self.conclusion,
            )
        return Response(status_code=204)

    async def _list_runs(self, request: Request) -> Response:
        error = self._begin(request)
        if error is not None:
            return error
        params, query = request.path_params, request.query_params
        repository = f"{params['owner']}/{params['repo']}"
        with self._lock:
            runs = []
            for run in self._runs:
                if run.repository != repository or run.workflow != params["workflow"]:
                    continue
                if run.appear_after > 0:
                    run.appear_after -= 1
                    continue
                if query.get("event") not in (None, "workflow_dispatch"):
                    continue
                if query.get("branch") not in (None, run.ref):
                    continue
                runs.append(run.as_json())
        runs.sort(key=lambda r: r["id"], reverse=True)
        per_page = int(query.get("per_page") or 30)
        return JSONResponse({"total_count": len(runs), "workflow_runs": runs[:per_page]})

    async def _get_run(self, request: Request) -> Response:
        error = self._begin(request)
        if error is not None:
            return error
        run_id = request.path_params["run_id"]
        with self._lock:
            run = next((r for r in self._runs if r.id == run_id), None)
            if run is None:
                return _error(404, "Not Found")
            run.polls_left -= 1
            return JSONResponse(run.as_json())


def _dispatch_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["The body must be a JSON object."]
    problems = []
    if not isinstance(body.get("ref"), str) or not body["ref"]:
        problems.append("ref is required and must be a string.")
    extra = set(body) - {"ref", "inputs", "return_run_details"}
    if extra:
        problems.append(f"Unknown keys {sorted(extra)}.")
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        problems.append("inputs must be an object.")
    else:
        if len(inputs) > MAX_INPUTS:
            problems.append(f"No more than {MAX_INPUTS} inputs are allowed.")
        bad = sorted(k for k, v in inputs.items() if not isinstance(v, str | int | float | bool))
        if bad:
            problems.append(f"inputs {bad} must be strings, numbers or booleans.")
    return problems


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"message": message, "documentation_url": _DOCS, "status": str(status)}, status_code=status
    )
