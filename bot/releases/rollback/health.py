"""After a successful rollback: poll the environment's health checks until they pass or time out.

    succeeded ──▶ health: checking ──▶ healthy        (every check passed)
                                  └──▶ unhealthy      (rollback.health_timeout_seconds passed)
              └─▶ health: skipped                     (no health check for this environment)

One ``rollback.health`` outbox item (``HEALTH``) per attempt, ``rollback.health_interval_seconds``
apart, until every health check of the environment passes or the deadline (wall clock, like the
outbox's own delays) has passed. The service stays held (``active_key``) until the check ends.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import HealthCheck, ServiceConfig
from bot.db.models import OutboxItem, RollbackRequest
from bot.deps import Deps
from bot.outbox import enqueue
from bot.ports import HealthResult
from bot.releases.rollback import card, store

HEALTH = "rollback.health"


def health_checks(service: ServiceConfig | None, environment: str) -> list[HealthCheck]:
    """The health checks of ``service`` that apply to ``environment``."""
    if service is None:
        return []
    return [c for c in service.health_checks if c.environment in (None, environment)]


async def start(
    session: AsyncSession, deps: Deps, row: RollbackRequest, service: ServiceConfig | None
) -> None:
    """The rollback succeeded: start checking (or skip it, freeing the service at once)."""
    if not health_checks(service, row.environment):
        row.health, row.health_detail, row.active_key = (
            "skipped",
            "no health check for this environment",
            None,
        )
        return
    row.health = "checking"
    row.health_deadline = datetime.now(UTC) + timedelta(seconds=deps.config.rollback.health_timeout_seconds)
    await _next_attempt(session, row, attempt=1, delay=0.0)


async def _next_attempt(session: AsyncSession, row: RollbackRequest, *, attempt: int, delay: float) -> None:
    await enqueue(
        session,
        key=f"rollback:{row.id}:health:{attempt}",
        op=HEALTH,
        target="probe",
        payload={"rollback_id": row.id, "attempt": attempt},
        delay=delay,
    )


async def check(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    """One attempt: probe every check; record the verdict, or the next attempt while time is left."""
    rollback_id, attempt = int(item.payload["rollback_id"]), int(item.payload["attempt"])
    async with deps.db.session() as session:
        row = await store.load(session, rollback_id)
    if row.health != "checking":
        return {"skipped": row.health}
    results = await _probe(deps, health_checks(deps.config.service(row.service), row.environment))
    healthy = all(r.ok for r in results)
    detail = "; ".join(f"{r.url}: {r.detail}" for r in results)[:1000]
    overdue = row.health_deadline is None or datetime.now(UTC) >= row.health_deadline
    async with deps.db.session() as session:
        row = await store.load(session, rollback_id)
        if row.health != "checking":
            return {"skipped": row.health}
        if not healthy and not overdue:
            row.health_detail = detail
            await _next_attempt(
                session, row, attempt=attempt + 1, delay=deps.config.rollback.health_interval_seconds
            )
            return {"healthy": False, "attempt": attempt}
        row.health, row.health_detail, row.active_key = ("healthy" if healthy else "unhealthy"), detail, None
        await card.announce(session, deps, row, "rollback/health", kind="health")
    return {"healthy": healthy, "attempt": attempt}


async def _probe(deps: Deps, checks: list[HealthCheck]) -> list[HealthResult]:
    return list(
        await asyncio.gather(
            *(
                deps.health.check(
                    url=c.url,
                    expect_status=c.expect_status,
                    json_field=c.json_field,
                    expect_value=c.expect_value,
                    timeout=c.timeout_seconds,
                )
                for c in checks
            )
        )
    )
