"""Running one ``/prodstatus`` source: under its own timeout, with its failure turned into data.

``run_source`` never raises for a failing source: an exception or a timeout comes back as a
``SourceRun`` with ``error`` set (``"timed out after 1.0 s"``, or the exception's class and first
line with credentials masked by ``describe_error``), and ``source_status`` turns that into a
``SourceStatus`` with ``ok=False``: a source that fails or times out is shown as UNKNOWN, never
healthy. Only cancellation passes through. The traceback goes to the log, never to the report.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.status.models import SourceStatus

# The logger keeps the name it had when this code lived in report.py, so log filters on it still match.
log = logging.getLogger("bot.status.report")

T = TypeVar("T")

_USERINFO = re.compile(r"(\w+://)[^/\s@]+@")
_SECRET_PARAM = re.compile(r"(?i)\b(token|api[_-]?key|key|secret|password|passwd|auth\w*)=[^&\s]+")


def describe_error(exc: BaseException) -> str:
    """``ProbeError: Prometheus error (execution): ...``: class name and the first line of the
    message, credentials in URLs and secret-looking parameters masked, at most 200 characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    text = _SECRET_PARAM.sub(r"\1=***", _USERINFO.sub(r"\1***@", text))[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class SourceRun(Generic[T]):
    """What one source gave: its value, or why it has none (``error``), and how long it took."""

    value: T | None
    error: str | None
    duration_ms: float


async def run_source(
    call: Callable[[], Awaitable[T]], timeout: float, *, said: float | None = None
) -> SourceRun[T]:
    """Run one source under its own timeout; failures become data (never raised, never a traceback)."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    def elapsed() -> float:
        return round((loop.time() - started) * 1000, 1)

    try:
        async with asyncio.timeout(timeout):
            value = await call()
    except TimeoutError:
        return SourceRun(None, f"timed out after {said if said is not None else timeout:.1f} s", elapsed())
    except Exception as exc:
        log.warning("prodstatus source failed", exc_info=True)
        return SourceRun(None, describe_error(exc), elapsed())
    return SourceRun(value, None, elapsed())


def source_status(name: str, run: SourceRun[T]) -> SourceStatus:
    """The run as the report shows it: ``ok`` exactly when the source did not fail."""
    return SourceStatus(name=name, ok=run.error is None, reason=run.error or "", duration_ms=run.duration_ms)
