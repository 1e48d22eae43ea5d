"""``SlackChat`` against the Slack emulator: reading several messages at once, answering a command."""

from __future__ import annotations

import pytest

from bot.adapters.slack import SlackChat, build_web_client
from bot.errors import ChatError
from bot.sandbox.slack.emulator import SlackEmulator
from tests.harness import BOT_TOKEN


async def test_slackchat_get_messages_reads_a_range_at_once_and_replies_one_by_one(
    slack: SlackEmulator,
) -> None:
    ws = slack.workspace
    channel = ws.add_channel("inc-reads", members=["U_ALICE"]).id
    top = [ws.post_user_message("U_ALICE", channel, f"m{i}")[0].ts for i in range(30)]
    reply, _ = ws.post_user_message("U_ALICE", channel, "a reply", thread_ts=top[3])
    chat = SlackChat(build_web_client(token=BOT_TOKEN, base_url=slack.api_url))
    before = len(ws.calls)
    wanted = [top[2], top[5], top[20], reply.ts, "1600000000.000100"]
    found = await chat.get_messages(channel=channel, timestamps=wanted)
    assert {ts: m["text"] for ts, m in found.items()} == {
        top[2]: "m2",
        top[5]: "m5",
        top[20]: "m20",
        reply.ts: "a reply",
    }
    methods = [c.method for c in ws.calls[before:]]
    # one history read for the range; the reply and the unknown ts one by one (history, then replies)
    assert methods.count("conversations.history") == 3
    assert methods.count("conversations.replies") == 2
    assert not ws.violations


async def test_slackchat_respond_posts_json_to_the_response_url_and_reports_failures(
    slack: SlackEmulator,
) -> None:
    """``respond`` POSTs with aiohttp directly (no slack_sdk webhook client per answer): the body
    arrives as JSON, an HTTP error is a ChatError carrying the status, a refused connection is one."""
    ws = slack.workspace
    channel = ws.channel_by_name("incident-bridge")
    assert channel is not None
    url = ws.new_response_url(channel.id, "U_ALICE")
    chat = SlackChat(build_web_client(token=BOT_TOKEN, base_url=slack.api_url))
    await chat.respond(response_url=url, payload={"response_type": "ephemeral", "text": "hello <!here>"})
    assert ws.responses(url) == [{"response_type": "ephemeral", "text": "hello <!here>"}]

    unknown = f"{slack.url}/response_url/never-issued"
    with pytest.raises(ChatError) as failed:
        await chat.respond(response_url=unknown, payload={"text": "x"})
    assert failed.value.status == 404 and not failed.value.retryable
    ws.violations.clear()  # on purpose

    with pytest.raises(ChatError, match="connection failed") as refused:
        await chat.respond(response_url="http://127.0.0.1:9/response_url/x", payload={"text": "x"})
    assert refused.value.retryable
