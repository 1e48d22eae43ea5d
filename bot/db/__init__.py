"""Storage: engine and sessions (``engine``), tables (``models``), migrations (``migrate``)."""

from bot.db.engine import Database

__all__ = ["Database"]
