"""Incident channel names that Slack always accepts: lowercase ``a-z0-9-_``, at most 80 characters."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

MAX_CHANNEL_NAME = 80
_INVALID = re.compile(r"[^a-z0-9_-]+")


def slugify(title: str) -> str:
    """ASCII-fold, lowercase, words joined by ``-``; non-Latin scripts fold away to nothing."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    return _INVALID.sub("-", folded).strip("-_")


def _cut_on_word(slug: str, limit: int) -> str:
    if len(slug) <= limit:
        return slug
    cut = slug[:limit]
    if slug[limit] not in "-_" and "-" in cut:
        cut = cut[: cut.rfind("-")]
    return cut.strip("-_")


def channel_name(pattern: str, *, number: int, title: str, when: datetime, suffix: str = "") -> str:
    """Fill the pattern (``{date}``, ``{n}``, ``{slug}``) and make the result valid for Slack.

    The slug is cut on a word boundary so the whole name fits in 80 characters (with ``suffix``,
    used to retry after ``name_taken``).
    """
    filled = pattern.replace("{date}", when.strftime("%Y%m%d")).replace("{n}", str(number))
    parts = [_INVALID.sub("-", part.lower()) for part in filled.split("{slug}")]
    room = MAX_CHANNEL_NAME - sum(len(p) for p in parts) - len(suffix)
    slug = _cut_on_word(slugify(title), max(room, 0)) if len(parts) > 1 else ""
    name = slug.join(parts)
    name = re.sub(r"-{2,}", "-", name).strip("-_")
    name = (name[: MAX_CHANNEL_NAME - len(suffix)].strip("-_") + suffix) or f"inc-{number}"
    return name
