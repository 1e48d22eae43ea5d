"""Small storage helpers shared by the services. They take a session and never commit on their own."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel


def _insert_ignore(session: AsyncSession, model: type[SQLModel], conflict: list[str]) -> Any:
    """``INSERT INTO <model's table> ... ON CONFLICT (conflict) DO NOTHING``, values still to give."""
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict)


async def insert_ignore(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any], *, conflict: list[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when a row was inserted."""
    result = await session.execute(_insert_ignore(session, model, conflict).values(values))
    return bool(getattr(result, "rowcount", 0))


async def insert_ignore_returning(
    session: AsyncSession,
    model: type[SQLModel],
    rows: list[dict[str, Any]],
    *,
    conflict: list[str],
    returning: str,
) -> set[Any]:
    """INSERT ... ON CONFLICT DO NOTHING of several rows: the ``returning`` column of those inserted.
    Executed as one executemany ("insertmanyvalues"): one cached statement whatever the row count."""
    table = model.__table__  # type: ignore[attr-defined]
    stmt = _insert_ignore(session, model, conflict).returning(table.c[returning])
    return set((await session.execute(stmt, rows)).scalars())


async def insert_ignore_id(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any], *, conflict: list[str]
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new row's id, None when it existed."""
    table = model.__table__  # type: ignore[attr-defined]
    stmt = _insert_ignore(session, model, conflict).values(values).returning(table.c.id)
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    return None if new_id is None else int(new_id)


async def claim_lease(
    session: AsyncSession,
    model: type[SQLModel],
    row_id: int,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    status: str = "pending",
) -> bool:
    """Take a row's lease with one conditional UPDATE: safe across replicas on SQLite and PostgreSQL.

    A row whose lease expired (its holder died) can be taken over.
    """
    taken = await claim_leases(session, model, [row_id], owner=owner, now=now, lease=lease, status=status)
    return row_id in taken


async def claim_leases(
    session: AsyncSession,
    model: type[SQLModel],
    row_ids: list[int],
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    status: str = "pending",
) -> set[int]:
    """``claim_lease`` for several rows in one UPDATE: the ids of those taken."""
    if not row_ids:
        return set()
    table = model.__table__  # type: ignore[attr-defined]
    stmt = (
        sa.update(table)
        .where(table.c.id.in_(row_ids), table.c.status == status)
        .where(sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease)
        .returning(table.c.id)
    )
    return {int(row_id) for row_id in (await session.execute(stmt)).scalars()}
