"""Small HTTP helpers shared by the adapters."""

from __future__ import annotations

import email.utils
import time


def retry_after_seconds(value: str | None, *, epoch: bool = False) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or from an
    epoch timestamp such as GitHub's ``X-RateLimit-Reset`` (``epoch=True``); None when absent or invalid."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        if epoch:
            return None
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return max(0.0, seconds - time.time() if epoch else seconds)
