"""What a scenario runner asks the running bot: which features it has, and what its outbox did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import select

from bot.db.engine import Database
from bot.db.models import OutboxItem
from bot.demo.standins import StandIns
from bot.deps import Deps
from bot.sandbox.slack.emulator import Ephemeral


def missing_feature(deps: Deps, standins: StandIns, feature: str) -> str | None:
    """Why ``feature`` is not available in this bot, or None when it is."""
    # Delivery ops the domains registered (slack.post, pagerduty.trigger...): a feature that sends
    # through the outbox is there when its op is. (Outbox has no public list of them yet.)
    ops = " ".join(getattr(deps.outbox, "_handlers", {}))
    if feature == "pagerduty":
        if deps.pager is None:
            return f"no PagerDuty adapter ({standins.missing.get('PagerDuty', 'not passed')})"
        return None if "pager" in ops else "the bot does not page PagerDuty yet (no pager delivery op)"
    if feature == "statuspage":
        if deps.statuspage is None:
            return f"no Statuspage adapter ({standins.missing.get('Statuspage', 'not passed')})"
        return None if "statuspage" in ops else "the bot does not post to Statuspage yet (no delivery op)"
    if feature == "timeline-reactions":
        handled = deps.inbox.handles({"type": "reaction_added"})
        return None if handled else "timeline capture by reaction is not in the bot yet"
    if feature == "rollback":
        ok = any(op.startswith("rollback.") for op in ops.split())
        return (
            None if ok else "/rollback is not wired into the bot yet (no rollback.* delivery ops registered)"
        )
    if feature == "deploy-tool":
        return None if deps.deploy is not None else "no deploy tool adapter (Argo CD stand-in missing)"
    return f"unknown feature {feature!r}"


async def outbox_mark(db: Database) -> int:
    """The newest outbox item id (items recorded later have greater ids)."""
    async with db.session() as session:
        newest = (await session.execute(select(func.max(OutboxItem.id)))).scalar()
    return int(newest or 0)


async def pending_ops(db: Database) -> list[str]:
    async with db.session() as session:
        rows = (await session.execute(select(OutboxItem).where(OutboxItem.status == "pending"))).scalars()
        return sorted({item.op for item in rows})


async def failed_since(db: Database, mark: int) -> list[str]:
    """``op: error`` of the deliveries recorded after ``mark`` that failed for good."""
    async with db.session() as session:
        stmt = select(OutboxItem).where(OutboxItem.status == "failed", OutboxItem.id > mark)  # type: ignore[operator]
        rows = (await session.execute(stmt)).scalars()
        return [f"{item.op}: {item.last_error[:120]}" for item in rows]


def ephemeral_text(ephemeral: Ephemeral) -> str:
    """The text of an ephemeral message and of every text object in its blocks."""
    parts = [ephemeral.text]

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                if isinstance(value, dict | list):
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(ephemeral.blocks)
    return "\n".join(parts)
