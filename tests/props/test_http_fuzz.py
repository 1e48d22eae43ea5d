"""Arbitrary input over the real transports: never a 5xx (over Socket Mode: never an envelope left
unacked), never an unexpected error, always an answer. Runs over HTTP and over Socket Mode; the
tests of HTTP's own layer (bodies that are no Slack payload, signature headers) over HTTP only."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import BotHarness, wait_until

pytestmark = pytest.mark.transports

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
COMMANDS = ["/incident", "/gonogo", "/rollback", "/prodstatus"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(command=st.sampled_from(COMMANDS), text=st.text(max_size=200))
def test_any_command_text_gets_a_reply_and_no_error(bot: BotHarness, command: str, text: str) -> None:
    before, audited = len(bot.responses()), len(bot.audit())
    response = bot.driver.command(command, text, channel="general")
    assert response.status_code == 200
    if command == "/incident" and text.strip().lower().startswith("declare") and len(text.split()) == 1:
        return  # opens the modal instead of replying
    wait_until(lambda: len(bot.responses()) > before, timeout=10, message=f"a reply to {command} {text!r}")
    # A read's audit row follows its answer: wait for it too, so an error is not missed.
    rows = wait_until(lambda: len(bot.audit()) > audited and bot.audit(), message="the audit row")
    assert all(r.outcome != "error" for r in rows), [r.detail for r in rows]


def send_raw(bot: BotHarness, envelope_type: str, payload: Any) -> int:
    """``payload`` as Slack would send it, unchecked (signed over HTTP; an envelope over Socket Mode,
    where an ack is a 200 and no ack in time a 504)."""
    if bot.transport == "socket":
        accepts = None if isinstance(payload, dict) else False  # None: the emulator decides, as Slack
        outcome = bot.slack.socket_mode.deliver(envelope_type, payload, accepts_response_payload=accepts)
        return 200 if outcome.result(timeout=10).acked else 504
    if envelope_type == "events_api":
        body, content_type = json.dumps(payload).encode(), "application/json"
    else:
        body, content_type = (
            urlencode({"payload": json.dumps(payload)}).encode(),
            "application/x-www-form-urlencoded",
        )
    headers = {"Content-Type": content_type} | bot.driver.signed_headers(body)
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10).status_code


@FUZZ
@given(event=json_values, envelope_type=st.sampled_from(["event_callback", "app_rate_limited", "other"]))
def test_any_event_json_is_answered_without_5xx(bot: BotHarness, event: object, envelope_type: str) -> None:
    payload = {"type": envelope_type, "event_id": "EvFuzz", "event": event, "team_id": "T0001"}
    assert send_raw(bot, "events_api", payload) < 500


@FUZZ
@given(payload=json_values)
def test_any_interactivity_payload_is_answered_without_5xx(bot: BotHarness, payload: object) -> None:
    assert send_raw(bot, "interactive", payload) < 500


@pytest.mark.http_only
def test_garbage_bodies_are_refused_cleanly(bot: BotHarness) -> None:
    for body, ctype in (
        (b"\xff\xfe\x00", "application/json"),
        (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    ):
        headers = {"Content-Type": ctype} | bot.driver.signed_headers(body)
        response = httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10)
        assert response.status_code < 500


header_values = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30
)  # what an HTTP header can carry (no surrounding blanks: httpx refuses to send those)


@pytest.mark.http_only
@FUZZ
@given(timestamp=header_values, signature=header_values)
def test_any_signature_headers_are_refused_without_5xx(
    bot: BotHarness, timestamp: str, signature: str
) -> None:
    """Forged or garbled ``X-Slack-Request-Timestamp`` / ``X-Slack-Signature`` (a timestamp that is not
    a number once answered 500): 401, and nothing runs."""
    body = b"command=%2Fincident&text=help&user_id=U_ALICE&channel_id=C0001"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    response = httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10)
    assert response.status_code == 401
    assert bot.audit() == []
