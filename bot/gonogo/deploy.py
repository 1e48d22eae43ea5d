"""The Deploy button of a GO decision: the deploy through ``deps.deploy``, the ledger, the post-deploy update.

Exactly once. The button moves ``go → deploying`` with one conditional UPDATE and records the ledger row
(``started``) and the ``gonogo.deploy`` outbox item in the same transaction. The worker takes a lease on
the decision (another conditional UPDATE) and runs the tool beside the worker loop, renewing the lease;
a ``gonogo.deploy_watch`` job reports a run whose replica died as interrupted and never runs it again.
The gates run once more before anything is claimed: a freeze or an incident since GO stops the deploy.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import partial
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import PrometheusQuery, ServiceConfig
from bot.db.models import GoNoGoDecision, OutboxItem, ScheduledJob
from bot.deps import Deps
from bot.errors import ChatError, Conflict, DeployError, GateRefusal, ProbeError
from bot.gonogo.card import DecisionView, card_step, view_of
from bot.gonogo.decisions import announce, recheck
from bot.gonogo.store import SYSTEM, audit, load_decision, mark_changed, title
from bot.incidents.store import add_timeline
from bot.jobs import cancel as cancel_jobs
from bot.jobs import schedule
from bot.outbox import enqueue
from bot.ports import DeployResult
from bot.releases import ledger
from bot.tool_runs import holding_lease, run_tool

log = logging.getLogger(__name__)

CANARY_SECONDS = 3.0


class CanaryFigure(BaseModel):
    """One of the service's Prometheus queries right after the deploy."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    unit: str = ""
    level: Literal["ok", "warn", "critical", "unknown"] = "unknown"
    detail: str = ""


def _ledger_key(decision: GoNoGoDecision) -> str:
    return f"gonogo:{decision.id}:deploy:{decision.deploy_attempts}"


async def deploy_release(deps: Deps, *, decision_id: int, user: str) -> DecisionView:
    """The Deploy button: permission ``deploy``; the gates are run again and must still say GO."""
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
    service = deps.config.require_service(decision.service)
    await _check_deployable(deps, decision, user)
    await _still_go(deps, decision_id, decision.ref, user)
    now = deps.clock.now()
    async with deps.db.session() as session:
        decision = await _claim_decision(session, decision_id, decision.ref, user=user, now=now)
        await ledger.record(
            session,
            key=_ledger_key(decision),
            service=decision.service,
            environment=decision.environment,
            kind="deploy",
            version=decision.version,
            previous_version=await _last_deployed(session, decision),
            status="started",
            source="cmdcenter",
            actor=user,
            tool=service.deploy.tool if service.deploy else "",
            summary=f"{decision.ref}: GO/NO-GO",
            at=now,
        )
        await enqueue(
            session,
            key=_ledger_key(decision),
            op=DEPLOY,
            target="deploy",
            payload={"decision_id": decision.id, "attempt": decision.deploy_attempts},
        )
        await card_step(session, decision)
        audit(session, actor=user, what="deploy", text=f"{title(decision)}: deploy started")
        view = await view_of(session, deps, decision)
    return view


async def _check_deployable(deps: Deps, decision: GoNoGoDecision, user: str) -> None:
    """The permission ``deploy``, and a decision at GO (not deploying already)."""
    await deps.access.require(
        action="deploy",
        user=user,
        service=decision.service,
        environment=decision.environment,
        what=f"deploy {decision.service} {decision.version}",
    )
    if decision.status == "deploying":
        raise Conflict(f"{decision.ref} is deploying already.")
    if decision.status != "go":
        why = f" (blocked by {', '.join(decision.blockers)})" if decision.blockers else ""
        raise GateRefusal(
            f"{decision.ref} is {decision.status.replace('_', ' ')}, not GO{why}: nothing deployed."
        )


async def _still_go(deps: Deps, decision_id: int, ref: str, user: str) -> None:
    """Run the gates once more: a freeze or an incident since GO, or a tool that cannot deploy, stops it."""
    view = await recheck(deps, decision_id=decision_id, user=user)
    if view.decision.status != "go":
        blockers = ", ".join(view.assessment.blockers)
        raise GateRefusal(f"{ref} is no longer GO (blocked by {blockers}): nothing was deployed.")
    if not view.decision.deploy_ready:
        raise GateRefusal(f"The deploy tool cannot deploy {ref}: {view.decision.deploy_note}")


async def _claim_decision(
    session: AsyncSession, decision_id: int, ref: str, *, user: str, now: datetime
) -> GoNoGoDecision:
    """``go → deploying`` with one conditional UPDATE (a new deploy attempt); refused if it moved."""
    claimed = await session.execute(
        sa.update(GoNoGoDecision)
        .where(col(GoNoGoDecision.id) == decision_id, col(GoNoGoDecision.status) == "go")
        .values(
            status="deploying",
            deploy_attempts=col(GoNoGoDecision.deploy_attempts) + 1,
            deployed_by=user,
            deploy_started_at=now,
            deploy_finished_at=None,
            deploy_ok=None,
            deploy_summary="",
            deploy_output="",
            deploy_url=None,
        )
    )
    if not getattr(claimed, "rowcount", 0):
        raise Conflict(f"{ref} was deployed or changed a moment ago.")
    decision = await load_decision(session, decision_id)
    await mark_changed(session, decision)
    return decision


async def _last_deployed(session: AsyncSession, decision: GoNoGoDecision) -> str | None:
    """The version the ledger last saw deployed to the decision's service and environment."""
    entries = await ledger.entries(session, service=decision.service, environment=decision.environment)
    return next((e.version for e in entries if e.status == "succeeded"), None)


# --- the outbox step: claim the decision, run the tool beside the worker loop, finish -------------------

DEPLOY = "gonogo.deploy"


async def start_deploy(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    """Claim the decision's deploy attempt (a lease) and run the tool in the background."""
    if not await _claim(deps, item):
        return {"skipped": "already started or no longer deploying"}
    deps.tasks.spawn(_run(deps, int(item.payload["decision_id"])), what="Deploy on GO")
    return {"started": item.payload["decision_id"]}


async def deploy_not_started(deps: Deps, item: OutboxItem) -> None:
    """The deploy step failed for good: report the attempt interrupted."""
    async with deps.db.session() as session:
        decision = await load_decision(session, int(item.payload["decision_id"]))
        if decision.status == "deploying" and decision.deploy_attempts == int(item.payload["attempt"]):
            await _interrupt(session, deps, decision, f"the deploy could not be started: {item.last_error}")


async def _claim(deps: Deps, item: OutboxItem) -> bool:
    decision_id, attempt = int(item.payload["decision_id"]), int(item.payload["attempt"])
    now = deps.clock.now()
    async with deps.db.session() as session:
        claimed = await session.execute(
            sa.update(GoNoGoDecision)
            .where(
                col(GoNoGoDecision.id) == decision_id,
                col(GoNoGoDecision.status) == "deploying",
                col(GoNoGoDecision.deploy_attempts) == attempt,
                col(GoNoGoDecision.lease_owner).is_(None),
            )
            .values(lease_owner=deps.outbox.owner, lease_until=now + deps.outbox.lease)
        )
        if not getattr(claimed, "rowcount", 0):
            return False
        await _schedule_watch(session, deps, decision_id, attempt=attempt, check=1)
    return True


async def _run(deps: Deps, decision_id: int) -> None:
    lease = holding_lease(
        deps.outbox, GoNoGoDecision, decision_id, state=("status", "deploying"), now=deps.clock.now
    )
    async with lease:
        async with deps.db.session() as session:
            decision = await load_decision(session, decision_id)
        service = deps.config.service(decision.service)
        result = await run_tool(lambda: _deploy(deps, decision, service), what=f"deploy of {decision.ref}")
        figures = await canary_figures(deps, service) if result.ok and service is not None else []
        await _finish_deploy(deps, decision_id, result, figures)


async def _deploy(deps: Deps, decision: GoNoGoDecision, service: ServiceConfig | None) -> DeployResult:
    if service is None or deps.deploy is None:
        raise DeployError(f"{decision.service} is no longer set up for deploys", retryable=False)
    return await deps.deploy.deploy(
        service=service, environment=decision.environment, version=decision.version, dry_run=False
    )


async def canary_figures(deps: Deps, service: ServiceConfig) -> list[CanaryFigure]:
    """The service's Prometheus queries right after the deploy (``services[].prometheus``)."""
    metrics = deps.metrics
    if metrics is None or not service.prometheus:
        return []

    async def one(query: PrometheusQuery) -> CanaryFigure:
        try:
            sample = await metrics.instant(query=query.query, timeout=CANARY_SECONDS)
        except ProbeError as exc:
            return CanaryFigure(name=query.name, value=None, unit=query.unit, detail=str(exc)[:200])
        return CanaryFigure(
            name=query.name, value=sample.value, unit=query.unit, level=_level(query, sample.value)
        )

    return list(await asyncio.gather(*(one(q) for q in service.prometheus)))


def _level(query: PrometheusQuery, value: float | None) -> Literal["ok", "warn", "critical", "unknown"]:
    if value is None:
        return "unknown"
    sign = 1 if query.direction == "above" else -1
    if query.critical is not None and sign * value >= sign * query.critical:
        return "critical"
    if query.warn is not None and sign * value >= sign * query.warn:
        return "warn"
    return "ok"


async def _permalink(deps: Deps, decision: GoNoGoDecision) -> str | None:
    if not decision.channel_id or not decision.message_ts:
        return None
    try:
        return await deps.chat.permalink(channel=decision.channel_id, ts=decision.message_ts)
    except ChatError:
        return None


async def _finish_deploy(
    deps: Deps, decision_id: int, result: DeployResult, figures: list[CanaryFigure]
) -> None:
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
    card_link = await _permalink(deps, decision)
    now = deps.clock.now()
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
        if decision.status != "deploying" or decision.lease_owner != deps.outbox.owner:
            return  # reported interrupted meanwhile: that report stands
        decision.status = "deployed" if result.ok else "go"
        decision.deploy_ok, decision.deploy_summary = result.ok, result.summary[:1000]
        decision.deploy_output, decision.deploy_url = result.output[:3000], result.url
        decision.deploy_finished_at, decision.lease_owner, decision.lease_until = now, None, None
        if result.ok:
            decision.active_key, decision.closed_at = None, now
        await mark_changed(session, decision)
        await ledger.finish(
            session,
            key=_ledger_key(decision),
            status="succeeded" if result.ok else "failed",
            at=now,
            summary=result.summary,
            url=result.url,
        )
        await cancel_jobs(session, key_prefix=f"gonogo:{decision.id}:watch:")
        incident = await ledger.open_incident_for(session, decision.service)
        if incident is not None:
            outcome = "succeeded" if result.ok else "failed"
            await add_timeline(
                session,
                incident,
                kind="deploy",
                at=now,
                author=decision.deployed_by,
                text=f"Deploy of {title(decision)} {outcome}: {result.summary[:300]}",
            )
        await _deployed(
            session,
            deps,
            decision,
            figures=figures,
            card_link=card_link,
            actor=decision.deployed_by or SYSTEM,
            text=f"{title(decision)}: deploy {'succeeded' if result.ok else 'failed'}",
            detail=result.summary,
        )


async def _deployed(
    session: AsyncSession,
    deps: Deps,
    decision: GoNoGoDecision,
    *,
    figures: list[CanaryFigure],
    card_link: str | None,
    actor: str,
    text: str,
    detail: str,
) -> None:
    """Announce how the deploy ended, refresh the decision's card, and audit it."""
    view = await view_of(session, deps, decision)
    await announce(
        session,
        deps,
        decision,
        view.assessment,
        "gonogo/deployed",
        kind="deployed",
        figures=figures,
        card_link=card_link,
    )
    await card_step(session, decision)
    audit(session, actor=actor, what="deploy", text=text, detail=detail)


async def _interrupt(session: AsyncSession, deps: Deps, decision: GoNoGoDecision, why: str) -> None:
    """The deploy's replica died, or its outbox step failed for good: report it; never run it again."""
    now = deps.clock.now()
    decision.status, decision.deploy_ok, decision.deploy_summary = "go", False, why
    decision.deploy_finished_at, decision.lease_owner, decision.lease_until = now, None, None
    await mark_changed(session, decision)
    await ledger.finish(session, key=_ledger_key(decision), status="unknown", at=now, summary=why)
    await _deployed(
        session,
        deps,
        decision,
        figures=[],
        card_link=None,
        actor=SYSTEM,
        text=f"{title(decision)}: deploy interrupted",
        detail=why,
    )


# --- the watch job: a deploy whose replica died is reported interrupted -------------------------------

WATCH_JOB = "gonogo.deploy_watch"


async def _schedule_watch(
    session: AsyncSession, deps: Deps, decision_id: int, *, attempt: int, check: int
) -> None:
    await schedule(
        session,
        key=f"gonogo:{decision_id}:watch:{attempt}:{check}",
        kind=WATCH_JOB,
        due_at=deps.clock.now() + 2 * deps.outbox.lease,
        payload={"decision_id": decision_id, "attempt": attempt, "check": check},
    )


async def watch_deploy(deps: Deps, job: ScheduledJob) -> None:
    """While the lease is renewed, watch again later; once it lapsed, report the deploy interrupted."""
    decision_id, attempt, check = (int(job.payload[k]) for k in ("decision_id", "attempt", "check"))
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
        if decision.status != "deploying" or decision.deploy_attempts != attempt:
            return
        if decision.lease_until is not None and decision.lease_until < deps.clock.now():
            why = "cmdcenter stopped while the deploy tool was running: check the tool before deploying again"
            await _interrupt(session, deps, decision, why)
        else:
            await _schedule_watch(session, deps, decision_id, attempt=attempt, check=check + 1)


def register(deps: Deps) -> None:
    deps.outbox.register(DEPLOY, partial(start_deploy, deps), on_failure=partial(deploy_not_started, deps))
    deps.jobs.register(WATCH_JOB, partial(watch_deploy, deps))
