"""``bot.socket_mode``'s checks of what arrives over the websocket, without a connection: the
envelope checks beside HTTP's, and frames that are no envelope at all."""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.socket_mode import Envelopes, _ack, _Client, envelope_problem
from bot.telemetry import Telemetry
from bot.web import MAX_BODY


def problem(type: str, payload: Any) -> str | None:
    message = {"envelope_id": "e-1", "type": type, "payload": payload, "accepts_response_payload": False}
    return envelope_problem(message, json.dumps(message))


def test_good_envelopes_pass() -> None:
    event = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "reaction_added"}}
    assert problem("events_api", event) is None
    assert problem("slash_commands", {"command": "/incident", "text": "help"}) is None
    assert problem("slash_commands", {"text": "no command field"}) is None  # Bolt answers it (as HTTP)
    assert problem("interactive", {"type": "block_actions", "actions": [{"action_id": "a"}]}) is None


def test_the_checks_are_https() -> None:
    assert problem("events_api", {"event": {}}) == "expected a JSON object with a type"
    assert problem("interactive", {"type": "block_actions", "team": "T1"}) == "team must be an object"
    assert problem("slash_commands", {"command": " /incident"}) == "command must start with /"
    assert (
        problem("slash_commands", {"command": "/incident", "text": 3})
        == "slash command fields must be strings"
    )
    assert problem("events_api", "text") == "payload must be a JSON object"
    assert problem("hello_again", {}) == "unknown envelope type 'hello_again'"


def test_size_is_counted_in_utf8_bytes_and_surrogates_are_not_utf8() -> None:
    message = {"envelope_id": "e", "type": "slash_commands", "payload": {"command": "/incident"}}
    assert envelope_problem(message, "é" * (MAX_BODY // 2 + 1)) == "payload too large"
    assert envelope_problem(message, "é" * (MAX_BODY // 2 - 1)) is None
    lone = {
        "envelope_id": "e",
        "type": "slash_commands",
        "payload": {"command": "/incident", "text": "\udc80"},
    }
    assert envelope_problem(lone, json.dumps(lone)) == "not UTF-8"
    pair = {"envelope_id": "e", "type": "slash_commands", "payload": {"command": "/incident", "text": "😀"}}
    assert "\\ud83d" in json.dumps(pair) and envelope_problem(pair, json.dumps(pair)) is None


@pytest.mark.parametrize("frame", ["not json", "[1, 2]", '{"envelope_id": ', '"a string"'])
async def test_a_frame_that_is_not_a_json_object_is_counted_and_dropped(
    frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = Telemetry()
    app = SimpleNamespace(bolt=None, deps=SimpleNamespace(telemetry=telemetry))
    client = _Client(Envelopes(app), app_token="xapp-1-test", web_client=AsyncWebClient())  # type: ignore[arg-type]
    try:
        await client.message_queue.put(frame)
        with caplog.at_level(logging.WARNING, "bot.socket_mode"):
            await client.process_message()
        assert telemetry.errors.labels("malformed")._value.get() == 1
        assert "not a JSON object" in caplog.text
        assert not client.in_flight
    finally:
        await client.close()


class FlakyClient:
    """A client whose connection is gone for its first ``failures`` sends."""

    def __init__(self, failures: int) -> None:
        self.failures, self.sent, self.closed = failures, [], False

    async def send_message(self, text: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("Cannot write to closing transport")
        self.sent.append(json.loads(text))


async def test_an_ack_whose_connection_went_goes_out_on_the_next_one() -> None:
    client = FlakyClient(failures=3)
    await _ack(client, "e-1", {"text": "hi"}, deadline=time.monotonic() + 3)  # type: ignore[arg-type]
    assert client.sent == [{"envelope_id": "e-1", "payload": {"text": "hi"}}]


async def test_an_ack_is_given_up_at_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    client = FlakyClient(failures=1000)
    with caplog.at_level(logging.WARNING, "bot.socket_mode"):
        await _ack(client, "e-2", None, deadline=time.monotonic() + 0.2)  # type: ignore[arg-type]
    assert client.sent == [] and "envelope e-2 not acked" in caplog.text
