"""The /gonogo tables: decisions, gate results, votes (approvals and rejections), policy exceptions.

Migration ``0004``. Timestamps are UTC (``UTCDateTime``). A decision's status::

    open ──verdict GO──▶ objection ──window ends, still GO──▶ go ──Deploy──▶ deploying ──▶ deployed
      ▲   (window configured)  │                               ▲  │                 │
      └──────verdict NO-GO─────┴───────────────────────────────┘  │                 └─failed─▶ go
    any of open / objection / go ──Reject──▶ rejected;   a newer /gonogo ──▶ superseded

``active_key`` (``service/env``, unique) is held while a decision is open, in its objection window,
GO or deploying: one live decision per service and environment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.db.models._types import UTCDateTime, ts

DecisionStatus = Literal["open", "objection", "go", "deploying", "deployed", "rejected", "superseded"]
LIVE: tuple[DecisionStatus, ...] = ("open", "objection", "go", "deploying")
Verdict = Literal["go", "no_go"]
GateStatus = Literal["pass", "fail", "error"]


class GoNoGoDecision(SQLModel, table=True):
    __tablename__ = "gonogo_decisions"

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True)
    environment: str
    version: str
    requested_by: str
    origin_channel: str = ""
    status: DecisionStatus = Field(default="open", index=True, sa_type=sa.String)
    active_key: str | None = Field(default=None, unique=True)
    verdict: Verdict = Field(default="no_go", sa_type=sa.String)
    blockers: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # what stands in the way
    waived: list[int] = Field(default_factory=list, sa_type=sa.JSON)  # exception ids applied
    evaluation: int = 0  # the latest round of gate results (Re-check adds one)
    default_gates: bool = False  # the service configures no gates: the defaults were used
    required_approvals: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)  # role -> count
    allow_self_approval: bool = False
    deploy_ready: bool = False  # the deploy tool's dry run says it can deploy this
    deploy_note: str = ""
    channel_id: str | None = None  # the card
    message_ts: str | None = None
    card_version: int = 0
    changes: int = 0  # status changes so far: keys each announcement once per change
    objection_until: datetime | None = ts()
    go_at: datetime | None = ts()
    superseded_by: int | None = None
    deploy_attempts: int = 0
    deployed_by: str | None = None
    deploy_ok: bool | None = None
    deploy_summary: str = ""
    deploy_output: str = ""
    deploy_url: str | None = None
    deploy_started_at: datetime | None = ts()
    deploy_finished_at: datetime | None = ts()
    lease_owner: str | None = None
    lease_until: datetime | None = ts()
    created_at: datetime = Field(sa_type=UTCDateTime)
    evaluated_at: datetime | None = ts()
    closed_at: datetime | None = ts()

    @property
    def ref(self) -> str:
        return f"GNG-{self.id}"

    @property
    def live(self) -> bool:
        return self.status in LIVE


class GateResult(SQLModel, table=True):
    """One gate's outcome in one evaluation round of a decision."""

    __tablename__ = "gonogo_gate_results"
    __table_args__ = (
        sa.UniqueConstraint("decision_id", "evaluation", "position", name="uq_gonogo_gate_results_round"),
    )

    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(index=True)
    evaluation: int
    position: int
    gate: str  # the gate's key (``ci-summary``, ``change_window``)
    name: str  # shown on the card
    kind: str
    status: GateStatus = Field(sa_type=sa.String)
    advisory: bool = False
    evidence: str = ""
    duration_ms: int = 0
    evaluated_at: datetime = Field(sa_type=UTCDateTime)


class GoNoGoVote(SQLModel, table=True):
    """An Approve or a Reject. ``valid`` False: recorded but never counted (the requester's own)."""

    __tablename__ = "gonogo_votes"
    __table_args__ = (sa.UniqueConstraint("decision_id", "user_id", "vote", name="uq_gonogo_votes_once"),)

    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(index=True)
    user_id: str
    vote: str  # approve | reject
    roles: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # approval roles held at the time
    valid: bool = True
    note: str = ""
    reason: str = ""
    at: datetime = Field(sa_type=UTCDateTime)


class GateException(SQLModel, table=True):
    """A policy exception: one gate of one service waived until ``expires_at`` (business clock)."""

    __tablename__ = "gonogo_exceptions"

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True)
    gate: str  # the gate's key
    gate_name: str
    owner: str
    reason: str
    risk: str = ""
    days: int
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)

    @property
    def ref(self) -> str:
        return f"EX-{self.id}"

    def active_at(self, when: datetime) -> bool:
        return self.created_at <= when < self.expires_at
