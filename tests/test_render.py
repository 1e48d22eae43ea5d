"""Renderer: messages rendered once where their data is shared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.db.models import IncidentSummary
from bot.render import Renderer

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _open(*titles: str) -> tuple[IncidentSummary, ...]:
    return tuple(
        IncidentSummary(n, title, "sev2", "investigating", None, "U_ALICE", None, NOW - timedelta(minutes=n))
        for n, title in enumerate(titles, start=1)
    )


def test_a_message_for_one_shared_read_is_rendered_once_and_each_caller_gets_a_copy() -> None:
    renderer = Renderer()
    incidents = _open("Checkout 502s", "Search slow")
    first = renderer.message_for(incidents, "incident/list", incidents=incidents, now=NOW)
    assert first == renderer.message("incident/list", incidents=incidents, now=NOW)
    first.blocks[1]["text"]["text"] = "changed by one caller"
    # Another caller of the same read (the same object): the same message, not the changed one, even
    # though it asks a moment later.
    second = renderer.message_for(
        incidents, "incident/list", incidents=incidents, now=NOW + timedelta(seconds=1)
    )
    assert "Checkout 502s" in second.blocks[1]["text"]["text"]
    assert second == renderer.message("incident/list", incidents=incidents, now=NOW)
    # The next read (another object, even with equal data) renders anew, with its own time.
    later = _open("Checkout 502s", "Search slow")
    third = renderer.message_for(later, "incident/list", incidents=later, now=NOW + timedelta(hours=2))
    assert third == renderer.message("incident/list", incidents=later, now=NOW + timedelta(hours=2))
    assert third != second
