"""``GateSources`` over HTTP, GitHub's REST API, the file system and subprocesses: what /gonogo's
release gates read from the outside world.

Each call opens its own short-lived HTTP client (gates run rarely, and each within its own
timeout) and raises ``ProbeError`` ``from`` the transport error, with a message fit for the
decision card. Commands run without a shell, in their own process group, killed at the timeout.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx

from bot.adapters._subprocess import run_command
from bot.errors import ProbeError, retryable_http_status
from bot.ports import CheckRun, CommandRun, HttpAnswer

GITHUB_API_VERSION = "2022-11-28"
MAX_CHECK_PAGES = 10
MAX_MANIFEST_BYTES = 2_000_000
MAX_MANIFEST_FILES = 200
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


async def get(http: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None) -> HttpAnswer:
    """GET ``url``; any status is an answer, only transport failures raise."""
    try:
        response = await http.get(url, headers=headers)
    except httpx.TimeoutException as exc:
        raise ProbeError(f"{_host(url)} timed out") from exc
    except httpx.TransportError as exc:
        raise ProbeError(f"{_host(url)} unreachable ({type(exc).__name__})") from exc
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    return HttpAnswer(status=response.status_code, body=body, text=response.text[:MAX_MANIFEST_BYTES])


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or url[:80]
    except httpx.InvalidURL:
        return url[:80]


# --- GitHub check runs ----------------------------------------------------------------------------------


async def check_runs(
    http: httpx.AsyncClient, *, api_url: str, token: str, repository: str, ref: str
) -> list[CheckRun]:
    """Every (latest) check run on ``ref``: ``GET /repos/{repo}/commits/{ref}/check-runs``, paginated."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
    }
    url: str | None = f"{api_url.rstrip('/')}/repos/{repository}/commits/{ref}/check-runs"
    params: dict[str, str] | None = {"per_page": "100", "filter": "latest"}
    runs: list[CheckRun] = []
    for _ in range(MAX_CHECK_PAGES):
        if url is None:
            break
        try:
            response = await http.get(url, headers=headers, params=params)
        except httpx.TimeoutException as exc:
            raise ProbeError("GitHub timed out") from exc
        except httpx.TransportError as exc:
            raise ProbeError(f"GitHub unreachable ({type(exc).__name__})") from exc
        if not response.is_success:
            raise _github_error(response, repository=repository, ref=ref)
        runs += _parse_runs(response)
        found = _NEXT_LINK.search(response.headers.get("link", ""))
        url, params = (found.group(1), None) if found else (None, None)
    return runs


def _parse_runs(response: httpx.Response) -> list[CheckRun]:
    try:
        body: Any = response.json()
        return [
            CheckRun(
                name=str(run["name"]),
                status=str(run["status"]),
                conclusion=run.get("conclusion"),
                url=run.get("html_url"),
            )
            for run in body["check_runs"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProbeError("GitHub answered the check runs with unexpected JSON", retryable=False) from exc


def _github_error(response: httpx.Response, *, repository: str, ref: str) -> ProbeError:
    status = response.status_code
    try:
        message = str(response.json().get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    if status == 404:
        text = f"GitHub: repository {repository} not found (or the token cannot read it)"
    elif status == 422:
        text = f"GitHub: no commit {ref} in {repository}"
    elif status == 401:
        text = "GitHub rejected the token (401)"
    else:
        text = f"GitHub answered HTTP {status}" + (f": {message[:200]}" if message else "")
    return ProbeError(text, status=status, retryable=retryable_http_status(status))


# --- deployment manifests / values -------------------------------------------------------------------------


async def read_manifests(
    http: httpx.AsyncClient, *, path: str | None, url: str | None
) -> list[tuple[str, str]]:
    """(source, text) of the service's deployment values or manifests: one file, a folder of YAML
    files (recursively), or a URL."""
    if url is not None:
        answer = await get(http, url)
        if answer.status != 200:
            raise ProbeError(f"{_host(url)} answered HTTP {answer.status} for the manifests")
        return [(url, answer.text)]
    assert path is not None
    return await asyncio.to_thread(_read_files, path)


def _read_files(path: str) -> list[tuple[str, str]]:
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _MANIFEST_SUFFIXES)
        if not files:
            raise ProbeError(f"no YAML or JSON files under {path}", retryable=False)
        files = files[:MAX_MANIFEST_FILES]
    elif root.is_file():
        files = [root]
    else:
        raise ProbeError(f"{path} does not exist", retryable=False)
    found = []
    for file in files:
        try:
            data = file.read_bytes()[:MAX_MANIFEST_BYTES]
        except OSError as exc:
            raise ProbeError(f"cannot read {file}: {exc.strerror}", retryable=False) from exc
        found.append((str(file), data.decode("utf-8", errors="replace")))
    return found


class HttpGateSources:
    """The ``GateSources`` port; ``github_token`` None: the ``github_checks`` gate says it is not set."""

    def __init__(
        self, *, github_api_url: str = "https://api.github.com", github_token: str | None = None
    ) -> None:
        self.github_api_url = github_api_url
        self.github_token = github_token

    def _client(self, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(follow_redirects=False, timeout=timeout + 1)

    async def get(self, *, url: str, timeout: float) -> HttpAnswer:
        async with self._client(timeout) as http:
            return await get(http, url)

    async def check_runs(self, *, repository: str, ref: str, timeout: float) -> list[CheckRun]:
        if self.github_token is None:
            raise ProbeError("GITHUB_TOKEN is not set", retryable=False)
        async with self._client(timeout) as http:
            return await check_runs(
                http, api_url=self.github_api_url, token=self.github_token, repository=repository, ref=ref
            )

    async def manifests(self, *, path: str | None, url: str | None, timeout: float) -> list[tuple[str, str]]:
        async with self._client(timeout) as http:
            return await read_manifests(http, path=path, url=url)

    async def run(self, *, argv: list[str], env: dict[str, str], timeout: float) -> CommandRun:
        output = await run_command(argv, timeout=timeout, env=env)
        return CommandRun(returncode=output.returncode, stdout=output.stdout, stderr=output.stderr)
