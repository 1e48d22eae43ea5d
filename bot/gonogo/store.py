"""The GO / NO-GO tables as the services use them: the queries and the rows they add.

Every function takes the service's session and never commits: the transaction is the service's.
A live decision (status in ``bot.db.models.LIVE``) holds its service and environment's
``active_key``, unique in SQL, so two decisions for one service and environment cannot both be live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import LIVE, AuditLog, GateException, GateResult, GoNoGoDecision, GoNoGoVote
from bot.errors import NotFound
from bot.gonogo.gates import GateRun

SYSTEM = "cmdcenter"
VOTABLE = ("open", "objection", "go")


async def load_decision(session: AsyncSession, decision_id: int) -> GoNoGoDecision:
    row = await session.get(GoNoGoDecision, decision_id, populate_existing=True)
    if row is None:
        raise NotFound(f"GNG-{decision_id} does not exist.")
    return row


def active_key(service: str, env: str) -> str:
    return f"{service}/{env}"


async def live_decision(session: AsyncSession, service: str, env: str) -> GoNoGoDecision | None:
    """The live decision of one service and environment, if any."""
    rows = await session.execute(
        select(GoNoGoDecision).where(GoNoGoDecision.active_key == active_key(service, env))
    )
    return rows.scalars().first()


async def votable_decisions(session: AsyncSession, service: str) -> list[GoNoGoDecision]:
    """The decisions of ``service`` (any environment) still open to votes and re-checks."""
    rows = await session.execute(
        select(GoNoGoDecision).where(
            GoNoGoDecision.service == service, col(GoNoGoDecision.status).in_(VOTABLE)
        )
    )
    return list(rows.scalars().all())


async def live_decisions(session: AsyncSession, service: str | None) -> list[GoNoGoDecision]:
    """The live decisions of one service (all services: ``None``), oldest first."""
    stmt = select(GoNoGoDecision).where(col(GoNoGoDecision.status).in_(LIVE))
    if service is not None:
        stmt = stmt.where(GoNoGoDecision.service == service)
    return list((await session.execute(stmt.order_by(col(GoNoGoDecision.id)))).scalars())


async def closed_decisions(session: AsyncSession, service: str, *, limit: int) -> list[GoNoGoDecision]:
    """The last ``limit`` closed decisions of a service, newest first."""
    closed = (
        select(GoNoGoDecision)
        .where(GoNoGoDecision.service == service, col(GoNoGoDecision.status).not_in(LIVE))
        .order_by(col(GoNoGoDecision.id).desc())
        .limit(limit)
    )
    return list((await session.execute(closed)).scalars())


async def results(session: AsyncSession, decision: GoNoGoDecision) -> list[GateResult]:
    """The gate results of the decision's latest evaluation round."""
    rows = await session.execute(
        select(GateResult).where(
            GateResult.decision_id == decision.id, GateResult.evaluation == decision.evaluation
        )
    )
    return list(rows.scalars())


async def votes(session: AsyncSession, decision_id: int | None) -> list[GoNoGoVote]:
    rows = await session.execute(select(GoNoGoVote).where(GoNoGoVote.decision_id == decision_id))
    return list(rows.scalars())


async def active_exceptions(
    session: AsyncSession, *, now: datetime, service: str | None = None
) -> list[GateException]:
    """Exceptions in force at ``now`` (business clock), oldest first."""
    stmt = select(GateException).where(
        col(GateException.created_at) <= now, col(GateException.expires_at) > now
    )
    if service is not None:
        stmt = stmt.where(GateException.service == service)
    return list((await session.execute(stmt.order_by(col(GateException.id)))).scalars())


async def exceptions(session: AsyncSession, ids: Sequence[int]) -> list[GateException]:
    """The exceptions with these ids (those a decision's last judgement applied)."""
    if not ids:
        return []
    rows = await session.execute(select(GateException).where(col(GateException.id).in_(list(ids))))
    return list(rows.scalars())


def add_results(session: AsyncSession, decision: GoNoGoDecision, runs: list[GateRun], at: datetime) -> None:
    """The gate runs as the results of the decision's current evaluation round."""
    assert decision.id is not None
    for position, run in enumerate(runs):
        session.add(
            GateResult(
                decision_id=decision.id,
                evaluation=decision.evaluation,
                position=position,
                gate=run.gate.key,
                name=run.gate.name,
                kind=run.gate.kind,
                status=run.status,
                advisory=run.gate.advisory,
                evidence=run.evidence,
                duration_ms=run.duration_ms,
                evaluated_at=at,
            )
        )


async def mark_changed(session: AsyncSession, decision: GoNoGoDecision) -> None:
    """Count a status change (announcement keys and objection jobs carry the count)."""
    decision.changes += 1
    await session.flush()


def title(decision: GoNoGoDecision) -> str:
    return f"{decision.ref} {decision.service} {decision.version} ({decision.environment})"


def audit(session: AsyncSession, *, actor: str, what: str, text: str, detail: str = "") -> None:
    """An audit row for what the service decided (the runner's row says who asked)."""
    session.add(
        AuditLog(
            at=datetime.now(UTC),
            user_id=actor,
            channel_id="",
            command=f"gonogo.{what}",
            text=text[:2000],
            outcome="ok",
            detail=detail[:1000],
        )
    )
