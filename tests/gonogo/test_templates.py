"""Every /gonogo message renders valid Block Kit in every state, with hostile user text and many gates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.db.models import GateException, GateResult, GoNoGoDecision, GoNoGoVote
from bot.gonogo.assess import ExceptionView, assess
from bot.gonogo.card import Action, DecisionView
from bot.gonogo.deploy import CanaryFigure
from bot.gonogo.status import StatusView
from bot.render import RenderedMessage, Renderer
from bot.sandbox.slack._blocks import validate_blocks

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> @here & <@U_ALL> `x` *bold* " + "long " * 400
STATUSES = ["open", "objection", "go", "deploying", "deployed", "rejected", "superseded"]


def exception(gate: str = "gate-1") -> GateException:
    return GateException(
        id=4,
        service="checkout",
        gate=gate,
        gate_name=HOSTILE,
        owner="U_ALICE",
        reason=HOSTILE,
        risk="high",
        days=3,
        created_at=AT,
        expires_at=AT + timedelta(days=3),
    )


def view(status: str, *, gates: int = 9, deploy_ok: bool | None = None) -> DecisionView:
    decision = GoNoGoDecision(
        id=7,
        service="checkout",
        environment="prod",
        version="v1.4.3-" + "x" * 90,
        requested_by="U_ALICE",
        status=status,
        verdict="go" if status in ("go", "objection", "deployed") else "no_go",
        required_approvals={"sre": 1, "product": 2},
        deploy_ready=status == "go",
        deploy_note=HOSTILE,
        objection_until=AT + timedelta(minutes=10),
        go_at=AT,
        superseded_by=8,
        deployed_by="U_BOB",
        deploy_ok=deploy_ok,
        deploy_summary=HOSTILE,
        deploy_url="https://ci.example.com/run/1",
        created_at=AT,
        evaluated_at=AT,
        evaluation=3,
        default_gates=True,
    )
    results = [
        GateResult(
            decision_id=7,
            evaluation=3,
            position=i,
            gate=f"gate-{i}",
            name=f"{HOSTILE[:60]} {i}",
            kind="http",
            status=("pass", "fail", "error")[i % 3],
            advisory=i == 4,
            evidence=HOSTILE,
            evaluated_at=AT,
        )
        for i in range(gates)
    ]
    votes = [
        GoNoGoVote(
            decision_id=7, user_id="U_ALICE", vote="approve", roles=["sre"], valid=False, note=HOSTILE, at=AT
        ),
        GoNoGoVote(decision_id=7, user_id="U_BOB", vote="approve", roles=["sre"], at=AT),
        GoNoGoVote(decision_id=7, user_id="U_DAVE", vote="reject", reason=HOSTILE, at=AT),
    ]
    assessment = assess(
        results=results, votes=votes, exceptions=[exception()], required=decision.required_approvals
    )
    return DecisionView(
        decision=decision,
        assessment=assessment,
        at_local="09:00 UTC",
        release_channel="releases",
        objection_minutes=10,
    )


def check(message: RenderedMessage) -> str:
    assert validate_blocks(message.blocks, surface="message") == []
    rendered = message.model_dump_json()
    assert "<!channel>" not in rendered and "<@U_ALL>" not in rendered and "@here" not in rendered
    return rendered


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("gates", [0, 9, 45])
def test_card(status: str, gates: int) -> None:
    rendered = check(Renderer().message("gonogo/card", view=view(status, gates=gates), actions=Action))
    assert ("gonogo_approve" in rendered) == (status in ("open", "objection", "go"))
    assert ("gonogo_deploy" in rendered) == (status == "go")
    assert "— GO/NO-GO @ 09:00 UTC" in rendered


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize(
    "template", ["gonogo/reply", "gonogo/go", "gonogo/objection", "gonogo/withdrawn", "gonogo/rejected"]
)
def test_channel_messages_and_replies(status: str, template: str) -> None:
    check(Renderer().message(template, view=view(status)))


@pytest.mark.parametrize("event", ["approved", "rechecked", "deploying", "rejected"])
@pytest.mark.parametrize("counted", [True, False])
def test_acks(event: str, counted: bool) -> None:
    check(Renderer().message("gonogo/ack", view=view("open"), event=event, counted=counted, user="U_ALICE"))


@pytest.mark.parametrize("ok", [True, False])
def test_post_deploy_update(ok: bool) -> None:
    figures = [
        CanaryFigure(name=HOSTILE[:50], value=0.25, unit="%", level="ok"),
        CanaryFigure(name="p95", value=812.0, unit="ms", level="critical"),
        CanaryFigure(name="errors", value=None, detail=HOSTILE),
    ]
    rendered = check(
        Renderer().message(
            "gonogo/deployed",
            view=view("deployed" if ok else "go", deploy_ok=ok),
            figures=figures,
            card_link=None,
        )
    )
    assert ("Deploy failed" in rendered) != ok and "p95: 812ms" in rendered


@pytest.mark.parametrize("expired", [False, True])
def test_exception_messages(expired: bool) -> None:
    found = ExceptionView.model_validate(exception())
    check(Renderer().message("gonogo/exception", exception=found, expired=expired))


def test_status() -> None:
    views = [view(s) for s in STATUSES]
    found = [ExceptionView.model_validate(exception())] * 3
    check(
        Renderer().message(
            "gonogo/status",
            status=StatusView(service="checkout", live=views[:4], recent=views[4:], exceptions=found),
        )
    )
    empty = check(
        Renderer().message(
            "gonogo/status", status=StatusView(service=None, live=[], recent=[], exceptions=[])
        )
    )
    assert "None." in empty


def test_reject_modal() -> None:
    modal = Renderer().view(
        "gonogo/reject_modal", decision=view("go").decision, callback_id="cb", block_id="b", action_id="a"
    )
    assert validate_blocks(modal["blocks"], surface="modal") == []
    assert modal["private_metadata"] == "7"
