"""GO / NO-GO decisions: evaluate the gates, collect approvals and rejections, announce GO.

    view = await decide_gonogo(deps, Decide(service="checkout", version="v1.4.3"), user=..., channel=...)
    view, counted = await approve(deps, decision_id=view.decision.id, user="U_SRE")

Every change goes through ``_settle`` in the transaction that makes it: it judges the decision from
the stored gate results, the votes and the exceptions in force (``assess``), moves its status (see
``models.py``) and records the announcements (objection window, GO, GO withdrawn) and the card update
as outbox items. Re-check runs the gates again as a new evaluation round; so do the end of the
objection window and Deploy (``deploy.py``), so a freeze or an incident since GO stops the release.
An exception that begins or ends re-judges the live decisions of its service at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot import cards, chat_ops
from bot.config import ServiceConfig
from bot.db.models import LIVE, AuditLog, GateException, GateResult, GoNoGoDecision, GoNoGoVote, ScheduledJob
from bot.deps import Deps
from bot.errors import Conflict, DeployError, GateRefusal, NotFound, PermissionDenied
from bot.gonogo import gates as g
from bot.gonogo.assess import Assessment, ExceptionView, assess
from bot.gonogo.parse import Decide, RequestException
from bot.jobs import cancel as cancel_jobs
from bot.jobs import schedule
from bot.render import RenderedMessage

log = logging.getLogger(__name__)

SYSTEM = "cmdcenter"
OBJECTION_JOB, EXPIRY_JOB = "gonogo.objection", "gonogo.exception_expired"
VOTABLE = ("open", "objection", "go")


class Action(StrEnum):
    """The card's buttons (Slack action ids) and the Reject modal's callback id."""

    APPROVE = "gonogo_approve"
    REJECT = "gonogo_reject"
    RECHECK = "gonogo_recheck"
    DEPLOY = "gonogo_deploy"
    REJECT_VIEW = "gonogo_reject_reason"


PROBE_SECONDS = 10.0
CANARY_SECONDS = 3.0
RECENT = 5


# --- what templates get ----------------------------------------------------------------------------------


class DecisionView(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    decision: GoNoGoDecision
    assessment: Assessment
    at_local: str  # when it was asked, on the config's clock: "14:05 Europe/Paris"
    release_channel: str
    objection_minutes: int | None = None


class StatusView(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str | None
    live: list[DecisionView]
    recent: list[DecisionView]
    exceptions: list[ExceptionView]


# --- looking things up -----------------------------------------------------------------------------------


def service_config(deps: Deps, name: str) -> ServiceConfig:
    return deps.config.require_service(name)


async def load_decision(session: AsyncSession, decision_id: int) -> GoNoGoDecision:
    row = await session.get(GoNoGoDecision, decision_id, populate_existing=True)
    if row is None:
        raise NotFound(f"GNG-{decision_id} does not exist.")
    return row


async def _results(session: AsyncSession, decision: GoNoGoDecision) -> list[GateResult]:
    rows = await session.execute(
        select(GateResult).where(
            GateResult.decision_id == decision.id, GateResult.evaluation == decision.evaluation
        )
    )
    return list(rows.scalars())


async def _votes(session: AsyncSession, decision_id: int | None) -> list[GoNoGoVote]:
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


async def _exceptions(session: AsyncSession, ids: Sequence[int]) -> list[GateException]:
    if not ids:
        return []
    rows = await session.execute(select(GateException).where(col(GateException.id).in_(list(ids))))
    return list(rows.scalars())


def _local(deps: Deps, when: datetime) -> str:
    try:
        zone = g.zone(deps.config.slack.timezone)
    except ValueError:
        zone = g.zone("UTC")
    local = when.astimezone(zone)
    return f"{local:%H:%M} {getattr(zone, 'key', 'UTC')}"


async def view_of(session: AsyncSession, deps: Deps, decision: GoNoGoDecision) -> DecisionView:
    """The decision as it was last judged (with the exceptions that were applied then)."""
    assessment = assess(
        results=await _results(session, decision),
        votes=await _votes(session, decision.id),
        exceptions=await _exceptions(session, decision.waived),
        required=decision.required_approvals,
    )
    return _view(deps, decision, assessment)


def _view(deps: Deps, decision: GoNoGoDecision, assessment: Assessment) -> DecisionView:
    return DecisionView(
        decision=decision,
        assessment=assessment,
        at_local=_local(deps, decision.created_at),
        release_channel=deps.config.slack.release_channel,
        objection_minutes=deps.config.gonogo.objection_window_minutes,
    )


# --- evaluating ------------------------------------------------------------------------------------------


async def _run_gates(
    deps: Deps, service: ServiceConfig, env: str, version: str
) -> tuple[list[g.GateRun], tuple[bool, str]]:
    gates = g.gates_for(service, env)
    runs, probe = await asyncio.gather(
        g.evaluate(deps, service=service, environment=env, version=version, gates=gates),
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


def _store(session: AsyncSession, decision: GoNoGoDecision, runs: list[g.GateRun], at: datetime) -> None:
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


# --- the verdict and its consequences --------------------------------------------------------------------


async def _settle(
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
        results=await _results(session, decision),
        votes=await _votes(session, decision.id),
        exceptions=await active_exceptions(session, now=now, service=decision.service),
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
        await schedule(
            session,
            key=f"gonogo:{decision.id}:objection:{decision.changes}",
            kind=OBJECTION_JOB,
            due_at=decision.objection_until,
            payload={"decision_id": decision.id},
        )
        await announce(session, deps, decision, assessment, "gonogo/objection", kind="objection")
    elif (decision.status == "open" and go) or (decision.status == "objection" and go and window_over):
        decision.status, decision.go_at, decision.objection_until = "go", now, None
        await mark_changed(session, decision)
        await announce(session, deps, decision, assessment, "gonogo/go", kind="go")
        audit(session, actor=actor, what="go", text=f"{title(decision)}: GO announced")
    elif decision.status in ("objection", "go") and not go:
        decision.status, decision.objection_until = "open", None
        await mark_changed(session, decision)
        await cancel_jobs(session, key_prefix=f"gonogo:{decision.id}:objection:")
        await announce(session, deps, decision, assessment, "gonogo/withdrawn", kind="withdrawn")
    if card:
        await card_step(session, decision)
    return assessment


async def mark_changed(session: AsyncSession, decision: GoNoGoDecision) -> None:
    decision.changes += 1
    await session.flush()


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
        message=deps.renderer.message(template, view=_view(deps, decision, assessment), **extra),
    )


async def card_step(session: AsyncSession, decision: GoNoGoDecision, *, first: bool = False) -> None:
    """Record posting the card (``first``) or redrawing it from the stored state at delivery time."""
    await cards.record_step(session, GONOGO_CARD, decision, first=first)


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


def _verdict_detail(assessment: Assessment) -> str:
    gates = ", ".join(
        f"{v.key}={'waived:' + v.exception.ref if v.exception else v.status}" for v in assessment.gates
    )
    blockers = "; ".join(assessment.blockers) or "nothing"
    return f"{assessment.verdict}; blocked by {blockers}; gates {gates or 'none'}"


# --- /gonogo <service> <version> [env] and Re-check ------------------------------------------------------


def _active_key(service: str, env: str) -> str:
    return f"{service}/{env}"


async def _live(session: AsyncSession, service: str, env: str) -> GoNoGoDecision | None:
    rows = await session.execute(
        select(GoNoGoDecision).where(GoNoGoDecision.active_key == _active_key(service, env))
    )
    return rows.scalars().first()


async def decide_gonogo(deps: Deps, cmd: Decide, *, user: str, channel: str) -> DecisionView:
    """Evaluate every gate of the service and environment and open a decision (its card goes to the
    release channel). A live decision for the same service and environment is superseded."""
    service = service_config(deps, cmd.service)
    env = service.environment(cmd.environment)
    async with deps.db.session() as session:
        running = await _live(session, service.name, env)
    if running is not None and running.status == "deploying":
        raise Conflict(f"{running.ref} is deploying {service.name} {running.version} to {env}; wait for it.")
    approvals_gate = next((x for x in g.gates_for(service, env) if x.kind == "approvals"), None)
    runs, (ready, note) = await _run_gates(deps, service, env, cmd.version)
    now = deps.clock.now()
    try:
        async with deps.db.session() as session:
            previous = await _live(session, service.name, env)
            if previous is not None:
                if previous.status == "deploying":
                    raise Conflict(f"{previous.ref} started deploying {service.name} a moment ago.")
                previous.status, previous.active_key, previous.closed_at = "superseded", None, now
                await mark_changed(session, previous)
            decision = GoNoGoDecision(
                service=service.name,
                environment=env,
                version=cmd.version,
                requested_by=user,
                origin_channel=channel,
                active_key=_active_key(service.name, env),
                evaluation=1,
                default_gates=not service.gates,
                required_approvals=g.required_approvals(approvals_gate, deps.config),
                allow_self_approval=deps.config.gonogo.allow_self_approval,
                deploy_ready=ready,
                deploy_note=note,
                created_at=now,
                evaluated_at=now,
            )
            session.add(decision)
            await session.flush()
            if previous is not None:
                previous.superseded_by = decision.id
                await card_step(session, previous)
            _store(session, decision, runs, now)
            await session.flush()
            assessment = await _settle(session, deps, decision, actor=user, card=False)
            await card_step(session, decision, first=True)
            audit(
                session,
                actor=user,
                what="decision",
                text=title(decision),
                detail=_verdict_detail(assessment),
            )
            view = _view(deps, decision, assessment)
    except IntegrityError:
        raise Conflict(f"Another /gonogo for {service.name} {env} started a moment ago; try again.") from None
    return view


async def recheck(deps: Deps, *, decision_id: int, user: str, window_over: bool = False) -> DecisionView:
    """Run every gate again (a new evaluation round) and judge the decision anew."""
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
    if decision.status not in VOTABLE:
        raise Conflict(f"{decision.ref} is {decision.status}: nothing to re-check. Start a new `/gonogo`.")
    service = deps.config.service(decision.service)
    if service is None:
        raise Conflict(f"{decision.service} is no longer in the config.")
    runs, (ready, note) = await _run_gates(deps, service, decision.environment, decision.version)
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
        _store(session, decision, runs, now)
        await session.flush()
        assessment = await _settle(session, deps, decision, actor=user, window_over=window_over)
        audit(session, actor=user, what="recheck", text=title(decision), detail=_verdict_detail(assessment))
        view = _view(deps, decision, assessment)
    return view


# --- votes -------------------------------------------------------------------------------------------------


def _require_votable(decision: GoNoGoDecision) -> None:
    if decision.status == "deploying":
        raise Conflict(f"{decision.ref} is deploying already.")
    if decision.status not in VOTABLE:
        by = f" by GNG-{decision.superseded_by}" if decision.superseded_by else ""
        raise Conflict(f"{decision.ref} is {decision.status}{by}; start a new `/gonogo` to decide again.")


async def approve(deps: Deps, *, decision_id: int, user: str) -> tuple[DecisionView, bool]:
    """Record an approval; (the view, whether it counts). The requester's own is kept but not counted
    unless the config allows self-approval; a second approval by the same person is refused."""
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
    _require_votable(decision)
    required = decision.required_approvals
    if not required:
        raise Conflict(f"{decision.ref} needs no approvals.")
    held = await deps.access.roles(
        action="gonogo.approve", user=user, service=decision.service, environment=decision.environment
    )
    roles = sorted(held & set(required))
    if not roles:
        needs = ", ".join(f"{n} {r}" for r, n in sorted(required.items()))
        raise PermissionDenied(
            f"You may not approve {decision.ref}: it needs {needs} approval(s), from roles you do not hold.",
            who=deps.access.who_may(
                "gonogo.approve", service=decision.service, environment=decision.environment
            ),
        )
    valid = decision.allow_self_approval or user != decision.requested_by
    try:
        async with deps.db.session() as session:
            decision = await load_decision(session, decision_id)
            _require_votable(decision)
            session.add(
                GoNoGoVote(
                    decision_id=decision_id,
                    user_id=user,
                    vote="approve",
                    roles=roles,
                    valid=valid,
                    note="" if valid else "the requester: self-approval is not allowed",
                    at=deps.clock.now(),
                )
            )
            await session.flush()
            assessment = await _settle(session, deps, decision, actor=user)
            counted = "counted" if user in assessment.counted else "not counted"
            audit(
                session,
                actor=user,
                what="approve",
                text=f"{title(decision)} approved ({', '.join(roles)})",
                detail=f"{counted}; {_verdict_detail(assessment)}",
            )
            view = _view(deps, decision, assessment)
    except IntegrityError:
        raise Conflict(f"You already approved GNG-{decision_id}; a person counts once.") from None
    return view, user in assessment.counted


async def check_rejectable(deps: Deps, *, decision_id: int) -> GoNoGoDecision:
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
    _require_votable(decision)
    return decision


async def reject(deps: Deps, *, decision_id: int, user: str, reason: str) -> DecisionView:
    """A Reject with its reason: NO-GO, whatever else; the decision is closed."""
    reason = " ".join(reason.split())[:1000]
    if not reason:
        raise GateRefusal("Say why you reject the release.")
    now = deps.clock.now()
    try:
        async with deps.db.session() as session:
            decision = await load_decision(session, decision_id)
            _require_votable(decision)
            session.add(
                GoNoGoVote(decision_id=decision_id, user_id=user, vote="reject", reason=reason, at=now)
            )
            decision.status, decision.active_key, decision.closed_at = "rejected", None, now
            decision.objection_until = None
            await mark_changed(session, decision)
            await cancel_jobs(session, key_prefix=f"gonogo:{decision.id}:objection:")
            assessment = await _settle(session, deps, decision, actor=user)
            await announce(session, deps, decision, assessment, "gonogo/rejected", kind="rejected")
            audit(session, actor=user, what="reject", text=f"{title(decision)} rejected", detail=reason)
            view = _view(deps, decision, assessment)
    except IntegrityError:
        raise Conflict(f"You rejected GNG-{decision_id} already.") from None
    return view


# --- policy exceptions -------------------------------------------------------------------------------------


async def request_exception(deps: Deps, cmd: RequestException, *, user: str) -> ExceptionView:
    """Waive one gate of one service for at most ``gonogo.max_exception_days`` (longer is refused)."""
    service = service_config(deps, cmd.service)
    gate = g.find_gate(service, cmd.gate)
    if gate is None:
        keys = ", ".join(f"`{x.key}`" for x in g.service_gates(service))
        raise NotFound(f"{service.name} has no gate `{cmd.gate}` (its gates: {keys}).")
    if gate.kind == "approvals":
        raise GateRefusal("Approvals cannot be waived by an exception.")
    limit = deps.config.gonogo.max_exception_days
    if cmd.days > limit:
        raise GateRefusal(
            f"Refused: an exception lasts at most {limit} day(s), not {cmd.days}. "
            f"Ask for {limit} or fewer and renew it if it is still needed."
        )
    await deps.access.require(
        action="gonogo.exception",
        user=user,
        service=service.name,
        what=f"waive {gate.name} for {service.name}",
    )
    now = deps.clock.now()
    async with deps.db.session() as session:
        existing = next(
            (
                e
                for e in await active_exceptions(session, now=now, service=service.name)
                if e.gate == gate.key
            ),
            None,
        )
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
        audit(
            session,
            actor=user,
            what="exception",
            text=f"{found.ref}: {gate.key} waived for {service.name} for {cmd.days} day(s)",
            detail=f"risk {cmd.risk or 'not stated'}; {cmd.reason}",
        )
        await _refresh_service(session, deps, service.name, actor=user)
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
    rows = await session.execute(
        select(GoNoGoDecision).where(
            GoNoGoDecision.service == service, col(GoNoGoDecision.status).in_(VOTABLE)
        )
    )
    for decision in rows.scalars().all():
        await _settle(session, deps, decision, actor=actor)


async def _exception_expired(deps: Deps, job: ScheduledJob) -> None:
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


# --- /gonogo status ----------------------------------------------------------------------------------------


async def status(deps: Deps, *, service: str | None) -> StatusView:
    """Live decisions (one service or all), the last closed ones of a service, exceptions in force."""
    if service is not None:
        service_config(deps, service)
    async with deps.db.session() as session:
        stmt = select(GoNoGoDecision).where(col(GoNoGoDecision.status).in_(LIVE))
        if service is not None:
            stmt = stmt.where(GoNoGoDecision.service == service)
        live = list((await session.execute(stmt.order_by(col(GoNoGoDecision.id)))).scalars())
        recent: list[GoNoGoDecision] = []
        if service is not None:
            closed = (
                select(GoNoGoDecision)
                .where(GoNoGoDecision.service == service, col(GoNoGoDecision.status).not_in(LIVE))
                .order_by(col(GoNoGoDecision.id).desc())
                .limit(RECENT)
            )
            recent = list((await session.execute(closed)).scalars())
        return StatusView(
            service=service,
            live=[await view_of(session, deps, d) for d in live],
            recent=[await view_of(session, deps, d) for d in recent],
            exceptions=[
                ExceptionView.model_validate(e)
                for e in await active_exceptions(session, now=deps.clock.now(), service=service)
            ],
        )


# --- the card ---------------------------------------------------------------------------------------------


async def render_card(deps: Deps, decision_id: int) -> tuple[GoNoGoDecision, RenderedMessage]:
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
        view = await view_of(session, deps, decision)
    return decision, deps.renderer.message("gonogo/card", view=view, actions=Action)


async def _render(deps: Deps, decision: GoNoGoDecision) -> RenderedMessage:
    return (await render_card(deps, decision.id or 0))[1]


GONOGO_CARD = cards.Card(
    "gonogo", GoNoGoDecision, "decision_id", _render, lambda deps, _: [deps.config.slack.release_channel]
)


# --- jobs and wiring ---------------------------------------------------------------------------------------


async def _objection_over(deps: Deps, job: ScheduledJob) -> None:
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
    async def objection_over(job: ScheduledJob) -> None:
        await _objection_over(deps, job)

    async def exception_expired(job: ScheduledJob) -> None:
        await _exception_expired(deps, job)

    GONOGO_CARD.wire(deps)
    deps.jobs.register(OBJECTION_JOB, objection_over)
    deps.jobs.register(EXPIRY_JOB, exception_expired)
