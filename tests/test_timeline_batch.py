"""A full batch of timeline entries (``TIMELINE_BATCH``, the longest texts, every variant) fits one
Slack message: 50 blocks at most, every block valid, fallback text within 40,000 characters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import chat_ops
from bot.db.models import TimelineEntry
from bot.incidents.timeline_posts import TIMELINE_BATCH
from bot.render import Renderer
from bot.sandbox.slack._blocks import validate_blocks


@pytest.mark.parametrize("variant", ["added", "recaptured", "removed"])
def test_a_full_batch_fits_one_message(variant: str) -> None:
    renderer = Renderer()
    entry = TimelineEntry(
        id=1,
        incident_id=1,
        kind="message",
        text="x" * 5000 + " <!channel> @here",
        author="U_ALICE",
        actor="U_BOB",
        occurred_at=datetime(2026, 12, 3, 14, 2, tzinfo=UTC),
        recorded_at=datetime(2026, 12, 3, 14, 3, tzinfo=UTC),
        source_channel="C1",
        source_ts="1.2",
        permalink="https://example.slack.com/archives/C1/p12",
        deleted=variant == "removed",
    )
    message = chat_ops.combined(
        renderer.message("incident/timeline_entry", entry=entry, variant=variant)
        for _ in range(TIMELINE_BATCH)
    )
    assert validate_blocks(message.blocks, surface="message") == []
    assert len(message.text) <= 40_000
    assert "<!channel>" not in message.model_dump_json()
