"""Socket Mode itself (``bot/socket_mode.py``): envelopes checked before Bolt as HTTP checks requests,
the service routes served beside the websocket, a burst that survives reconnections, and
``cmdcenter socket`` as a real process. (Every other e2e test runs over Socket Mode too.)"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.db.models import ProcessedEvent
from bot.sandbox.slack.driver import SlackDriver
from bot.sandbox.slack.emulator import SlackEmulator
from bot.web import MAX_BODY
from tests.e2e.test_incident import channel_of, declare
from tests.e2e.test_restart import _free_port, start_bot
from tests.harness import (
    BotHarness,
    drop_test_databases,
    eventually,
    running_bot,
    test_database_url,
    wait_until,
)

pytestmark = pytest.mark.socket_only


def metric(bot: BotHarness, name: str) -> float:
    """A sample of the bot's /metrics (0 when absent)."""
    for line in httpx.get(f"{bot.url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


MALFORMED = 'cmdcenter_errors_total{kind="malformed"}'


def test_the_service_routes_are_served_beside_the_websocket(bot: BotHarness) -> None:
    assert httpx.get(f"{bot.url}/healthz").json() == {"status": "ok", "database": "ok"}
    assert httpx.post(f"{bot.url}/slack/events", content=b"{}").status_code == 404  # Slack uses the websocket
    bot.reply_after("/incident", "help")
    message, _ = bot.ws.post_user_message("U_BOB", "general", "hello")
    assert bot.driver.event(bot.ws.add_reaction("U_ALICE", "general", message.ts, "eyes")).status_code == 200
    assert metric(bot, 'cmdcenter_requests_total{kind="command"}') == 1
    assert metric(bot, 'cmdcenter_requests_total{kind="event"}') == 1
    assert metric(bot, 'cmdcenter_ack_seconds_count{kind="command"}') == 1
    assert metric(bot, 'cmdcenter_ack_seconds_count{kind="event"}') == 1
    assert metric(bot, MALFORMED) == 0


def _command(**fields: Any) -> dict[str, Any]:
    return (
        {"command": "/incident", "text": "declare sev3 Bad", "user_id": "U_ALICE", "channel_id": "C0001"}
        | {
            "response_url": "",
            "trigger_id": "1.2.bad",
        }
        | fields
    )


def _event(event: Any) -> dict[str, Any]:
    return {"type": "event_callback", "event_id": "EvBad", "team_id": "T0001", "event": event}


BAD_ENVELOPES: dict[str, tuple[str, Any]] = {
    "oversized": ("events_api", _event({"type": "message", "text": "x" * (MAX_BODY + 1)})),
    "lone surrogate (not UTF-8)": ("slash_commands", _command(text="declare sev3 \udc80")),
    "event without a type": ("events_api", _event({"text": "no type"})),
    "event not an object": ("events_api", _event("reaction_added")),
    "event_id not a string": ("events_api", _event({"type": "reaction_added"}) | {"event_id": 7}),
    "payload not an object": ("events_api", ["event_callback"]),
    "interaction without a type": ("interactive", {"user": {"id": "U_ALICE"}}),
    "interaction user not an object": ("interactive", {"type": "block_actions", "user": "U_ALICE"}),
    "interaction actions not objects": ("interactive", {"type": "block_actions", "actions": ["go"]}),
    "command without its slash": ("slash_commands", _command(command="incident")),
    "command field not a string": ("slash_commands", _command(text=["declare", "sev1"])),
}


@pytest.mark.parametrize("case", list(BAD_ENVELOPES))
def test_a_bad_envelope_is_acked_empty_counted_and_never_reaches_bolt(
    bot: BotHarness, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    dispatched: list[dict[str, Any]] = []
    dispatch = bot.app.bolt.async_dispatch

    async def spy(request: Any) -> Any:
        dispatched.append(request.body)
        return await dispatch(request)

    monkeypatch.setattr(bot.app.bolt, "async_dispatch", spy)
    kind, payload = BAD_ENVELOPES[case]
    outcome = slack.socket_mode.deliver(kind, payload).result(timeout=10)
    assert outcome.acked and outcome.ack is not None and outcome.ack.payload is None
    assert dispatched == []
    assert metric(bot, MALFORMED) == 1
    assert bot.rows(ProcessedEvent) == [] and bot.incidents() == []
    # the connection is still there and the next envelope goes through
    assert "Open incidents" in bot.command("/incident", "list").text
    assert len(dispatched) == 1
    assert [c.id for c in bot.ws.socket_connections] == slack.socket_mode.open_connections()


def test_an_envelope_at_the_size_limit_is_handled(bot: BotHarness, slack: SlackEmulator) -> None:
    """The limit is HTTP's (``MAX_BODY``), counted on the frame: a large event under it is handled."""
    message, _ = bot.ws.post_user_message("U_BOB", "general", "hello")
    payload = bot.ws.add_reaction("U_ALICE", "general", message.ts, "eyes")
    payload["padding"] = "x" * (MAX_BODY - 4_000)
    assert slack.socket_mode.deliver("events_api", payload).result(timeout=10).acked
    wait_until(lambda: [r.status for r in bot.rows(ProcessedEvent)] == ["done"], message="the event handled")
    assert metric(bot, MALFORMED) == 0


# --- a burst through reconnections ----------------------------------------------------------------


def test_a_burst_through_a_refresh_and_an_abrupt_close_loses_nothing_and_doubles_nothing(
    bot: BotHarness, slack: SlackEmulator
) -> None:
    """Slash commands and events sent together while Slack asks for a refresh and then drops the
    connection: every command is acked and answered once and runs once; every event is recorded
    once and makes one timeline entry; Slack's redeliveries (``retry_attempt`` > 0) are answered
    from the inbox."""
    ws, socket_mode = bot.ws, slack.socket_mode
    incident_id = declare(bot, "sev2 Burst target")
    channel = channel_of(bot, incident_id)
    messages = [ws.post_user_message("U_ALICE", channel, f"burst message {n:02d}")[0] for n in range(36)]
    events = [ws.add_reaction("U_BOB", channel, m.ts, "memo") for m in messages]
    titles = [f"Burst declaration {n:02d}" for n in range(12)]
    socket_mode.ack_timeout = 1.0  # what Slack redelivers comes back sooner

    async def burst() -> list[httpx.Response]:
        sends: list[asyncio.Task[httpx.Response]] = []
        for n, event in enumerate(events):
            sends.append(asyncio.create_task(bot.driver.aevent(event)))
            if n % 3 == 0:
                text = f"declare sev3 {titles[n // 3]}"
                sends.append(
                    asyncio.create_task(bot.driver.acommand("/incident", text, channel="incident-bridge"))
                )
            if n == 10:
                socket_mode.disconnect("refresh_requested", grace=1.0)
            if n == 22:
                await eventually(lambda: bool(socket_mode.open_connections()))
                socket_mode.disconnect(None)  # closed at once, without a word
            await asyncio.sleep(0.01)
        return await asyncio.gather(*sends)

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses]
    # Slack's retries of some of them, as if their acks had been lost: answered from the inbox
    retries = [
        socket_mode.deliver("events_api", e, retry_attempt=1, retry_reason="timeout") for e in events[:5]
    ]
    assert all(r.result(timeout=10).acked for r in retries)

    def done() -> bool:
        rows = bot.rows(ProcessedEvent)
        expected = len(events) + len(titles) + 1  # and the first declaration
        return len(rows) == expected and all(r.status == "done" for r in rows)

    wait_until(done, timeout=30, message="every event and command recorded and done")
    bot.settle(timeout=30)
    rows = bot.rows(ProcessedEvent)
    assert sorted(r.event_id for r in rows if r.event_id.startswith("Ev")) == sorted(
        e["event_id"] for e in events
    )
    commands = socket_mode.ws.envelopes_sent("slash_commands")
    assert {r.event_id for r in rows if r.event_id.startswith("cmd:")} == {
        f"cmd:{e.payload['trigger_id']}" for e in commands
    }
    declared = Counter(i.title for i in bot.incidents())
    assert declared == Counter({"Burst target": 1} | dict.fromkeys(titles, 1))
    for delivery in {e.delivery_id: e for e in commands}.values():
        assert len(ws.responses(delivery.payload["response_url"])) == 1  # answered once
    entries = [e for e in bot.timeline(incident_id) if e.kind == "message"]
    assert Counter(e.source_ts for e in entries) == Counter({m.ts: 1 for m in messages})

    sent = ws.envelopes_sent("events_api")
    redelivered = [e for e in sent if e.retry_attempt > 0]
    assert len(redelivered) >= 5 and all(e.to_api()["retry_attempt"] > 0 for e in redelivered)
    assert not [a for a in ws.acks_received() if a.duplicate]
    connections = ws.socket_connections
    assert len(connections) >= 3
    assert connections[0].disconnect_reason == "refresh_requested"
    assert any(c.closed_by == "slack" and c.disconnect_reason is None for c in connections[1:])
    assert slack.socket_mode.open_connections() == [connections[-1].id]


def test_a_shutdown_acks_the_envelope_in_flight_then_closes_the_websocket(
    tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commands._runner import CommandRunner

    run = CommandRunner.run

    async def slow_run(self: CommandRunner, inv: Any, respond: Any, action: Any, **kwargs: Any) -> None:
        async def slow() -> Any:
            await asyncio.sleep(0.5)
            return await action()

        await run(self, inv, respond, slow, **kwargs)

    monkeypatch.setattr(CommandRunner, "run", slow_run)
    with running_bot(tmp_path, slack, settings={"reply_in_ack_within": 2.0}) as bot:
        answers: list[httpx.Response] = []
        sending = threading.Thread(target=lambda: answers.append(bot.command("/incident", "list")))
        sending.start()
        wait_until(lambda: bot.ws.envelopes_sent("slash_commands"), message="the command on its way")
        bot.server.stop()  # while the listener waits for the reply to put in the ack
        sending.join(timeout=10)
        assert "Open incidents" in answers[0].text  # acked, with the reply
        with bot.ws.lock:
            assert [(c.is_open, c.closed_by) for c in bot.ws.socket_connections] == [(False, "app")]


# --- cmdcenter socket, a real process --------------------------------------------------------------


def test_cmdcenter_socket_serves_healthz_answers_commands_and_stops_on_sigterm(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    ws = slack.workspace
    port = _free_port()
    process = start_bot(tmp_path, slack, port, test_database_url(tmp_path), transport="socket")
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert (health.status_code, health.json()) == (200, {"status": "ok", "database": "ok"})
        response = SlackDriver.socket(slack).command("/incident", "list", channel="incident-bridge")
        assert response.status_code == 200 and "Open incidents" in json.dumps(response.json())
        assert ws.ack_replies  # shown as the command's reply
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'cmdcenter_requests_total{kind="command"} 1.0' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        drop_test_databases()
    assert code == -signal.SIGTERM  # uvicorn stops gracefully, then dies of the signal it was sent
    assert "Application shutdown complete" in next(tmp_path.glob("bot-*.log")).read_text()
    with ws.lock:
        assert [(c.is_open, c.closed_by) for c in ws.socket_connections] == [(False, "app")]
