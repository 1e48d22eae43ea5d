"""The deploy adapters' plumbing: running commands, summaries, placeholders, HTTP error mapping."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from bot.adapters._subprocess import _status_error, clip, parse_time, run_command, summarise
from bot.errors import DeployError
from bot.values import fill_placeholders

PY = sys.executable
VALUES: dict[str, str | None] = {"service": "checkout", "env": "prod", "version": "1.4.0", "revision": "7"}


async def test_run_command_captures_output_and_status() -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    output = await run_command([PY, "-c", code], timeout=10)
    assert (output.returncode, output.stdout, output.stderr) == (3, "out\n", "err\n")
    assert not output.ok and not output.truncated and output.duration > 0


async def test_env_is_added_to_the_inherited_environment() -> None:
    code = "import os; print(os.environ['CMDCENTER_X'], bool(os.environ.get('PATH')))"
    output = await run_command([PY, "-c", code], timeout=10, env={"CMDCENTER_X": "42"})
    assert output.stdout.split() == ["42", "True"]


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    started = time.monotonic()
    with pytest.raises(DeployError, match=r"timed out after 0\.5 s") as caught:
        await run_command([PY, "-c", code], timeout=0.5)
    assert time.monotonic() - started < 5
    assert caught.value.retryable is False
    child = int(pid_file.read_text())
    for _ in range(100):  # SIGKILL is immediate; its parent reaping it may take a moment
        if not _alive(child):
            break
        await asyncio.sleep(0.05)
    assert not _alive(child), "the grandchild survived the timeout"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie is dead, only not reaped yet


async def test_missing_binary_is_named() -> None:
    with pytest.raises(DeployError, match="no-such-helm-binary not found") as caught:
        await run_command(["no-such-helm-binary", "version"], timeout=5)
    assert caught.value.retryable is False
    assert isinstance(caught.value.__cause__, FileNotFoundError)


async def test_non_executable_file(tmp_path: Path) -> None:
    script = tmp_path / "helm"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(DeployError, match="not executable"):
        await run_command([str(script)], timeout=5)


async def test_output_is_capped() -> None:
    output = await run_command([PY, "-c", "print('x' * 100000)"], timeout=10, max_output=1000)
    assert output.truncated and len(output.stdout) == 1000
    assert len(output.combined(limit=50)) == 50


async def test_ansi_colours_are_stripped() -> None:
    output = await run_command([PY, "-c", r"print('\x1b[31mError:\x1b[0m red')"], timeout=10)
    assert output.stdout == "Error: red\n"


def test_summarise_prefers_the_last_error_line() -> None:
    text = "Release checkout\nError: first problem\nnoise\nError: UPGRADE FAILED: timed out\n\n"
    assert summarise(text) == "Error: UPGRADE FAILED: timed out"


def test_summarise_takes_the_last_two_lines_and_caps_the_length() -> None:
    assert summarise("one\n\n  two  \nthree\n") == "two / three"
    assert summarise("") == ""
    long = summarise("x" * 1000)
    assert len(long) == 300 and long.endswith("…")


def test_clip() -> None:
    assert clip("abcdef", 10) == "abcdef"
    assert clip("abcdef", 4) == "abc…"


def test_placeholders_are_filled() -> None:
    assert fill_placeholders("{service}-{env}", VALUES, where="x") == "checkout-prod"
    assert fill_placeholders("v{version} r{revision} {{literal}}", VALUES, where="x") == "v1.4.0 r7 {literal}"
    assert fill_placeholders("plain", {}, where="x") == "plain"


@pytest.mark.parametrize(
    "template",
    [
        "{region}",
        "{}",
        "{0}",
        "{service.__class__}",
        "{env[0]}",
        "{env:>20}",
        "{env!r}",
        "{service.__init__.__globals__}",
    ],
)
def test_unknown_or_fancy_placeholders_are_rejected(template: str) -> None:
    with pytest.raises(
        DeployError, match=r"services\.checkout\.deploy\.namespace: unknown placeholder"
    ) as caught:
        fill_placeholders(template, VALUES, where="services.checkout.deploy.namespace")
    assert caught.value.retryable is False


def test_unbalanced_braces_are_rejected() -> None:
    with pytest.raises(DeployError, match="invalid template"):
        fill_placeholders("{env", VALUES, where="x")


def test_a_placeholder_without_a_value_here_is_rejected() -> None:
    with pytest.raises(DeployError, match=r"\{version\} is not available here"):
        fill_placeholders("{version}", {**VALUES, "version": None}, where="x")


def test_parse_time() -> None:
    assert parse_time("2024-05-01T09:00:00Z") == datetime(2024, 5, 1, 9, tzinfo=UTC)
    nanos = parse_time("2024-05-01T11:00:00.123456789+02:00")
    assert nanos == datetime(2024, 5, 1, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time("2024-05-01T09:00:00") == datetime(2024, 5, 1, 9, tzinfo=UTC)
    assert parse_time("yesterday") is None
    assert parse_time(None) is None


def _response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json=body, headers=headers, request=httpx.Request("GET", "http://127.0.0.1/")
    )


def test_http_errors_are_mapped() -> None:
    error = _status_error(_response(400, {"message": "bad id"}), vendor="Argo CD", what="rollback x")
    assert (str(error), error.retryable, error.status) == (
        "Argo CD answered HTTP 400 (rollback x): bad id",
        False,
        400,
    )
    busy = _status_error(_response(429, {}, {"Retry-After": "7"}), vendor="GitHub", what="dispatch")
    assert busy.retryable and busy.retry_after == 7.0
    assert _status_error(_response(502), vendor="GitHub", what="x").retryable


def test_github_rate_limit_403_is_retryable() -> None:
    reset = str(int(time.time()) + 60)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    error = _status_error(
        _response(403, {"message": "API rate limit exceeded"}, headers), vendor="GitHub", what="x"
    )
    assert error.retryable and error.retry_after is not None and 0 < error.retry_after <= 61
    forbidden = _status_error(
        _response(403, {"message": "Resource not accessible"}), vendor="GitHub", what="x"
    )
    assert not forbidden.retryable
