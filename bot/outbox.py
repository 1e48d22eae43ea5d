"""Durable delivery of side effects (Slack posts, pages, Statuspage changes, service steps).

A service records an effect with ``enqueue(session, ...)`` in the same transaction as the state change
that causes it; the worker calls ``deliver_due()``, which runs the registered handler for the item's
``op``. Guarantees:

* nothing is lost: items survive restarts; a crashed replica's lease expires and another takes over;
* the same effect is recorded once: ``key`` is unique (``INSERT ... ON CONFLICT DO NOTHING``);
* per ``ordering_key`` (a Slack channel) items are delivered in the order they were recorded;
  consecutive items of an op with a batch handler (``register_batch``) may go out in one call;
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
from typing import Any, NotRequired, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.engine import Database, record_effects
from bot.db.models import OutboxItem
from bot.db.store import claim_leases, insert_ignore, insert_ignore_many
from bot.errors import AdapterError, CmdcenterError, Unavailable
from bot.telemetry import Telemetry

log = logging.getLogger(__name__)

Handler = Callable[[OutboxItem], Awaitable[dict[str, Any] | None]]
BatchHandler = Callable[[list[OutboxItem]], Awaitable[dict[str, Any] | None]]
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


class Effect(TypedDict):
    """A side effect to record: what ``enqueue`` and ``outbox_row`` take."""

    key: str  # idempotency key: an effect recorded twice is recorded once
    op: str  # the registered handler that delivers it
    target: str  # the system it goes to (telemetry)
    payload: dict[str, Any]
    ordering_key: NotRequired[str | None]  # effects of one key go out in recording order
    incident_id: NotRequired[int | None]
    delay: NotRequired[float]  # seconds before it is due


def outbox_row(**effect: Unpack[Effect]) -> dict[str, Any]:
    """The row ``enqueue`` records (``enqueue_rows`` records several at once)."""
    now = _now()
    return {
        "key": effect["key"],
        "op": effect["op"],
        "target": effect["target"],
        "payload": effect["payload"],
        "ordering_key": effect.get("ordering_key"),
        "incident_id": effect.get("incident_id"),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now + timedelta(seconds=effect.get("delay", 0.0)),
        "last_error": "",
        "result": {},
        "created_at": now,
        "failure_notified": False,
    }


async def enqueue(session: AsyncSession, **effect: Unpack[Effect]) -> bool:
    """Record a side effect in the caller's transaction (delivery starts once it commits). Returns
    False if ``key`` was recorded before."""
    record_effects(session)
    return await insert_ignore(session, OutboxItem, outbox_row(**effect), conflict=["key"])


async def enqueue_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record several side effects (``outbox_row``s) with one statement; a key recorded before is skipped."""
    if rows:
        record_effects(session)
    await insert_ignore_many(session, OutboxItem, rows, conflict=["key"])


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
        self._batch_handlers: dict[str, tuple[BatchHandler, int]] = {}
        self._on_failure: dict[str, FailureNotifier] = {}
        self.wakeup = asyncio.Event()
        # Also wakes the other replicas' workers (``bot.db.wakeups``; set by the worker on PostgreSQL).
        self.broadcast: Callable[[], None] | None = None
        self.default_failure_notifier: FailureNotifier | None = None
        self._gauges_at: datetime | None = None
        db.on_effects = self.kick  # a committed unit of work that recorded items wakes the worker

    @property
    def lease(self) -> timedelta:
        """How long a replica holds what it claimed (outbox items, running deploys and rollbacks)."""
        return timedelta(seconds=self.policy.lease)

    def register(self, op: str, handler: Handler, *, on_failure: FailureNotifier | None = None) -> None:
        self._handlers[op] = handler
        if on_failure is not None:
            self._on_failure[op] = on_failure

    def register_batch(self, op: str, handler: BatchHandler, *, size: int) -> None:
        """Let up to ``size`` consecutive ready items of ``op`` in one run (one ordering key) be
        delivered by one call of ``handler`` (e.g. several timeline entries in one Slack message):
        they succeed together, and if the call fails the first item takes the failed attempt while
        the others wait behind it, as in any run. A lone item still goes to its ``register`` handler."""
        if size < 2:
            raise ValueError("a batch holds at least two items")
        if op not in self._handlers:
            raise ValueError(f"register a handler for {op} first")
        self._batch_handlers[op] = (handler, size)

    def kick(self) -> None:
        """Ask the worker (and, on PostgreSQL, the other replicas' workers) to deliver now rather
        than at their next pass."""
        self.wakeup.set()
        if self.broadcast is not None:
            self.broadcast()

    async def _eligible(self, limit: int) -> list[list[OutboxItem]]:
        """Runs of items to deliver: an item without an ordering key is a run of its own; items of one
        ordering key form one run, in recording order, cut at the first one not ready yet (later items
        of that key wait for it)."""
        now = _now()
        async with self.db.session(read_only=True) as session:
            rows = (
                await session.execute(
                    select(OutboxItem)
                    .where(OutboxItem.status == "pending")
                    .order_by(col(OutboxItem.id))
                    .limit(500)
                )
            ).scalars()
            runs: list[list[OutboxItem]] = []
            by_key: dict[str, list[OutboxItem]] = {}
            closed: set[str] = set()
            count = 0
            for item in rows:
                key = item.ordering_key
                if key is not None and key in closed:
                    continue
                ready = item.next_attempt_at <= now and (item.lease_until is None or item.lease_until < now)
                if not ready:
                    if key is not None:
                        closed.add(key)
                    continue
                if key is None:
                    runs.append([item])
                elif key in by_key:
                    by_key[key].append(item)
                else:
                    by_key[key] = [item]
                    runs.append(by_key[key])
                count += 1
                if count >= limit:
                    break
            return runs

    async def deliver_due(self, *, limit: int = 100) -> int:
        """One delivery pass: claim every ready item in one transaction, deliver the runs
        concurrently, the items of a run one after the other. Returns how many were attempted."""
        runs = await self._eligible(limit)
        claimed: list[list[OutboxItem]] = []
        if runs:
            now = _now()
            lease = self.lease
            async with self.db.session() as session:
                ids = [item.id for run in runs for item in run if item.id is not None]
                got = await claim_leases(session, OutboxItem, ids, owner=self.owner, now=now, lease=lease)
            stray: list[OutboxItem] = []  # claimed after a gap in their run: they must wait too
            for run in runs:
                taken: list[OutboxItem] = []
                for item in run:
                    if item.id not in got:
                        # another replica has it: the rest of the run waits
                        stray += [i for i in run[len(taken) :] if i.id in got]
                        break
                    taken.append(item)
                if taken:
                    claimed.append(taken)
            await self._release(stray)
        attempted = await asyncio.gather(*(self._deliver_run(run) for run in claimed))
        await self._update_gauges()
        return sum(attempted)

    async def _deliver_run(self, run: list[OutboxItem]) -> int:
        done = 0
        while done < len(run):
            group = self._batch_at(run, done)
            if len(group) > 1:
                delivered = await self._deliver_batch(group)
            else:
                delivered = await self._deliver(group[0])
            if not delivered:
                await self._release(run[done + 1 :])  # order: the rest waits for this one's retry
                return done + 1
            done += len(group)
        return done

    def _batch_at(self, run: list[OutboxItem], start: int) -> list[OutboxItem]:
        """The items from ``run[start]`` on that one batch handler call delivers (at least one)."""
        op = run[start].op
        size = self._batch_handlers[op][1] if op in self._batch_handlers else 1
        end = start + 1
        while end < len(run) and end - start < size and run[end].op == op:
            end += 1
        return run[start:end]

    async def _deliver_batch(self, items: list[OutboxItem]) -> bool:
        """Deliver ``items`` with one batch handler call; on failure the first item records it."""
        handler = self._batch_handlers[items[0].op][0]
        try:
            result = await handler(items)
        except Unavailable:
            raise
        except Exception as exc:
            if not isinstance(exc, CmdcenterError):
                log.exception("outbox batch of %d %s items raised unexpectedly", len(items), items[0].op)
            await self._record(items[0], None, exc)
            return False
        await self._update_held(items, status="done", result=result or {}, delivered_at=_now(), last_error="")
        self.telemetry.deliveries.labels(items[0].target, "delivered").inc(len(items))
        return True

    async def _release(self, items: list[OutboxItem]) -> None:
        if items:
            await self._update_held(items)

    async def _update_held(self, items: list[OutboxItem], **values: Any) -> None:
        """Set ``values`` on the items this replica still holds, and give up their lease."""
        async with self.db.session() as session:
            await session.execute(
                sa.update(OutboxItem)
                .where(
                    col(OutboxItem.id).in_([item.id for item in items]),
                    col(OutboxItem.lease_owner) == self.owner,
                )
                .values(lease_owner=None, lease_until=None, **values)
            )

    async def _deliver(self, item: OutboxItem) -> bool:
        """Run the item's handler and record the outcome; True when it was delivered."""
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
        return error is None

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
            if ok:
                record_effects(session)
        return ok

    async def _update_gauges(self) -> None:
        """The outbox depth and age gauges, at most once a second (not on every busy pass)."""
        now = _now()
        if self._gauges_at is not None and now - self._gauges_at < timedelta(seconds=1):
            return
        self._gauges_at = now
        async with self.db.session(read_only=True) as session:
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
        async with self.db.session(read_only=True) as session:
            rows = await session.execute(
                select(OutboxItem)
                .where(
                    OutboxItem.incident_id == incident_id, col(OutboxItem.status).in_(["pending", "failed"])
                )
                .order_by(col(OutboxItem.id))
            )
            return list(rows.scalars())
