"""``/gonogo`` (decide, status, exception, freeze, unfreeze), the decision card's buttons and the
Reject modal: the typed command or interaction → the service → the reply. Every handler here is
listed, with what it needs, in ``bot.actions``.

Each button's value is the decision id; the Invocation carries it as its text, so the audit log says
which decision was acted on.
"""

from __future__ import annotations

from typing import Any

from bot.context import Invocation, Reply, without_nul
from bot.deps import Deps
from bot.errors import NotFound, UserError
from bot.gonogo import decisions, exceptions, votes
from bot.gonogo import parse as p
from bot.gonogo.card import Action, DecisionView
from bot.gonogo.deploy import deploy_release
from bot.gonogo.status import status as gonogo_status
from bot.help import help_reply
from bot.releases import freeze as freezes

REASON_BLOCK, REASON_INPUT = "reason_block", "reason"


# --- /gonogo sub-commands -----------------------------------------------------------------------------


async def show_help(deps: Deps, cmd: p.Help, inv: Invocation) -> Reply:
    return help_reply(deps, "gonogo")


async def decide(deps: Deps, cmd: p.Decide, inv: Invocation) -> Reply:
    view = await decisions.decide_gonogo(deps, cmd, user=inv.user_id, channel=inv.channel_id)
    return Reply(message=deps.renderer.message("gonogo/reply", view=view))


async def status(deps: Deps, cmd: p.Status, inv: Invocation) -> Reply:
    found = await gonogo_status(deps, service=cmd.service)
    return Reply(message=deps.renderer.message("gonogo/status", status=found))


async def request_exception(deps: Deps, cmd: p.RequestException, inv: Invocation) -> Reply:
    exception = await exceptions.request_exception(deps, cmd, user=inv.user_id)
    return Reply(message=deps.renderer.message("gonogo/exception", exception=exception, expired=False))


async def freeze(deps: Deps, cmd: p.Freeze, inv: Invocation) -> Reply:
    frozen = await freezes.freeze(deps, service=cmd.service, reason=cmd.reason, user=inv.user_id)
    return Reply(message=deps.renderer.message("freeze/reply", frozen=[frozen], lifted=False))


async def unfreeze(deps: Deps, cmd: p.Unfreeze, inv: Invocation) -> Reply:
    lifted = await freezes.unfreeze(deps, service=cmd.service, user=inv.user_id)
    return Reply(message=deps.renderer.message("freeze/reply", frozen=lifted, lifted=True))


# --- the card's buttons and the Reject modal -------------------------------------------------------------


def _decision_id(text: str) -> int:
    word = text.strip().split(maxsplit=1)[0] if text.strip() else ""
    if not word.isdigit() or len(word) > 12:
        raise NotFound("That GO/NO-GO decision no longer exists.")
    return int(word)


def _ack(deps: Deps, inv: Invocation, view: DecisionView, event: str, *, counted: bool = False) -> Reply:
    message = deps.renderer.message("gonogo/ack", view=view, event=event, counted=counted, user=inv.user_id)
    return Reply(message=message)


async def approve(deps: Deps, inv: Invocation) -> Reply:
    view, counted = await votes.approve(deps, decision_id=_decision_id(inv.text), user=inv.user_id)
    return _ack(deps, inv, view, "approved", counted=counted)


async def recheck(deps: Deps, inv: Invocation) -> Reply:
    view = await decisions.recheck(deps, decision_id=_decision_id(inv.text), user=inv.user_id)
    return _ack(deps, inv, view, "rechecked")


async def deploy(deps: Deps, inv: Invocation) -> Reply:
    view = await deploy_release(deps, decision_id=_decision_id(inv.text), user=inv.user_id)
    return _ack(deps, inv, view, "deploying")


async def open_reject(deps: Deps, inv: Invocation) -> Reply | None:
    """The Reject button opens a modal asking why; its submission records the Reject."""
    decision = await votes.check_rejectable(deps, decision_id=_decision_id(inv.text))
    if not inv.trigger_id:
        raise UserError("Slack sent no trigger to open the form: press Reject again.")
    modal = deps.renderer.view(
        "gonogo/reject_modal",
        decision=decision,
        callback_id=Action.REJECT_VIEW.value,
        block_id=REASON_BLOCK,
        action_id=REASON_INPUT,
    )
    await deps.chat.open_view(trigger_id=inv.trigger_id, view=modal)
    return None


def _reason(view: dict[str, Any]) -> str:
    values = without_nul(((view.get("state") or {}).get("values") or {}).get(REASON_BLOCK) or {})
    return " ".join(str((values.get(REASON_INPUT) or {}).get("value") or "").split())


async def reject_errors(deps: Deps, view: dict[str, Any]) -> dict[str, str]:
    """Field errors for the Reject modal (Slack shows them in the form): no reason, or too late."""
    if not _reason(view):
        return {REASON_BLOCK: "Say why you reject the release."}
    try:
        await votes.check_rejectable(deps, decision_id=_decision_id(str(view.get("private_metadata") or "")))
    except UserError as exc:
        return {REASON_BLOCK: str(exc)[:150]}
    return {}


def describe_reject(body: dict[str, Any]) -> str:
    """The Reject modal's audit text: the decision id and the reason."""
    view = body.get("view") or {}
    return f"{view.get('private_metadata') or ''} {_reason(view)}"[:2000]


async def reject(deps: Deps, inv: Invocation, view: dict[str, Any]) -> Reply:
    decision_id = _decision_id(str(view.get("private_metadata") or ""))
    found = await votes.reject(deps, decision_id=decision_id, user=inv.user_id, reason=_reason(view))
    return _ack(deps, inv, found, "rejected")
