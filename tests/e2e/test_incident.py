"""Issue 3: /incident end to end — signed requests in, Slack emulator calls out, state in the database."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from tests.harness import BotHarness, wait_until


def declare(bot: BotHarness, text: str = "sev2 Checkout 502s", user: str = "U_ALICE") -> int:
    before = {i.id for i in bot.incidents()}
    bot.command("/incident", f"declare {text}", user=user, channel="incident-bridge")
    new = wait_until(lambda: [i for i in bot.incidents() if i.id not in before], message="a new incident")
    bot.settle()
    incident_id = new[0].id
    assert incident_id is not None
    return incident_id


def channel_of(bot: BotHarness, incident_id: int) -> str:
    channel_id = bot.incident(incident_id).channel_id
    assert channel_id
    return channel_id


def texts(bot: BotHarness, channel: str, *, include_threads: bool = True) -> str:
    with bot.ws.lock:
        return "\n".join(
            json.dumps({"text": m.text, "blocks": m.blocks}, ensure_ascii=False)
            for m in bot.ws.messages(channel, include_threads=include_threads)
        )


def thread_texts(bot: BotHarness, incident_id: int) -> list[str]:
    incident = bot.incident(incident_id)
    assert incident.channel_id and incident.timeline_ts
    with bot.ws.lock:
        return [m.text for m in bot.ws.thread(incident.channel_id, incident.timeline_ts)[1:]]


def test_declare_opens_channel_announces_and_starts_timeline(bot: BotHarness) -> None:
    incident_id = declare(bot)
    incident = bot.incident(incident_id)
    assert (incident.severity, incident.status, incident.commander) == ("sev2", "investigating", "U_ALICE")
    assert incident.channel_name == f"inc-{incident.declared_at:%Y%m%d}-{incident_id}-checkout-502s"
    with bot.ws.lock:
        channel = bot.ws.channel_by_name(incident.channel_name)
        assert channel is not None and "U_ALICE" in channel.members
        assert "SEV2" in channel.topic and "investigating" in channel.topic
        pinned = [m.text for m in bot.ws.pins(channel.id)]
    assert any("declared" in t for t in pinned) and any("Timeline" in t for t in pinned)
    bridge = texts(bot, "incident-bridge")
    assert f"INC-{incident_id}" in bridge and "Checkout 502s" in bridge and f"<#{channel.id}>" in bridge
    assert any("Incident declared (SEV2): Checkout 502s" in t for t in thread_texts(bot, incident_id))
    reply = bot.last_response()
    assert f"INC-{incident_id}" in json.dumps(reply) and reply["response_type"] == "ephemeral"


def test_declare_through_the_modal(bot: BotHarness) -> None:
    bot.command("/incident", "declare", channel="incident-bridge")
    wait_until(lambda: bot.ws.views_with_callback("incident_declare"), message="the modal")
    payload = bot.driver.view_submission_payload(
        "U_BOB",
        "incident_declare",
        {
            "title_block": {"title": {"type": "plain_text_input", "value": "Search is slow"}},
            "severity_block": {"severity": {"type": "static_select", "selected_option": {"value": "sev3"}}},
            "service_block": {"service": {"type": "static_select", "selected_option": {"value": "search"}}},
            "description_block": {"description": {"type": "plain_text_input", "value": "p95 3s"}},
        },
    )
    assert bot.driver.interactive(payload).status_code == 200
    wait_until(bot.incidents, message="the incident from the modal")
    bot.settle()
    (incident,) = bot.incidents()
    assert (incident.title, incident.severity, incident.service, incident.description) == (
        "Search is slow",
        "sev3",
        "search",
        "p95 3s",
    )
    assert incident.commander == "U_BOB" and incident.channel_id


def test_modal_with_empty_title_shows_field_error(bot: BotHarness) -> None:
    bot.command("/incident", "declare", channel="incident-bridge")
    wait_until(lambda: bot.ws.views_with_callback("incident_declare"))
    payload = bot.driver.view_submission_payload(
        "U_BOB",
        "incident_declare",
        {
            "title_block": {"title": {"type": "plain_text_input", "value": "   "}},
            "severity_block": {"severity": {"type": "static_select", "selected_option": None}},
        },
    )
    response = bot.driver.interactive(payload)
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"title_block", "severity_block"}
    assert bot.incidents() == []


def test_hostile_titles_give_valid_channel_names(bot: BotHarness) -> None:
    titles = ["🔥🔥 fire 🔥", "x" * 199, "!!!???", "Платёжный шлюз упал", "Café <!channel> & more"]
    for title in titles:
        incident_id = declare(bot, f"sev3 {title}")
        name = bot.incident(incident_id).channel_name
        assert name and len(name) <= 80 and name == name.lower()
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_"), name


def test_name_taken_gets_a_suffix(bot: BotHarness) -> None:
    from datetime import UTC

    now = bot.clock.now().astimezone(UTC)
    bot.ws.add_channel(f"inc-{now:%Y%m%d}-1-db-down")
    incident_id = declare(bot, "sev1 DB down")
    assert bot.incident(incident_id).channel_name == f"inc-{now:%Y%m%d}-1-db-down-2"


def test_double_submit_and_retries_make_one_incident(bot: BotHarness) -> None:
    request = bot.driver.command_request(
        "/incident", "declare sev1 Payments down", user="U_ALICE", channel="incident-bridge"
    )
    results: list[int] = []

    def send() -> None:
        results.append(bot.driver.send(request).status_code)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.command("/incident", "declare sev1 payments   DOWN", channel="incident-bridge")  # same title
    assert results == [200, 200, 200]
    # the same request delivered three times is one invocation (its trigger id is recorded once)
    wait_until(lambda: len(bot.audit()) == 2, message="two audit rows")
    bot.settle()
    assert len(bot.incidents()) == 1
    assert len(bot.ws.calls_to("conversations.create")) == 1


def test_status_sev_assign_resolve(bot: BotHarness) -> None:
    incident_id = declare(bot)
    channel = channel_of(bot, incident_id)
    bot.clock.advance(timedelta(minutes=5))
    bot.command("/incident", "status identified bad deploy of checkout v1.4.2", channel=channel)
    wait_until(lambda: bot.incident(incident_id).status == "identified")
    bot.settle()
    incident = bot.incident(incident_id)
    assert incident.identified_at == bot.clock.now()
    assert "bad deploy" in texts(bot, channel) and "bad deploy" in texts(bot, "incident-bridge")
    with bot.ws.lock:
        assert "identified" in bot.ws.require_channel(channel).topic

    bot.command("/incident", "sev sev1 all regions now", channel=channel)
    wait_until(lambda: bot.incident(incident_id).severity == "sev1")
    bot.settle()
    assert "SEV2 → SEV1" in texts(bot, "incident-bridge")

    bot.command("/incident", "assign scribe <@U_BOB>", channel=channel)
    wait_until(lambda: bot.incident(incident_id).scribe == "U_BOB")
    bot.settle()
    with bot.ws.lock:
        assert "U_BOB" in bot.ws.require_channel(channel).members

    bot.command("/incident", "status monitoring rolled back", channel=channel)
    wait_until(lambda: bot.incident(incident_id).mitigated_at is not None)
    bot.clock.advance(timedelta(minutes=20))
    bot.command("/incident", f"resolve INC-{incident_id} rolled back to v1.4.1", channel="general")
    wait_until(lambda: bot.incident(incident_id).status == "resolved")
    bot.settle()
    incident = bot.incident(incident_id)
    assert incident.resolution == "rolled back to v1.4.1" and incident.resolved_at == bot.clock.now()
    assert "resolved" in texts(bot, "incident-bridge")
    kinds = [e.kind for e in bot.timeline(incident_id)]
    assert kinds == ["declared", "status", "severity", "role", "status", "resolved"]
    thread = thread_texts(bot, incident_id)
    assert len(thread) == 6 and "Resolved" in thread[-1]


def test_list_and_show(bot: BotHarness) -> None:
    first = declare(bot, "sev2 Checkout 502s")
    declare(bot, "sev4 Typo on pricing page")
    listing = json.dumps(bot.reply_after("/incident", "list"))
    assert f"INC-{first}" in listing and "Typo on pricing page" in listing
    card = json.dumps(bot.reply_after("/incident", f"show INC-{first}"))
    assert "Checkout 502s" in card and "SEV2" in card


def test_reminders_after_cadence_and_not_before(bot: BotHarness) -> None:
    incident_id = declare(bot, "sev1 Checkout down")
    channel = channel_of(bot, incident_id)

    def reminders() -> int:
        with bot.ws.lock:
            return sum("has had no status update" in m.text for m in bot.ws.messages(channel))

    bot.clock.advance(timedelta(minutes=14))
    bot.tick()
    assert reminders() == 0
    bot.clock.advance(timedelta(minutes=2))
    bot.tick()
    bot.tick()
    assert reminders() == 1  # once per missed interval, not on every pass
    bot.command("/incident", "status identified found it", channel=channel)
    wait_until(lambda: bot.incident(incident_id).status == "identified")
    bot.clock.advance(timedelta(minutes=10))
    bot.tick()
    assert reminders() == 1  # the update reset the cadence
    bot.clock.advance(timedelta(minutes=6))
    bot.tick()
    assert reminders() == 2
    bot.command("/incident", "resolve", channel=channel)
    wait_until(lambda: bot.incident(incident_id).status == "resolved")
    bot.clock.advance(timedelta(hours=2))
    bot.tick()
    assert reminders() == 2


def test_mentions_in_user_text_ping_nobody(bot: BotHarness) -> None:
    incident_id = declare(bot, "sev3 <!channel> @here <@U_BOB> <!subteam^S1> broke it")
    channel = channel_of(bot, incident_id)
    everything = texts(bot, "incident-bridge") + texts(bot, channel)
    for live in ("<!channel>", "<!here>", "<!subteam", "<@U_BOB>"):
        assert live not in everything
    assert "&lt;!channel&gt;" in everything
    assert "@here" not in everything.replace("@\\u2060here", "")


def test_wrong_input_gets_usage(bot: BotHarness) -> None:
    def refusal(text: str, channel: str = "general") -> str:
        return json.dumps(bot.reply_after("/incident", text, channel=channel))

    assert "Unknown severity `sev9`" in refusal("declare sev9 Broken")
    assert "Usage" in refusal("declare sev9 Broken")
    assert "INC-999 does not exist" in refusal("status INC-999 identified")
    assert "not an incident channel" in refusal("assign scribe <@U_BOB>")
    incident_id = declare(bot)
    channel = channel_of(bot, incident_id)
    assert "Unknown status `fixed`" in refusal("status fixed", channel)
    bot.reply_after("/incident", "resolve done", channel=channel)
    wait_until(lambda: bot.incident(incident_id).status == "resolved")
    assert "is resolved" in refusal("status identified more", channel)
    outcomes = {r.outcome for r in bot.audit()}
    assert {"usage", "refused", "ok"} <= outcomes


def test_failed_channel_creation_keeps_the_incident_and_can_be_retried(bot: BotHarness) -> None:
    bot.ws.fail_next("conversations.create", status=200, error="restricted_action", times=1)
    bot.command("/incident", "declare sev2 Checkout 502s", channel="incident-bridge")
    wait_until(bot.incidents)
    bot.settle()
    (incident,) = bot.incidents()
    assert incident.channel_id is None
    bridge = texts(bot, "incident-bridge")
    assert "could not be created" in bridge and "restricted_action" in bridge
    card = bot.reply_after("/incident", f"show INC-{incident.id}")
    assert "incident.open_channel" in json.dumps(card) and "Retry" in json.dumps(card)
    failed = [i for i in bot.outbox() if i.status == "failed"]
    assert [i.op for i in failed] == ["incident.open_channel"]
    with bot.ws.lock:
        bridge_channel = bot.ws.require_channel("incident-bridge")
        card_message = bot.ws.post_message(bridge_channel.id, text="card", blocks=card["blocks"])
    action = bot.driver.block_action_payload(
        "U_ALICE", "incident-bridge", card_message.ts, "incident_retry_step", str(failed[0].id)
    )
    assert bot.driver.interactive(action).status_code == 200
    wait_until(lambda: bot.incident(incident.id or 0).channel_id is not None, message="channel after retry")
    bot.settle()
    assert len(thread_texts(bot, incident.id or 0)) == 1


def test_nul_characters_are_dropped_not_fatal(bot: BotHarness) -> None:
    """PostgreSQL refuses NUL in text and JSON; a NUL typed (or forged) into a command is dropped
    before anything is stored, and the command works."""
    reply = json.dumps(bot.reply_after("/incident", "declare sev3 Search\x00 down", channel="general"))
    assert "Search down" in reply or "INC-" in reply
    (incident,) = wait_until(bot.incidents)
    assert incident.title == "Search down"
    assert "\x00" not in json.dumps([a.text for a in bot.audit()])
