"""The release ledger: every deploy and rollback cmdcenter runs, and every deploy CI reports.

Rows are ``ReleaseRecord`` (``bot/db/models/releases.py``), one per ``key``: a rollback (``rollback:<id>``)
or a reported deploy (``deploy:<service>:<env>:<version>:<commit>``). Reporting the same deploy
again updates its status (``started`` → ``succeeded``) instead of adding a row. Store functions take
a session and never commit; ``report_deploy`` and the readers are whole transactions.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot import chat_ops
from bot.db.models import Incident, ReleaseKind, ReleaseRecord, ReleaseStatus
from bot.deps import Deps
from bot.errors import NotFound
from bot.incidents.store import add_timeline
from bot.ports import Release
from bot.releases.freeze import ActiveFreeze, freezes_covering

LedgerStatus = ReleaseStatus
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "unknown"})
_STATUS_ALIASES = {
    "start": "started",
    "started": "started",
    "in_progress": "started",
    "running": "started",
    "pending": "started",
    "success": "succeeded",
    "succeeded": "succeeded",
    "successful": "succeeded",
    "deployed": "succeeded",
    "failure": "failed",
    "failed": "failed",
    "error": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}


class LedgerEntry(BaseModel):
    """One ledger row, as services and templates see it."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    service: str
    environment: str
    kind: ReleaseKind
    version: str
    revision: str = ""
    commit: str | None = None
    previous_version: str | None = None
    status: ReleaseStatus
    source: str
    actor: str = ""
    tool: str = ""
    url: str | None = None
    summary: str = ""
    rollback_id: int | None = None
    started_at: datetime
    finished_at: datetime | None = None

    @property
    def at(self) -> datetime:
        return self.finished_at or self.started_at


class DeployReport(BaseModel):
    """The body of ``POST /hooks/deploy`` (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    service: str = Field(min_length=1, max_length=100)
    environment: str = Field(min_length=1, max_length=100)
    version: str = Field(min_length=1, max_length=200)
    status: LedgerStatus
    commit: str | None = Field(default=None, max_length=100)
    url: str | None = Field(default=None, max_length=2000)
    actor: str = Field(default="", max_length=200, description="who deployed, as CI knows them")

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in _STATUS_ALIASES:
            return _STATUS_ALIASES[value.strip().lower()]
        if isinstance(value, str):
            raise ValueError("must be one of started, succeeded, failed, cancelled")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value or None


class ReportOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    created: bool
    status: str
    frozen: bool = False


# --- store functions (take a session, never commit) -------------------------------------------------


async def record(
    session: AsyncSession,
    *,
    key: str,
    service: str,
    environment: str,
    kind: ReleaseKind,
    version: str,
    status: ReleaseStatus,
    source: str,
    at: datetime,
    revision: str = "",
    commit: str | None = None,
    previous_version: str | None = None,
    actor: str = "",
    tool: str = "",
    url: str | None = None,
    summary: str = "",
    rollback_id: int | None = None,
) -> ReleaseRecord:
    """Add a ledger row (the caller makes sure ``key`` is new)."""
    row = ReleaseRecord(
        key=key,
        service=service,
        environment=environment,
        kind=kind,
        version=version,
        revision=revision,
        commit=commit,
        previous_version=previous_version,
        status=status,
        source=source,
        actor=actor,
        tool=tool,
        url=url,
        summary=summary[:1000],
        rollback_id=rollback_id,
        started_at=at,
        finished_at=at if status in TERMINAL else None,
    )
    session.add(row)
    await session.flush()
    return row


async def finish(
    session: AsyncSession,
    *,
    key: str,
    status: ReleaseStatus,
    at: datetime,
    summary: str = "",
    url: str | None = None,
) -> ReleaseRecord | None:
    """Set the outcome of the row with ``key``; None when there is no such row."""
    row = await by_key(session, key)
    if row is None:
        return None
    row.status = status
    row.summary = (summary or row.summary)[:1000]
    row.url = url or row.url
    if status in TERMINAL:
        row.finished_at = at
    return row


async def by_key(session: AsyncSession, key: str) -> ReleaseRecord | None:
    rows = await session.execute(select(ReleaseRecord).where(ReleaseRecord.key == key))
    return rows.scalars().first()


async def entries(
    session: AsyncSession,
    *,
    service: str | None = None,
    environment: str | None = None,
    since: datetime | None = None,
    limit: int = 10,
) -> list[LedgerEntry]:
    """Newest first."""
    stmt = select(ReleaseRecord)
    if service is not None:
        stmt = stmt.where(ReleaseRecord.service == service)
    if environment is not None:
        stmt = stmt.where(ReleaseRecord.environment == environment)
    if since is not None:
        stmt = stmt.where(col(ReleaseRecord.started_at) >= since)
    stmt = stmt.order_by(col(ReleaseRecord.started_at).desc(), col(ReleaseRecord.id).desc()).limit(limit)
    return [LedgerEntry.model_validate(row) for row in (await session.execute(stmt)).scalars()]


async def releases_from_ledger(session: AsyncSession, *, service: str, environment: str) -> list[Release]:
    """The successful releases of one service and environment, newest first, as a deploy tool would
    list them (the newest ``deployed``, the others ``superseded``): for tools without a history."""
    found = [
        e
        for e in await entries(session, service=service, environment=environment, limit=50)
        if e.status == "succeeded"
    ]
    return [
        Release(
            version=e.version,
            revision=e.revision or e.version,
            deployed_at=e.at,
            status="deployed" if index == 0 else "superseded",
            description=f"{e.kind} recorded by cmdcenter ({e.source})",
        )
        for index, e in enumerate(found)
    ]


def rolled_back_from(found: list[LedgerEntry], *, current: str) -> set[str]:
    """The versions a chain of rollbacks ending at ``current`` left (``found`` newest first): rolling
    back again must go further back, not return to them. Empty when the ledger's newest successful
    entry is not ``current`` (the ledger does not know how ``current`` came to be deployed)."""
    avoid: set[str] = set()
    expected = current
    for entry in (e for e in found if e.status == "succeeded"):
        if entry.version != expected or entry.kind != "rollback" or not entry.previous_version:
            break
        if entry.previous_version in avoid or entry.previous_version == current:
            break
        avoid.add(entry.previous_version)
        expected = entry.previous_version
    return avoid


async def open_incident_for(session: AsyncSession, service: str) -> Incident | None:
    """The newest open incident about ``service``."""
    rows = await session.execute(
        select(Incident)
        .where(Incident.service == service, Incident.status != "resolved")
        .order_by(col(Incident.id).desc())
    )
    return rows.scalars().first()


# --- services ----------------------------------------------------------------------------------------


async def recent_releases(deps: Deps, *, since: datetime, limit: int = 500) -> list[LedgerEntry]:
    """Every ledger row since ``since``, newest first (for /prodstatus and the weekly report)."""
    async with deps.db.session() as session:
        return await entries(session, since=since, limit=limit)


async def history(deps: Deps, *, service: str, environment: str | None, limit: int = 10) -> list[LedgerEntry]:
    async with deps.db.session() as session:
        return await entries(session, service=service, environment=environment, limit=limit)


def _report_key(report: DeployReport) -> str:
    return f"deploy:{report.service}:{report.environment}:{report.version}:{report.commit or ''}"


def check_report(deps: Deps, report: DeployReport) -> dict[str, str]:
    """Field errors of a report that parsed but names an unknown service or environment."""
    service = deps.config.service(report.service)
    if service is None:
        known = ", ".join(s.name for s in deps.config.services) or "none configured"
        return {"service": f"unknown service {report.service!r} (known: {known})"}
    if report.environment not in service.environments:
        return {"environment": f"{report.service} has no environment {report.environment!r}"}
    return {}


async def report_deploy(deps: Deps, report: DeployReport) -> ReportOutcome:
    """Record (or update) a deploy CI reports. A new deploy, or a new status of one, goes on the open
    incident's timeline for that service, and is called out in the release channel during a freeze."""
    errors = check_report(deps, report)
    if errors:
        raise NotFound("; ".join(errors.values()))
    try:
        return await _report_once(deps, report)
    except IntegrityError:
        return await _report_once(deps, report)  # the same report raced in twice: the update path


async def _report_once(deps: Deps, report: DeployReport) -> ReportOutcome:
    now = deps.clock.now()
    key = _report_key(report)
    async with deps.db.session() as session:
        row = await by_key(session, key)
        created = row is None
        if row is None:
            row = await record(
                session,
                key=key,
                service=report.service,
                environment=report.environment,
                kind="deploy",
                version=report.version,
                revision=report.commit or "",
                commit=report.commit,
                status=report.status,
                source="webhook",
                actor=report.actor,
                url=report.url,
                at=now,
            )
            changed = True
        else:
            changed = row.status != report.status
            row.status, row.url, row.actor = report.status, report.url or row.url, report.actor or row.actor
            row.finished_at = now if report.status in TERMINAL else None
        assert row.id is not None
        freezes = await freezes_covering(session, service=report.service)
        if changed:
            await _announce(session, deps, row, freezes, at=now)
        outcome = ReportOutcome(id=row.id, created=created, status=row.status, frozen=bool(freezes))
    return outcome


async def _announce(
    session: AsyncSession, deps: Deps, row: ReleaseRecord, freezes: list[ActiveFreeze], *, at: datetime
) -> None:
    incident = await open_incident_for(session, row.service)
    if incident is not None:
        await add_timeline(
            session,
            incident,
            kind="deploy",
            at=at,
            author=None,
            text=f"Deploy of {row.service} {row.version} to {row.environment} reported by CI: {row.status}",
        )
    if freezes and row.status in ("started", "succeeded"):
        await chat_ops.post(
            session,
            key=f"{row.key}:{row.status}:freeze-warning",
            channel=deps.config.slack.release_channel,
            message=deps.renderer.message("freeze/deploy_during", release=row, freezes=freezes),
        )
