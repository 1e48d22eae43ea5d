"""Issue 4: timeline by reaction, shortcut and note; edits and deletions; the post-mortem draft."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.db.models import TimelineEntry
from tests.e2e.test_incident import channel_of, declare, thread_texts
from tests.harness import BotHarness, wait_until


def setup_incident(bot: BotHarness) -> tuple[int, str]:
    incident_id = declare(bot, "sev2 Checkout 502s")
    return incident_id, channel_of(bot, incident_id)


def react(bot: BotHarness, channel: str, ts: str, emoji: str = "memo", user: str = "U_BOB") -> dict[str, Any]:
    envelope: dict[str, Any] = bot.ws.add_reaction(user, channel, ts, emoji)
    assert bot.driver.event(envelope).status_code == 200
    return envelope


def captured(bot: BotHarness, incident_id: int) -> list[TimelineEntry]:
    return [e for e in bot.timeline(incident_id) if e.kind == "message"]


def test_reaction_on_a_message_and_on_a_thread_reply(bot: BotHarness) -> None:
    incident_id, channel = setup_incident(bot)
    message, _ = bot.ws.post_user_message("U_ALICE", channel, "502s started at 14:02, <@U_BOB> is looking")
    reply, _ = bot.ws.post_user_message("U_BOB", channel, "error rate 12% on checkout", thread_ts=message.ts)
    react(bot, channel, message.ts)
    wait_until(lambda: len(captured(bot, incident_id)) == 1, message="first capture")
    react(bot, channel, reply.ts, "pushpin", user="U_ALICE")
    wait_until(lambda: len(captured(bot, incident_id)) == 2, message="second capture")
    bot.settle()
    first, second = captured(bot, incident_id)
    assert first.text == "502s started at 14:02, @Bob is looking" or first.text.startswith("502s started")
    assert "<@U_BOB>" not in first.text  # mentions resolved to names
    assert (first.author, first.actor) == ("U_ALICE", "U_BOB")
    assert first.occurred_at == datetime.fromtimestamp(float(message.ts), tz=UTC)  # the message's own time
    assert first.permalink and channel in first.permalink
    assert (second.text, second.author, second.actor) == ("error rate 12% on checkout", "U_BOB", "U_ALICE")
    thread = thread_texts(bot, incident_id)
    assert sum("502s started" in t for t in thread) == 1
    assert sum("error rate 12%" in t for t in thread) == 1


def test_exactly_once_for_retries_and_several_emojis(bot: BotHarness) -> None:
    incident_id, channel = setup_incident(bot)
    message, _ = bot.ws.post_user_message("U_ALICE", channel, "rolled back to v1.4.1")
    envelope = bot.ws.add_reaction("U_BOB", channel, message.ts, "memo")
    for retry in (None, 1, 2):
        assert bot.driver.event(envelope, retry_num=retry).status_code == 200
    react(bot, channel, message.ts, "pushpin", user="U_ALICE")
    react(bot, channel, message.ts, "memo", user="U_ALICE")
    bot.settle()
    wait_until(lambda: len(captured(bot, incident_id)) == 1)
    bot.settle()
    assert len(captured(bot, incident_id)) == 1
    assert sum("rolled back to v1.4.1" in t for t in thread_texts(bot, incident_id)) == 1


def test_removing_the_reaction_removes_the_entry(bot: BotHarness) -> None:
    incident_id, channel = setup_incident(bot)
    message, _ = bot.ws.post_user_message("U_ALICE", channel, "false alarm on db")
    react(bot, channel, message.ts, "memo")
    react(bot, channel, message.ts, "pushpin")
    wait_until(lambda: len(captured(bot, incident_id)) == 1)
    bot.driver.event(bot.ws.remove_reaction("U_BOB", channel, message.ts, "memo"))
    bot.settle()
    assert len(captured(bot, incident_id)) == 1  # :pushpin: still there
    bot.driver.event(bot.ws.remove_reaction("U_BOB", channel, message.ts, "pushpin"))
    wait_until(lambda: not captured(bot, incident_id), message="entry removed")
    bot.settle()
    assert any("Removed from the timeline" in t for t in thread_texts(bot, incident_id))


def test_captures_pending_together_go_out_as_one_thread_message(bot: BotHarness) -> None:
    """Slack takes about one message per second per channel: timeline posts that pile up (here behind
    a rate-limited post) are combined into one thread message that carries every item's key."""
    incident_id, channel = setup_incident(bot)
    bot.settle()
    incident = bot.incident(incident_id)
    assert incident.timeline_ts
    bot.ws.fail_next("chat.postMessage", retry_after=1)
    messages = [bot.ws.post_user_message("U_ALICE", channel, f"burst update {n}")[0] for n in range(6)]
    for message in messages:
        react(bot, channel, message.ts)
    wait_until(lambda: len(captured(bot, incident_id)) == 6, message="six captures")
    bot.settle()
    with bot.ws.lock:
        replies = [m for m in bot.ws.thread(channel, incident.timeline_ts)[1:] if "burst update" in m.text]
    for n in range(6):  # each entry exactly once
        assert sum(m.text.count(f"burst update {n}") for m in replies) == 1
    assert len(replies) < 6  # some were combined
    combined = max(replies, key=lambda m: len(m.blocks))
    keys = combined.metadata["event_payload"]["keys"]
    assert combined.metadata["event_payload"]["key"] == keys[0]
    done = {i.key for i in bot.outbox() if i.op == "incident.timeline_post" and i.status == "done"}
    assert len(keys) >= 2 and set(keys) <= done
    assert sum(len(m.metadata["event_payload"].get("keys", [0])) for m in replies) == 6
    assert not bot.ws.violations


def test_ignored_channels_and_the_bots_own_thread(bot: BotHarness) -> None:
    incident_id, channel = setup_incident(bot)
    outside, _ = bot.ws.post_user_message("U_ALICE", "general", "not an incident channel")
    react(bot, "general", outside.ts)
    incident = bot.incident(incident_id)
    assert incident.timeline_ts
    with bot.ws.lock:
        bot_post = bot.ws.thread(channel, incident.timeline_ts)[1]
    react(bot, channel, bot_post.ts)
    react(bot, channel, incident.timeline_ts)
    bot.settle()
    assert captured(bot, incident_id) == []


def test_shortcut_and_note(bot: BotHarness) -> None:
    incident_id, channel = setup_incident(bot)
    message, _ = bot.ws.post_user_message("U_BOB", channel, "canary shows recovery")
    payload = bot.driver.message_shortcut_payload("U_ALICE", channel, message.ts, "add_to_incident_timeline")
    assert bot.driver.interactive(payload).status_code == 200
    wait_until(lambda: len(captured(bot, incident_id)) == 1)
    bot.command("/incident", "note customer support informed", channel=channel, user="U_BOB")
    wait_until(lambda: [e for e in bot.timeline(incident_id) if e.kind == "note"])
    bot.settle()
    note = next(e for e in bot.timeline(incident_id) if e.kind == "note")
    assert (note.text, note.author) == ("customer support informed", "U_BOB")
    thread = thread_texts(bot, incident_id)
    assert any("canary shows recovery" in t for t in thread) and any("customer support" in t for t in thread)
    outside, _ = bot.ws.post_user_message("U_BOB", "general", "random")
    payload = bot.driver.message_shortcut_payload(
        "U_ALICE", "general", outside.ts, "add_to_incident_timeline"
    )
    bot.driver.interactive(payload)
    reply = wait_until(lambda: [r for r in bot.responses() if "not an incident channel" in json.dumps(r)])
    assert reply


def test_edits_update_and_deletions_mark_deleted(bot: BotHarness) -> None:
    incident_id, channel = setup_incident(bot)
    message, _ = bot.ws.post_user_message("U_ALICE", channel, "cause: bad config")
    react(bot, channel, message.ts)
    wait_until(lambda: len(captured(bot, incident_id)) == 1)
    bot.driver.event(bot.ws.edit_message(channel, message.ts, "cause: bad feature flag"))
    wait_until(
        lambda: captured(bot, incident_id)[0].text == "cause: bad feature flag", message="edit applied"
    )
    bot.driver.event(bot.ws.delete_message(channel, message.ts))
    wait_until(lambda: not captured(bot, incident_id), message="deleted")
    deleted = [e for e in bot.timeline(incident_id, include_deleted=True) if e.deleted]
    assert [e.text for e in deleted] == ["cause: bad feature flag"]


def test_timeline_of_300_entries_is_paginated_within_block_kit_limits(bot: BotHarness) -> None:
    incident_id, channel = setup_incident(bot)

    async def add_many() -> None:
        from bot.incidents.store import add_timeline, get_incident

        async with bot.db.session() as session:
            incident = await get_incident(session, incident_id)
            for n in range(300):
                await add_timeline(
                    session,
                    incident,
                    kind="note",
                    text=f"entry {n:03d} " + "x" * 150,
                    author="U_BOB",
                    at=bot.clock.now() + timedelta(seconds=n),
                )

    bot.call(add_many)
    first = bot.reply_after("/incident", "timeline", channel=channel)
    assert len(first["blocks"]) <= 50 and "page 1/13" in json.dumps(first)
    last = bot.reply_after("/incident", f"timeline INC-{incident_id} 13")
    assert "entry 299" in json.dumps(last)
    bot.settle(timeout=60)  # 300 thread posts, each validated by the emulator


def test_postmortem_draft_has_every_section_durations_and_timeline(bot: BotHarness) -> None:
    # The emulator's message timestamps start at 1700000000 (2023-11-14 22:13:20 UTC): declare a minute later.
    bot.clock.set(datetime.fromtimestamp(1_700_000_060, tz=UTC))
    incident_id, channel = setup_incident(bot)
    alert, _ = bot.ws.post_user_message("U_ALICE", channel, "alert: checkout 5xx > 5%")
    react(bot, channel, alert.ts)
    wait_until(lambda: captured(bot, incident_id))
    bot.command("/incident", "action <@U_BOB> 2026-03-20 add a canary for checkout", channel=channel)
    wait_until(lambda: any(e.kind == "action" for e in bot.timeline(incident_id)))
    bot.clock.advance(timedelta(minutes=10))
    bot.command("/incident", "status identified bad deploy", channel=channel)
    wait_until(lambda: bot.incident(incident_id).status == "identified")
    bot.clock.advance(timedelta(minutes=15))
    bot.command("/incident", "status monitoring rolled back", channel=channel)
    wait_until(lambda: bot.incident(incident_id).status == "monitoring")
    bot.clock.advance(timedelta(minutes=20))
    bot.command("/incident", "resolve stable for 20 minutes", channel=channel)
    wait_until(lambda: bot.incident(incident_id).status == "resolved")
    bot.settle()
    with bot.ws.lock:
        files = [f for f in bot.ws.files.values() if f.filename == f"inc-{incident_id}-postmortem.md"]
        assert len(files) == 1 and files[0].content is not None and channel in files[0].channels
        draft = files[0].content.decode()
    for section in (
        "## Summary",
        "## Impact",
        "## Severity",
        "Detection time",
        "Mitigation time",
        "**Duration:**",
        "## Root cause",
        "## Contributing factors",
        "## Corrective actions",
        "## Preventive actions",
        "## What went well",
        "## What could be improved",
        "## Action items",
        "## Timeline",
    ):
        assert section in draft, section
    assert "**Detection time:** 59s" in draft  # alert captured at 22:13:20.0001, declared at 22:14:20
    assert "**Mitigation time:** 25m" in draft
    assert "**Duration:** 45m" in draft
    assert "| U_BOB | add a canary for checkout | 2026-03-20 | open |" in draft
    rows = [line for line in draft.split("## Timeline")[1].splitlines() if line.startswith("| 20")]
    assert len(rows) == len(bot.timeline(incident_id))
    times = [row.split("|")[1] for row in rows]
    assert times == sorted(times)
    assert "alert: checkout 5xx" in draft and "Resolved: stable for 20 minutes" in draft
    bridge = json.dumps([m.text for m in bot.ws.messages("incident-bridge")])
    assert "post-mortem draft" in bridge.lower()
    card = json.dumps(bot.reply_after("/incident", f"show INC-{incident_id}"))
    assert "add a canary for checkout" in card
    bot.command("/incident", f"postmortem INC-{incident_id}")
    wait_until(lambda: len([f for f in bot.ws.files.values() if "postmortem" in f.filename]) == 2)
