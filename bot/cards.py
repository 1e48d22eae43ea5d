"""Living cards: a message people act on (a rollback's card, a GO / NO-GO card), posted once and
updated in place whenever its subject changes, so it never shows a stale state.

    ROLLBACK_CARD = Card("rollback", RollbackRequest, "rollback_id", render=..., channels=...)
    await record_step(session, ROLLBACK_CARD, row, first=True)    # in the transaction that changes it
    ROLLBACK_CARD.wire(deps)                                      # its post and update handlers

Guarantees:

* a step is recorded in the same transaction as the change it shows (an outbox item);
* ``card_version`` is bumped in SQL (``card_version = card_version + 1 RETURNING``), so concurrent
  changes each record an update of their own; the update renders the row as it is when delivered,
  so the card always ends on the latest state;
* the steps of one card are delivered in order (one ordering key per card), and a card is posted once
  (a post whose row already has its ``message_ts`` does nothing);
* the post tries the card's channels in order: a channel the bot cannot post in (a DM between people,
  a private channel: an error Slack will repeat) falls through to the next.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bot.db.models import OutboxItem
from bot.deps import Deps
from bot.errors import ChatError, NotFound
from bot.outbox import FailureNotifier, enqueue
from bot.ports import PostedMessage
from bot.render import RenderedMessage


class CardSubject(Protocol):
    """A row a card shows: its card's place in Slack and its version."""

    id: int | None
    channel_id: str | None
    message_ts: str | None
    card_version: int


S = TypeVar("S", bound=CardSubject)


@dataclass(frozen=True)
class Card(Generic[S]):
    name: str  # the ops are "<name>.post_card" and "<name>.update_card"
    model: type[S]  # the table: ``id``, ``channel_id``, ``message_ts``, ``card_version``
    payload_key: str  # the row's id in the outbox item ("rollback_id")
    render: Callable[[Deps, S], Awaitable[RenderedMessage]]
    channels: Callable[[Deps, S], list[str]]  # where the first post goes, in order of preference

    @property
    def post_op(self) -> str:
        return f"{self.name}.post_card"

    @property
    def update_op(self) -> str:
        return f"{self.name}.update_card"

    def wire(self, deps: Deps, *, on_post_failure: FailureNotifier | None = None) -> None:
        """Register the card's post and update handlers with the outbox."""
        deps.outbox.register(self.post_op, partial(post, deps, self), on_failure=on_post_failure)
        deps.outbox.register(self.update_op, partial(update, deps, self))


async def record_step(session: AsyncSession, card: Card[S], row: S, *, first: bool = False) -> None:
    """Record posting the card (``first``) or updating it to the row's state at delivery time."""
    await session.flush()
    table = card.model.__table__  # type: ignore[attr-defined]
    bumped = await session.execute(
        sa.update(table)
        .where(table.c.id == row.id)
        .values(card_version=table.c.card_version + 1)
        .returning(table.c.card_version)
    )
    version = int(bumped.scalar_one())
    set_committed_value(row, "card_version", version)
    await enqueue(
        session,
        key=f"{card.name}:{row.id}:card:{version}",
        op=card.post_op if first else card.update_op,
        target="slack",
        payload={card.payload_key: row.id},
        ordering_key=f"{card.name}:{row.id}",
    )


async def _load(deps: Deps, card: Card[S], item: OutboxItem) -> S:
    async with deps.db.session(read_only=True) as session:
        row: S | None = await session.get(card.model, int(item.payload[card.payload_key]))
    if row is None:
        raise NotFound(f"{card.name} {item.payload[card.payload_key]} no longer exists")
    return row


async def post(deps: Deps, card: Card[S], item: OutboxItem) -> dict[str, Any]:
    row = await _load(deps, card, item)
    if row.message_ts is not None:
        return {"ts": row.message_ts}
    message = await card.render(deps, row)
    posted = await _post_first_possible(deps, card.channels(deps, row), message)
    async with deps.db.session() as session:
        table = card.model.__table__  # type: ignore[attr-defined]
        await session.execute(
            sa.update(table)
            .where(table.c.id == row.id)
            .values(channel_id=posted.channel, message_ts=posted.ts)
        )
    return {"channel": posted.channel, "ts": posted.ts}


async def _post_first_possible(deps: Deps, channels: list[str], message: RenderedMessage) -> PostedMessage:
    for channel in channels[:-1]:
        try:
            return await deps.chat.post_message(channel=channel, text=message.text, blocks=message.blocks)
        except ChatError as exc:
            if exc.retryable:
                raise
    return await deps.chat.post_message(channel=channels[-1], text=message.text, blocks=message.blocks)


async def update(deps: Deps, card: Card[S], item: OutboxItem) -> dict[str, Any]:
    row = await _load(deps, card, item)
    if row.channel_id is None or row.message_ts is None:
        raise ChatError(f"the {card.name} card of {row.id} is not posted yet", retryable=True)
    message = await card.render(deps, row)
    await deps.chat.update_message(
        channel=row.channel_id, ts=row.message_ts, text=message.text, blocks=message.blocks
    )
    return {"version": row.card_version}
