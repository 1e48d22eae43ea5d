"""GO / NO-GO decisions: evaluate the gates, judge, announce GO.

    view = await decide_gonogo(deps, Decide(service="checkout", version="v1.4.3"), user=..., channel=...)
    view = await recheck(deps, decision_id=view.decision.id, user="U_SRE")

Every change goes through ``settle`` in the transaction that makes it (here, in ``votes.py``,
``exceptions.py`` and ``deploy.py``): it judges the decision from the stored gate results, the votes
and the exceptions in force (``assess``), moves its status (see ``bot.db.models.gonogo``) and records
the announcements (objection window, GO, GO withdrawn) and the card update as outbox items. Re-check
runs the gates again as a new evaluation round; so do the end of the objection window (the
``gonogo.objection`` job, here) and Deploy (``deploy.py``), so a freeze or an incident since GO stops
the release.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import chat_ops
from bot.config import ServiceConfig
from bot.db.models import GoNoGoDecision, ScheduledJob
from bot.deps import Deps
from bot.errors import Conflict, DeployError
from bot.gonogo import gate_specs, gates, store
from bot.gonogo.assess import Assessment, assess
from bot.gonogo.card import DecisionView, card_step, decision_view
from bot.gonogo.parse import Decide
from bot.gonogo.store import SYSTEM, VOTABLE, audit, load_decision, mark_changed, title
from bot.jobs import cancel as cancel_jobs
from bot.jobs import schedule

PROBE_SECONDS = 10.0


# --- evaluating ------------------------------------------------------------------------------------------


async def run_gates(
    deps: Deps, service: ServiceConfig, env: str, version: str
) -> tuple[list[gates.GateRun], tuple[bool, str]]:
    """Every gate of the service and environment, and the deploy tool's dry run, concurrently."""
    applicable = gate_specs.gates_for(service, env)
    runs, probe = await asyncio.gather(
        gates.evaluate(deps, service=service, environment=env, version=version, gates=applicable),
        _deploy_probe(deps, service, env, version),
    )
    return runs, probe


async def _deploy_probe(deps: Deps, service: ServiceConfig, env: str, version: str) -> tuple[bool, str]:
    """Can the service's deploy tool deploy this release? Its own dry run says."""
    if service.deploy is None:
        return False, f"{service.name} has no deploy tool in the config"
    if deps.deploy is None:
        return False, "no deploy tools are set up in this cmdcenter"
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            result = await deps.deploy.deploy(service=service, environment=env, version=version, dry_run=True)
    except TimeoutError:
        return False, f"{service.deploy.tool} dry run did not answer within {PROBE_SECONDS:g} s"
    except DeployError as exc:
        return False, f"{service.deploy.tool} dry run failed: {exc}"
    return result.ok, result.summary[:300]


# --- the verdict and its consequences --------------------------------------------------------------------


async def settle(
    session: AsyncSession,
    deps: Deps,
    decision: GoNoGoDecision,
    *,
    actor: str,
    window_over: bool = False,
    card: bool = True,
) -> Assessment:
    """Judge the decision now and move its status; record the announcements and the card update."""
    now = deps.clock.now()
    assessment = assess(
        results=await store.results(session, decision),
        votes=await store.votes(session, decision.id),
        exceptions=await store.active_exceptions(session, now=now, service=decision.service),
        required=decision.required_approvals,
    )
    decision.verdict, decision.blockers, decision.waived = (
        assessment.verdict,
        assessment.blockers,
        assessment.waived,
    )
    go = assessment.verdict == "go"
    minutes = deps.config.gonogo.objection_window_minutes
    if decision.status == "open" and go and minutes:
        decision.status, decision.objection_until = "objection", now + timedelta(minutes=minutes)
        await mark_changed(session, decision)
        await _schedule_objection_end(session, decision)
        await announce(session, deps, decision, assessment, "gonogo/objection", kind="objection")
    elif (decision.status == "open" and go) or (decision.status == "objection" and go and window_over):
        decision.status, decision.go_at, decision.objection_until = "go", now, None
        await mark_changed(session, decision)
        await announce(session, deps, decision, assessment, "gonogo/go", kind="go")
        audit(session, actor=actor, what="go", text=f"{title(decision)}: GO announced")
    elif decision.status in ("objection", "go") and not go:
        decision.status, decision.objection_until = "open", None
        await mark_changed(session, decision)
        await cancel_objection_end(session, decision)
        await announce(session, deps, decision, assessment, "gonogo/withdrawn", kind="withdrawn")
    if card:
        await card_step(session, decision)
    return assessment


async def announce(
    session: AsyncSession,
    deps: Deps,
    decision: GoNoGoDecision,
    assessment: Assessment,
    template: str,
    *,
    kind: str,
    **extra: Any,
) -> None:
    """A message in the release channel, recorded once per status change."""
    await chat_ops.post(
        session,
        key=f"gonogo:{decision.id}:{kind}:{decision.changes}",
        channel=deps.config.slack.release_channel,
        message=deps.renderer.message(template, view=decision_view(deps, decision, assessment), **extra),
    )


def verdict_detail(assessment: Assessment) -> str:
    """The verdict, its blockers and every gate's status, for the audit log."""
    found = ", ".join(
        f"{v.key}={'waived:' + v.exception.ref if v.exception else v.status}" for v in assessment.gates
    )
    blockers = "; ".join(assessment.blockers) or "nothing"
    return f"{assessment.verdict}; blocked by {blockers}; gates {found or 'none'}"


# --- /gonogo <service> <version> [env] and Re-check ------------------------------------------------------


async def decide_gonogo(deps: Deps, cmd: Decide, *, user: str, channel: str) -> DecisionView:
    """Evaluate every gate of the service and environment and open a decision (its card goes to the
    release channel). A live decision for the same service and environment is superseded."""
    service = deps.config.require_service(cmd.service)
    env = service.environment(cmd.environment)
    async with deps.db.session() as session:
        running = await store.live_decision(session, service.name, env)
    if running is not None and running.status == "deploying":
        raise Conflict(f"{running.ref} is deploying {service.name} {running.version} to {env}; wait for it.")
    runs, probe = await run_gates(deps, service, env, cmd.version)
    now = deps.clock.now()
    try:
        async with deps.db.session() as session:
            decision = await _open(
                session, deps, service, env, cmd.version, probe=probe, user=user, channel=channel, now=now
            )
            store.add_results(session, decision, runs, now)
            await session.flush()
            assessment = await settle(session, deps, decision, actor=user, card=False)
            await card_step(session, decision, first=True)
            detail = verdict_detail(assessment)
            audit(session, actor=user, what="decision", text=title(decision), detail=detail)
            view = decision_view(deps, decision, assessment)
    except IntegrityError:
        raise Conflict(f"Another /gonogo for {service.name} {env} started a moment ago; try again.") from None
    return view


async def _open(
    session: AsyncSession,
    deps: Deps,
    service: ServiceConfig,
    env: str,
    version: str,
    *,
    probe: tuple[bool, str],
    user: str,
    channel: str,
    now: datetime,
) -> GoNoGoDecision:
    """The new decision, superseding the live one of the same service and environment."""
    previous = await store.live_decision(session, service.name, env)
    if previous is not None:
        if previous.status == "deploying":
            raise Conflict(f"{previous.ref} started deploying {service.name} a moment ago.")
        previous.status, previous.active_key, previous.closed_at = "superseded", None, now
        await mark_changed(session, previous)
    approvals_gate = next((x for x in gate_specs.gates_for(service, env) if x.kind == "approvals"), None)
    decision = GoNoGoDecision(
        service=service.name,
        environment=env,
        version=version,
        requested_by=user,
        origin_channel=channel,
        active_key=store.active_key(service.name, env),
        evaluation=1,
        default_gates=not service.gates,
        required_approvals=gate_specs.required_approvals(approvals_gate, deps.config),
        allow_self_approval=deps.config.gonogo.allow_self_approval,
        deploy_ready=probe[0],
        deploy_note=probe[1],
        created_at=now,
        evaluated_at=now,
    )
    session.add(decision)
    await session.flush()
    if previous is not None:
        previous.superseded_by = decision.id
        await card_step(session, previous)
    return decision


async def recheck(deps: Deps, *, decision_id: int, user: str, window_over: bool = False) -> DecisionView:
    """Run every gate again (a new evaluation round) and judge the decision anew."""
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
    if decision.status not in VOTABLE:
        raise Conflict(f"{decision.ref} is {decision.status}: nothing to re-check. Start a new `/gonogo`.")
    service = deps.config.service(decision.service)
    if service is None:
        raise Conflict(f"{decision.service} is no longer in the config.")
    runs, (ready, note) = await run_gates(deps, service, decision.environment, decision.version)
    now = deps.clock.now()
    async with deps.db.session() as session:
        claimed = await session.execute(
            sa.update(GoNoGoDecision)
            .where(
                col(GoNoGoDecision.id) == decision_id,
                col(GoNoGoDecision.evaluation) == decision.evaluation,
                col(GoNoGoDecision.status).in_(VOTABLE),
            )
            .values(
                evaluation=decision.evaluation + 1, evaluated_at=now, deploy_ready=ready, deploy_note=note
            )
        )
        if not getattr(claimed, "rowcount", 0):
            raise Conflict(f"{decision.ref} was re-checked or closed a moment ago.")
        decision = await load_decision(session, decision_id)
        store.add_results(session, decision, runs, now)
        await session.flush()
        assessment = await settle(session, deps, decision, actor=user, window_over=window_over)
        audit(session, actor=user, what="recheck", text=title(decision), detail=verdict_detail(assessment))
        view = decision_view(deps, decision, assessment)
    return view


# --- the objection window ----------------------------------------------------------------------------------

OBJECTION_JOB = "gonogo.objection"


async def _schedule_objection_end(session: AsyncSession, decision: GoNoGoDecision) -> None:
    assert decision.objection_until is not None
    await schedule(
        session,
        key=f"gonogo:{decision.id}:objection:{decision.changes}",
        kind=OBJECTION_JOB,
        due_at=decision.objection_until,
        payload={"decision_id": decision.id},
    )


async def cancel_objection_end(session: AsyncSession, decision: GoNoGoDecision) -> None:
    """GO withdrawn or the decision closed: its objection window ends with nothing to announce."""
    await cancel_jobs(session, key_prefix=f"gonogo:{decision.id}:objection:")


async def objection_over(deps: Deps, job: ScheduledJob) -> None:
    """The objection window ended: run the gates again; still GO and nobody objected → announce GO."""
    decision_id = int(job.payload["decision_id"])
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
    due = decision.objection_until
    if decision.status != "objection" or due is None or due > deps.clock.now():
        return  # GO was withdrawn (and maybe regained, with a later window) meanwhile
    try:
        await recheck(deps, decision_id=decision_id, user=SYSTEM, window_over=True)
    except Conflict:
        return  # closed or re-checked meanwhile: that outcome stands


def register(deps: Deps) -> None:
    deps.jobs.register(OBJECTION_JOB, partial(objection_over, deps))
