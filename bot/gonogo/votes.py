"""Votes on a GO / NO-GO decision: Approve (by role) and Reject (with a reason).

    view, counted = await approve(deps, decision_id=7, user="U_SRE")
    view = await reject(deps, decision_id=7, user="U_PM", reason="the migration is not reviewed")

A vote is recorded in the transaction that judges the decision again (``decisions.settle``). A person
approves once (a unique vote row; a second one is refused); the requester's own approval is kept but
not counted unless the config allows self-approval. A Reject closes the decision as NO-GO, whatever
else. Only a decision still open to votes (``store.VOTABLE``) takes one.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from bot.db.models import GoNoGoDecision, GoNoGoVote
from bot.deps import Deps
from bot.errors import Conflict, GateRefusal, PermissionDenied
from bot.gonogo.card import DecisionView, decision_view
from bot.gonogo.decisions import announce, cancel_objection_end, settle, verdict_detail
from bot.gonogo.store import VOTABLE, audit, load_decision, mark_changed, title


def _require_votable(decision: GoNoGoDecision) -> None:
    if decision.status == "deploying":
        raise Conflict(f"{decision.ref} is deploying already.")
    if decision.status not in VOTABLE:
        by = f" by GNG-{decision.superseded_by}" if decision.superseded_by else ""
        raise Conflict(f"{decision.ref} is {decision.status}{by}; start a new `/gonogo` to decide again.")


async def _approver_roles(deps: Deps, decision: GoNoGoDecision, user: str) -> list[str]:
    """The roles the decision needs that ``user`` holds; refused when none."""
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
    return roles


async def approve(deps: Deps, *, decision_id: int, user: str) -> tuple[DecisionView, bool]:
    """Record an approval; (the view, whether it counts). The requester's own is kept but not counted
    unless the config allows self-approval; a second approval by the same person is refused."""
    async with deps.db.session() as session:
        decision = await load_decision(session, decision_id)
    _require_votable(decision)
    roles = await _approver_roles(deps, decision, user)
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
            assessment = await settle(session, deps, decision, actor=user)
            counted = "counted" if user in assessment.counted else "not counted"
            audit(
                session,
                actor=user,
                what="approve",
                text=f"{title(decision)} approved ({', '.join(roles)})",
                detail=f"{counted}; {verdict_detail(assessment)}",
            )
            view = decision_view(deps, decision, assessment)
    except IntegrityError:
        raise Conflict(f"You already approved GNG-{decision_id}; a person counts once.") from None
    return view, user in assessment.counted


async def check_rejectable(deps: Deps, *, decision_id: int) -> GoNoGoDecision:
    """The decision, if it still takes a Reject (before the Reject modal opens, and as it is sent)."""
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
            await cancel_objection_end(session, decision)
            assessment = await settle(session, deps, decision, actor=user)
            await announce(session, deps, decision, assessment, "gonogo/rejected", kind="rejected")
            audit(session, actor=user, what="reject", text=f"{title(decision)} rejected", detail=reason)
            view = decision_view(deps, decision, assessment)
    except IntegrityError:
        raise Conflict(f"You rejected GNG-{decision_id} already.") from None
    return view
