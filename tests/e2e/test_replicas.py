"""Issue 10: two `cmdcenter serve` replicas on one PostgreSQL database behave as one bot, and a replica
killed in the middle of a burst loses nothing and repeats nothing."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from bot.sandbox.slack.driver import SlackDriver
from bot.sandbox.slack.emulator import SlackEmulator
from tests.e2e.test_restart import _free_port, _healthy
from tests.harness import BOT_TOKEN, PG_ADMIN_URL, SIGNING_SECRET, wait_until

BURST = re.compile(r"burst message \d{3}")


def _pg_available() -> bool:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=2)
        await conn.close()

    try:
        asyncio.run(probe())
        return True
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False


pytestmark = [
    pytest.mark.skipif(
        not _pg_available(), reason="needs PostgreSQL at 127.0.0.1:5432 (trust auth, db test)"
    ),
    # Which replica gets a request is the load balancer's choice here; over Socket Mode, Slack picks
    # the connection (the newest, in the emulator), so a test cannot aim at a replica.
    pytest.mark.http_only,
]


class Replicas:
    def __init__(self, tmp_path: Path, slack: SlackEmulator) -> None:
        self.tmp_path, self.slack = tmp_path, slack
        self.name = f"cmdcenter_r_{os.getpid()}_{time.monotonic_ns() % 10**8}"
        self.url = f"postgresql://postgres@127.0.0.1:5432/{self.name}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self._admin(f'CREATE DATABASE "{self.name}"')

    def _admin(self, sql: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(PG_ADMIN_URL)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def query(self, sql: str) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.url)
            try:
                return list(await conn.fetch(sql))
            finally:
                await conn.close()

        return asyncio.run(run())

    def start(self, name: str) -> SlackDriver:
        port = self.ports.setdefault(name, _free_port())
        env = os.environ | {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "DATABASE_URL": self.url,
            "CMDCENTER_CONFIG": str(self.tmp_path / "none.yaml"),
            "CMDCENTER_WORKER_INTERVAL": "0.1",
            "CMDCENTER_OUTBOX_BACKOFF": "0.2",
            "CMDCENTER_OUTBOX_LEASE": "3",
            "CMDCENTER_INBOX_STALE": "2",
            "CMDCENTER_LOG_LEVEL": "WARNING",
        }
        log = (self.tmp_path / f"{name}-{time.monotonic_ns()}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        wait_until(lambda: _healthy(port), timeout=30, message=f"replica {name}")
        return self.driver(name)

    def driver(self, name: str) -> SlackDriver:
        return SlackDriver(
            f"http://127.0.0.1:{self.ports[name]}/slack/events", SIGNING_SECRET, self.slack.workspace
        )

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture
def replicas(tmp_path: Path, slack: SlackEmulator) -> Iterator[Replicas]:
    group = Replicas(tmp_path, slack)
    try:
        yield group
    finally:
        group.stop()


def _declare(driver: SlackDriver, title: str) -> None:
    assert driver.command("/incident", f"declare sev3 {title}", channel="incident-bridge").status_code == 200


def _announcements(ws: object) -> Counter[str]:
    with ws.lock:  # type: ignore[attr-defined]
        return Counter(m.text for m in ws.messages("incident-bridge") if "declared" in m.text)  # type: ignore[attr-defined]


def test_two_replicas_behave_as_one_bot(replicas: Replicas, slack: SlackEmulator) -> None:
    ws = slack.workspace
    a = replicas.start("a")
    b = replicas.start("b")
    for n in range(10):
        _declare(a if n % 2 else b, f"Replica outage {n}")
    wait_until(lambda: len(_announcements(ws)) == 10, timeout=60, message="ten announcements")
    (incident,) = [
        r for r in replicas.query("select id, channel_id, timeline_ts from incidents order by id")
    ][:1]
    channel = incident["channel_id"]
    message, _ = ws.post_user_message("U_ALICE", channel, "db failover started")
    envelope = ws.add_reaction("U_BOB", channel, message.ts, "memo")
    # Slack's first delivery lands on a, its retries on b (and on a again)
    assert a.event(envelope).status_code == 200
    assert b.event(envelope, retry_num=1).status_code == 200
    assert a.event(envelope, retry_num=2).status_code == 200
    wait_until(
        lambda: (
            replicas.query("select count(*) as n from timeline_entries where kind = 'message'")[0]["n"] == 1
        ),
        timeout=30,
    )
    time.sleep(1.5)  # anything done twice would show now
    assert all(count == 1 for count in _announcements(ws).values())
    assert replicas.query("select count(*) as n from processed_events where event_id like 'Ev%'")[0]["n"] == 1
    with ws.lock:
        thread = ws.thread(channel, incident["timeline_ts"])
    assert sum("db failover started" in m.text for m in thread) == 1
    undelivered = replicas.query("select count(*) as n from outbox where status <> 'done'")[0]["n"]
    assert undelivered == 0


def test_kill_a_replica_mid_burst_loses_nothing_and_repeats_nothing(
    replicas: Replicas, slack: SlackEmulator
) -> None:
    ws = slack.workspace
    a = replicas.start("a")
    b = replicas.start("b")
    _declare(b, "Burst target")
    wait_until(
        lambda: replicas.query("select timeline_ts from incidents where timeline_ts is not null"), timeout=30
    )
    channel = replicas.query("select channel_id from incidents")[0]["channel_id"]
    messages = [ws.post_user_message("U_ALICE", channel, f"burst message {n:03d}")[0] for n in range(200)]
    acked_events: list[str] = []
    acked_titles: list[str] = []
    lock = threading.Lock()

    def send_reactions(part: list[object]) -> None:
        for message in part:
            envelope = ws.add_reaction("U_BOB", channel, message.ts, "memo")  # type: ignore[attr-defined]
            try:
                response = a.event(envelope)
            except httpx.HTTPError:
                continue  # the replica died: Slack got no 200 and would retry elsewhere
            if response.status_code == 200:
                with lock:
                    acked_events.append(envelope["event_id"])

    def send_declarations() -> None:
        for n in range(20):
            title = f"Burst declaration {n:02d}"
            try:
                response = a.command("/incident", f"declare sev3 {title}", channel="incident-bridge")
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                with lock:
                    acked_titles.append(title)

    threads = [threading.Thread(target=send_reactions, args=(messages[i::4],)) for i in range(4)]
    threads.append(threading.Thread(target=send_declarations))
    for t in threads:
        t.start()
    wait_until(lambda: len(acked_events) >= 60, timeout=60, message="the burst under way")
    replicas.kill("a")
    for t in threads:
        t.join(timeout=60)
    replicas.start("a")  # restarted; b has been running all along

    recorded = {
        r["event_id"]
        for r in replicas.query("select event_id from processed_events where event_id like 'Ev%'")
    }
    assert set(acked_events) <= recorded  # every event Slack got a 200 for is in the database
    wait_until(
        lambda: (
            replicas.query("select count(*) as n from outbox where status = 'pending'")[0]["n"] == 0
            and replicas.query(
                "select count(*) as n from processed_events where status in ('received', 'processing')"
            )[0]["n"]
            == 0
        ),
        timeout=120,
        message="every recorded request processed and every outbox item delivered",
    )
    time.sleep(2)
    entries = replicas.query("select source_ts from timeline_entries where kind = 'message'")
    captured = Counter(r["source_ts"] for r in entries)
    assert all(n == 1 for n in captured.values())
    acked_ts = {m.ts for m in messages}
    assert len(captured) >= len(acked_events) and set(captured) <= acked_ts
    announcements = _announcements(ws)
    for title in acked_titles:
        assert sum(count for text, count in announcements.items() if title in text) == 1, title
    timeline_ts = replicas.query("select timeline_ts from incidents where title = 'Burst target'")[0][
        "timeline_ts"
    ]
    with ws.lock:  # a thread message may carry several entries (posts pending together are combined)
        thread_posts = Counter(
            token for m in ws.thread(channel, timeline_ts)[1:] for token in BURST.findall(m.text)
        )
    assert all(n == 1 for n in thread_posts.values()), [t for t, n in thread_posts.items() if n > 1]
    assert len(thread_posts) == len(captured)
    assert replicas.query("select count(*) as n from outbox where status = 'failed'")[0]["n"] == 0
