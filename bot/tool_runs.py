"""A deploy tool run that may take minutes (a deploy on GO, a rollback), held under a lease.

    async with holding_lease(deps.outbox, RollbackRequest, row.id, state=("state", "running"), now=clock.now):
        result = await run_tool(lambda: deps.deploy.rollback(...), what=f"rollback {row.ref}")

While the run goes on, this replica renews the lease on the row every third of the lease, as long as
the row's state column still says so; a replica that dies stops renewing, and a watchdog job reports
the run as interrupted once the lease has lapsed (never running it again on its own). The tool's
failure is a result (``ok=False``), never an exception: a ``DeployError`` says what failed, anything
else is a bug shown as an error id (the log has the traceback).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import SQLModel

from bot.errors import DeployError, Unavailable, new_error_id
from bot.outbox import Outbox
from bot.ports import DeployResult

log = logging.getLogger(__name__)


@asynccontextmanager
async def holding_lease(
    outbox: Outbox, model: type[SQLModel], row_id: int, *, state: tuple[str, str], now: Callable[[], datetime]
) -> AsyncIterator[None]:
    """Renew this replica's lease on the row (``lease_owner``/``lease_until``) while the block runs."""
    beat = asyncio.create_task(keep_lease(outbox, model, row_id, state=state, now=now))
    try:
        yield
    finally:
        beat.cancel()


async def keep_lease(
    outbox: Outbox, model: type[SQLModel], row_id: int, *, state: tuple[str, str], now: Callable[[], datetime]
) -> None:
    """Renew the lease (``lease_owner`` / ``lease_until``) this replica holds on a row doing long
    work (a deploy, a rollback) every third of the lease, while its ``state`` column (name,
    value) still says so; runs until cancelled. A replica that dies stops renewing, and the
    row is taken over once the lease expires."""
    table = model.__table__  # type: ignore[attr-defined]
    column, value = state
    while True:
        await asyncio.sleep(max(0.05, outbox.policy.lease / 3))
        try:
            async with outbox.db.session() as session:
                await session.execute(
                    sa.update(table)
                    .where(
                        table.c.id == row_id, table.c[column] == value, table.c.lease_owner == outbox.owner
                    )
                    .values(lease_until=now() + outbox.lease)
                )
        except Unavailable:
            log.warning("%s %s: database unavailable; lease not renewed this time", table.name, row_id)


async def run_tool(call: Callable[[], Awaitable[DeployResult]], *, what: str) -> DeployResult:
    """The tool's result; its failure as a failed result, a bug as one with an error id."""
    try:
        return await call()
    except DeployError as exc:
        return DeployResult(ok=False, summary=str(exc))
    except Exception:  # a bug: the card says so with an id, the log has the traceback
        error_id = new_error_id()
        log.exception("%s raised unexpectedly (%s)", what, error_id)
        return DeployResult(ok=False, summary=f"unexpected error {error_id} (see the log)")
