"""Reading ``RollbackRequest`` rows (store functions: they take a session and never commit)."""

from __future__ import annotations

import statistics
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import RollbackRequest
from bot.errors import NotFound


def active_key(service: str, environment: str) -> str:
    """The value of ``RollbackRequest.active_key`` (unique) while a rollback holds the service there."""
    return f"{service}/{environment}"


async def load(session: AsyncSession, rollback_id: int) -> RollbackRequest:
    """The row as the database has it now; ``NotFound`` when it is gone."""
    row = await session.get(RollbackRequest, rollback_id, populate_existing=True)
    if row is None:
        raise NotFound(f"RB-{rollback_id} does not exist.")
    return row


async def holding(session: AsyncSession, service: str, environment: str) -> RollbackRequest | None:
    """The rollback that holds ``service/environment``, if any."""
    rows = await session.execute(
        select(RollbackRequest).where(RollbackRequest.active_key == active_key(service, environment))
    )
    return rows.scalars().first()


async def eta(session: AsyncSession, row: RollbackRequest) -> timedelta | None:
    """The median duration of the last rollbacks of this service and environment."""
    rows = await session.execute(
        select(RollbackRequest)
        .where(
            RollbackRequest.service == row.service,
            RollbackRequest.environment == row.environment,
            RollbackRequest.state == "succeeded",
            col(RollbackRequest.finished_at).is_not(None),
        )
        .order_by(col(RollbackRequest.id).desc())
        .limit(5)
    )
    durations = [
        (r.finished_at - r.started_at).total_seconds()
        for r in rows.scalars()
        if r.finished_at is not None and r.started_at is not None
    ]
    return timedelta(seconds=max(60.0, statistics.median(durations))) if durations else None
