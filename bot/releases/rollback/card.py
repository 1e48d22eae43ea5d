"""A rollback's living card (``ROLLBACK_CARD``: posted once, updated in place by ``bot.cards``), and
the news of a rollback's outcome: the card, the release channel and the open incident's timeline.

    await step(session, row, first=True)      # in the transaction that creates the row: post the card
    await step(session, row)                  # in every transaction that changes it: update the card
    await announce(session, deps, row, "rollback/outcome", kind="outcome")

The card's buttons carry the rollback's id; ``CONFIRM_ACTION`` / ``CANCEL_ACTION`` are their action
ids (``bot.actions`` routes them to ``bot.releases.dispatch``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot import cards, chat_ops
from bot.db.models import Incident, RollbackRequest
from bot.deps import Deps
from bot.incidents.store import add_timeline
from bot.releases import freeze
from bot.render import RenderedMessage

CONFIRM_ACTION = "rollback_confirm"
CANCEL_ACTION = "rollback_cancel"


async def render_card(deps: Deps, row: RollbackRequest) -> RenderedMessage:
    async with deps.db.session() as session:
        freezes = await freeze.freezes_covering(session, service=row.service)
    return deps.renderer.message(
        "rollback/card",
        rb=row,
        freezes=freezes,
        who=deps.access.who_may("rollback", service=row.service, environment=row.environment),
        confirm_action=CONFIRM_ACTION,
        cancel_action=CANCEL_ACTION,
        health_timeout=deps.config.rollback.health_timeout_seconds,
    )


def _card_channels(deps: Deps, row: RollbackRequest) -> list[str]:
    """Where the request was made, else (a DM between people, a private channel) the release channel."""
    return [row.origin_channel, deps.config.slack.release_channel]


ROLLBACK_CARD = cards.Card("rollback", RollbackRequest, "rollback_id", render_card, _card_channels)


async def step(session: AsyncSession, row: RollbackRequest, *, first: bool = False) -> None:
    """Record posting the card (``first``) or updating it, in the caller's transaction."""
    await cards.record_step(session, ROLLBACK_CARD, row, first=first)


async def announce(
    session: AsyncSession, deps: Deps, row: RollbackRequest, template: str, *, kind: str, card: bool = True
) -> None:
    """The card, the release channel and the open incident's timeline learn the news."""
    if card:
        await step(session, row)
    msg = deps.renderer.message(template, rb=row, health_timeout=deps.config.rollback.health_timeout_seconds)
    await chat_ops.post(
        session,
        key=f"rollback:{row.id}:{kind}:{row.state}:{row.health or ''}",
        channel=deps.config.slack.release_channel,
        message=msg,
    )
    incident = await session.get(Incident, row.incident_id) if row.incident_id else None
    if incident is not None:
        await add_timeline(session, incident, kind="rollback", at=deps.clock.now(), text=timeline_text(row))


def timeline_text(row: RollbackRequest) -> str:
    """One line for the incident timeline (plain text: the timeline escapes it when it renders)."""
    what = f"Rollback {row.ref} of {row.service} {row.environment} to {row.target_version}"
    if row.health == "healthy":
        return f"{what}: healthy again ({row.health_detail})"
    if row.health == "unhealthy":
        return f"{what}: still unhealthy after the health timeout ({row.health_detail})"
    if row.state == "succeeded":
        return f"{what} succeeded: {row.result_summary}"
    return f"{what} {row.state}: {row.result_summary}"
