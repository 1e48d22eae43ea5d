"""Small storage helpers shared by the services. They take a session and never commit on their own."""

from __future__ import annotations

import functools
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from bot.db.models import Incident, IncidentSummary


def _insert_ignore(
    session: AsyncSession,
    model: type[SQLModel],
    conflict: list[str],
    returning: str | tuple[str, ...] | None = None,
) -> Any:
    """``INSERT INTO <model's table> ... ON CONFLICT (conflict) DO NOTHING [RETURNING returning]``,
    the values given at execution."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return _insert_ignore_statement(dialect, model.__table__, tuple(conflict), returning)  # type: ignore[attr-defined]


@functools.cache
def _insert_ignore_statement(
    dialect: str, table: sa.Table, conflict: tuple[str, ...], returning: str | tuple[str, ...] | None
) -> Any:
    """One statement object per shape, built once: SQLAlchemy memoizes a statement's cache key on
    the object, so the hot paths (captures, outbox items, inbox rows) neither rebuild the statement
    nor recompute its key on every insert."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    if returning is None:
        return stmt
    columns = (returning,) if isinstance(returning, str) else returning
    return stmt.returning(*(table.c[name] for name in columns))


async def insert_ignore(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any], *, conflict: list[str]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when a row was inserted."""
    result = await session.execute(_insert_ignore(session, model, conflict), values)
    return bool(getattr(result, "rowcount", 0))


async def insert_ignore_returning(
    session: AsyncSession,
    model: type[SQLModel],
    rows: list[dict[str, Any]],
    *,
    conflict: list[str],
    returning: str | tuple[str, ...],
) -> set[Any]:
    """INSERT ... ON CONFLICT DO NOTHING of several rows: the ``returning`` column of those inserted
    (a tuple of columns: a tuple per row). Executed as one executemany ("insertmanyvalues"): one
    cached statement whatever the row count."""
    if not rows:
        return set()
    result = await session.execute(_insert_ignore(session, model, conflict, returning), rows)
    if isinstance(returning, str):
        return set(result.scalars())
    return {tuple(row) for row in result}


async def insert_ignore_many(
    session: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]], *, conflict: list[str]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING of several rows as one executemany."""
    if rows:
        await session.execute(_insert_ignore(session, model, conflict), rows)


@functools.cache
def _plain_insert(table: sa.Table) -> sa.Insert:
    return sa.insert(table)


async def insert_rows(session: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """Plain INSERT of several rows as one executemany: no ORM objects to build and flush, for the
    write-only tables (audit rows)."""
    if rows:
        await session.execute(_plain_insert(model.__table__), rows)  # type: ignore[attr-defined]


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


_T = Incident.__table__  # type: ignore[attr-defined]
# Built once: SQLAlchemy memoizes a statement's cache key on the object. Core columns, not ORM
# objects: nobody changes these, and a row is cheaper to load as a tuple.
_OPEN_INCIDENTS = (
    sa.select(*(_T.c[f.name] for f in fields(IncidentSummary)))
    .where(_T.c.status != "resolved")
    .order_by(_T.c.id)
)


async def read_open_incidents(session: AsyncSession) -> tuple[IncidentSummary, ...]:
    """The open incidents, oldest first (``Deps.open_incidents`` shares this read among callers)."""
    return tuple(IncidentSummary(*row) for row in await session.execute(_OPEN_INCIDENTS))
