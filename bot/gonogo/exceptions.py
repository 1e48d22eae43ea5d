"""Policy exceptions: waive one gate of one service for a few days.

    cmd = RequestException(service="checkout", gate="ci", days=2, reason="CI is down", risk="low")
    found = await request_exception(deps, cmd, user="U_SRE")

An exception lasts at most ``gonogo.max_exception_days`` (longer is refused, never shortened); one
gate has at most one exception in force; approvals cannot be waived. It is recorded with its expiry
job (``gonogo.exception_expired``, here) in one transaction, and both its beginning and its end are
announced in the release channel and re-judge the live decisions of its service at once (no gate
runs again: the stored results are judged with the exceptions now in force).
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot import chat_ops
from bot.config import ServiceConfig
from bot.db.models import GateException, ScheduledJob
from bot.deps import Deps
from bot.errors import Conflict, GateRefusal, NotFound
from bot.gonogo import gate_specs, store
from bot.gonogo.assess import ExceptionView
from bot.gonogo.decisions import settle
from bot.gonogo.gate_specs import Gate
from bot.gonogo.parse import RequestException
from bot.gonogo.store import SYSTEM, audit
from bot.jobs import schedule


async def request_exception(deps: Deps, cmd: RequestException, *, user: str) -> ExceptionView:
    """Waive one gate of one service for at most ``gonogo.max_exception_days`` (longer is refused)."""
    service = deps.config.require_service(cmd.service)
    gate = _waivable_gate(deps, service, cmd)
    await deps.access.require(
        action="gonogo.exception",
        user=user,
        service=service.name,
        what=f"waive {gate.name} for {service.name}",
    )
    async with deps.db.session() as session:
        found = await _record(session, deps, service, gate, cmd, user=user)
        audit(
            session,
            actor=user,
            what="exception",
            text=f"{found.ref}: {gate.key} waived for {service.name} for {cmd.days} day(s)",
            detail=f"risk {cmd.risk or 'not stated'}; {cmd.reason}",
        )
        await _refresh_service(session, deps, service.name, actor=user)
    return found


def _waivable_gate(deps: Deps, service: ServiceConfig, cmd: RequestException) -> Gate:
    """The gate the command names, if an exception may waive it for that long."""
    gate = gate_specs.find_gate(service, cmd.gate)
    if gate is None:
        keys = ", ".join(f"`{x.key}`" for x in gate_specs.service_gates(service))
        raise NotFound(f"{service.name} has no gate `{cmd.gate}` (its gates: {keys}).")
    if gate.kind == "approvals":
        raise GateRefusal("Approvals cannot be waived by an exception.")
    limit = deps.config.gonogo.max_exception_days
    if cmd.days > limit:
        raise GateRefusal(
            f"Refused: an exception lasts at most {limit} day(s), not {cmd.days}. "
            f"Ask for {limit} or fewer and renew it if it is still needed."
        )
    return gate


async def _record(
    session: AsyncSession, deps: Deps, service: ServiceConfig, gate: Gate, cmd: RequestException, *, user: str
) -> ExceptionView:
    """The exception row, its expiry job and its announcement; refused if the gate is waived already."""
    now = deps.clock.now()
    in_force = await store.active_exceptions(session, now=now, service=service.name)
    existing = next((e for e in in_force if e.gate == gate.key), None)
    if existing is not None:
        raise Conflict(
            f"{existing.ref} already waives {gate.name} for {service.name} "
            f"until {existing.expires_at:%Y-%m-%d %H:%M} UTC."
        )
    row = GateException(
        service=service.name,
        gate=gate.key,
        gate_name=gate.name,
        owner=user,
        reason=cmd.reason[:1000],
        risk=cmd.risk,
        days=cmd.days,
        created_at=now,
        expires_at=now + timedelta(days=cmd.days),
    )
    session.add(row)
    await session.flush()
    found = ExceptionView.model_validate(row)
    await schedule(
        session,
        key=f"gonogo:exception:{row.id}:expiry",
        kind=EXPIRY_JOB,
        due_at=row.expires_at,
        payload={"exception_id": row.id},
    )
    await _post_exception(session, deps, row.id, found, expired=False)
    return found


async def _post_exception(
    session: AsyncSession, deps: Deps, row_id: int | None, found: ExceptionView, *, expired: bool
) -> None:
    """Tell the release channel that an exception was recorded (or expired), once."""
    await chat_ops.post(
        session,
        key=f"gonogo:exception:{row_id}:{'expired' if expired else 'recorded'}",
        channel=deps.config.slack.release_channel,
        message=deps.renderer.message("gonogo/exception", exception=found, expired=expired),
    )


async def _refresh_service(session: AsyncSession, deps: Deps, service: str, *, actor: str) -> None:
    """Judge the live decisions of ``service`` again (an exception began or ended); no gate re-runs."""
    for decision in await store.votable_decisions(session, service):
        await settle(session, deps, decision, actor=actor)


# --- the end of an exception -------------------------------------------------------------------------------

EXPIRY_JOB = "gonogo.exception_expired"


async def exception_expired(deps: Deps, job: ScheduledJob) -> None:
    """An exception ran out: announce it and judge its service's live decisions without it."""
    async with deps.db.session() as session:
        row = await session.get(GateException, int(job.payload["exception_id"]))
        if row is None:
            return
        found = ExceptionView.model_validate(row)
        await _post_exception(session, deps, row.id, found, expired=True)
        audit(
            session, actor=SYSTEM, what="exception_expired", text=f"{found.ref}: {row.gate} on {row.service}"
        )
        await _refresh_service(session, deps, row.service, actor=SYSTEM)


def register(deps: Deps) -> None:
    deps.jobs.register(EXPIRY_JOB, partial(exception_expired, deps))
