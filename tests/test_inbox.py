"""The inbox on its own: backpressure on slash commands when too many are pending."""

from __future__ import annotations

import asyncio
from typing import Any

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
