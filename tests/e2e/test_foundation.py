"""Issue 2: signed requests in, help out, audit rows, signature checks, event idempotency, health."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.db.models import ProcessedEvent
from bot.sandbox.slack.emulator import SlackEmulator
from tests.harness import BotHarness, running_bot, wait_until

COMMANDS = ["/incident", "/gonogo", "/rollback", "/prodstatus"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_acked_fast_and_answered(bot: BotHarness, command: str) -> None:
    started = time.monotonic()
    response = bot.driver.command(command, "help")
    assert response.status_code == 200
    assert time.monotonic() - started < 3.0  # Slack's limit; the benchmark measures the real figure
    reply = wait_until(lambda: bot.responses(), message="help reply")[-1]
    assert reply["response_type"] == "ephemeral"
    assert f"{command} " in json.dumps(reply)
    rows = wait_until(lambda: bot.audit(), message="an audit row")
    assert [(r.command, r.text, r.outcome, r.user_id) for r in rows] == [(command, "help", "ok", "U_ALICE")]


def test_a_reply_ready_at_once_comes_in_the_ack(bot: BotHarness) -> None:
    """As Slack allows: the ack's body is the reply, so no second request goes to the response_url."""
    response = bot.command("/incident", "list")
    assert response.headers["content-type"].startswith("application/json")
    reply = response.json()
    assert reply["response_type"] == "ephemeral" and "Open incidents" in json.dumps(reply)
    assert bot.responses() == [reply] and len(bot.ws.ack_replies) == 1  # shown once, from the ack
    rows = wait_until(lambda: bot.audit(), message="an audit row")  # written right after the answer
    assert [(r.command, r.text, r.outcome) for r in rows] == [("/incident", "list", "ok")]
    assert bot.rows(ProcessedEvent) == []  # read-only and answered in the ack: nothing to replay


def test_a_command_that_writes_is_recorded_before_its_ack_and_runs_once(bot: BotHarness) -> None:
    """A command with effects is in the inbox before Slack gets its 200; the same invocation again
    (its trigger id) is acked without running a second time."""
    first = bot.command("/incident", "declare sev3 Once only", trigger_id="T.dup.1")
    assert "Once only" in json.dumps(first.json())
    (row,) = bot.rows(ProcessedEvent)
    assert row.event_id == "cmd:T.dup.1" and row.status == "done"
    again = bot.command("/incident", "declare sev3 Once only", trigger_id="T.dup.1")
    assert again.text == ""
    bot.settle()
    assert len(bot.incidents()) == 1
    assert [r.text for r in bot.audit()] == ["declare sev3 Once only"]


def test_a_read_only_reply_finished_after_the_time_is_up_is_recorded_and_marked_done(
    tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read is slow and the time for the ack runs out: the command is recorded before the (empty)
    ack, answered through its response_url, and marked done: not left for the worker to replay."""
    import asyncio

    from commands._runner import CommandRunner

    run = CommandRunner.run

    async def slow_run(self: CommandRunner, inv: Any, respond: Any, action: Any, **kwargs: Any) -> None:
        async def slow() -> Any:
            await asyncio.sleep(0.3)
            return await action()

        await run(self, inv, respond, slow, **kwargs)

    monkeypatch.setattr(CommandRunner, "run", slow_run)
    with running_bot(tmp_path, slack, settings={"reply_in_ack_within": 0.05}) as bot:
        response = bot.command("/incident", "list", trigger_id="T.late.1")
        assert response.text == ""
        reply = wait_until(lambda: bot.responses(), message="the reply on the response_url")
        assert len(reply) == 1 and "Open incidents" in json.dumps(reply[0]) and not bot.ws.ack_replies
        wait_until(
            lambda: [(r.event_id, r.status) for r in bot.rows(ProcessedEvent)] == [("cmd:T.late.1", "done")],
            message="the command recorded, then marked done",
        )
        assert [(a.text, a.outcome) for a in bot.audit()] == [("list", "ok")]


def test_a_read_answered_in_the_ack_does_not_wait_for_its_audit_row(
    tmp_path: Path, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read's answer goes in the ack even when its audit row is slow to write; the row follows."""
    import asyncio

    from commands._runner import CommandRunner

    write = CommandRunner._write_audits

    async def slow_write(self: CommandRunner, *args: Any, **kwargs: Any) -> list[None]:
        await asyncio.sleep(0.5)
        return await write(self, *args, **kwargs)

    monkeypatch.setattr(CommandRunner, "_write_audits", slow_write)
    with running_bot(tmp_path, slack, settings={"reply_in_ack_within": 0.2}) as bot:
        response = bot.command("/incident", "list", trigger_id="T.audit.1")
        assert "Open incidents" in response.text and bot.audit() == []
        rows = wait_until(lambda: bot.audit(), message="the audit row, after the answer")
        assert [(r.command, r.text, r.outcome) for r in rows] == [("/incident", "list", "ok")]
        assert bot.rows(ProcessedEvent) == []


def test_a_reply_that_takes_longer_comes_through_the_response_url(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    """With no time allowed (``CMDCENTER_REPLY_IN_ACK_WITHIN=0``) every command acks at once, empty,
    and replies through its response_url; a slow reply (a hung /prodstatus source) does the same."""
    with running_bot(tmp_path, slack, settings={"reply_in_ack_within": 0}) as bot:
        response = bot.command("/incident", "list")
        assert response.text == ""
        reply = wait_until(lambda: bot.responses(), message="the reply on the response_url")[-1]
        assert "Open incidents" in json.dumps(reply) and not bot.ws.ack_replies


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_words_get_a_short_explanation(bot: BotHarness, command: str) -> None:
    reply = bot.reply_after(command, "frobnicate")
    text = json.dumps(reply)
    assert reply["response_type"] == "ephemeral" and "frobnicate" in text
    if command == "/incident":
        assert "Unknown sub-command" in text and "Usage" in text
    wait_until(lambda: [r for r in bot.audit() if r.outcome in ("usage", "refused")])


def _post(bot: BotHarness, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=5)


@pytest.mark.http_only
def test_bad_signature_is_refused_and_runs_nothing(bot: BotHarness) -> None:
    body = urlencode(
        {"command": "/incident", "text": "help", "user_id": "U_ALICE", "channel_id": "C0001"}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    forged = _post(bot, body, headers | bot.driver.signed_headers(body, secret="not-the-secret"))
    stale = _post(bot, body, headers | bot.driver.signed_headers(body, timestamp=int(time.time()) - 301))
    unsigned = _post(bot, body, headers)
    signed = bot.driver.signed_headers(body)
    garbled = _post(bot, body, headers | signed | {"X-Slack-Request-Timestamp": "soon"})
    assert [forged.status_code, stale.status_code, unsigned.status_code, garbled.status_code] == [401] * 4
    time.sleep(0.3)
    assert bot.audit() == []
    assert bot.responses() == []


def test_event_retries_are_processed_once(bot: BotHarness) -> None:
    message, _ = bot.ws.post_user_message("U_BOB", "general", "hello")
    envelope = bot.ws.add_reaction("U_ALICE", "general", message.ts, "eyes")
    responses = [
        bot.driver.event(envelope),
        bot.driver.event(envelope, retry_num=1),
        bot.driver.event(envelope, retry_num=2),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200]
    rows = wait_until(
        lambda: [r for r in bot.rows(ProcessedEvent) if r.status == "done"], message="the event processed"
    )
    assert [r.event_id for r in rows] == [envelope["event_id"]]


@pytest.mark.http_only
def test_url_verification_challenge(bot: BotHarness) -> None:
    response = bot.driver.url_verification("abc123")
    assert response.status_code == 200
    assert "abc123" in response.text


def test_healthz_and_metrics(bot: BotHarness) -> None:
    health = httpx.get(f"{bot.url}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok"}
    bot.reply_after("/incident", "help")
    metrics = httpx.get(f"{bot.url}/metrics").text
    assert 'cmdcenter_requests_total{kind="command"} 1.0' in metrics
    assert "cmdcenter_ack_seconds_bucket" in metrics
    assert "cmdcenter_outbox_pending" in metrics


def test_healthz_503_when_database_unreachable(tmp_path: Path, slack: SlackEmulator) -> None:
    with running_bot(tmp_path, slack) as bot:
        bot.deps.db.url  # noqa: B018 - the harness's database works...
        from bot.db.engine import Database

        bot.deps.db = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")  # ...this one cannot
        response = httpx.get(f"{bot.url}/healthz", timeout=10)
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"


@pytest.mark.http_only
def test_oversized_body_is_refused(bot: BotHarness) -> None:
    body = b"x" * (600 * 1024)
    response = _post(bot, body, {"Content-Type": "application/json"} | bot.driver.signed_headers(body))
    assert response.status_code == 413


def test_a_read_whose_audit_row_cannot_be_written_is_answered_and_the_loss_logged(
    bot: BotHarness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read's audit row is queued after its answer: when the database cannot take it, the user
    still has the answer, and the lost row is logged (with who ran what)."""
    from bot.errors import Unavailable

    def unreachable(**_: Any) -> Any:
        raise Unavailable("the database is unreachable")

    monkeypatch.setattr(bot.deps.db, "session", unreachable)
    reply = bot.command("/incident", "list").json()
    assert "temporarily unavailable" in json.dumps(reply)
    wait_until(
        lambda: "audit row not written (database unavailable): U_ALICE /incident unavailable" in caplog.text,
        message="the lost audit row logged",
    )


def test_commands_answer_temporarily_unavailable_without_the_database(bot: BotHarness) -> None:
    from bot.db.engine import Database

    working = bot.deps.db
    bot.deps.db = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    started = time.monotonic()
    reply = bot.reply_after("/incident", "list")
    assert time.monotonic() - started < 3.0
    text = json.dumps(reply)
    assert "temporarily unavailable" in text and "Traceback" not in text
    assert reply["response_type"] == "ephemeral"
    bot.deps.db = working  # the database is back: the bot answers normally again
    assert "Open incidents" in json.dumps(bot.reply_after("/incident", "list"))
