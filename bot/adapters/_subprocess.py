"""Plumbing shared by the deploy adapters: running a tool, config placeholders, HTTP errors.

``run_command`` runs an argv list (never a shell string) with a timeout, killing the whole process
group when the timeout expires; ``summarise`` turns its output into one or two Slack-safe lines.
``fill_placeholders`` fills ``{service}``, ``{env}``, ``{version}``, ``{revision}`` in config
strings without ``str.format`` (no attribute access, no format specs). ``JsonHttp`` is the small
JSON-over-HTTP client of the Argo CD, Argo Rollouts and GitHub adapters, mapping failures to
``DeployError`` as ``bot/errors.py`` describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from bot.adapters._http import retry_after_seconds
from bot.config import ServiceConfig
from bot.errors import DeployError, retryable_http_status

MAX_OUTPUT_BYTES = 1_000_000  # per stream; structured (JSON) output beyond this is an error
OUTPUT_CHARS = 4_000  # DeployResult.output is clipped to this
SUMMARY_CHARS = 300

# --- Running commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandOutput:
    returncode: int
    stdout: str
    stderr: str
    duration: float  # seconds
    truncated: bool = False  # some output beyond ``max_output`` bytes was dropped

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def combined(self, limit: int = OUTPUT_CHARS) -> str:
        """stdout then stderr, clipped to the last ``limit`` characters (for ``DeployResult.output``)."""
        text = "\n".join(part.rstrip() for part in (self.stdout, self.stderr) if part.strip())
        return clip_tail(text, limit)


async def run_command(
    argv: list[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    max_output: int = MAX_OUTPUT_BYTES,
) -> CommandOutput:
    """Run ``argv`` (no shell) and capture its output.

    ``env`` adds variables to the inherited environment. Raises ``DeployError`` (not retryable)
    when the program is missing or not executable, or when it runs longer than ``timeout``
    seconds (the process group is killed first). A non-zero exit status is *not* an error here.
    """
    if not argv:
        raise DeployError("empty command", retryable=False)
    name = argv[0]
    full_env = {**os.environ, **env} if env is not None else None
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
    except FileNotFoundError as exc:
        raise DeployError(f"{name} not found (is it installed and on PATH?)", retryable=False) from exc
    except PermissionError as exc:
        raise DeployError(f"{name} is not executable", retryable=False) from exc
    except OSError as exc:
        raise DeployError(f"{name} could not be started: {exc.strerror or exc}", retryable=False) from exc

    assert proc.stdout is not None and proc.stderr is not None
    readers = (_read_capped(proc.stdout, max_output), _read_capped(proc.stderr, max_output))
    try:
        async with asyncio.timeout(timeout):
            (out, out_cut), (err, err_cut), returncode = await asyncio.gather(*readers, proc.wait())
    except TimeoutError as exc:
        raise DeployError(f"{name} timed out after {timeout:g} s (killed)", retryable=False) from exc
    finally:
        if proc.returncode is None:  # timed out or cancelled: do not leave it running
            _kill_group(proc)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
    return CommandOutput(
        returncode=returncode,
        stdout=_decode(out),
        stderr=_decode(err),
        duration=time.monotonic() - started,
        truncated=out_cut or err_cut,
    )


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Read to EOF keeping at most ``limit`` bytes (head); the rest is drained and dropped."""
    kept = bytearray()
    dropped = False
    while chunk := await stream.read(65536):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            dropped = True
    return bytes(kept), dropped


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _decode(data: bytes) -> str:
    return _ANSI.sub("", data.decode("utf-8", errors="replace"))


# --- Summaries --------------------------------------------------------------------------------------

_ERROR_LINE = re.compile(r"^(error|fatal|failed|panic)\b", re.IGNORECASE)


def summarise(output: CommandOutput | str, *, limit: int = SUMMARY_CHARS) -> str:
    """The last meaningful lines of ``output``, at most ``limit`` characters.

    For a failed command stderr is preferred. The last ``Error: ...``-like line wins when there is
    one (that is where helm, kubectl and most CLIs put the cause); otherwise the last two lines.
    """
    if isinstance(output, CommandOutput):
        first, second = (output.stdout, output.stderr) if output.ok else (output.stderr, output.stdout)
        text = first if first.strip() else second
    else:
        text = output
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    picked = errors[-1:] if errors else lines[-2:]
    return clip(" / ".join(picked), limit)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (keeping the start), marked with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def clip_tail(text: str, limit: int) -> str:
    """``text`` cut to its last ``limit`` characters, marked with an ellipsis."""
    return text if len(text) <= limit else "…" + text[len(text) - limit + 1 :]


# --- Config placeholders ----------------------------------------------------------------------------

# --- Small parsing helpers --------------------------------------------------------------------------

_C = TypeVar("_C")


def deploy_config(service: ServiceConfig, kind: type[_C]) -> _C:
    """``service.deploy`` if it is a ``kind``; a ``DeployError`` naming the mismatch otherwise."""
    config = service.deploy
    if not isinstance(config, kind):
        tool = getattr(config, "tool", None)
        raise DeployError(
            f"service {service.name} has no {kind.__name__} deploy config (it has {tool or 'none'})",
            retryable=False,
        )
    return config


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 / RFC 3339 timestamp (any fraction length, ``Z`` or offset); naive means UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    # Go prints nanoseconds; Python 3.11 accepts at most microseconds in some forms: cut to 6 digits.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- JSON over HTTP ---------------------------------------------------------------------------------


class JsonHttp:
    """A JSON API at ``base_url`` with fixed headers; owns its ``httpx.AsyncClient`` unless given one.

    Failures become ``DeployError``: connection failures and 408/425/429/5xx are retryable (with
    ``Retry-After`` when sent); other 4xx are not and carry the API's own ``message``. A read
    timeout on a non-idempotent request is not retryable: whether it happened is unknown.
    """

    def __init__(
        self,
        base_url: str,
        *,
        vendor: str,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._vendor = vendor
        self._headers = dict(headers or {})
        self._client = client
        self._owns_client = client is None
        self._timeout = timeout

    def __repr__(self) -> str:  # never shows the headers (tokens)
        return f"JsonHttp({self.base_url!r})"

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        what: str,
    ) -> httpx.Response:
        """Send a request; return the 2xx response or raise ``DeployError`` naming ``what``."""
        if self._client is None:
            self._client = httpx.AsyncClient()
        idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        try:
            response = await self._client.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                headers=self._headers,
                timeout=self._timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise DeployError(
                f"{self._vendor} unreachable ({what}): {type(exc).__name__}", retryable=True
            ) from exc
        except httpx.TimeoutException as exc:
            outcome = "" if idempotent else "; the outcome is unknown"
            raise DeployError(
                f"{self._vendor} timed out after {self._timeout:g} s ({what}){outcome}", retryable=idempotent
            ) from exc
        except httpx.HTTPError as exc:
            raise DeployError(
                f"{self._vendor} request failed ({what}): {type(exc).__name__}", retryable=idempotent
            ) from exc
        if response.is_success:
            return response
        raise _status_error(response, vendor=self._vendor, what=what)

    async def json(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """``request`` and decode the JSON body (``None`` for an empty body)."""
        response = await self.request(method, path, what=what, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise DeployError(f"{self._vendor} answered {what} without JSON", retryable=False) from exc


def _status_error(response: httpx.Response, *, vendor: str, what: str) -> DeployError:
    status = response.status_code
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("error") or "")
    except ValueError:
        message = response.text.strip()
    retryable = retryable_http_status(status)
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    if status == 403 and response.headers.get("x-ratelimit-remaining") == "0":  # GitHub's rate limit
        retryable = True
        reset = retry_after_seconds(response.headers.get("x-ratelimit-reset"), epoch=True)
        retry_after = retry_after if retry_after is not None else reset
    detail = f": {clip(' '.join(message.split()), 200)}" if message else ""
    return DeployError(
        f"{vendor} answered HTTP {status} ({what}){detail}",
        retryable=retryable,
        retry_after=retry_after,
        status=status,
    )
