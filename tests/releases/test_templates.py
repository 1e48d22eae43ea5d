"""Every rollback and freeze message renders valid Block Kit in every state, with hostile user text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.db.models import ReleaseRecord, RollbackRequest
from bot.ports import Release
from bot.releases.freeze import ActiveFreeze
from bot.releases.ledger import LedgerEntry
from bot.releases.rollback.service import HistoryView
from bot.render import Renderer
from bot.sandbox.slack._blocks import validate_blocks

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> @here & <@U_ALL> `x` " + "long " * 400
FREEZE = ActiveFreeze(
    id=1, service="checkout", reason=HOSTILE, since=AT, source="manual", created_by="U_ALICE"
)
STATES = ["pending", "approved", "running", "succeeded", "failed", "cancelled", "expired", "interrupted"]


def rollback(state: str, health: str | None = None) -> RollbackRequest:
    return RollbackRequest(
        id=7,
        service="checkout",
        environment="prod",
        state=state,
        requested_by="U_ALICE",
        reason=HOSTILE,
        tool="helm",
        current_version="1.4.2",
        current_revision="3",
        target_version="1.4.1",
        target_revision="2",
        dry_run_ok=state != "failed",
        dry_run_summary=HOSTILE,
        dry_run_output="```" + HOSTILE,
        two_person=True,
        confirmations=["U_ALICE"],
        decided_by="U_BOB",
        result_summary=HOSTILE,
        result_output=HOSTILE,
        result_url="https://argocd.example.com/applications/checkout-prod",
        health=health,
        health_detail=HOSTILE,
        notes=["suspended Argo CD automated sync", HOSTILE],
        created_at=AT,
    )


def check(message: object) -> str:
    from bot.render import RenderedMessage

    assert isinstance(message, RenderedMessage)
    assert validate_blocks(message.blocks, surface="message") == []
    rendered = message.model_dump_json()
    assert "<!channel>" not in rendered and "<@U_ALL>" not in rendered and "@here" not in rendered
    return rendered


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("health", [None, "checking", "healthy", "unhealthy", "skipped"])
def test_card(state: str, health: str | None) -> None:
    r = Renderer()
    rendered = check(
        r.message(
            "rollback/card",
            rb=rollback(state, health),
            freezes=[FREEZE],
            who=["S0001", "U_BOB"],
            confirm_action="rollback_confirm",
            cancel_action="rollback_cancel",
            health_timeout=300.0,
        )
    )
    assert ("rollback_confirm" in rendered) == (state == "pending")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("template", ["rollback/outcome", "rollback/health", "rollback/notice"])
def test_channel_messages(state: str, template: str) -> None:
    row = rollback(state, "healthy" if template == "rollback/health" else None)
    check(Renderer().message(template, rb=row, health_timeout=30.0, eta=timedelta(minutes=4)))


@pytest.mark.parametrize("template", ["rollback/requested", "rollback/needs_second", "rollback/ack"])
def test_replies(template: str) -> None:
    check(Renderer().message(template, rb=rollback("pending"), who=["S0001"], text="Confirmed."))


def test_history() -> None:
    entry = LedgerEntry(
        id=1,
        service="checkout",
        environment="prod",
        kind="deploy",
        version=HOSTILE,
        status="succeeded",
        source="webhook",
        actor=HOSTILE,
        url="https://ci.example.com/1",
        started_at=AT,
    )
    view = HistoryView(
        service="checkout",
        environment="prod",
        entries=[entry] * 10,
        tool="helm",
        tool_environment="prod",
        tool_releases=[Release(version="1.4.2", revision="3", deployed_at=AT)] * 10,
        tool_error=HOSTILE,
    )
    check(Renderer().message("rollback/history", view=view))
    check(
        Renderer().message(
            "rollback/history", view=HistoryView(service="checkout", environment=None, entries=[])
        )
    )


@pytest.mark.parametrize("lifted", [False, True])
def test_freeze_messages(lifted: bool) -> None:
    r = Renderer()
    check(r.message("freeze/announce", freeze=FREEZE, lifted=lifted, user="U_ALICE", lift_reason=HOSTILE))
    check(
        r.message(
            "freeze/announce", freeze=FREEZE.model_copy(update={"incident_id": 3}), lifted=lifted, user=None
        )
    )
    check(r.message("freeze/reply", frozen=[FREEZE, FREEZE], lifted=lifted))
    release = ReleaseRecord(
        key="k",
        service="checkout",
        environment="prod",
        kind="deploy",
        version=HOSTILE,
        status="succeeded",
        source="webhook",
        url="https://ci.example.com/1",
        started_at=AT,
    )
    check(r.message("freeze/deploy_during", release=release, freezes=[FREEZE]))
    line = r.text("freeze/incident_card", freezes=[FREEZE])
    assert line.startswith(":snowflake:") and "<!channel>" not in line


def test_a_fixed_message_is_rendered_once_and_each_caller_gets_its_own_copy() -> None:
    renderer = Renderer()
    usage = renderer.fixed_text("help/rollback")
    assert usage is renderer.fixed_text("help/rollback")
    first = renderer.fixed_message("help/reply", command="rollback", usage=usage)
    assert first == renderer.message("help/reply", command="rollback", usage=usage)
    first.blocks[0]["text"]["text"] = "changed by one caller"
    second = renderer.fixed_message("help/reply", command="rollback", usage=usage)
    assert second.blocks[0]["text"]["text"] == "/rollback"
    assert renderer.fixed_message("help/reply", command="gonogo", usage=usage).text == "/gonogo help"
