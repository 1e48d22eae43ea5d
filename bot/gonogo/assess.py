"""The verdict, from stored gate results, votes and exceptions. Pure: no I/O, no clock.

* A failing or erroring gate blocks unless it is advisory or an active exception waives it.
* Approvals: each required role needs its count of distinct people holding that role. A person counts
  once (one slot, even when they hold several roles: the slots are matched to maximise coverage); the
  requester's own approval is recorded but not counted unless the config allows self-approval.
* Any Reject (with its reason) makes the verdict NO-GO, whatever else.
* GO when nothing blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.db.models import GateException, GateResult, GoNoGoVote

Verdict = Literal["go", "no_go"]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class ExceptionView(_View):
    id: int
    service: str
    gate: str
    gate_name: str
    owner: str
    reason: str
    risk: str = ""
    days: int
    created_at: datetime
    expires_at: datetime

    @property
    def ref(self) -> str:
        return f"EX-{self.id}"


class GateView(_View):
    key: str
    name: str
    kind: str
    status: Literal["pass", "fail", "error"]
    evidence: str
    advisory: bool = False
    duration_ms: int = 0
    exception: ExceptionView | None = None  # it failed, and this exception waives it

    @property
    def blocking(self) -> bool:
        return self.status != "pass" and not self.advisory and self.exception is None


class VoteView(_View):
    user_id: str
    vote: Literal["approve", "reject"]
    roles: list[str] = []
    valid: bool = True
    note: str = ""
    reason: str = ""
    at: datetime


class RoleTally(_View):
    role: str
    needed: int
    approvers: list[str]

    @property
    def complete(self) -> bool:
        return len(self.approvers) >= self.needed


class Assessment(_View):
    verdict: Verdict
    blockers: list[str]  # plain text, for the card's headline and /gonogo status
    gates: list[GateView]
    roles: list[RoleTally]
    approvals: list[VoteView]  # every Approve, counted or not
    counted: list[str]  # users whose approval fills a slot
    rejections: list[VoteView]
    waived: list[int]  # exception ids applied

    @property
    def approvals_complete(self) -> bool:
        return all(t.complete for t in self.roles)


def assess(
    *,
    results: Iterable[GateResult],
    votes: Iterable[GoNoGoVote],
    exceptions: Iterable[GateException],
    required: dict[str, int],
) -> Assessment:
    """The verdict for one evaluation round. ``exceptions`` are those in force (or, to redraw a card,
    those that were applied); each waives its gate only."""
    by_gate = {e.gate: ExceptionView.model_validate(e) for e in exceptions if e.id is not None}
    gates = []
    for result in sorted(results, key=lambda r: r.position):
        waiver = by_gate.get(result.gate) if result.status != "pass" else None
        gates.append(
            GateView(
                key=result.gate,
                name=result.name,
                kind=result.kind,
                status="pass" if result.status == "pass" else "fail" if result.status == "fail" else "error",
                evidence=result.evidence,
                advisory=result.advisory,
                duration_ms=result.duration_ms,
                exception=waiver,
            )
        )
    all_votes = [VoteView.model_validate(v) for v in sorted(votes, key=lambda v: (v.at, v.id or 0))]
    approvals = [v for v in all_votes if v.vote == "approve"]
    rejections = [v for v in all_votes if v.vote == "reject"]
    roles = tally(required, [(v.user_id, v.roles) for v in approvals if v.valid])
    blockers = [g.name for g in gates if g.blocking]
    missing = [f"{t.role} {len(t.approvers)}/{t.needed}" for t in roles if not t.complete]
    if missing:
        blockers.append(f"approvals ({', '.join(missing)})")
    if rejections:
        blockers.append("rejected")
    return Assessment(
        verdict="no_go" if blockers else "go",
        blockers=blockers,
        gates=gates,
        roles=roles,
        approvals=approvals,
        counted=sorted({u for t in roles for u in t.approvers}),
        rejections=rejections,
        waived=sorted({g.exception.id for g in gates if g.exception is not None}),
    )


def tally(required: dict[str, int], approvers: list[tuple[str, list[str]]]) -> list[RoleTally]:
    """Fill the role slots with distinct people (a bipartite matching, earliest approvers first)."""
    slots = [role for role, count in sorted(required.items()) for _ in range(count)]
    people: dict[str, set[str]] = {}
    for user, held in approvers:
        people.setdefault(user, set()).update(held)
    owner: dict[int, str] = {}

    def place(user: str, seen: set[int]) -> bool:
        for index, role in enumerate(slots):
            if role not in people[user] or index in seen:
                continue
            seen.add(index)
            if index not in owner or place(owner[index], seen):
                owner[index] = user
                return True
        return False

    for user in people:
        place(user, set())
    return [
        RoleTally(
            role=role,
            needed=count,
            approvers=[owner[i] for i, r in enumerate(slots) if r == role and i in owner],
        )
        for role, count in sorted(required.items())
    ]
