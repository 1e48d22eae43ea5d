"""The inbox on its own: backpressure on slash commands when too many are pending."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.db.engine import Database
from bot.inbox import Inbox, command_key


def _command(trigger: str) -> dict[str, Any]:
    return {"command": "/incident", "text": "note x", "trigger_id": trigger, "user_id": "U1"}


async def test_the_next_ack_waits_while_too_many_commands_are_pending(db: Database) -> None:
    inbox = Inbox(db, max_pending=2)
    assert await inbox.record_command(_command("t1"))
    assert await inbox.record_command(_command("t2"))
    third = asyncio.create_task(inbox.record_command(_command("t3")))
    await asyncio.sleep(0.2)
    assert not third.done()  # held back: two commands acked and not finished
    await inbox.mark(command_key("t1"), "done")
    assert await asyncio.wait_for(third, timeout=2)


async def test_the_wait_is_bounded(db: Database) -> None:
    inbox = Inbox(db, max_pending=1)
    inbox.room_timeout = 0.3
    assert await inbox.record_command(_command("t1"))
    # nothing finishes: the ack goes out anyway after the timeout (Slack's 3 s limit wins)
    assert await asyncio.wait_for(inbox.record_command(_command("t2")), timeout=2)


def _event(n: int, kind: str = "reaction_added") -> dict[str, Any]:
    return {"type": "event_callback", "event_id": f"Ev{n:04d}", "event": {"type": kind}}


async def _statuses(db: Database) -> dict[str, str]:
    from sqlmodel import select

    from bot.db.models import ProcessedEvent

    async with db.session(read_only=True) as session:
        return {r.event_id: r.status for r in (await session.execute(select(ProcessedEvent))).scalars()}


async def test_events_finishing_together_are_marked_in_one_transaction(db: Database) -> None:
    import sqlalchemy as sa

    inbox = Inbox(db, max_handling=4)
    running = 0
    most = 0

    async def handler(body: dict[str, Any]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        if body["event_id"] == "Ev0007":
            raise RuntimeError("a bug in one handler")

    inbox.register("reaction_added", handler)
    for n in range(20):
        assert await inbox.record(_event(n))
    commits = 0

    def count(_: Any) -> None:
        nonlocal commits
        commits += 1

    sa.event.listen(db.engine.sync_engine, "commit", count)
    try:
        await asyncio.gather(*(inbox.process(_event(n)) for n in range(20)))
    finally:
        sa.event.remove(db.engine.sync_engine, "commit", count)
    statuses = await _statuses(db)
    assert statuses.pop("Ev0007") == "failed"
    assert set(statuses.values()) == {"done"} and len(statuses) == 19  # each marked on return
    assert most == 4  # at most max_handling handlers at once
    assert commits < 20  # marks shared transactions


async def test_a_mark_that_meets_an_unavailable_database_is_tried_again(db: Database) -> None:
    from bot.errors import Unavailable

    inbox = Inbox(db)
    inbox.register("reaction_added", lambda body: asyncio.sleep(0))
    assert await inbox.record(_event(1))
    real = db.session
    failures = [1]

    def flaky(**kwargs: Any) -> Any:
        if failures:
            failures.pop()
            raise Unavailable("the database is unreachable")
        return real(**kwargs)

    db.session = flaky  # type: ignore[method-assign]
    try:
        with pytest.raises(Unavailable):
            await inbox.process(_event(1))
        assert (await _statuses(db))["Ev0001"] == "received"  # recover would run it again
        await inbox.process(_event(1))  # the next mark is not stuck behind the failed flush
    finally:
        db.session = real  # type: ignore[method-assign]
    assert (await _statuses(db))["Ev0001"] == "done"


async def test_the_same_event_twice_in_one_batch_is_recorded_once(db: Database) -> None:
    inbox = Inbox(db)
    first = [_event(n) for n in range(5)]
    results = await asyncio.gather(
        *(inbox.record(body) for body in [*first, _event(2), _event(9), _event(9)])
    )
    assert results == [True] * 5 + [False, True, False]
    assert sorted(await _statuses(db)) == [f"Ev{n:04d}" for n in (0, 1, 2, 3, 4, 9)]
    assert await inbox.record(_event(9)) is False  # and later, a retry


async def test_recover_leaves_alone_an_event_still_waiting_for_a_handler_slot(db: Database) -> None:
    """Under a burst an event may wait for a slot longer than ``stale_after``: it is still here, so
    ``recover`` must not run it a second time."""
    inbox = Inbox(db, stale_after=0.0, max_handling=1)
    release = asyncio.Event()
    runs: list[str] = []

    async def handler(body: dict[str, Any]) -> None:
        runs.append(body["event_id"])
        await release.wait()

    inbox.register("reaction_added", handler)
    for n in (1, 2):
        assert await inbox.record(_event(n))
    busy = asyncio.create_task(inbox.process(_event(1)))
    waiting = asyncio.create_task(inbox.process(_event(2)))
    await asyncio.sleep(0.05)
    assert runs == ["Ev0001"]  # Ev0002 waits for the only slot
    # both are still here: neither runs again (a second run would wait for the slot: bounded here)
    assert await asyncio.wait_for(inbox.recover(), timeout=2) == 0
    release.set()
    await asyncio.gather(busy, waiting)
    assert runs == ["Ev0001", "Ev0002"]
    assert set((await _statuses(db)).values()) == {"done"}
    assert await inbox.recover() == 0


async def test_read_only_commands_may_run_again(db: Database) -> None:
    """A read-only command whose reply missed the ack is recorded and, after a crash, replayed."""
    inbox = Inbox(db)
    inbox.read_only(lambda body: body.get("text") == "list")
    assert inbox.is_read_only({"command": "/incident", "text": "list"})
    assert inbox.is_resumable({"command": "/incident", "text": "list"})
    assert not inbox.is_resumable(_command("t1"))


@pytest.mark.parametrize(
    ("text", "read_only", "resumable"),
    [
        ("", True, True),
        ("help", True, True),
        ("LIST", True, True),
        ("show 12", True, True),
        ("timeline 2", True, True),
        ("declare sev2 Checkout down", False, True),
        ("declare", False, False),
        ("note the fix is out", False, False),
        ("resolve", False, False),
    ],
)
def test_which_incident_commands_only_read(text: str, read_only: bool, resumable: bool) -> None:
    """Reads may run again after a crash (so they are resumable too); a declaration with a title is
    deduplicated, so it may too; anything else that writes may not."""
    from bot.actions import REGISTRY

    body = {"command": "/incident", "text": text}
    assert (REGISTRY.is_read_only(body), REGISTRY.is_resumable(body)) == (read_only, resumable)
    other = {"command": "/gonogo", "text": text}
    assert REGISTRY.is_read_only(other) == (text in ("", "help"))  # only /gonogo's help reads
