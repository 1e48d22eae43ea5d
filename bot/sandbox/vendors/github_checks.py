"""A fake GitHub Checks REST API (check runs of a commit) for tests and the demo.

    fake = GitHubChecksFake(token="ghp_test")
    fake.set_runs("acme/checkout", "v1.4.3", [("build", "completed", "success"), ("e2e", "queued", None)])
    with serve_in_thread(fake.app) as server:
        ...  # GET {server.url}/repos/acme/checkout/commits/v1.4.3/check-runs

``GET /repos/{owner}/{repo}/commits/{ref}/check-runs`` answers ``{"total_count", "check_runs"}``,
paginated with ``per_page`` (at most 100, default 30) and ``page`` and a ``Link: <…>; rel="next"``
header, as GitHub does; ``check_name`` and ``status`` filter. An unknown repository answers 404 "Not
Found", an unknown ref 422 "No commit found for SHA: <ref>". Checked on every request:
``Authorization: Bearer <token>`` (401 "Bad credentials"), ``Accept: application/vnd.github+json``
and ``X-GitHub-Api-Version: 2022-11-28`` (400 otherwise; also kept in ``problems``). ``hang(repo)``
never answers that repository (until the client disconnects or :meth:`release`).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_VERSION = "2022-11-28"
_DOCS = "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference"
_POLL_SECONDS = 0.02

RunSpec = tuple[str, str, str | None]  # (name, status, conclusion)


@dataclass
class GitHubChecksFake:
    token: str = "github-test-token"  # noqa: S105 - the fake's own token, not a secret
    problems: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._repos: dict[str, dict[str, list[RunSpec]]] = {}
        self._hung: set[str] = set()
        self._released = threading.Event()
        self.app = Starlette(
            routes=[
                Route(
                    "/repos/{owner}/{repo}/commits/{ref:path}/check-runs",
                    self._check_runs,
                    methods=["GET"],
                )
            ]
        )

    def set_runs(self, repository: str, ref: str, runs: list[RunSpec]) -> None:
        """The check runs of ``ref`` (a tag, branch or SHA) in ``repository`` (``owner/name``)."""
        with self._lock:
            self._repos.setdefault(repository.lower(), {})[ref] = list(runs)

    def hang(self, repository: str) -> None:
        with self._lock:
            self._hung.add(repository.lower())
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def _check_runs(self, request: Request) -> Response:
        repository = f"{request.path_params['owner']}/{request.path_params['repo']}".lower()
        ref = request.path_params["ref"]
        with self._lock:
            self.requests.append({"repository": repository, "ref": ref, "params": dict(request.query_params)})
            hung = repository in self._hung
        refused = self._check_headers(request)
        if refused is not None:
            return refused
        if hung:
            await self._wait_hung(request)
            return _error(503, "Service Unavailable")
        with self._lock:
            refs = self._repos.get(repository)
            runs = None if refs is None else refs.get(ref)
        if refs is None:
            return _error(404, "Not Found")
        if runs is None:
            return _error(422, f"No commit found for SHA: {ref}")
        return self._page(request, repository, ref, runs)

    async def _wait_hung(self, request: Request) -> None:
        while not self._released.is_set():  # a threading.Event: set from the test's thread
            if await request.is_disconnected():
                return
            await asyncio.sleep(_POLL_SECONDS)

    def _check_headers(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Bad credentials")
        problems = []
        if request.headers.get("accept") != "application/vnd.github+json":
            problems.append(
                f"Accept must be application/vnd.github+json, got {request.headers.get('accept')!r}"
            )
        if request.headers.get("x-github-api-version") != API_VERSION:
            problems.append(f"X-GitHub-Api-Version must be {API_VERSION}")
        if problems:
            with self._lock:
                self.problems.extend(problems)
            return _error(400, "; ".join(problems))
        return None

    def _page(self, request: Request, repository: str, ref: str, runs: list[RunSpec]) -> Response:
        params = request.query_params
        try:
            per_page = min(100, max(1, int(params.get("per_page", "30"))))
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            return _error(422, "per_page and page must be integers")
        wanted_name, wanted_status = params.get("check_name"), params.get("status")
        selected = [
            (index, run)
            for index, run in enumerate(runs)
            if (wanted_name is None or run[0] == wanted_name)
            and (wanted_status is None or run[1] == wanted_status)
        ]
        chunk = selected[(page - 1) * per_page : page * per_page]
        body = {"total_count": len(selected), "check_runs": [_run(repository, ref, i, r) for i, r in chunk]}
        headers = {}
        if page * per_page < len(selected):
            url = request.url.include_query_params(page=str(page + 1), per_page=str(per_page))
            headers["Link"] = f'<{url}>; rel="next"'
        return JSONResponse(body, headers=headers)


def _run(repository: str, ref: str, index: int, run: RunSpec) -> dict[str, Any]:
    name, status, conclusion = run
    run_id = 4_000_000 + index
    return {
        "id": run_id,
        "name": name,
        "head_sha": ref if len(ref) == 40 else "0" * 40,
        "status": status,
        "conclusion": conclusion if status == "completed" else None,
        "html_url": f"https://github.com/{repository}/runs/{run_id}",
        "started_at": "2026-01-05T08:00:00Z",
        "completed_at": "2026-01-05T08:05:00Z" if status == "completed" else None,
        "app": {"slug": "github-actions"},
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "documentation_url": _DOCS}, status_code=status)
