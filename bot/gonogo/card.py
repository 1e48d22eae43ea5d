"""The GO / NO-GO card: one living card per decision in the release channel (``bot.cards``), and
``DecisionView``, the decision as the templates get it.

    await card_step(session, decision, first=True)   # in the transaction that opens the decision
    await card_step(session, decision)               # in every transaction that changes it

The card is redrawn from the stored state when its update is delivered: the gate results of the
latest round, the votes, and the exceptions its last judgement applied.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from bot import cards
from bot.db.models import GoNoGoDecision
from bot.deps import Deps
from bot.gonogo import store
from bot.gonogo.assess import Assessment, assess
from bot.gonogo.gate_specs import zone
from bot.render import RenderedMessage


class Action(StrEnum):
    """The card's buttons (Slack action ids) and the Reject modal's callback id."""

    APPROVE = "gonogo_approve"
    REJECT = "gonogo_reject"
    RECHECK = "gonogo_recheck"
    DEPLOY = "gonogo_deploy"
    REJECT_VIEW = "gonogo_reject_reason"


class DecisionView(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    decision: GoNoGoDecision
    assessment: Assessment
    at_local: str  # when it was asked, on the config's clock: "14:05 Europe/Paris"
    release_channel: str
    objection_minutes: int | None = None


def _local(deps: Deps, when: datetime) -> str:
    try:
        tz = zone(deps.config.slack.timezone)
    except ValueError:
        tz = zone("UTC")
    local = when.astimezone(tz)
    return f"{local:%H:%M} {getattr(tz, 'key', 'UTC')}"


def decision_view(deps: Deps, decision: GoNoGoDecision, assessment: Assessment) -> DecisionView:
    """The decision with the judgement just made."""
    return DecisionView(
        decision=decision,
        assessment=assessment,
        at_local=_local(deps, decision.created_at),
        release_channel=deps.config.slack.release_channel,
        objection_minutes=deps.config.gonogo.objection_window_minutes,
    )


async def view_of(session: AsyncSession, deps: Deps, decision: GoNoGoDecision) -> DecisionView:
    """The decision as it was last judged (with the exceptions that were applied then)."""
    assessment = assess(
        results=await store.results(session, decision),
        votes=await store.votes(session, decision.id),
        exceptions=await store.exceptions(session, decision.waived),
        required=decision.required_approvals,
    )
    return decision_view(deps, decision, assessment)


async def card_step(session: AsyncSession, decision: GoNoGoDecision, *, first: bool = False) -> None:
    """Record posting the card (``first``) or redrawing it from the stored state at delivery time."""
    await cards.record_step(session, GONOGO_CARD, decision, first=first)


async def render_card(deps: Deps, decision_id: int) -> tuple[GoNoGoDecision, RenderedMessage]:
    async with deps.db.session() as session:
        decision = await store.load_decision(session, decision_id)
        view = await view_of(session, deps, decision)
    return decision, deps.renderer.message("gonogo/card", view=view, actions=Action)


async def _render(deps: Deps, decision: GoNoGoDecision) -> RenderedMessage:
    return (await render_card(deps, decision.id or 0))[1]


GONOGO_CARD = cards.Card(
    "gonogo", GoNoGoDecision, "decision_id", _render, lambda deps, _: [deps.config.slack.release_channel]
)
