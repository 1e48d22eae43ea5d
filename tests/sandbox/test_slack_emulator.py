"""The Slack workspace emulator, driven by the real slack_sdk AsyncWebClient over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.slack._spec import load_spec
from bot.sandbox.slack.driver import SlackDriver
from bot.sandbox.slack.emulator import (
    BOT_USER_ID,
    SlackWorkspace,
    build_slack_emulator,
    start_slack_emulator,
)
from tests.harness import eventually

TOKEN = "xoxb-test"
SIGNING_SECRET = "test-signing-secret"


@pytest.fixture
def workspace() -> SlackWorkspace:
    return SlackWorkspace()


@pytest.fixture
def slack(workspace: SlackWorkspace) -> Iterator[RunningServer]:
    with serve_in_thread(build_slack_emulator(workspace, bot_token=TOKEN)) as server:
        workspace.base_url = server.url
        yield server
    assert workspace.violations == []


@pytest.fixture
def client(slack: RunningServer) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=f"{slack.url}/api/")


def take_violations(workspace: SlackWorkspace) -> list[str]:
    """The violations so far (cleared, so the fixture's final check only sees unexpected ones)."""
    with workspace.lock:
        found = list(workspace.violations)
        workspace.violations.clear()
    return found


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# --- messages -----------------------------------------------------------------------------------


async def test_post_by_name_then_thread_reply_and_broadcast(
    client: AsyncWebClient, workspace: SlackWorkspace
) -> None:
    posted = await client.chat_postMessage(
        channel="#general", text="incident declared", blocks=[section("*SEV1*")]
    )
    channel, parent_ts = posted["channel"], posted["ts"]
    assert channel == "C0001"
    assert posted["message"]["bot_id"] == "BBOT"
    assert posted["message"]["blocks"][0]["text"]["text"] == "*SEV1*"

    reply = await client.chat_postMessage(channel=channel, text="update 1", thread_ts=parent_ts)
    broadcast = await client.chat_postMessage(
        channel="general", text="resolved", thread_ts=reply["ts"], reply_broadcast=True
    )
    assert broadcast["message"]["thread_ts"] == parent_ts  # a reply's ts resolves to its parent
    assert float(parent_ts) < float(reply["ts"]) < float(broadcast["ts"])

    history = await client.conversations_history(channel=channel)
    assert [m["text"] for m in history["messages"]] == ["resolved", "incident declared"]
    assert history["messages"][1]["reply_count"] == 2
    replies = await client.conversations_replies(channel=channel, ts=parent_ts)
    assert [m["text"] for m in replies["messages"]] == ["incident declared", "update 1", "resolved"]

    assert [m.text for m in workspace.thread("general", parent_ts)] == [
        "incident declared",
        "update 1",
        "resolved",
    ]
    assert len(workspace.messages("general", include_threads=False)) == 1
    assert workspace.find_messages("SEV1")[0].ts == parent_ts
    last = workspace.last_message("#general")
    assert last is not None and last.text == "resolved"


async def test_history_ranges_and_bad_timestamps(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    """oldest/latest bound the history (exclusive unless ``inclusive``); the emulator finds them by
    bisection, so this pins the edges."""
    ts = [(await client.chat_postMessage(channel="general", text=f"m{i}"))["ts"] for i in range(5)]

    async def texts(**kwargs: Any) -> list[str]:
        history = await client.conversations_history(channel="C0001", **kwargs)
        return [m["text"] for m in history["messages"]]

    assert await texts() == ["m4", "m3", "m2", "m1", "m0"]
    assert await texts(oldest=ts[1], latest=ts[3]) == ["m2"]
    assert await texts(oldest=ts[1], latest=ts[3], inclusive=True) == ["m3", "m2", "m1"]
    assert await texts(latest=ts[2], inclusive=True, limit=1) == ["m2"]
    assert await texts(oldest=ts[4]) == []
    assert await texts(latest="1", inclusive=True) == []
    # Not a number: the spec check refuses it (without ../shared/specs there is no spec check, and
    # the emulator's own one answers as Slack does); a number that is not a timestamp: Slack's error.
    spec_checked = load_spec().source is not None
    for bad, error in (
        ({"latest": "yesterday"}, "invalid_arguments" if spec_checked else "invalid_ts_latest"),
        ({"oldest": "NaN"}, "invalid_ts_oldest"),
    ):
        with pytest.raises(SlackApiError) as failed:
            await client.conversations_history(channel="C0001", **bad)
        assert failed.value.response["error"] == error
    assert workspace.find_message("C0001", ts[2]) is not None
    assert workspace.find_message("C0001", "not-a-ts") is None
    assert workspace.find_message("C0001", "1.5") is None
    workspace.violations.clear()  # the bad timestamps broke the spec on purpose


async def test_update_delete_and_permalink(
    client: AsyncWebClient, workspace: SlackWorkspace, slack: RunningServer
) -> None:
    posted = await client.chat_postMessage(channel="C0001", text="status: investigating")
    updated = await client.chat_update(channel="C0001", ts=posted["ts"], text="status: resolved")
    assert updated["message"]["text"] == "status: resolved"
    assert "edited" in updated["message"]

    link = await client.chat_getPermalink(channel="C0001", message_ts=posted["ts"])
    assert link["permalink"] == f"{slack.url}/archives/C0001/p{posted['ts'].replace('.', '')}"

    await client.chat_delete(channel="C0001", ts=posted["ts"])
    assert workspace.messages("C0001") == []
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel="C0001", ts=posted["ts"], text="again")
    assert missing.value.response["error"] == "message_not_found"


async def test_ephemeral_goes_to_one_user(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    response = await client.chat_postEphemeral(channel="C0001", user="U_ALICE", text="only you see this")
    assert response["message_ts"]
    [ephemeral] = workspace.ephemeral_messages(user="U_ALICE")
    assert (ephemeral.channel, ephemeral.text) == ("C0001", "only you see this")
    assert workspace.messages("C0001") == []


async def test_direct_messages_by_user_id(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    posted = await client.chat_postMessage(channel="U_BOB", text="you are on call")
    opened = await client.conversations_open(users="U_BOB")
    assert posted["channel"] == opened["channel"]["id"] == "D0001"
    assert [m.text for m in workspace.messages("U_BOB")] == ["you are on call"]


# --- conversations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Incident-Bridge", "invalid_name_specials"),
        ("inc bridge", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("", "invalid_name_required"),
    ],
)
async def test_create_channel_name_rules(
    client: AsyncWebClient, workspace: SlackWorkspace, name: str, error: str
) -> None:
    with pytest.raises(SlackApiError) as failed:
        await client.conversations_create(name=name)
    assert failed.value.response["error"] == error
    [violation] = take_violations(workspace)
    assert violation.startswith("conversations.create: ")


async def test_create_channel_and_name_taken(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    created = await client.conversations_create(name="inc-2024-checkout_down", is_private=False)
    channel = created["channel"]
    assert channel["id"].startswith("C") and channel["name"] == "inc-2024-checkout_down"
    assert channel["is_member"] is True
    found = workspace.channel_by_name("inc-2024-checkout_down")
    assert found is not None and found.members == {BOT_USER_ID}

    with pytest.raises(SlackApiError) as taken:
        await client.conversations_create(name="inc-2024-checkout_down")
    assert taken.value.response["error"] == "name_taken"
    assert workspace.violations == []  # a state error, not a broken rule
    assert workspace.calls_to("conversations.create")[-1].error == "name_taken"


async def test_invite_and_topic(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    channel = (await client.conversations_create(name="inc-1"))["channel"]["id"]
    await client.conversations_invite(channel=channel, users=["U_ALICE", "U_BOB"])
    assert workspace.channels[channel].members == {BOT_USER_ID, "U_ALICE", "U_BOB"}

    with pytest.raises(SlackApiError) as again:
        await client.conversations_invite(channel=channel, users="U_ALICE")
    assert again.value.response["error"] == "already_in_channel"
    with pytest.raises(SlackApiError) as unknown:
        await client.conversations_invite(channel=channel, users="U_NOBODY")
    assert unknown.value.response["error"] == "user_not_found"

    topic = await client.conversations_setTopic(channel=channel, topic="SEV1: checkout down")
    assert topic["channel"]["topic"]["value"] == "SEV1: checkout down"
    await client.conversations_setPurpose(channel=channel, purpose="war room")
    info = await client.conversations_info(channel=channel)
    assert info["channel"]["purpose"]["value"] == "war room"
    members = await client.conversations_members(channel=channel)
    assert sorted(members["members"]) == sorted([BOT_USER_ID, "U_ALICE", "U_BOB"])


async def test_conversations_list_paginates(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    for number in range(5):
        workspace.add_channel(f"inc-{number}")
    first = await client.conversations_list(limit=4)
    assert len(first["channels"]) == 4
    cursor = first["response_metadata"]["next_cursor"]
    second = await client.conversations_list(limit=4, cursor=cursor)
    names = [c["name"] for c in first["channels"] + second["channels"]]
    assert names == ["general", "inc-0", "inc-1", "inc-2", "inc-3", "inc-4"]
    assert second["response_metadata"]["next_cursor"] == ""


async def test_pins_and_reactions(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    ts = (await client.chat_postMessage(channel="C0001", text="runbook: https://runbooks.invalid/x"))["ts"]
    await client.pins_add(channel="C0001", timestamp=ts)
    pinned = await client.pins_list(channel="C0001")
    assert [item["message"]["ts"] for item in pinned["items"]] == [ts]
    assert [m.ts for m in workspace.pins("general")] == [ts]
    with pytest.raises(SlackApiError) as twice:
        await client.pins_add(channel="C0001", timestamp=ts)
    assert twice.value.response["error"] == "already_pinned"
    await client.pins_remove(channel="C0001", timestamp=ts)

    await client.reactions_add(channel="C0001", timestamp=ts, name="eyes")
    got = await client.reactions_get(channel="C0001", timestamp=ts)
    assert got["message"]["reactions"] == [{"name": "eyes", "users": [BOT_USER_ID], "count": 1}]
    await client.reactions_remove(channel="C0001", timestamp=ts, name="eyes")
    assert workspace.messages("C0001")[0].reactions == {}


async def test_users_lookup_and_groups(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    carol = workspace.add_user("carol", email="carol@corp.example", tz="Europe/Paris")
    group_id = workspace.add_usergroup("oncall-payments", [carol.id, "U_ALICE"])

    found = await client.users_lookupByEmail(email="carol@corp.example")
    assert found["user"]["id"] == carol.id
    assert found["user"]["tz_offset"] == 3600
    with pytest.raises(SlackApiError) as missing:
        await client.users_lookupByEmail(email="nobody@corp.example")
    assert missing.value.response["error"] == "users_not_found"

    groups = await client.usergroups_list(include_users=True)
    assert groups["usergroups"][0]["handle"] == "oncall-payments"
    members = await client.usergroups_users_list(usergroup=group_id)
    assert members["users"] == [carol.id, "U_ALICE"]
    info = await client.users_info(user="U_BOB")
    assert info["user"]["name"] == "bob"


# --- views and files ----------------------------------------------------------------------------


MODAL = {
    "type": "modal",
    "callback_id": "declare_incident",
    "title": {"type": "plain_text", "text": "Declare incident"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "private_metadata": "C0001",
    "blocks": [
        {
            "type": "input",
            "block_id": "summary",
            "label": {"type": "plain_text", "text": "Summary"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}


async def test_views_open_needs_an_issued_trigger(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    trigger_id = workspace.new_trigger_id("U_ALICE")
    opened = await client.views_open(trigger_id=trigger_id, view=MODAL)
    view = opened["view"]
    assert view["id"] == "V0001" and view["callback_id"] == "declare_incident"
    assert workspace.view("V0001").user == "U_ALICE"

    updated = await client.views_update(
        view_id=view["id"], hash=view["hash"], view={**MODAL, "private_metadata": "x"}
    )
    assert updated["view"]["private_metadata"] == "x"

    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger_id, view=MODAL)
    assert reused.value.response["error"] == "exchanged_trigger_id"
    with pytest.raises(SlackApiError) as forged:
        await client.views_open(trigger_id="123.456.abc", view=MODAL)
    assert forged.value.response["error"] == "invalid_trigger_id"
    assert len(take_violations(workspace)) == 2

    long_title = {**MODAL, "title": {"type": "plain_text", "text": "A title that is far too long"}}
    with pytest.raises(SlackApiError) as invalid:
        await client.views_open(trigger_id=workspace.new_trigger_id(), view=long_title)
    assert invalid.value.response["error"] == "invalid_arguments"
    assert take_violations(workspace) == ["views.open: view.title is 28 chars (max 24)"]


async def test_files_upload_v2_round_trip(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    response = await client.files_upload_v2(
        channel="C0001",
        content="timeline:\n12:00 alert fired\n",
        filename="timeline.txt",
        title="Incident timeline",
        initial_comment="postmortem draft attached",
    )
    file_id = response["file"]["id"]
    stored = workspace.files[file_id]
    assert stored.content == b"timeline:\n12:00 alert fired\n"
    assert (stored.title, stored.channels) == ("Incident timeline", ["C0001"])

    message = workspace.last_message("general")
    assert message is not None and message.text == "postmortem draft attached"
    assert message.files[0]["id"] == file_id

    info = await client.files_info(file=file_id)
    async with httpx.AsyncClient() as http:
        download = await http.get(info["file"]["url_private"], headers={"Authorization": f"Bearer {TOKEN}"})
    assert download.content == stored.content


# --- faults and violations ----------------------------------------------------------------------


async def test_rate_limit_is_retried_after_retry_after(
    slack: RunningServer, workspace: SlackWorkspace
) -> None:
    retrying = AsyncWebClient(token=TOKEN, base_url=f"{slack.url}/api/")
    retrying.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    workspace.fail_next("chat.postMessage", retry_after=0)

    response = await retrying.chat_postMessage(channel="C0001", text="after the limit")

    assert response["ok"] is True
    calls = workspace.calls_to("chat.postMessage")
    assert [(c.status, c.error) for c in calls] == [(429, "ratelimited"), (200, None)]
    assert len(workspace.messages("C0001")) == 1


async def test_rate_limit_surfaces_retry_after_without_handler(
    client: AsyncWebClient, workspace: SlackWorkspace
) -> None:
    workspace.fail_next("conversations.create", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        await client.conversations_create(name="inc-1")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] in ("7", ["7"])

    workspace.fail_next("conversations.create", status=200, error="restricted_action", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as refused:
            await client.conversations_create(name="inc-1")
        assert refused.value.response["error"] == "restricted_action"
    assert (await client.conversations_create(name="inc-1"))["ok"] is True


async def test_51_blocks_are_rejected(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="C0001", text="too big", blocks=[{"type": "divider"}] * 51)
    assert failed.value.response["error"] == "invalid_blocks"
    assert take_violations(workspace) == ["chat.postMessage: 51 blocks (max 50 in a message)"]
    assert workspace.messages("C0001") == []


async def test_block_limits_are_explained(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    blocks = [
        section("x" * 3012),
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}],
        },
        {"type": "carousel"},
    ]
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C0001", text="fallback", blocks=blocks)
    [violation] = take_violations(workspace)
    assert "blocks[0] (section): text is 3012 chars (max 3000)" in violation
    assert "blocks[1] (header): text is 151 chars (max 150)" in violation
    assert "blocks[2] (actions): elements[0] (button): text is 76 chars (max 75)" in violation
    assert "blocks[3]: unknown block type 'carousel'" in violation


async def test_unknown_and_unimplemented_methods(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("chat.postMesage", json={"channel": "C0001", "text": "typo"})
    assert unknown.value.response["error"] == "unknown_method"
    if load_spec().source is not None:
        with pytest.raises(SlackApiError) as unimplemented:
            await client.api_call("reminders.add", params={"text": "x", "time": "in 5 minutes"})
        assert unimplemented.value.response["error"] == "not_implemented_in_emulator"
    violations = take_violations(workspace)
    assert violations[0] == "chat.postMesage: 'chat.postMesage' is not a Slack Web API method"
    assert [c.method for c in workspace.calls][:1] == ["chat.postMesage"]


def test_auth_and_required_arguments(slack: RunningServer, workspace: SlackWorkspace) -> None:
    api = f"{slack.url}/api"
    no_token = httpx.post(f"{api}/auth.test")
    assert no_token.json() == {"ok": False, "error": "not_authed"}
    wrong = httpx.post(f"{api}/auth.test", headers={"Authorization": "Bearer xoxb-wrong"})
    assert wrong.json() == {"ok": False, "error": "invalid_auth"}
    via_arg = httpx.post(f"{api}/auth.test", data={"token": TOKEN})
    assert via_arg.json()["user_id"] == BOT_USER_ID

    auth = {"Authorization": f"Bearer {TOKEN}"}
    no_topic = httpx.post(f"{api}/conversations.setTopic", data={"channel": "C0001"}, headers=auth)
    assert no_topic.json()["error"] == "invalid_arguments"
    no_text = httpx.post(f"{api}/chat.postMessage", json={"channel": "C0001"}, headers=auth)
    assert no_text.json()["error"] == "no_text"
    bad_limit = httpx.get(f"{api}/conversations.list", params={"limit": "lots"}, headers=auth)
    assert bad_limit.json()["error"] == "invalid_arguments"
    by_name = httpx.post(f"{api}/conversations.info", data={"channel": "general"}, headers=auth)
    assert by_name.json()["error"] == "channel_not_found"
    assert take_violations(workspace) == [
        "auth.test: no token: send 'Authorization: Bearer <bot token>'",
        "auth.test: token 'xoxb-wrong'… is not the bot token",
        "conversations.setTopic: missing required argument 'topic'",
        "chat.postMessage: needs one of text, blocks, attachments, markdown_text",
        "conversations.list: argument limit must be integer, got 'lots'",
        "conversations.info: channel must be a conversation ID, got 'general'",
    ]


def test_form_bodies_with_json_strings(slack: RunningServer, workspace: SlackWorkspace) -> None:
    form = {"channel": "C0001", "text": "fallback", "blocks": json.dumps([section("from a form")])}
    response = httpx.post(
        f"{slack.url}/api/chat.postMessage", data=form, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.json()["ok"] is True
    assert workspace.messages("C0001")[0].blocks == [section("from a form")]

    multipart = httpx.post(
        f"{slack.url}/api/chat.postMessage",
        data={"channel": "C0001", "text": "multipart"},
        files={"unused": ("a.txt", b"bytes")},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert multipart.json()["ok"] is True
    assert workspace.calls_to("chat.postMessage")[1].args["text"] == "multipart"


def test_spec_marks_required_args() -> None:
    spec = load_spec()
    if spec.source is None:
        pytest.skip("shared/specs/slack_web_openapi_v2.json is not available")
    assert spec.required_args("chat.postEphemeral") == {"channel", "user"}
    assert spec.arg_type("conversations.history", "limit") == "integer"


# --- events, driver, response URLs --------------------------------------------------------------


def test_event_helpers_build_event_callbacks(workspace: SlackWorkspace) -> None:
    message, posted = workspace.post_user_message("U_ALICE", "general", "checkout is down")
    assert posted["type"] == "event_callback" and posted["event"]["type"] == "message"
    assert posted["event"]["channel"] == "C0001" and posted["event"]["ts"] == message.ts
    reaction = workspace.add_reaction("U_BOB", "general", message.ts, ":eyes:")
    assert reaction["event"]["item"] == {"type": "message", "channel": "C0001", "ts": message.ts}
    assert reaction["event"]["reaction"] == "eyes" and reaction["event"]["item_user"] == "U_ALICE"
    assert message.reactions == {"eyes": ["U_BOB"]}
    changed = workspace.edit_message("C0001", message.ts, "checkout is down (EU)")
    assert changed["event"]["subtype"] == "message_changed"
    assert changed["event"]["previous_message"]["text"] == "checkout is down"
    deleted = workspace.delete_message("C0001", message.ts)
    assert deleted["event"]["deleted_ts"] == message.ts
    envelopes = [posted, reaction, changed, deleted]
    assert len({e["event_id"] for e in envelopes}) == 4
    assert all(e["authorizations"][0]["user_id"] == BOT_USER_ID for e in envelopes)


class RecordingBot:
    """A stand-in for the bot's HTTP endpoint that verifies Slack signatures like Bolt does."""

    def __init__(self) -> None:
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.app = Starlette(routes=[Route("/slack/events", self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        if not self.verifier.is_valid_request(body, headers):
            return Response("invalid signature", status_code=401)
        self.received.append((body, headers))
        return JSONResponse({"ok": True})


async def test_driver_signs_like_slack(slack: RunningServer, workspace: SlackWorkspace) -> None:
    bot = RecordingBot()
    with serve_in_thread(bot.app) as bot_server:
        driver = SlackDriver(f"{bot_server.url}/slack/events", SIGNING_SECRET, workspace)
        assert driver.command("/incident", "declare sev1", channel="#general").status_code == 200
        assert (
            await driver.aevent(workspace.post_user_message("U_BOB", "C0001", "hi")[1], retry_num=1)
        ).status_code == 200

        stale = driver.signed_headers(b"{}", timestamp=int(time.time()) - 3600)
        assert not bot.verifier.is_valid_request(b"{}", stale)
        forged = driver.signed_headers(b"{}", secret="not-the-secret")
        assert not bot.verifier.is_valid_request(b"{}", forged)

    command_body, _ = bot.received[0]
    form = {key: values[0] for key, values in parse_qs(command_body.decode()).items()}
    assert form["command"] == "/incident" and form["text"] == "declare sev1"
    assert (form["channel_id"], form["channel_name"], form["user_id"]) == ("C0001", "general", "U_ALICE")
    assert form["trigger_id"] in workspace.triggers
    _, event_headers = bot.received[1]
    assert event_headers["x-slack-retry-num"] == "1"
    assert event_headers["x-slack-retry-reason"] == "http_timeout"

    # the slash command's response URL and trigger id work against the emulator
    async with httpx.AsyncClient() as http:
        in_channel = await http.post(
            form["response_url"], json={"response_type": "in_channel", "text": "declared"}
        )
    assert in_channel.status_code == 200
    assert workspace.messages("general")[-1].text == "declared"
    assert workspace.responses(form["response_url"]) == [{"response_type": "in_channel", "text": "declared"}]
    client = AsyncWebClient(token=TOKEN, base_url=f"{slack.url}/api/")
    assert (await client.views_open(trigger_id=form["trigger_id"], view=MODAL))["ok"] is True


async def test_interaction_payloads(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    button = {
        "type": "button",
        "action_id": "ack",
        "text": {"type": "plain_text", "text": "Acknowledge"},
        "value": "inc-1",
    }
    blocks = [section("SEV1 paged"), {"type": "actions", "block_id": "controls", "elements": [button]}]
    ts = (await client.chat_postMessage(channel="C0001", text="SEV1 paged", blocks=blocks))["ts"]
    driver = SlackDriver("http://127.0.0.1:9/unused", SIGNING_SECRET, workspace)

    action = driver.block_action_payload("U_ALICE", "general", ts, "ack", "inc-1")
    assert action["type"] == "block_actions"
    assert action["user"] == {"id": "U_ALICE", "username": "alice", "name": "alice", "team_id": "T0001"}
    assert action["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0001",
        "is_ephemeral": False,
    }
    assert action["actions"][0]["block_id"] == "controls"
    assert action["actions"][0]["text"]["text"] == "Acknowledge"
    assert action["message"]["ts"] == ts

    async with httpx.AsyncClient() as http:
        replaced = await http.post(
            action["response_url"], json={"replace_original": True, "text": "acknowledged by alice"}
        )
    assert replaced.status_code == 200
    assert workspace.messages("C0001")[0].text == "acknowledged by alice"

    opened = await client.views_open(trigger_id=action["trigger_id"], view=MODAL)
    values = {"summary": {"value": {"type": "plain_text_input", "value": "checkout down"}}}
    submission = driver.view_submission_payload("U_ALICE", "declare_incident", values)
    assert submission["view"]["id"] == opened["view"]["id"]
    assert submission["view"]["private_metadata"] == "C0001"
    assert submission["view"]["state"]["values"] == values

    shortcut = driver.message_shortcut_payload("U_BOB", "C0001", ts, "open_incident")
    assert shortcut["type"] == "message_action" and shortcut["callback_id"] == "open_incident"
    assert shortcut["channel"] == {"id": "C0001", "name": "general"}
    assert shortcut["response_url"].startswith(workspace.base_url or "?")


async def test_driver_against_a_bolt_app(slack: RunningServer, workspace: SlackWorkspace) -> None:
    bolt = AsyncApp(
        signing_secret=SIGNING_SECRET, client=AsyncWebClient(token=TOKEN, base_url=f"{slack.url}/api/")
    )

    @bolt.command("/incident")
    async def incident(ack: Any, command: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        await client.views_open(trigger_id=command["trigger_id"], view=MODAL)
        await respond(text=f"declaring: {command['text']}")

    @bolt.event("reaction_added")
    async def reacted(event: dict[str, Any], say: Any) -> None:
        await say(text=f"seen :{event['reaction']}:", thread_ts=event["item"]["ts"])

    handler = AsyncSlackRequestHandler(bolt)

    async def endpoint(request: Request) -> Response:
        return await handler.handle(request)

    with serve_in_thread(Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])) as bot:
        driver = SlackDriver(f"{bot.url}/slack/events", SIGNING_SECRET, workspace)
        assert (await driver.acommand("/incident", "checkout down")).status_code == 200
        message, _ = workspace.post_user_message("U_ALICE", "general", "is checkout down?")
        assert (
            await driver.aevent(workspace.add_reaction("U_BOB", "general", message.ts, "eyes"))
        ).status_code == 200
        await eventually(lambda: len(workspace.thread("general", message.ts)) == 2)

    assert [v.callback_id for v in workspace.views.values()] == ["declare_incident"]
    assert [e.text for e in workspace.ephemeral_messages(user="U_ALICE")] == ["declaring: checkout down"]
    assert [m.text for m in workspace.thread("general", message.ts)] == ["is checkout down?", "seen :eyes:"]


# --- server -------------------------------------------------------------------------------------


def test_start_slack_emulator_and_serve_in_thread() -> None:
    with start_slack_emulator() as slack:
        assert slack.workspace.base_url == slack.url
        assert httpx.post(f"{slack.api_url}auth.test", data={"token": TOKEN}).json()["ok"] is True
        port = slack.server.port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")
    with pytest.raises(ValueError, match="loopback"):
        serve_in_thread(Starlette(), host="0.0.0.0")


def test_reset_swaps_in_a_fresh_workspace() -> None:
    with start_slack_emulator() as slack:
        first = slack.workspace
        first.add_channel("inc-old")
        fresh = slack.reset()
        response = httpx.post(f"{slack.api_url}conversations.list", data={"token": TOKEN}).json()
        assert [c["name"] for c in response["channels"]] == ["general"]
        assert slack.workspace is fresh and fresh.base_url == slack.url
        assert first.calls == [] and len(fresh.calls) == 1


async def test_find_posted_resolves_a_channel_name(client: AsyncWebClient, workspace: SlackWorkspace) -> None:
    """A post addressed by name (``incident-bridge``), looked up again after a crash mid-delivery: the
    history methods need the channel id, so the adapter resolves the name first."""
    from bot.adapters.slack import SlackChat

    workspace.add_channel("incident-bridge")
    chat = SlackChat(client)
    meta = {"event_type": "cmdcenter_outbox", "event_payload": {"key": "inc1:announce"}}
    posted = await chat.post_message(channel="incident-bridge", text="declared", metadata=meta)
    found = await chat.find_posted(
        channel="incident-bridge", event_type="cmdcenter_outbox", key="inc1:announce"
    )
    assert found is not None and found.ts == posted.ts
    assert (
        await chat.find_posted(channel="incident-bridge", event_type="cmdcenter_outbox", key="other") is None
    )
    assert await chat.find_posted(channel="no-such-channel", event_type="cmdcenter_outbox", key="x") is None


async def test_a_combined_post_taken_over_posts_only_the_keys_not_yet_posted(
    client: AsyncWebClient, workspace: SlackWorkspace
) -> None:
    """Several outbox items in one thread message: a replica that takes them over (the holder died
    after posting some) finds the keys in the thread's metadata and posts only the others."""
    from datetime import UTC, datetime

    from bot import chat_ops
    from bot.adapters.slack import SlackChat
    from bot.db.models import OutboxItem
    from bot.render import RenderedMessage

    channel = workspace.add_channel("inc-1")
    chat = SlackChat(client)
    root = await chat.post_message(channel=channel.id, text="timeline")

    def item(key: str, *, taken_over: bool = False) -> OutboxItem:
        return OutboxItem(
            key=key,
            op="incident.timeline_post",
            target="slack",
            payload={"text": key},
            next_attempt_at=datetime.now(UTC),
            created_at=datetime.now(UTC),
            lease_owner="replica-dead" if taken_over else None,
        )

    def render(items: list[OutboxItem]) -> RenderedMessage:
        return chat_ops.combined(RenderedMessage(text=i.payload["text"]) for i in items)

    first = await chat_ops.deliver_posts(
        chat, [item("k1"), item("k2")], channel=channel.id, render=render, thread_ts=root.ts
    )
    again = [item("k1", taken_over=True), item("k2", taken_over=True), item("k3", taken_over=True)]
    posted = await chat_ops.deliver_posts(chat, again, channel=channel.id, render=render, thread_ts=root.ts)
    assert (
        await chat_ops.deliver_posts(chat, again[:2], channel=channel.id, render=render, thread_ts=root.ts)
        == first
    )
    with workspace.lock:
        replies = workspace.thread(channel.id, root.ts)[1:]
    assert [m.text for m in replies] == ["k1\nk2", "k3"]
    assert replies[0].metadata == {
        "event_type": "cmdcenter_outbox",
        "event_payload": {"key": "k1", "keys": ["k1", "k2"]},
    }
    assert replies[1].metadata == {"event_type": "cmdcenter_outbox", "event_payload": {"key": "k3"}}
    found = await chat.find_posted_keys(
        channel=channel.id, event_type="cmdcenter_outbox", keys=["k2", "k3", "k4"], thread_ts=root.ts
    )
    assert {k: p.ts for k, p in found.items()} == {"k2": first.ts, "k3": posted.ts}


async def test_permalinks_are_built_like_slacks_from_one_auth_test(
    client: AsyncWebClient, workspace: SlackWorkspace
) -> None:
    """The adapter builds permalinks from the workspace URL (one auth.test), identical to what
    chat.getPermalink answers, for a message and for a thread reply; it asks Slack when auth.test fails."""
    from bot.adapters.slack import SlackChat

    channel = workspace.add_channel("inc-7")
    message, _ = workspace.post_user_message("U_ALICE", channel.id, "db failover")
    reply, _ = workspace.post_user_message("U_BOB", channel.id, "replica lag 30s", thread_ts=message.ts)
    official = {
        m.ts: (await client.chat_getPermalink(channel=channel.id, message_ts=m.ts))["permalink"]
        for m in (message, reply)
    }
    workspace.fail_next("auth.test", status=500, times=3)  # through the client's retries too
    fallback = SlackChat(client)
    assert await fallback.permalink(channel=channel.id, ts=message.ts) == official[message.ts]
    before = len(workspace.calls_to("chat.getPermalink"))
    assert before == 3  # the two official ones and the fallback's
    workspace.clear_faults()
    chat = SlackChat(client)
    assert await chat.permalink(channel=channel.id, ts=message.ts) == official[message.ts]
    assert await chat.permalink(channel=channel.id, ts=reply.ts, thread_ts=message.ts) == official[reply.ts]
    assert len(workspace.calls_to("chat.getPermalink")) == before
    assert len([c for c in workspace.calls_to("auth.test") if c.ok]) == 1


def test_fake_servers_answer_without_nagle_delays() -> None:
    """The fakes' connections have TCP_NODELAY (asyncio sets it only when the listening socket says
    IPPROTO_TCP): otherwise a reply's body waits for the client's delayed ACK, 40 ms every other call."""
    import socket

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    with serve_in_thread(app) as server:
        listening = server._sock
        assert listening.proto == socket.IPPROTO_TCP
        with socket.create_connection((server.host, server.port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(1024).startswith(b"HTTP/1.1 200")
