"""What Slack does with a reply to a slash command or an interaction: the rules a response URL
body (or a slash command's ack body, shown the same way) must follow, and its effect on the channel.

Used by the emulator's ``/response_url/{token}`` route and by the driver (an ack's body).
"""

from __future__ import annotations

import json
from typing import Any

from bot.sandbox.slack._blocks import MAX_MESSAGE_TEXT, validate_blocks
from bot.sandbox.slack._models import BOT_USER_ID, Ephemeral, JsonDict, ResponseTarget
from bot.sandbox.slack._workspace import SlackWorkspace


def record_ack_reply(ws: SlackWorkspace, response_url: str, body: bytes, content_type: str) -> None:
    """A slash command's ack with a body: Slack shows it as it would a first ``response_url`` reply
    (https://api.slack.com/interactivity/slash-commands#responding_immediate_response), so it is
    checked and recorded with those. An empty ack shows nothing."""
    if not body.strip():
        return
    token = response_url.rstrip("/").rsplit("/", 1)[-1]
    reply: Any
    if "json" in content_type:
        try:
            reply = json.loads(body)
        except ValueError:
            reply = None
    else:
        reply = {"text": body.decode("utf-8", "replace")}
    with ws.lock:
        target = ws.response_targets.get(token)
        if target is None:
            return
        if not isinstance(reply, dict):
            ws.add_violation("slash command ack: a JSON body must be an object")
            return
        if "text" not in reply and "blocks" not in reply:
            return  # no message in it (an ack such as {"ok": true}): nothing is shown
        ws.ack_replies.add(token)
        ws.response_urls.setdefault(token, []).insert(0, reply)
        problems = response_problems(reply)
        if problems:
            ws.add_violation("slash command ack: " + "; ".join(problems))
            return
        apply_response(ws, target, reply)


def response_problems(body: JsonDict) -> list[str]:
    problems = []
    text = body.get("text", "")
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_TEXT:
        problems.append(f"text must be a string of at most {MAX_MESSAGE_TEXT} chars")
    if body.get("blocks") is not None:
        problems.extend(validate_blocks(body["blocks"], surface="message"))
    if body.get("response_type", "ephemeral") not in ("ephemeral", "in_channel"):
        problems.append(f"response_type must be 'ephemeral' or 'in_channel', got {body['response_type']!r}")
    return problems


def apply_response(ws: SlackWorkspace, target: ResponseTarget, body: JsonDict) -> None:
    text, blocks = str(body.get("text", "")), body.get("blocks")
    original = ws.find_message(target.channel, target.message_ts) if target.message_ts else None
    if _truthy(body.get("delete_original")):
        if original is not None:
            original.deleted = True
        return
    if _truthy(body.get("replace_original")) and original is not None:
        original.text = text
        original.blocks = list(blocks or [])
        original.edited = {"user": BOT_USER_ID, "ts": ws.next_ts()}
        return
    if body.get("response_type") == "in_channel":
        thread_ts = body.get("thread_ts")
        ws.post_message(
            target.channel, text=text, blocks=blocks, thread_ts=str(thread_ts) if thread_ts else None
        )
        return
    ws.ephemerals.append(Ephemeral(ws.next_ts(), target.channel, target.user, text, list(blocks or [])))


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
