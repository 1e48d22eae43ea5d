"""/rollback: parse the text, prepare a confirmation card, run the deploy tool once, verify health.

A ``RollbackRequest`` row (``bot/db/models.py``) is the state machine::

    pending ──Confirm──▶ approved ──worker claims──▶ running ──▶ succeeded ──▶ health: checking ──▶ healthy
       │                                               │                                        └─▶ unhealthy
       ├──Cancel──▶ cancelled                          ├──▶ failed
       └──(nobody confirmed in time)──▶ expired        └──(its replica died: lease lapsed)──▶ interrupted

Exactly once. Confirm moves pending → approved with one conditional UPDATE and records the
``rollback.execute`` outbox item in the same transaction; the worker moves approved → running with
another conditional UPDATE before it calls the tool, outside the worker loop (a rollback may take
minutes), renewing a lease on the row while it runs. A double click, a Slack retry or a second replica
loses one of these races and runs nothing; a run whose replica died is reported ``interrupted`` by the
``rollback.watchdog`` job, never run again on its own.

One at a time. ``active_key`` (``service/env``, unique) is held from the request until the health check
ends, so a second /rollback of the same service and environment is refused with a pointer to the card.

Health is polled by ``rollback.health`` outbox items, one per attempt, every
``rollback.health_interval_seconds`` until every health check of that environment passes or
``rollback.health_timeout_seconds`` (wall clock, like the outbox's own delays) have passed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot import cards, chat_ops
from bot.config import ArgoCDDeploy, HealthCheck, ServiceConfig
from bot.context import Reply
from bot.db.models import Incident, OutboxItem, RollbackRequest, RollbackState, ScheduledJob
from bot.deps import Deps
from bot.errors import ChatError, Conflict, DeployError, NotFound, Unavailable, UsageError, UserError
from bot.incidents.store import add_timeline
from bot.jobs import cancel as cancel_jobs
from bot.jobs import schedule
from bot.outbox import enqueue
from bot.ports import DeployResult, DeployTool, HealthResult, Release
from bot.releases import freeze, ledger
from bot.render import RenderedMessage
from bot.tool_runs import holding_lease, run_tool

log = logging.getLogger(__name__)

CONFIRM_ACTION = "rollback_confirm"
CANCEL_ACTION = "rollback_cancel"
FINISH_ATTEMPTS = 12  # ~5 minutes of retries when the database is down as the tool finishes
PENDING_TTL = timedelta(minutes=30)  # an unconfirmed card stops blocking new requests after this
HISTORY_LIMIT = 10
SUCCESSFUL = frozenset({"deployed", "superseded", "succeeded", "success", "complete", "completed"})
_KEYWORDS = frozenset({"to", "because", "history", "help"})
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+:/@-]{0,99}$")  # never starts with "-": no flag injection


# --- parsing ------------------------------------------------------------------------------------------


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True)


class Help(_Cmd):
    pass


class History(_Cmd):
    service: str
    environment: str | None = None


class Request(_Cmd):
    service: str
    environment: str | None = None
    target: str | None = None
    reason: str = ""


RollbackCommand = Help | History | Request


def parse(text: str) -> RollbackCommand:
    """``<service> [env] [to <version|revision>] [because <reason>]``, ``history <service> [env]``
    or ``help``. Raises ``UsageError`` (without the usage, which the caller adds) for anything else.
    """
    words = text.split()
    if not words or words[0].lower() in ("help", "-h", "--help", "?"):
        return Help()
    if words[0].lower() == "history":
        rest = words[1:]
        if not rest:
            raise UsageError("Name the service: `/rollback history checkout [env]`.")
        if len(rest) > 2:
            raise UsageError(f"Unexpected `{rest[2][:40]}`: `/rollback history <service> [env]`.")
        return History(service=_service(rest[0]), environment=_env(rest[1]) if len(rest) == 2 else None)
    lowered = [w.lower() for w in words]
    reason = ""
    if "because" in lowered:
        at = lowered.index("because")
        reason = " ".join(words[at + 1 :])
        if not reason:
            raise UsageError("Say why after `because`, e.g. `because 502s after v1.4.2`.")
        words, lowered = words[:at], lowered[:at]
    if not words or lowered[0] in _KEYWORDS:
        raise UsageError("Name the service first: `/rollback checkout prod because 502s after v1.4.2`.")
    service, rest = _service(words[0]), words[1:]
    environment = None
    if rest and rest[0].lower() != "to":
        environment = _env(rest.pop(0))
    target = None
    if rest:
        if rest[0].lower() != "to":
            raise UsageError(f"Unexpected `{rest[0][:40]}`: put the reason after `because`.")
        if len(rest) < 2:
            raise UsageError("Name the version or revision after `to`, e.g. `to v1.4.1` or `to 41`.")
        if len(rest) > 2:
            raise UsageError(f"Unexpected `{rest[2][:40]}`: put the reason after `because`.")
        target = _target(rest[1])
    return Request(service=service, environment=environment, target=target, reason=reason)


def _service(word: str) -> str:
    name = word.lower()
    if not _SERVICE.match(name) or name in _KEYWORDS:
        raise UsageError(f"`{word[:40]}` is not a service name.")
    return name


def _env(word: str) -> str:
    if not _ENV.match(word) or word.lower() in _KEYWORDS:
        raise UsageError(f"`{word[:40]}` is not an environment name.")
    return word.lower()


def _target(word: str) -> str:
    if not _TARGET.match(word) or word.lower() in _KEYWORDS:
        raise UsageError(f"`{word[:40]}` is not a version or revision.")
    return word


# --- choosing the target (pure) -------------------------------------------------------------------------


def _plain(version: str) -> str:
    return version.lower().removeprefix("v")


def choose_target(
    releases: list[Release], wanted: str | None, *, avoid: frozenset[str] | set[str] = frozenset()
) -> tuple[Release | None, Release]:
    """(current, target) from a newest-first history.

    The current release is the newest ``deployed`` one (else the newest). Without ``wanted`` the target
    is the newest older successful release whose version is neither the current one nor in ``avoid``
    (versions earlier rollbacks left: see ``ledger.rolled_back_from``); with it, the release whose
    revision, else version (``v`` prefix optional), matches. With no history at all, ``wanted`` is taken
    as is (tools that keep none, like GitHub Actions or a command, before the ledger knows anything).
    """
    current = next((r for r in releases if r.status == "deployed"), releases[0] if releases else None)
    if wanted is not None:
        if not releases:
            return None, Release(version=wanted, revision=wanted, status="requested")
        match = next((r for r in releases if r.revision == wanted), None) or next(
            (r for r in releases if _plain(r.version) == _plain(wanted) and r.status in SUCCESSFUL),
            next((r for r in releases if _plain(r.version) == _plain(wanted)), None),
        )
        if match is None:
            known = ", ".join(f"{r.version} (rev {r.revision})" for r in releases[:8])
            raise NotFound(f"No release `{wanted}` in the history. Known: {known}.")
        if current is not None and match.revision == current.revision:
            raise Conflict(f"{match.version} (rev {match.revision}) is what is deployed now.")
        return current, match
    if current is None:
        raise Conflict(
            "No release history is known (the tool keeps none and the ledger has no deploys yet): "
            "name the version with `to <version>`."
        )
    older = releases[releases.index(current) + 1 :]
    target = next(
        (
            r
            for r in older
            if r.status.lower() in SUCCESSFUL and r.version != current.version and r.version not in avoid
        ),
        None,
    )
    if target is None:
        raise Conflict(
            f"No earlier successful release than {current.version} to roll back to; "
            "name one with `to <version|revision>`."
        )
    return current, target


# --- reading -------------------------------------------------------------------------------------------


class HistoryView(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str
    environment: str | None
    entries: list[ledger.LedgerEntry]
    tool: str | None = None
    tool_environment: str | None = None
    tool_releases: list[Release] = []
    tool_error: str | None = None


def _tool(deps: Deps, service: ServiceConfig) -> tuple[DeployTool, str]:
    if service.deploy is None:
        raise UserError(f"{service.name} has no deploy tool in the config, so cmdcenter cannot roll it back.")
    if deps.deploy is None:
        raise UserError("No deploy tools are set up in this cmdcenter.")
    return deps.deploy, service.deploy.tool


async def show_history(deps: Deps, cmd: History) -> Reply:
    """The ledger of a service (one environment or all), and what its deploy tool lists."""
    service = deps.config.require_service(cmd.service)
    env = service.environment(cmd.environment) if cmd.environment else None
    entries = await ledger.history(deps, service=service.name, environment=env, limit=HISTORY_LIMIT)
    view = HistoryView(service=service.name, environment=env, entries=entries)
    if service.deploy is not None and deps.deploy is not None:
        tool_env = env or service.default_env
        try:
            found = await deps.deploy.releases(service=service, environment=tool_env)
            view = view.model_copy(update={"tool_releases": found[:HISTORY_LIMIT]})
        except DeployError as exc:
            view = view.model_copy(update={"tool_error": str(exc)})
        view = view.model_copy(update={"tool": service.deploy.tool, "tool_environment": tool_env})
    return Reply(message=deps.renderer.message("rollback/history", view=view))


# --- request, confirm, cancel -----------------------------------------------------------------------


def _active_key(service: str, environment: str) -> str:
    return f"{service}/{environment}"


async def request_rollback(deps: Deps, cmd: Request, *, user: str, channel: str) -> Reply:
    """Check, work out current → target, dry-run it, and post the confirmation card."""
    service = deps.config.require_service(cmd.service)
    env = service.environment(cmd.environment)
    tool, tool_name = _tool(deps, service)
    await deps.access.require(
        action="rollback", user=user, service=service.name, environment=env, what=f"roll back {service.name}"
    )
    await _refuse_if_busy(deps, service.name, env)
    releases, avoid = await _releases(deps, tool, service, env)
    current, target = choose_target(releases, cmd.target, avoid=avoid)
    dry = await _dry_run(tool, service, env, target)
    now = deps.clock.now()
    row = RollbackRequest(
        service=service.name,
        environment=env,
        active_key=_active_key(service.name, env),
        state="pending",
        requested_by=user,
        reason=cmd.reason,
        tool=tool_name,
        current_version=current.version if current else None,
        current_revision=current.revision if current else None,
        target_version=target.version,
        target_revision=target.revision,
        dry_run_ok=dry.ok,
        dry_run_summary=dry.summary[:500],
        dry_run_output=dry.output[:3000],
        two_person=env in deps.config.rollback.two_person_environments,
        origin_channel=channel,
        created_at=now,
        notes=_tool_notes(service),
    )
    try:
        async with deps.db.session() as session:
            session.add(row)
            await session.flush()
            await _card_step(session, row, first=True)
    except IntegrityError:
        await _refuse_if_busy(deps, service.name, env)  # another request won the race: point at it
        raise Conflict(f"Another rollback of {service.name} {env} started a moment ago; try again.") from None
    return Reply(message=deps.renderer.message("rollback/requested", rb=row))


def _tool_notes(service: ServiceConfig) -> list[str]:
    if isinstance(service.deploy, ArgoCDDeploy):
        return [
            "Argo CD: automated sync is suspended before the rollback and stays off "
            "(turning it back on would redeploy what git says); re-enable it once git is fixed."
        ]
    return []


async def _releases(
    deps: Deps, tool: DeployTool, service: ServiceConfig, env: str
) -> tuple[list[Release], set[str]]:
    """The tool's history (else the ledger's), and the versions earlier rollbacks left."""
    try:
        found = await tool.releases(service=service, environment=env)
    except DeployError as exc:
        raise UserError(f"Could not read the releases of {service.name} {env}: {exc}") from exc
    async with deps.db.session() as session:
        if not found:
            found = await ledger.releases_from_ledger(session, service=service.name, environment=env)
        recorded = await ledger.entries(session, service=service.name, environment=env, limit=50)
    current = next((r for r in found if r.status == "deployed"), found[0] if found else None)
    return found, ledger.rolled_back_from(recorded, current=current.version) if current else set()


async def _dry_run(tool: DeployTool, service: ServiceConfig, env: str, target: Release) -> DeployResult:
    try:
        return await tool.rollback(service=service, environment=env, target=target, dry_run=True)
    except DeployError as exc:
        return DeployResult(ok=False, dry_run=True, summary=f"dry run failed: {exc}")


async def _refuse_if_busy(deps: Deps, service: str, env: str) -> None:
    """Raise ``Conflict`` pointing at the rollback holding ``service/env``; clear a stale one first."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        rows = await session.execute(
            select(RollbackRequest).where(RollbackRequest.active_key == _active_key(service, env))
        )
        row = rows.scalars().first()
        if row is None:
            return
        stale = True
        if row.state == "pending" and row.created_at + PENDING_TTL < now:
            await _close(session, deps, row, state="expired", note="nobody confirmed it in time")
        elif row.state == "running" and row.lease_until is not None and row.lease_until < now:
            await _interrupt(session, deps, row)
        else:
            stale = False
    if stale:
        return
    link = await _permalink(deps, row)
    state = (
        "waiting for confirmation" if row.state == "pending" else f"{row.state}, health {row.health or '—'}"
    )
    raise Conflict(
        f"{row.ref} is already in progress for {service} {env} "
        f"({row.current_version or '?'} → {row.target_version}, {state})"
        + (f": {link}" if link else ".")
        + " Wait for it to finish, or cancel it on its card."
    )


async def _permalink(deps: Deps, row: RollbackRequest) -> str | None:
    if not row.channel_id or not row.message_ts:
        return None
    try:
        return await deps.chat.permalink(channel=row.channel_id, ts=row.message_ts)
    except ChatError:
        return None


async def _load(session: AsyncSession, rollback_id: int) -> RollbackRequest:
    row = await session.get(RollbackRequest, rollback_id, populate_existing=True)
    if row is None:
        raise NotFound(f"RB-{rollback_id} does not exist.")
    return row


def _require_pending(row: RollbackRequest) -> None:
    if row.state != "pending":
        raise Conflict(f"{row.ref} is already {row.state}: there is nothing left to confirm or cancel.")


async def confirm(deps: Deps, *, rollback_id: int, user: str) -> Reply:
    """The Confirm button. In a two-person environment the requester's own Confirm does not count."""
    async with deps.db.session() as session:
        row = await _load(session, rollback_id)
    _require_pending(row)
    await deps.access.require(
        action="rollback",
        user=user,
        service=row.service,
        environment=row.environment,
        what=f"confirm {row.ref} (roll back {row.service})",
    )
    if row.two_person and user == row.requested_by:
        async with deps.db.session() as session:
            row = await _load(session, rollback_id)
            _require_pending(row)
            if user not in row.confirmations:
                row.confirmations = [*row.confirmations, user]
                await _card_step(session, row)
        who = deps.access.who_may("rollback", service=row.service, environment=row.environment)
        return Reply(message=deps.renderer.message("rollback/needs_second", rb=row, who=who))
    now = deps.clock.now()
    async with deps.db.session() as session:
        confirmations = [*row.confirmations, user] if user not in row.confirmations else row.confirmations
        claimed = await session.execute(
            sa.update(RollbackRequest)
            .where(col(RollbackRequest.id) == rollback_id, col(RollbackRequest.state) == "pending")
            .values(state="approved", decided_by=user, decided_at=now, confirmations=confirmations)
        )
        if not getattr(claimed, "rowcount", 0):
            raise Conflict(f"{row.ref} was confirmed or cancelled a moment ago.")
        row = await _load(session, rollback_id)
        incident = await ledger.open_incident_for(session, row.service)
        row.incident_id = incident.id if incident is not None else None
        await enqueue(
            session,
            key=f"rollback:{row.id}:execute",
            op="rollback.execute",
            target="deploy",
            payload={"rollback_id": row.id},
        )
        eta = await _eta(session, row)
        await chat_ops.post(
            session,
            key=f"rollback:{row.id}:notice",
            channel=deps.config.slack.release_channel,
            message=deps.renderer.message("rollback/notice", rb=row, eta=eta),
        )
        await _card_step(session, row)
        if incident is not None:
            await add_timeline(
                session,
                incident,
                kind="rollback",
                at=now,
                author=user,
                text=f"Rollback {row.ref} of {row.service} {row.environment} "
                f"{row.current_version or '?'} → {row.target_version} confirmed"
                + (f": {row.reason}" if row.reason else ""),
            )
    return Reply(message=deps.renderer.message("rollback/ack", rb=row, text="Confirmed: rolling back."))


async def cancel(deps: Deps, *, rollback_id: int, user: str) -> Reply:
    """The Cancel button: the requester, or anyone allowed to roll back there."""
    async with deps.db.session() as session:
        row = await _load(session, rollback_id)
    _require_pending(row)
    if user != row.requested_by:
        await deps.access.require(
            action="rollback",
            user=user,
            service=row.service,
            environment=row.environment,
            what=f"cancel {row.ref}",
        )
    async with deps.db.session() as session:
        row = await _load(session, rollback_id)
        _require_pending(row)
        await _close(session, deps, row, state="cancelled", by=user)
    return Reply(message=deps.renderer.message("rollback/ack", rb=row, text="Cancelled: nothing was run."))


async def _close(
    session: AsyncSession,
    deps: Deps,
    row: RollbackRequest,
    *,
    state: RollbackState,
    by: str | None = None,
    note: str = "",
) -> None:
    """End a rollback that never ran (cancelled, expired)."""
    row.state, row.active_key, row.decided_by, row.decided_at = state, None, by, deps.clock.now()
    if note:
        row.notes = [*row.notes, note]
    await _card_step(session, row)


async def _eta(session: AsyncSession, row: RollbackRequest) -> timedelta | None:
    """The median duration of the last rollbacks of this service and environment."""
    rows = await session.execute(
        select(RollbackRequest)
        .where(
            RollbackRequest.service == row.service,
            RollbackRequest.environment == row.environment,
            RollbackRequest.state == "succeeded",
            col(RollbackRequest.finished_at).is_not(None),
        )
        .order_by(col(RollbackRequest.id).desc())
        .limit(5)
    )
    durations = [
        (r.finished_at - r.started_at).total_seconds()
        for r in rows.scalars()
        if r.finished_at is not None and r.started_at is not None
    ]
    return timedelta(seconds=max(60.0, statistics.median(durations))) if durations else None


# --- the card ---------------------------------------------------------------------------------------


async def _card_step(session: AsyncSession, row: RollbackRequest, *, first: bool = False) -> None:
    await cards.record_step(session, ROLLBACK_CARD, row, first=first)


async def render_card(deps: Deps, row: RollbackRequest) -> RenderedMessage:
    async with deps.db.session() as session:
        freezes = await freeze.freezes_covering(session, service=row.service)
    return deps.renderer.message(
        "rollback/card",
        rb=row,
        freezes=freezes,
        who=deps.access.who_may("rollback", service=row.service, environment=row.environment),
        confirm_action=CONFIRM_ACTION,
        cancel_action=CANCEL_ACTION,
        health_timeout=deps.config.rollback.health_timeout_seconds,
    )


def _card_channels(deps: Deps, row: RollbackRequest) -> list[str]:
    """Where the request was made, else (a DM between people, a private channel) the release channel."""
    return [row.origin_channel, deps.config.slack.release_channel]


ROLLBACK_CARD = cards.Card("rollback", RollbackRequest, "rollback_id", render_card, _card_channels)


# --- running ---------------------------------------------------------------------------------------------


async def _claim(deps: Deps, rollback_id: int) -> bool:
    """approved → running (once), with the ledger row, the card update and the watchdog."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        claimed = await session.execute(
            sa.update(RollbackRequest)
            .where(col(RollbackRequest.id) == rollback_id, col(RollbackRequest.state) == "approved")
            .values(
                state="running",
                started_at=now,
                lease_owner=deps.outbox.owner,
                lease_until=now + deps.outbox.lease,
            )
        )
        if not getattr(claimed, "rowcount", 0):
            return False
        row = await _load(session, rollback_id)
        await ledger.record(
            session,
            key=f"rollback:{row.id}",
            service=row.service,
            environment=row.environment,
            kind="rollback",
            version=row.target_version,
            revision=row.target_revision,
            previous_version=row.current_version,
            status="started",
            source="cmdcenter",
            actor=row.requested_by,
            tool=row.tool,
            summary=row.reason,
            rollback_id=row.id,
            at=now,
        )
        await _card_step(session, row)
        await _schedule_watchdog(session, deps, row, attempt=1)
    return True


async def _schedule_watchdog(
    session: AsyncSession, deps: Deps, row: RollbackRequest, *, attempt: int
) -> None:
    await schedule(
        session,
        key=f"rollback:{row.id}:watch:{attempt}",
        kind="rollback.watchdog",
        due_at=deps.clock.now() + 2 * deps.outbox.lease,
        payload={"rollback_id": row.id, "attempt": attempt},
    )


async def run(deps: Deps, rollback_id: int) -> None:
    """Call the tool (the row is ``running`` and ours), then record the outcome."""
    lease = holding_lease(
        deps.outbox, RollbackRequest, rollback_id, state=("state", "running"), now=deps.clock.now
    )
    async with lease:
        async with deps.db.session() as session:
            row = await _load(session, rollback_id)
        notes: list[str] = []
        result = await run_tool(lambda: _call_tool(deps, row, notes), what=f"rollback {row.ref}")
        for attempt in range(FINISH_ATTEMPTS):  # the tool ran: keep trying to record how it went
            try:
                await _finish(deps, rollback_id, result, notes)
                break
            except Unavailable:
                log.warning("%s: database unavailable; recording the outcome again shortly", row.ref)
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))


async def _call_tool(deps: Deps, row: RollbackRequest, notes: list[str]) -> DeployResult:
    service = deps.config.service(row.service)
    if service is None or deps.deploy is None:
        raise DeployError(f"{row.service} is no longer configured for rollbacks", retryable=False)
    control = deps.auto_sync
    if isinstance(service.deploy, ArgoCDDeploy) and control is not None:
        suspended = await control.suspend_auto_sync(service=service, environment=row.environment)
        notes.append(
            "suspended Argo CD automated sync" if suspended else "Argo CD automated sync was already off"
        )
    target = Release(version=row.target_version, revision=row.target_revision)
    return await deps.deploy.rollback(
        service=service, environment=row.environment, target=target, dry_run=False
    )


def health_checks(service: ServiceConfig | None, environment: str) -> list[HealthCheck]:
    if service is None:
        return []
    return [c for c in service.health_checks if c.environment in (None, environment)]


async def _finish(deps: Deps, rollback_id: int, result: DeployResult, notes: list[str]) -> None:
    now = deps.clock.now()
    async with deps.db.session() as session:
        row = await _load(session, rollback_id)
        if row.state != "running":
            return  # declared interrupted meanwhile: that report stands
        row.state = "succeeded" if result.ok else "failed"
        row.result_summary = result.summary[:1000]
        row.result_output = result.output[:3000]
        row.result_url = result.url
        row.finished_at, row.lease_owner, row.lease_until = now, None, None
        row.notes = [*row.notes, *notes]
        service = deps.config.service(row.service)
        if isinstance(service.deploy if service else None, ArgoCDDeploy):
            await freeze.forget_suspended(session, service=row.service, environment=row.environment)
        await ledger.finish(
            session,
            key=f"rollback:{row.id}",
            status=row.state,
            at=now,
            summary=result.summary,
            url=result.url,
        )
        await cancel_jobs(session, key_prefix=f"rollback:{row.id}:watch:")
        if result.ok:
            await _start_health(session, deps, row, service)
        else:
            row.active_key = None
        await _announce(session, deps, row, "rollback/outcome", kind="outcome")


async def _start_health(
    session: AsyncSession, deps: Deps, row: RollbackRequest, service: ServiceConfig | None
) -> None:
    skipped = (
        "no health check for this environment"
        if not health_checks(service, row.environment)
        else "no health probe is set up"
        if deps.health is None
        else None
    )
    if skipped is not None:
        row.health, row.health_detail, row.active_key = "skipped", skipped, None
        return
    row.health = "checking"
    row.health_deadline = datetime.now(UTC) + timedelta(seconds=deps.config.rollback.health_timeout_seconds)
    await _health_step(session, row, attempt=1, delay=0.0)


async def _health_step(session: AsyncSession, row: RollbackRequest, *, attempt: int, delay: float) -> None:
    await enqueue(
        session,
        key=f"rollback:{row.id}:health:{attempt}",
        op="rollback.health",
        target="probe",
        payload={"rollback_id": row.id, "attempt": attempt},
        delay=delay,
    )


async def _announce(
    session: AsyncSession, deps: Deps, row: RollbackRequest, template: str, *, kind: str, card: bool = True
) -> None:
    """The card, the release channel and the open incident's timeline learn the news."""
    if card:
        await _card_step(session, row)
    msg = deps.renderer.message(template, rb=row, health_timeout=deps.config.rollback.health_timeout_seconds)
    await chat_ops.post(
        session,
        key=f"rollback:{row.id}:{kind}:{row.state}:{row.health or ''}",
        channel=deps.config.slack.release_channel,
        message=msg,
    )
    incident = await session.get(Incident, row.incident_id) if row.incident_id else None
    if incident is not None:
        await add_timeline(session, incident, kind="rollback", at=deps.clock.now(), text=timeline_text(row))


def timeline_text(row: RollbackRequest) -> str:
    """One line for the incident timeline (plain text: the timeline escapes it when it renders)."""
    what = f"Rollback {row.ref} of {row.service} {row.environment} to {row.target_version}"
    if row.health == "healthy":
        return f"{what}: healthy again ({row.health_detail})"
    if row.health == "unhealthy":
        return f"{what}: still unhealthy after the health timeout ({row.health_detail})"
    if row.state == "succeeded":
        return f"{what} succeeded: {row.result_summary}"
    return f"{what} {row.state}: {row.result_summary}"


async def _check_health(deps: Deps, item: OutboxItem) -> dict[str, Any]:
    rollback_id, attempt = int(item.payload["rollback_id"]), int(item.payload["attempt"])
    async with deps.db.session() as session:
        row = await _load(session, rollback_id)
    if row.health != "checking" or deps.health is None:
        return {"skipped": row.health}
    probe = deps.health
    checks = health_checks(deps.config.service(row.service), row.environment)
    results: list[HealthResult] = list(
        await asyncio.gather(
            *(
                probe.check(
                    url=c.url,
                    expect_status=c.expect_status,
                    json_field=c.json_field,
                    expect_value=c.expect_value,
                    timeout=c.timeout_seconds,
                )
                for c in checks
            )
        )
    )
    healthy = all(r.ok for r in results)
    detail = "; ".join(f"{r.url}: {r.detail}" for r in results)[:1000]
    overdue = row.health_deadline is None or datetime.now(UTC) >= row.health_deadline
    async with deps.db.session() as session:
        row = await _load(session, rollback_id)
        if row.health != "checking":
            return {"skipped": row.health}
        if not healthy and not overdue:
            row.health_detail = detail
            await _health_step(
                session, row, attempt=attempt + 1, delay=deps.config.rollback.health_interval_seconds
            )
            return {"healthy": False, "attempt": attempt}
        row.health, row.health_detail, row.active_key = ("healthy" if healthy else "unhealthy"), detail, None
        await _announce(session, deps, row, "rollback/health", kind="health")
    return {"healthy": healthy, "attempt": attempt}


async def _interrupt(session: AsyncSession, deps: Deps, row: RollbackRequest) -> None:
    """The replica running ``row`` died (its lease lapsed): say so; never run it again on our own."""
    row.state, row.active_key, row.finished_at = "interrupted", None, deps.clock.now()
    row.lease_owner, row.lease_until = None, None
    row.result_summary = (
        "cmdcenter stopped while the deploy tool was running: check the tool for the outcome "
        "before rolling back again"
    )
    await ledger.finish(
        session, key=f"rollback:{row.id}", status="unknown", at=deps.clock.now(), summary=row.result_summary
    )
    await _announce(session, deps, row, "rollback/outcome", kind="outcome")


async def _watchdog(deps: Deps, job: ScheduledJob) -> None:
    rollback_id, attempt = int(job.payload["rollback_id"]), int(job.payload["attempt"])
    async with deps.db.session() as session:
        row = await _load(session, rollback_id)
        if row.state != "running":
            return
        if row.lease_until is not None and row.lease_until < deps.clock.now():
            await _interrupt(session, deps, row)
        else:
            await _schedule_watchdog(session, deps, row, attempt=attempt + 1)


async def _gave_up(
    deps: Deps, item: OutboxItem, *, state: RollbackState, why: str, card: bool = True
) -> None:
    """A step of a rollback that never ran failed for good: free the service and say why."""
    async with deps.db.session() as session:
        row = await _load(session, int(item.payload["rollback_id"]))
        if row.state not in ("pending", "approved"):
            return
        row.state, row.active_key, row.finished_at = state, None, deps.clock.now()
        row.result_summary = f"{why}: {item.last_error}"[:1000]
        await _announce(session, deps, row, "rollback/outcome", kind="outcome", card=card)


# --- wiring -----------------------------------------------------------------------------------------------


def register(deps: Deps) -> None:
    async def execute(item: OutboxItem) -> dict[str, Any]:
        rollback_id = int(item.payload["rollback_id"])
        if not await _claim(deps, rollback_id):
            return {"skipped": "already started or no longer approved"}
        deps.tasks.spawn(run(deps, rollback_id), what=f"rollback RB-{rollback_id}")
        return {"started": rollback_id}

    async def check_health(item: OutboxItem) -> dict[str, Any]:
        return await _check_health(deps, item)

    async def watchdog(job: ScheduledJob) -> None:
        await _watchdog(deps, job)

    async def card_failed(item: OutboxItem) -> None:
        await _gave_up(deps, item, state="expired", why="its card could not be posted", card=False)

    async def execute_failed(item: OutboxItem) -> None:
        await _gave_up(deps, item, state="failed", why="it could not be started")

    ROLLBACK_CARD.wire(deps, on_post_failure=card_failed)
    deps.outbox.register("rollback.execute", execute, on_failure=execute_failed)
    deps.outbox.register("rollback.health", check_health)
    deps.jobs.register("rollback.watchdog", watchdog)
