"""Captures arriving together share one transaction (``Deps.timeline_captures``, over
``bot.incidents.timeline.record_captures``): one entry and one thread post per message, whatever
else is in the batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from bot.db.batch import GroupCommit
from bot.db.engine import Database
from bot.db.models import Incident, OutboxItem, TimelineEntry
from bot.incidents.timeline import record_captures

AT = datetime(2026, 12, 4, 14, 2, tzinfo=UTC)


async def make_incident(db: Database) -> Incident:
    async with db.session() as session:
        incident = Incident(
            title="Checkout 502s",
            severity="SEV2",
            commander="U_ALICE",
            declared_by="U_ALICE",
            declare_key="k1",
            channel_id="C_INC",
            timeline_ts="1.000001",
            declared_at=AT,
        )
        session.add(incident)
    return incident


def values(incident: Incident, n: int, *, actor: str = "U_BOB") -> dict[str, Any]:
    return {
        "incident_id": incident.id,
        "kind": "message",
        "text": f"update {n}",
        "author": "U_ALICE",
        "actor": actor,
        "occurred_at": AT,
        "recorded_at": AT,
        "source_channel": "C_INC",
        "source_ts": f"2.{n:06d}",
        "permalink": None,
        "deleted": False,
    }


async def rows(db: Database) -> tuple[list[TimelineEntry], list[OutboxItem]]:
    async with db.session(read_only=True) as session:
        entries = list((await session.execute(select(TimelineEntry))).scalars())
        items = list((await session.execute(select(OutboxItem))).scalars())
    return entries, items


async def test_captures_submitted_together_share_one_transaction_and_each_message_is_recorded_once(
    db: Database,
) -> None:
    incident = await make_incident(db)
    captures = GroupCommit(db, record_captures)
    batch = [(incident, values(incident, n)) for n in range(10)]
    batch.append((incident, values(incident, 3, actor="U_CAROL")))  # the same message again
    results = await asyncio.gather(*(captures.submit(capture) for capture in batch))
    assert captures.flushes == 1
    assert all(entry is not None for entry in results)
    ids = [entry.id for entry in results if entry is not None]
    assert len(set(ids[:10])) == 10 and ids[10] == ids[3]  # the repeat got the first one's entry
    entries, items = await rows(db)
    assert sorted(e.text for e in entries) == [f"update {n}" for n in range(10)]
    assert next(e for e in entries if e.source_ts == "2.000003").actor == "U_BOB"
    posts = [i for i in items if i.op == "incident.timeline_post"]
    assert sorted(i.payload["entry_id"] for i in posts) == sorted(ids[:10])
    assert {(i.ordering_key, i.payload["variant"], i.status) for i in posts} == {
        ("C_INC", "added", "pending")
    }


async def test_a_removed_entry_captured_again_in_a_batch_is_restored_with_a_recaptured_post(
    db: Database,
) -> None:
    incident = await make_incident(db)
    captures = GroupCommit(db, record_captures)
    first = await captures.submit((incident, values(incident, 1)))
    assert first is not None
    async with db.session() as session:
        entry = await session.get(TimelineEntry, first.id)
        assert entry is not None
        entry.deleted = True
    later = {**values(incident, 1, actor="U_CAROL"), "recorded_at": datetime(2026, 12, 4, 15, 0, tzinfo=UTC)}
    again, new = await asyncio.gather(
        captures.submit((incident, later)), captures.submit((incident, values(incident, 2)))
    )
    assert again is not None and new is not None
    assert again.id == first.id and not again.deleted and again.actor == "U_CAROL"
    entries, items = await rows(db)
    assert len(entries) == 2 and not any(e.deleted for e in entries)
    variants = sorted(
        (i.payload["entry_id"], i.payload["variant"]) for i in items if i.op == "incident.timeline_post"
    )
    assert variants == sorted([(first.id, "added"), (first.id, "recaptured"), (new.id, "added")])


async def test_an_incident_without_a_channel_records_the_entry_and_no_post(db: Database) -> None:
    """Before its channel exists, the timeline thread's start step posts the entries (not the capture)."""
    incident = await make_incident(db)
    async with db.session() as session:
        stored = await session.get(Incident, incident.id)
        assert stored is not None
        stored.channel_id = None
    incident.channel_id = None
    captures = GroupCommit(db, record_captures)
    assert await captures.submit((incident, values(incident, 1))) is not None
    entries, items = await rows(db)
    assert len(entries) == 1 and not [i for i in items if i.op == "incident.timeline_post"]
