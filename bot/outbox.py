"""Durable delivery of side effects (Slack posts, pages, Statuspage changes, service steps).

A service records an effect with ``enqueue(session, ...)`` in the same transaction as the state change
that causes it; the worker calls ``deliver_due()``, which runs the registered handler for the item's
``op``. Guarantees:

* nothing is lost: items survive restarts; a crashed replica's lease expires and another takes over;
* the same effect is recorded once: ``key`` is unique (``INSERT ... ON CONFLICT DO NOTHING``);
* per ``ordering_key`` (a Slack channel) items are delivered in the order they were recorded;
* retries back off exponentially with jitter and honour ``retry_after`` (from ``Retry-After``);
  an error that will never succeed (``AdapterError.retryable`` False) fails the item at once;
* an item that fails for good triggers its failure notifier once.

Delivery is at-least-once towards the outside world; handlers make it effectively once (PagerDuty
dedup keys, Statuspage incident ids stored on first success, Slack posts looked up by metadata).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.engine import Database
from bot.db.models import OutboxItem
from bot.db.store import claim_lease, insert_ignore
from bot.errors import AdapterError, CmdcenterError, Unavailable
from bot.telemetry import Telemetry

log = logging.getLogger(__name__)

Handler = Callable[[OutboxItem], Awaitable[dict[str, Any] | None]]
FailureNotifier = Callable[[OutboxItem], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 1.0
    cap: float = 300.0
    max_attempts: int = 10
    lease: float = 60.0

    def delay(self, attempts: int, retry_after: float | None) -> float:
        backoff = min(self.cap, self.base * (2 ** max(0, attempts - 1)))
        jittered = backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security
        return float(max(jittered, retry_after or 0.0))


def redelivery(item: OutboxItem) -> bool:
    """True when the item was taken over from a holder whose lease expired (it died mid-delivery),
    so the effect may already have happened: handlers check before repeating it."""
    return item.lease_owner is not None


def _now() -> datetime:
    return datetime.now(UTC)


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    op: str,
    target: str,
    payload: dict[str, Any],
    ordering_key: str | None = None,
    incident_id: int | None = None,
    delay: float = 0.0,
) -> bool:
    """Record a side effect in the caller's transaction. Returns False if ``key`` was recorded before."""
    now = _now()
    return await insert_ignore(
        session,
        OutboxItem,
        {
            "key": key,
            "op": op,
            "target": target,
            "payload": payload,
            "ordering_key": ordering_key,
            "incident_id": incident_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": "",
            "result": {},
            "created_at": now,
            "failure_notified": False,
        },
        conflict=["key"],
    )


class Outbox:
    def __init__(
        self,
        db: Database,
        telemetry: Telemetry,
        *,
        policy: RetryPolicy | None = None,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.telemetry = telemetry
        self.policy = policy or RetryPolicy()
        self.owner = owner or f"replica-{uuid.uuid4().hex[:8]}"
        self._handlers: dict[str, Handler] = {}
        self._on_failure: dict[str, FailureNotifier] = {}
        self.wakeup = asyncio.Event()
        self.default_failure_notifier: FailureNotifier | None = None

    def register(self, op: str, handler: Handler, *, on_failure: FailureNotifier | None = None) -> None:
        self._handlers[op] = handler
        if on_failure is not None:
            self._on_failure[op] = on_failure

    def on_failure(self, op: str, notifier: FailureNotifier, *, replace: bool = False) -> None:
        """Call ``notifier`` once when an item of ``op`` fails for good."""
        if replace or op not in self._on_failure:
            self._on_failure[op] = notifier

    def kick(self) -> None:
        """Ask the worker to deliver now rather than at its next tick."""
        self.wakeup.set()

    async def _eligible(self, limit: int) -> list[OutboxItem]:
        now = _now()
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(OutboxItem)
                    .where(OutboxItem.status == "pending")
                    .order_by(col(OutboxItem.id))
                    .limit(500)
                )
            ).scalars()
            eligible: list[OutboxItem] = []
            blocked: set[str] = set()
            for item in rows:
                if item.ordering_key is not None:
                    if item.ordering_key in blocked:
                        continue
                    blocked.add(item.ordering_key)  # later items of this key wait for this one
                due = item.next_attempt_at <= now
                free = item.lease_until is None or item.lease_until < now
                if due and free:
                    eligible.append(item)
                if len(eligible) >= limit:
                    break
            return eligible

    async def deliver_due(self, *, limit: int = 25) -> int:
        """One delivery pass; returns how many items were attempted."""
        items = await self._eligible(limit)
        claimed: list[OutboxItem] = []
        now = _now()
        for item in items:
            async with self.db.session() as session:
                assert item.id is not None
                if await claim_lease(
                    session,
                    OutboxItem,
                    item.id,
                    owner=self.owner,
                    now=now,
                    lease=timedelta(seconds=self.policy.lease),
                ):
                    claimed.append(item)
        await asyncio.gather(*(self._deliver(item) for item in claimed))
        await self._update_gauges()
        return len(claimed)

    async def _deliver(self, item: OutboxItem) -> None:
        handler = self._handlers.get(item.op)
        error: BaseException | None = None
        result: dict[str, Any] | None = None
        if handler is None:
            error = AdapterError(f"no handler registered for {item.op}", retryable=False)
        else:
            try:
                result = await handler(item)
            except Unavailable:
                raise
            except CmdcenterError as exc:
                error = exc
            except Exception as exc:  # a bug in a handler: logged with the item, retried with backoff
                log.exception("outbox item %s (%s) raised unexpectedly", item.id, item.op)
                error = exc
        await self._record(item, result, error)

    async def _record(
        self, item: OutboxItem, result: dict[str, Any] | None, error: BaseException | None
    ) -> None:
        now = _now()
        values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        failed_for_good = False
        if error is None:
            values |= {"status": "done", "result": result or {}, "delivered_at": now, "last_error": ""}
            self.telemetry.deliveries.labels(item.target, "delivered").inc()
        else:
            attempts = item.attempts + 1
            retryable = not isinstance(error, CmdcenterError) or (
                isinstance(error, AdapterError) and error.retryable
            )
            retry_after = error.retry_after if isinstance(error, AdapterError) else None
            message = (
                str(error) if isinstance(error, CmdcenterError) else f"unexpected {type(error).__name__}"
            )
            values |= {"attempts": attempts, "last_error": message[:500]}
            if retryable and attempts < self.policy.max_attempts:
                delay = self.policy.delay(attempts, retry_after)
                values["next_attempt_at"] = now + timedelta(seconds=delay)
                self.telemetry.deliveries.labels(item.target, "retry").inc()
                log.warning(
                    "outbox item %s (%s) attempt %d failed: %s; retry in %.1fs",
                    item.id,
                    item.op,
                    attempts,
                    message,
                    delay,
                )
            else:
                values["status"] = "failed"
                failed_for_good = True
                self.telemetry.deliveries.labels(item.target, "failed").inc()
                log.error(
                    "outbox item %s (%s) failed for good after %d attempt(s): %s",
                    item.id,
                    item.op,
                    attempts,
                    message,
                )
        if failed_for_good and not item.failure_notified:
            # Notify before the item leaves "pending": a crash in between repeats the (idempotent)
            # notification instead of losing it, and nobody sees the queue idle before it is recorded.
            values["failure_notified"] = await self._notify_failure(item, values)
        async with self.db.session() as session:
            db_item = await session.get(OutboxItem, item.id)
            if db_item is None or db_item.lease_owner != self.owner:
                return  # our lease expired and someone else took over
            for name, value in values.items():
                setattr(db_item, name, value)

    async def _notify_failure(self, item: OutboxItem, values: dict[str, Any]) -> bool:
        notifier = self._on_failure.get(item.op, self.default_failure_notifier)
        if notifier is None:
            return False
        failed = item.model_copy(update={k: v for k, v in values.items() if k in ("attempts", "last_error")})
        try:
            await notifier(failed)
        except Exception:
            log.exception("failure notifier for outbox item %s raised", item.id)
            return False
        return True

    async def get(self, item_id: int | None) -> OutboxItem | None:
        async with self.db.session() as session:
            return await session.get(OutboxItem, item_id)

    async def retry(self, item_id: int) -> bool:
        """Put a failed item back in the queue (the "Retry" button)."""
        async with self.db.session() as session:
            stmt = (
                sa.update(OutboxItem)
                .where(col(OutboxItem.id) == item_id, col(OutboxItem.status) == "failed")
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=_now(),
                    failure_notified=False,
                    last_error="",
                )
            )
            ok = bool(getattr(await session.execute(stmt), "rowcount", 0))
        self.kick()
        return ok

    async def _update_gauges(self) -> None:
        async with self.db.session() as session:
            row = (
                await session.execute(
                    sa.select(sa.func.count(), sa.func.min(OutboxItem.created_at)).where(
                        col(OutboxItem.status) == "pending"
                    )
                )
            ).one()
        count, oldest = row
        self.telemetry.outbox_depth.set(count or 0)
        if oldest is not None:
            oldest = oldest.replace(tzinfo=UTC) if oldest.tzinfo is None else oldest
            self.telemetry.outbox_oldest.set(max(0.0, (_now() - oldest).total_seconds()))
        else:
            self.telemetry.outbox_oldest.set(0)

    async def pending_for_incident(self, incident_id: int) -> list[OutboxItem]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(OutboxItem)
                .where(
                    OutboxItem.incident_id == incident_id, col(OutboxItem.status).in_(["pending", "failed"])
                )
                .order_by(col(OutboxItem.id))
            )
            return list(rows.scalars())
