"""Issue 9: ``cmdcenter demo`` — the headless scenario, and the console's JSON/SSE API over HTTP."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.demo.command import add_demo_parser, run_demo
from bot.demo.interact import state_values
from bot.demo.runner import DemoSandbox
from bot.demo.scenario import load_scenario, parse_scenario
from bot.errors import ConfigError
from tests.harness import wait_until

RIYA, SAM = "U_RIYA", "U_SAM"


def demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cmdcenter")
    add_demo_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["demo", *argv])


@pytest.mark.parametrize("flags", [[], ["--socket"]], ids=["http", "socket"])
def test_headless_scenario_runs_to_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    args = demo_args("--scenario", "checkout-502", "--headless", "--data-dir", str(tmp_path / "demo"), *flags)
    assert args.func is run_demo

    code = run_demo(args)

    out = capsys.readouterr().out
    assert code == 0, out
    assert ("bot: Socket Mode, ws://127.0.0.1:" in out) == bool(flags)
    assert "OK: every available step passed" in out
    table = out[out.index(" #  step") :]
    rows = {m[1]: m[0] for m in re.finditer(r"(?m)^\s*\d+  (.+?)\s{2,}(?:PASSED|FAILED|SKIPPED) .*$", table)}
    assert len(rows) == len(load_scenario("checkout-502").steps)
    for title in ("Alert fires for checkout", "Responder declares SEV1", "Responder resolves the incident"):
        assert " PASSED " in rows[title], rows[title]
    for row in rows.values():
        assert " FAILED " not in row
        if " SKIPPED " in row:  # a skip always says why
            assert row.split(" SKIPPED ", 1)[1].strip().lstrip("-").strip(), row
    assert "broke a Slack rule" not in out
    assert (tmp_path / "demo" / "cmdcenter.yaml").is_file()


def test_a_failing_step_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "drill.yaml"
    script.write_text(
        "name: drill\ntitle: Drill\ntimeout: 1\nsteps:\n"
        "  - id: help\n    title: Help works\n    as: scribe\n"
        "    do: [{command: {channel: general, text: /incident help}}]\n"
        "    wait: [{reply: {contains: declare}}]\n"
        "  - id: never\n    title: Nobody answers\n"
        "    wait: [{message: {channel: general, contains: no such text}}]\n"
        "  - id: later\n    title: Depends on it\n    needs: [never]\n"
    )
    code = run_demo(demo_args("--scenario", str(script), "--headless", "--data-dir", str(tmp_path / "d")))
    out = capsys.readouterr().out
    assert code == 1, out
    assert re.search(r"Help works\s+PASSED", out)
    assert re.search(
        r"Nobody answers\s+FAILED .*timed out waiting for a message containing 'no such text'", out
    )
    assert re.search(r"Depends on it\s+SKIPPED .*needs step 'never', which failed", out)
    assert "FAILED: never" in out


def test_headless_needs_a_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(demo_args("--headless", "--data-dir", str(tmp_path))) == 2
    assert "--headless needs --scenario" in capsys.readouterr().out


def test_scenario_files_are_validated() -> None:
    with pytest.raises(ConfigError, match="needs"):
        parse_scenario("name: x\ntitle: x\nsteps:\n  - {id: a, title: A, needs: [b]}\n")
    with pytest.raises(ConfigError, match="exactly one"):
        parse_scenario("name: x\ntitle: x\nsteps:\n  - id: a\n    title: A\n    do: [{}]\n")
    with pytest.raises(ConfigError, match="not found"):
        load_scenario("no-such-scenario")


def test_modal_values_become_slack_state() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": "t", "element": {"type": "plain_text_input", "action_id": "title"}},
        {
            "type": "input",
            "block_id": "s",
            "element": {
                "type": "static_select",
                "action_id": "sev",
                "options": [{"text": {"type": "plain_text", "text": "SEV1"}, "value": "sev1"}],
            },
        },
    ]
    state = state_values(blocks, {"t": {"title": "Down"}, "s": {"sev": "sev1"}})
    assert state["t"]["title"] == {"type": "plain_text_input", "value": "Down"}
    assert state["s"]["sev"]["selected_option"]["value"] == "sev1"
    assert state_values(blocks, {})["s"]["sev"]["selected_option"] is None


# --- the console over HTTP ----------------------------------------------------------------------


@pytest.fixture(params=["http", "socket"])
def sandbox(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[DemoSandbox, httpx.Client]]:
    """The demo, its bot served over HTTP or connected over Socket Mode (``demo --socket``)."""
    demo = DemoSandbox.build(
        data_dir=tmp_path / "demo", worker_interval=0.05, socket_mode=request.param == "socket"
    )
    with demo.serve() as url, httpx.Client(base_url=url, timeout=10) as client:
        yield demo, client
    with demo.workspace.lock:
        assert not demo.workspace.violations, demo.workspace.violations


def channels(client: httpx.Client, user: str = RIYA) -> dict[str, dict[str, Any]]:
    found = client.get("/console/api/channels", params={"user": user}).json()
    return {c["name"]: c for c in found}


def send(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(f"/console/api/{path}", json=body)


def test_console_page_and_bootstrap(sandbox: tuple[DemoSandbox, httpx.Client]) -> None:
    _, client = sandbox
    page = client.get("/")
    assert page.status_code == 200 and "console.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/console.js").status_code == 200
    boot = client.get("/console/api/bootstrap").json()
    roles = {u["role"] for u in boot["users"] if u["actor"]}
    assert roles == {"responder", "scribe", "release_captain", "approver", "unauthorized"}
    assert set(channels(client)) >= {"general", "incident-bridge", "releases"}
    assert client.get("/healthz").status_code == 200  # the bot is on the same port
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400


def test_slash_command_from_the_console_opens_a_channel_live(
    sandbox: tuple[DemoSandbox, httpx.Client],
) -> None:
    _, client = sandbox
    with client.stream("GET", "/console/api/events") as events:
        lines = events.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: change"

        sent = send(
            client,
            "send",
            {"user": RIYA, "channel": "incident-bridge", "text": "/incident declare sev2 Checkout 502s"},
        )
        assert sent.status_code == 200 and sent.json()["status"] == 200

        assert next(line for line in lines if line.startswith("event:")) == "event: change"
    name = wait_until(
        lambda: next(
            (n for n in channels(client) if n.startswith("inc-") and n.endswith("checkout-502s")), None
        ),
        message="the incident channel in the channel list",
    )
    incident = channels(client)[name]
    assert incident["incident"] is True

    def declaration() -> list[dict[str, Any]]:
        data = client.get(f"/console/api/channel/{incident['id']}", params={"user": RIYA}).json()
        return [m for m in data["messages"] if "Checkout 502s" in json.dumps(m)]

    assert wait_until(declaration, message="the declaration in the incident channel")
    bridge = client.get("/console/api/channel/incident-bridge", params={"user": RIYA}).json()["messages"]
    assert any(m.get("ephemeral") for m in bridge)  # the command's reply, only for the person who ran it
    others = client.get("/console/api/channel/incident-bridge", params={"user": SAM}).json()["messages"]
    assert not any(m.get("ephemeral") for m in others)
    standins = client.get("/console/api/standins").json()
    assert "slack" in standins and standins["slack"]["calls"]


def test_reactions_toggle_and_reach_the_bot(sandbox: tuple[DemoSandbox, httpx.Client]) -> None:
    demo, client = sandbox
    assert (
        send(client, "send", {"user": SAM, "channel": "general", "text": "hello *world*"}).status_code == 200
    )
    message = client.get("/console/api/channel/general", params={"user": SAM}).json()["messages"][-1]
    assert message["text"] == "hello *world*" and message["user"] == SAM

    def reactions() -> list[dict[str, Any]]:
        data = client.get("/console/api/channel/general", params={"user": SAM}).json()
        return next(m for m in data["messages"] if m["ts"] == message["ts"]).get("reactions", [])

    body = {"user": SAM, "channel": "general", "ts": message["ts"], "emoji": "memo"}
    assert send(client, "react", body).json()["added"] is True
    assert reactions() == [{"name": "memo", "users": [SAM], "count": 1}]
    assert send(client, "react", body).json()["added"] is False
    assert reactions() == []
    events = [c for c in demo.workspace.calls if c.method == "reactions.add"]
    assert events == []  # people's reactions are events to the bot, not Web API calls


def test_modal_submission_shows_errors_then_declares(sandbox: tuple[DemoSandbox, httpx.Client]) -> None:
    _, client = sandbox
    send(client, "send", {"user": SAM, "channel": "incident-bridge", "text": "/incident declare"})
    view = wait_until(
        lambda: client.get("/console/api/modal", params={"user": SAM}).json()["view"], message="the modal"
    )
    assert client.get("/console/api/modal", params={"user": RIYA}).json()["view"] is None

    refused = send(client, "submit", {"user": SAM, "view_id": view["id"], "values": {}}).json()
    assert refused["errors"], refused

    values = {"title_block": {"title": "Search is slow"}, "severity_block": {"severity": "sev3"}}
    accepted = send(client, "submit", {"user": SAM, "view_id": view["id"], "values": values}).json()
    assert accepted["errors"] == {} and accepted["closed"] is True
    assert client.get("/console/api/modal", params={"user": SAM}).json()["view"] is None
    wait_until(lambda: any(n.endswith("search-is-slow") for n in channels(client)), message="the channel")


def test_bad_requests_are_refused(sandbox: tuple[DemoSandbox, httpx.Client]) -> None:
    _, client = sandbox
    unknown = send(client, "send", {"user": RIYA, "channel": "general", "text": "/deploy everything"})
    assert unknown.status_code == 400 and "not a valid command" in unknown.json()["error"]
    form = client.post("/console/api/send", data={"user": RIYA, "channel": "general", "text": "hi"})
    assert form.status_code == 415
    sneaky = {"content-type": "text/plain; x=application/json"}  # a "simple" cross-site request
    assert client.post("/console/api/send", content=b"{}", headers=sneaky).status_code == 415
    assert send(client, "send", {"user": "U_NOBODY", "channel": "general", "text": "hi"}).status_code == 404
    assert (
        send(client, "react", {"user": RIYA, "channel": "general", "ts": "1.2", "emoji": "<b>"}).status_code
        == 400
    )
    assert client.get("/console/api/files/F404").status_code == 404


def test_the_world_heals_after_a_completed_rollback(tmp_path: Path) -> None:
    demo = DemoSandbox.build(data_dir=tmp_path / "demo")
    argocd = demo.standins.argocd
    if argocd is None:
        pytest.skip("the Argo CD fake is not importable")
    demo.world.set_health("checkout", 503)
    app = argocd.application("checkout-prod")
    app["status"]["history"].append({"id": 99, "initiatedBy": {"username": "cmdcenter"}})
    with argocd._lock:
        argocd.applications["checkout-prod"] = app
        argocd.rollbacks.append({"application": "checkout-prod", "id": 2})
    started = time.monotonic()
    demo.world.tick()
    assert demo.world.snapshot()["checkout"]["health"] == 200
    assert time.monotonic() - started < 1


def test_buttons_of_ephemeral_messages_reach_the_bot(sandbox: tuple[DemoSandbox, httpx.Client]) -> None:
    demo, client = sandbox
    demo.workspace.fail_next("conversations.create", status=200, error="restricted_action")
    send(
        client,
        "send",
        {"user": RIYA, "channel": "incident-bridge", "text": "/incident declare sev2 Checkout 502s"},
    )
    wait_until(
        lambda: "could not be created" in json.dumps(bridge(client)), message="the failed channel creation"
    )
    send(client, "send", {"user": RIYA, "channel": "incident-bridge", "text": "/incident show INC-1"})

    def retry_card() -> dict[str, Any] | None:
        cards = [m for m in bridge(client) if m.get("ephemeral") and "Retry" in json.dumps(m)]
        return cards[-1] if cards else None

    card = wait_until(retry_card, message="the /incident show card with a Retry button")
    button = next(
        e
        for b in card["blocks"]
        for e in [*b.get("elements", []), b.get("accessory")]
        if isinstance(e, dict) and e.get("type") == "button"
    )
    body = {"user": RIYA, "channel": "incident-bridge", "ts": card["ts"], "ephemeral": True}
    body |= {"action_id": button["action_id"], "value": button.get("value", "")}
    assert send(client, "action", body).json() == {"status": 200}
    wait_until(lambda: any(n.startswith("inc-") for n in channels(client)), message="the channel after Retry")


def bridge(client: httpx.Client) -> list[dict[str, Any]]:
    return list(client.get("/console/api/channel/incident-bridge", params={"user": RIYA}).json()["messages"])
