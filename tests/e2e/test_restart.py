"""The bot killed with SIGKILL while side effects are pending delivers each of them once after restart.

The bot runs as a real process: ``cmdcenter serve``, or ``cmdcenter socket`` connected to the
emulator's Socket Mode, per the test's transport.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.sandbox.slack.driver import SlackDriver
from bot.sandbox.slack.emulator import SlackEmulator
from tests.harness import (
    BOT_TOKEN,
    SIGNING_SECRET,
    current_transport,
    drop_test_databases,
    test_database_url,
    wait_until,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_bot(
    tmp_path: Path,
    slack: SlackEmulator,
    port: int,
    database_url: str,
    *,
    transport: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``cmdcenter serve`` (or ``socket``) on ``port``, once it answers /healthz (and, over Socket
    Mode, once its websocket to the emulator is open)."""
    mode = {"http": "serve", "socket": "socket"}[transport or current_transport()]
    env = os.environ | {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "CMDCENTER_CONFIG": str(tmp_path / "none.yaml"),
        "CMDCENTER_WORKER_INTERVAL": "0.1",
        "CMDCENTER_OUTBOX_BACKOFF": "0.2",
        "CMDCENTER_OUTBOX_LEASE": "2",
        **(extra_env or {}),
    }
    ws = slack.workspace
    with ws.lock:
        known = len(ws.socket_connections)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", mode, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / f"bot-{time.monotonic_ns()}.log").open("wb"),
    )
    wait_until(lambda: _healthy(port), timeout=30, message="the bot to start")
    if mode == "socket":

        def connected() -> bool:
            with ws.lock:
                return any(c.is_open for c in ws.socket_connections[known:])

        wait_until(connected, timeout=30, message="the bot's Socket Mode connection")
    return process


def bot_driver(slack: SlackEmulator, port: int) -> SlackDriver:
    """What reaches the bot started by ``start_bot`` on ``port`` over the test's transport."""
    if current_transport() == "socket":
        return SlackDriver.socket(slack)
    return SlackDriver(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, slack.workspace)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigkill_with_pending_items_delivers_each_once_after_restart(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    ws = slack.workspace
    port = _free_port()
    database_url = test_database_url(tmp_path)
    bot = start_bot(tmp_path, slack, port, database_url)
    driver = bot_driver(slack, port)
    ws.fail_next("conversations.create", status=200, error="internal_error", times=10_000)
    titles = [f"Outage number {n}" for n in range(5)]
    try:
        for title in titles:
            assert (
                driver.command("/incident", f"declare sev3 {title}", channel="incident-bridge").status_code
                == 200
            )
        # every declaration is stored (its channel creation has been attempted) before the kill
        wait_until(
            lambda: len({c.args.get("name") for c in ws.calls_to("conversations.create")}) >= 5,
            timeout=20,
            message="a channel attempt for each declaration",
        )
    finally:
        bot.send_signal(signal.SIGKILL)
        bot.wait(timeout=10)
    with ws.lock:
        assert not [c for c in ws.channels.values() if c.name.startswith("inc-")]
    ws.clear_faults()
    bot = start_bot(tmp_path, slack, port, database_url)
    try:

        def announced() -> list[str]:
            with ws.lock:
                return [m.text for m in ws.messages("incident-bridge") if "declared" in m.text]

        wait_until(lambda: len(announced()) >= 5, timeout=60, message="every announcement after restart")
        time.sleep(1.0)  # anything duplicated would arrive now
        texts = announced()
        for title in titles:
            assert sum(title in t for t in texts) == 1, (title, texts)
        with ws.lock:
            created = [c for c in ws.calls_to("conversations.create") if c.ok]
            channels = [c for c in ws.channels.values() if c.name.startswith("inc-")]
        assert len(created) == 5 and len(channels) == 5
    finally:
        bot.send_signal(signal.SIGTERM)
        bot.wait(timeout=10)
        drop_test_databases()


def test_a_command_recorded_but_never_started_is_run_after_restart(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    """The process died between recording a slash command and starting it: the worker runs it."""
    from datetime import UTC, datetime, timedelta

    from bot.db.models import ProcessedEvent
    from bot.inbox import command_key
    from tests.harness import running_bot

    with running_bot(tmp_path, slack, settings={"inbox_stale": 0.5}) as bot:
        url = bot.ws.new_response_url("C0001", "U_ALICE")
        body = {
            "command": "/incident",
            "text": "declare sev3 Lost in the crash",
            "user_id": "U_ALICE",
            "user_name": "alice",
            "channel_id": "C0001",
            "channel_name": "general",
            "team_id": "T0001",
            "trigger_id": "123.456.abc",
            "response_url": url,
            "api_app_id": "A0001",
        }

        async def record() -> None:
            async with bot.db.session() as session:
                session.add(
                    ProcessedEvent(
                        event_id=command_key("123.456.abc"),
                        event_type="command",
                        payload=body,
                        status="received",
                        received_at=datetime.now(UTC) - timedelta(seconds=5),
                    )
                )

        bot.call(record)
        (incident,) = wait_until(bot.incidents, message="the replayed declaration")
        assert incident.title == "Lost in the crash"
        wait_until(lambda: bot.ws.responses(url), message="the answer on the response_url")
        wait_until(lambda: [r.status for r in bot.rows(ProcessedEvent)] == ["done"])


def test_a_post_taken_over_from_a_dead_replica_is_not_repeated(tmp_path: Path, slack: SlackEmulator) -> None:
    """The replica died after Slack accepted its post but before recording it: the next one finds it."""
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa
    from sqlmodel import col

    from bot import chat_ops
    from bot.db.models import OutboxItem
    from bot.render import RenderedMessage
    from tests.harness import running_bot

    with running_bot(tmp_path, slack) as bot:
        with bot.ws.lock:
            channel = bot.ws.require_channel("incident-bridge").id
        bot.ws.post_message(
            channel,
            text="posted by the dead replica",
            metadata={"event_type": chat_ops.EVENT_TYPE, "event_payload": {"key": "dead-replica-post"}},
        )

        async def record_in_flight() -> None:
            # One transaction: the worker must never see the item before its (expired) lease, or it
            # would take it as a first delivery and post without looking.
            async with bot.db.session() as session:
                await chat_ops.post(
                    session,
                    key="dead-replica-post",
                    channel=channel,
                    message=RenderedMessage(text="posted by the dead replica"),
                )
                await session.execute(
                    sa.update(OutboxItem)
                    .where(col(OutboxItem.key) == "dead-replica-post")
                    .values(lease_owner="dead-replica", lease_until=datetime.now(UTC) - timedelta(seconds=1))
                )

        bot.call(record_in_flight)
        wait_until(lambda: [i.status for i in bot.outbox()] == ["done"], message="the item taken over")
        with bot.ws.lock:
            posts = [m for m in bot.ws.messages(channel) if m.text == "posted by the dead replica"]
        assert len(posts) == 1
        assert not bot.ws.calls_to("chat.postMessage")  # it looked (history) and did not post again


def _gc_collections(port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    (line,) = [
        line for line in text.splitlines() if line.startswith('python_gc_collections_total{generation="0"}')
    ]
    return int(float(line.split()[-1]))


def test_the_served_bot_collects_garbage_again_after_start_up(tmp_path: Path, slack: SlackEmulator) -> None:
    """``serve`` starts with the garbage collector off (start-up makes little garbage) and must turn it
    on again: commands served afterwards are followed by collections, and /metrics shows the process."""
    port = _free_port()
    bot = start_bot(tmp_path, slack, port, test_database_url(tmp_path))
    driver = bot_driver(slack, port)
    try:
        before = _gc_collections(port)
        for _ in range(20):
            assert driver.command("/incident", "list").status_code == 200
        assert _gc_collections(port) > before
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "process_resident_memory_bytes" in metrics
    finally:
        bot.send_signal(signal.SIGTERM)
        bot.wait(timeout=10)
        drop_test_databases()
