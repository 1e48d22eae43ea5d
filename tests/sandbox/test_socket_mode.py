"""Socket Mode in the Slack emulator, driven by a real Bolt ``AsyncSocketModeHandler`` (slack_sdk's
aiohttp client) on 127.0.0.1, and at the protocol level by a bare websocket client.

The app runs on the test's event loop, so the tests use the driver's async senders. Time-based
behaviour (the ack deadline) is waited for by polling conditions with deadlines, never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack.driver import SlackDriver, SocketModeUnsupported
from bot.sandbox.slack.emulator import APP_ID, SlackEmulator, SlackWorkspace, start_slack_emulator
from tests.harness import eventually

MODAL_CALLBACK = "incident_modal"
BUTTON = {
    "type": "button",
    "action_id": "approve",
    "text": {"type": "plain_text", "text": "Approve"},
    "value": "rel-1",
}


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with start_slack_emulator() as emulator:
        yield emulator
        assert emulator.workspace.violations == []


def take_violations(ws: SlackWorkspace) -> list[str]:
    with ws.lock:
        found = list(ws.violations)
        ws.violations.clear()
    return found


@dataclass
class SocketApp:
    """A small Bolt app connected over Socket Mode, recording what its listeners saw.

    It de-duplicates like cmdcenter's inbox does: events by event id, commands and interactions by
    trigger id. ``seen`` has every delivery (with its retry number), ``handled`` the de-duplicated ones.
    """

    handler: AsyncSocketModeHandler
    messages: list[dict[str, Any]] = field(default_factory=list)
    """The frames the client received (its message listeners do not see ``disconnect`` ones)."""
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    handled: list[tuple[str, str]] = field(default_factory=list)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)
    """Commands (by text) whose first delivery waits for this event before it acks."""

    def first_time(self, kind: str, key: str, headers: dict[str, Any]) -> bool:
        retry = headers.get("x-slack-retry-num", ["0"])
        self.seen.append((kind, key, int(retry[0] if isinstance(retry, list) else retry)))
        if (kind, key) in self.handled:
            return False
        self.handled.append((kind, key))
        return True

    def of_kind(self, kind: str) -> list[str]:
        return [key for seen_kind, key in self.handled if seen_kind == kind]


def build_app(slack: SlackEmulator) -> tuple[AsyncApp, AsyncWebClient]:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    return AsyncApp(client=client, signing_secret="unused-in-socket-mode"), client


@pytest.fixture
async def app(slack: SlackEmulator) -> AsyncIterator[SocketApp]:
    bolt, client = build_app(slack)
    handler = AsyncSocketModeHandler(bolt, slack.app_token, web_client=client)
    recorder = SocketApp(handler)

    async def on_message(message: aiohttp.WSMessage) -> None:  # every text frame, as received
        recorder.messages.append(json.loads(message.data))

    handler.client.on_message_listeners.append(on_message)

    @bolt.command("/deploy")
    async def deploy(ack: AsyncAck, command: dict[str, Any], request: Any) -> None:
        first = recorder.first_time("command", command["trigger_id"], request.headers)
        held = recorder.hold.get(command["text"])
        if first and held is not None:
            await held.wait()
        await ack({"response_type": "ephemeral", "text": f"deploying {command['text']}"})

    @bolt.event("reaction_added")
    async def reaction(body: dict[str, Any], request: Any) -> None:
        recorder.first_time("event", body["event_id"], request.headers)

    @bolt.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any], request: Any) -> None:
        recorder.first_time("action", body["trigger_id"], request.headers)
        await ack()

    @bolt.view(MODAL_CALLBACK)
    async def submit(ack: AsyncAck, view: dict[str, Any], body: dict[str, Any], request: Any) -> None:
        recorder.first_time("view", body["trigger_id"], request.headers)
        title = view["state"]["values"]["title_block"]["title"]["value"]
        if not title.strip():
            await ack(response_action="errors", errors={"title_block": "A title, please"})
        else:
            await ack()

    await handler.connect_async()
    await eventually(lambda: len(slack.socket_mode.open_connections()) == 1)
    try:
        yield recorder
    finally:
        for held in recorder.hold.values():
            held.set()
        await handler.close_async()


def post_button_message(ws: SlackWorkspace) -> str:
    blocks = [{"type": "actions", "block_id": "release", "elements": [BUTTON]}]
    return ws.post_message("C0001", text="rel-1 ready", blocks=blocks).ts


# --- connecting -----------------------------------------------------------------------------------


async def test_the_app_connects_and_gets_hello(slack: SlackEmulator, app: SocketApp) -> None:
    ws = slack.workspace
    await eventually(lambda: any(m.get("type") == "hello" for m in app.messages))
    hello = next(m for m in app.messages if m.get("type") == "hello")
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": APP_ID}
    assert {"host", "build_number", "approximate_connection_time"} <= hello["debug_info"].keys()

    [connection] = ws.socket_connections
    assert connection.is_open and connection.id in slack.socket_mode.open_connections()
    opened = ws.calls_to("apps.connections.open")
    assert [c.ok for c in opened] == [True]


# --- every envelope type --------------------------------------------------------------------------


async def test_each_envelope_type_reaches_its_listener_and_its_ack_comes_back(
    slack: SlackEmulator, app: SocketApp
) -> None:
    ws = slack.workspace
    driver = SlackDriver.socket(slack)
    assert driver.transport == "socket"

    command = await driver.acommand("/deploy", "checkout", user="U_ALICE", channel="general")
    assert command.status_code == 200
    assert command.headers["content-type"].startswith("application/json")
    assert command.json() == {"response_type": "ephemeral", "text": "deploying checkout"}
    [reply] = ws.ephemeral_messages(channel="general", user="U_ALICE")
    assert reply.text == "deploying checkout"  # Slack shows a slash command's ack payload

    ts = post_button_message(ws)
    event = await driver.aevent(ws.add_reaction("U_BOB", "general", ts, "eyes"))
    assert event.status_code == 200 and event.content == b"" and event.text == ""

    click = await driver.ainteractive(
        driver.block_action_payload("U_ALICE", "general", ts, "approve", "rel-1")
    )
    assert click.status_code == 200 and click.content == b""

    values = {"title_block": {"title": {"type": "plain_text_input", "value": " "}}}
    submission = await driver.ainteractive(driver.view_submission_payload("U_ALICE", MODAL_CALLBACK, values))
    assert submission.status_code == 200
    assert submission.json() == {"response_action": "errors", "errors": {"title_block": "A title, please"}}

    assert [kind for kind, _ in app.handled] == ["command", "event", "action", "view"]

    envelopes = ws.envelopes_sent()
    assert [e.type for e in envelopes] == ["slash_commands", "events_api", "interactive", "interactive"]
    assert [e.accepts_response_payload for e in envelopes] == [True, False, False, True]
    frames = [e.to_api() for e in envelopes]
    assert frames[0]["payload"]["command"] == "/deploy" and frames[0]["payload"]["text"] == "checkout"
    assert frames[0]["payload"]["is_enterprise_install"] == "false"  # the form's fields, as strings
    assert "retry_attempt" not in frames[0]  # only events_api envelopes carry the retry fields
    assert (frames[1]["retry_attempt"], frames[1]["retry_reason"]) == (0, "")
    assert frames[1]["payload"]["type"] == "event_callback"
    assert frames[2]["payload"]["type"] == "block_actions"

    acks = {a.envelope_id: a for a in ws.acks_received()}
    assert acks.keys() == {e.envelope_id for e in envelopes}
    assert acks[envelopes[0].envelope_id].payload == command.json()
    assert acks[envelopes[1].envelope_id].payload is None
    assert acks[envelopes[3].envelope_id].payload == submission.json()
    assert command.extensions["socket_mode"]["envelope_id"] == envelopes[0].envelope_id
    assert command.extensions["socket_mode"]["retry_attempt"] == 0


# --- disconnects ----------------------------------------------------------------------------------


async def test_refresh_requested_the_app_reconnects_and_delivery_continues(
    slack: SlackEmulator, app: SocketApp
) -> None:
    """As Slack does on a refresh, the old connection stays open for a while (``grace``): the client
    opens a new one and closes the old one by itself, and the next command goes to the new one."""
    ws = slack.workspace
    driver = SlackDriver.socket(slack)
    before = await driver.acommand("/deploy", "one")
    [first] = slack.socket_mode.open_connections()

    assert slack.socket_mode.disconnect("refresh_requested", grace=30) == [first]
    await eventually(lambda: not ws.socket_connections[0].is_open)  # closed by the app, long before 30 s

    after = await driver.acommand("/deploy", "two")
    assert after.status_code == 200, after.text
    assert after.json()["text"] == "deploying two"
    assert before.extensions["socket_mode"]["connection"] == first
    assert after.extensions["socket_mode"]["connection"] != first

    told = next(m for m in app.messages if m.get("type") == "disconnect")
    assert told["reason"] == "refresh_requested" and "host" in told["debug_info"]
    old, new = ws.socket_connections
    assert (old.disconnect_reason, old.closed_by) == ("refresh_requested", "app")
    assert new.is_open and slack.socket_mode.open_connections() == [new.id]
    assert len(ws.calls_to("apps.connections.open")) == 2  # the client asked for a new URL by itself
    assert [kind for kind, _ in app.handled] == ["command", "command"]


async def test_a_disconnect_that_closes_at_once_is_survived_too(slack: SlackEmulator, app: SocketApp) -> None:
    """Closed right after the message, slack_sdk's client reconnects twice (for the message and for
    the close): events sent meanwhile all arrive, those lost with the short-lived connection by
    redelivery."""
    ws = slack.workspace
    slack.socket_mode.ack_timeout = 1.0
    driver = SlackDriver.socket(slack)
    ts = post_button_message(ws)
    slack.socket_mode.disconnect("refresh_requested")  # grace=0: closed at once
    payloads = [ws.add_reaction(ws.add_user(f"user{i}").id, "general", ts, "eyes") for i in range(5)]
    responses = await asyncio.gather(*(driver.aevent(p) for p in payloads))
    assert [r.status_code for r in responses] == [200] * len(payloads)
    assert sorted(app.of_kind("event")) == sorted(p["event_id"] for p in payloads)
    assert ws.socket_connections[0].disconnect_reason == "refresh_requested"
    assert ws.socket_connections[0].closed_by == "slack"


async def test_a_burst_with_a_disconnect_in_the_middle_is_handled_once_each(
    slack: SlackEmulator, app: SocketApp
) -> None:
    """Events in flight on the dropped connection are redelivered (retry_attempt > 0) unless the app
    acked them on its new connection; the app de-duplicates by event id, so each is handled once."""
    ws = slack.workspace
    slack.socket_mode.ack_timeout = 1.0
    driver = SlackDriver.socket(slack)
    ts = post_button_message(ws)
    users = [ws.add_user(f"user{i}").id for i in range(30)]
    payloads = [ws.add_reaction(user, "general", ts, "eyes") for user in users]
    event_ids = [p["event_id"] for p in payloads]

    half = len(payloads) // 2
    sends = [asyncio.create_task(driver.aevent(p)) for p in payloads[:half]]
    await eventually(lambda: len(ws.socket_envelopes) == half)
    slack.socket_mode.disconnect("warning")
    sends += [asyncio.create_task(driver.aevent(p)) for p in payloads[half:]]
    responses = await asyncio.gather(*sends)

    assert [r.status_code for r in responses] == [200] * len(payloads)
    assert sorted(app.of_kind("event")) == sorted(event_ids)  # every event, once
    assert len(app.handled) == len(payloads) <= len(app.seen)  # duplicates (redeliveries) seen, not handled
    envelopes = ws.envelopes_sent("events_api")
    assert len({e.connection for e in envelopes}) >= 2, "the disconnect came after the burst"
    acks = ws.acks_received()
    assert [a for a in acks if a.duplicate] == []  # no envelope acked twice
    acked_at = {}
    for ack in acks:
        acked_at.setdefault(next(e.delivery_id for e in envelopes if e.envelope_id == ack.envelope_id), ack)
    assert acked_at.keys() == {r.extensions["socket_mode"]["delivery_id"] for r in responses}
    for envelope in envelopes:
        first_ack = acked_at[envelope.delivery_id]
        if envelope.retry_attempt:
            assert envelope.retry_reason == "timeout"
        assert envelope.sent_at is not None and envelope.sent_at <= first_ack.received_at, (
            "redelivered after it was acked"
        )
    redelivered = [e for e in envelopes if e.retry_attempt > 0]
    assert all(("event", e.payload["event_id"], e.retry_attempt) in app.seen for e in redelivered)


async def test_a_late_ack_gets_the_command_redelivered_and_the_app_dedups_it(
    slack: SlackEmulator, app: SocketApp
) -> None:
    """With slash commands redelivered too (Slack does that for events only), a command acked after
    the deadline comes again with retry_attempt 1; the app answers the retry, having seen the
    trigger id, and the delivery ends with that ack: handled once, no envelope acked twice."""
    ws = slack.workspace
    slack.socket_mode.ack_timeout = 0.5
    slack.socket_mode.redelivered_types = frozenset({"events_api", "slash_commands", "interactive"})
    app.hold["slow"] = asyncio.Event()
    driver = SlackDriver.socket(slack)

    sending = asyncio.create_task(driver.acommand("/deploy", "slow"))
    await eventually(lambda: len(ws.envelopes_sent("slash_commands")) == 2)
    response = await sending
    app.hold["slow"].set()  # now the first delivery acks too, late
    first, retry = ws.envelopes_sent("slash_commands")
    await eventually(lambda: len(ws.acks_received(first.envelope_id)) == 1)

    assert response.status_code == 200 and response.json()["text"] == "deploying slow"
    assert response.extensions["socket_mode"]["envelope_id"] == retry.envelope_id
    assert (retry.retry_attempt, retry.retry_reason, retry.delivery_id) == (1, "timeout", first.envelope_id)
    assert retry.to_api()["retry_attempt"] == 1
    assert [kind for kind, _ in app.handled] == ["command"]
    assert [retry_num for _, _, retry_num in app.seen] == [0, 1]
    [late] = ws.acks_received(first.envelope_id)
    assert not late.duplicate and not late.late  # the delivery had been acked by its retry
    assert len(ws.responses(first.payload["response_url"])) == 1  # the reply is shown once


async def test_a_command_not_acked_in_time_ends_unacknowledged_by_default(
    slack: SlackEmulator, app: SocketApp
) -> None:
    ws = slack.workspace
    slack.socket_mode.ack_timeout = 0.3
    app.hold["stuck"] = asyncio.Event()
    response = await SlackDriver.socket(slack).acommand("/deploy", "stuck")
    assert response.status_code == 504 and "did not ack it in time" in response.text
    assert len(ws.envelopes_sent("slash_commands")) == 1  # not redelivered
    app.hold["stuck"].set()
    await eventually(lambda: len(ws.acks_received()) == 1)
    assert ws.acks_received()[0].late
    assert ws.ephemeral_messages() == []  # Slack ignores a late ack's reply


# --- apps.connections.open -------------------------------------------------------------------------


async def test_apps_connections_open_needs_the_app_level_token(slack: SlackEmulator) -> None:
    ws = slack.workspace
    client = AsyncWebClient(base_url=slack.api_url)

    opened = await client.apps_connections_open(app_token=slack.app_token)
    assert opened["url"].startswith(f"ws://127.0.0.1:{slack.server.port}/link/?ticket=")
    assert opened["url"].endswith(f"&app_id={APP_ID}")

    with pytest.raises(SlackApiError) as bot_token:
        await client.apps_connections_open(app_token=slack.bot_token)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as unknown:
        await client.apps_connections_open(app_token="xapp-1-A0001-1-other")
    assert unknown.value.response["error"] == "invalid_auth"
    async with httpx.AsyncClient() as http:
        no_token = (await http.post(f"{slack.api_url}apps.connections.open")).json()
        in_body = (
            await http.post(f"{slack.api_url}apps.connections.open", data={"token": slack.app_token})
        ).json()
    assert no_token == {"ok": False, "error": "not_authed"}
    assert in_body == {"ok": False, "error": "not_authed"}  # the header only, says Slack
    bot, other, missing, body = take_violations(ws)
    assert bot.startswith("apps.connections.open: ") and "not the bot token" in bot
    assert "is not the app-level token" in other and "no token" in missing
    assert "in the Authorization header, not as an argument" in body

    with pytest.raises(SlackApiError) as app_token_elsewhere:
        await AsyncWebClient(token=slack.app_token, base_url=slack.api_url).chat_postMessage(
            channel="C0001", text="hi"
        )
    assert app_token_elsewhere.value.response["error"] == "not_allowed_token_type"
    assert take_violations(ws) == [
        "chat.postMessage: the app-level token (xapp-…) only opens Socket Mode connections: use the bot token"
    ]


# --- the protocol, with a bare websocket client ----------------------------------------------------


async def open_url(slack: SlackEmulator) -> str:
    opened = await AsyncWebClient(base_url=slack.api_url).apps_connections_open(app_token=slack.app_token)
    return str(opened["url"])


async def next_frame(socket: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await socket.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    frame: dict[str, Any] = json.loads(message.data)
    return frame


async def test_an_unacked_event_is_redelivered_on_the_next_connection(slack: SlackEmulator) -> None:
    ws = slack.workspace
    slack.socket_mode.ack_timeout = 0.3
    payload = ws.add_reaction("U_BOB", "general", post_button_message(ws), "eyes")
    async with aiohttp.ClientSession() as session:
        delivery = slack.socket_mode.deliver("events_api", payload)  # waits for a connection
        first = await session.ws_connect(await open_url(slack))
        assert (await next_frame(first))["type"] == "hello"
        sent = await next_frame(first)
        assert (sent["type"], sent["payload"], sent["retry_attempt"]) == ("events_api", payload, 0)
        await first.close()  # in flight, never acked

        second = await session.ws_connect(await open_url(slack))
        assert (await next_frame(second))["num_connections"] == 1
        again = await next_frame(second)  # once the ack deadline passed
        assert again["envelope_id"] != sent["envelope_id"] and again["payload"] == payload
        assert (again["retry_attempt"], again["retry_reason"]) == (1, "timeout")
        await second.send_json({"envelope_id": again["envelope_id"]})
        outcome = await delivery.wait(5)
        await second.close()

    assert outcome.acked and outcome.envelope.retry_attempt == 1
    await eventually(lambda: not any(c.is_open for c in ws.socket_connections))
    first_record, second_record = ws.socket_connections
    assert (first_record.closed_by, second_record.closed_by) == ("app", "app")
    assert [e.connection for e in ws.envelopes_sent()] == [first_record.id, second_record.id]


async def test_an_ack_on_another_connection_counts_and_stops_redelivery(slack: SlackEmulator) -> None:
    ws = slack.workspace
    slack.socket_mode.ack_timeout = 0.3
    payload = ws.add_reaction("U_BOB", "general", post_button_message(ws), "eyes")
    async with aiohttp.ClientSession() as session:
        old = await session.ws_connect(await open_url(slack))
        await next_frame(old)
        delivery = slack.socket_mode.deliver("events_api", payload)
        sent = await next_frame(old)
        # the old connection stays open until twice the ack deadline has passed
        slack.socket_mode.disconnect("refresh_requested", grace=2 * slack.socket_mode.ack_timeout)
        assert (await next_frame(old))["reason"] == "refresh_requested"
        new = await session.ws_connect(await open_url(slack))
        assert (await next_frame(new))["num_connections"] == 1  # the told one does not count
        await new.send_json({"envelope_id": sent["envelope_id"]})
        outcome = await delivery.wait(5)
        assert (await old.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE  # the deadline is past
        await new.close()

    assert outcome.acked and outcome.ack is not None and outcome.ack.connection == ws.socket_connections[1].id
    assert len(ws.envelopes_sent()) == 1


async def test_commands_need_an_open_connection(slack: SlackEmulator) -> None:
    ws = slack.workspace
    form = {"command": "/deploy", "text": "x", "response_url": ws.new_response_url("C0001", "U_ALICE")}
    delivery = slack.socket_mode.deliver("slash_commands", form)
    outcome = delivery.result(timeout=1)
    assert (outcome.acked, outcome.failure) == (False, "no_connection")
    assert ws.envelopes_sent() == []
    with pytest.raises(TimeoutError):
        await SlackDriver.socket(slack, timeout=0.2).acommand("/deploy", "x")


async def test_protocol_violations_are_recorded(slack: SlackEmulator) -> None:
    ws = slack.workspace
    url = await open_url(slack)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url.replace("ticket=", "ticket=forged"))
        assert refused.value.status == 403
        socket = await session.ws_connect(url)
        await next_frame(socket)
        await socket.send_json({"envelope_id": "never-sent"})
        await socket.send_str("hello?")
        await eventually(lambda: len(ws.violations) == 3)
        await socket.close()
    assert take_violations(ws) == [
        "socket mode: websocket opened with a ticket apps.connections.open did not issue",
        "socket mode: ack for an envelope never sent: 'never-sent'",
        "socket mode: the app sent a frame that is not an ack: 'hello?'",
    ]


async def test_too_many_websockets(slack: SlackEmulator) -> None:
    ws = slack.workspace
    slack.socket_mode.max_connections = 1
    async with aiohttp.ClientSession() as session:
        first = await session.ws_connect(await open_url(slack))
        await next_frame(first)
        second = await session.ws_connect(await open_url(slack))
        told = await next_frame(second)
        assert (told["type"], told["reason"]) == ("disconnect", "too_many_websockets")
        assert (await second.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
        await first.close()
    assert [c.disconnect_reason for c in ws.socket_connections] == [None, "too_many_websockets"]


# --- what only HTTP can express -----------------------------------------------------------------------


async def test_http_only_requests_fail_clearly_and_retries_map_to_retry_attempt(
    slack: SlackEmulator, app: SocketApp
) -> None:
    ws = slack.workspace
    driver = SlackDriver.socket(slack)
    with pytest.raises(SocketModeUnsupported, match="signing is HTTP-only"):
        driver.signed_headers(b"{}")
    with pytest.raises(SocketModeUnsupported, match="url_verification"):
        await driver.asend(driver.sign(b'{"type": "url_verification", "challenge": "c"}', "application/json"))
    with pytest.raises(SocketModeUnsupported, match="not a Slack payload"):
        await driver.asend(driver.sign(b"\xff" * 10, "application/json"))
    with pytest.raises(SocketModeUnsupported, match="signatures exist only over HTTP"):
        forged = driver.sign(b"{}", "application/json", {"X-Slack-Signature": "v0=00"})
        await driver.asend(forged)

    payload = ws.add_reaction("U_BOB", "general", post_button_message(ws), "eyes")
    response = await driver.aevent(payload, retry_num=2)
    assert response.status_code == 200
    [envelope] = ws.envelopes_sent()
    assert (envelope.retry_attempt, envelope.retry_reason) == (2, "timeout")
    assert app.seen == [("event", payload["event_id"], 2)]  # Bolt shows it as X-Slack-Retry-Num
