"""What people ask of rollbacks: the history, a request, Confirm and Cancel. Each returns data (the
``RollbackRequest`` row, a ``HistoryView``); ``bot.releases.dispatch`` renders the replies.

    row = await request_rollback(deps, cmd, user=..., channel=...)     # pending, its card recorded
    outcome = await confirm(deps, rollback_id=row.id, user=...)        # Approved | AwaitingSecond
    row = await cancel(deps, rollback_id=row.id, user=...)             # cancelled

A request checks permission, refuses while another rollback holds the service and environment
(clearing a stale one first: unconfirmed after ``PENDING_TTL``, or running with its lease lapsed),
works out current → target, dry-runs it and records the row with its card in one transaction. Confirm
moves pending → approved with one conditional UPDATE and records the ``rollback.execute`` step in the
same transaction; in a two-person environment the requester's own Confirm only counts as the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import chat_ops
from bot.config import ArgoCDDeploy, ServiceConfig
from bot.db.models import Incident, RollbackRequest, RollbackState
from bot.deps import Deps
from bot.errors import ChatError, Conflict, DeployError, UserError
from bot.incidents.store import add_timeline
from bot.outbox import enqueue
from bot.ports import DeployResult, DeployTool, Release
from bot.releases import ledger
from bot.releases.rollback import card, run, store
from bot.releases.rollback.parse import History, Request
from bot.releases.rollback.target import choose_target, left_by_rollbacks

PENDING_TTL = timedelta(minutes=30)  # an unconfirmed card stops blocking new requests after this
HISTORY_LIMIT = 10


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


async def show_history(deps: Deps, cmd: History) -> HistoryView:
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
    return view


# --- request ------------------------------------------------------------------------------------------


def _tool(deps: Deps, service: ServiceConfig) -> tuple[DeployTool, str]:
    if service.deploy is None:
        raise UserError(f"{service.name} has no deploy tool in the config, so cmdcenter cannot roll it back.")
    if deps.deploy is None:
        raise UserError("No deploy tools are set up in this cmdcenter.")
    return deps.deploy, service.deploy.tool


async def request_rollback(deps: Deps, cmd: Request, *, user: str, channel: str) -> RollbackRequest:
    """Check, work out current → target, dry-run it, and record the row with its confirmation card."""
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
    row = RollbackRequest(
        service=service.name,
        environment=env,
        active_key=store.active_key(service.name, env),
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
        created_at=deps.clock.now(),
        notes=_tool_notes(service),
    )
    try:
        async with deps.db.session() as session:
            session.add(row)
            await session.flush()
            await card.step(session, row, first=True)
    except IntegrityError:
        await _refuse_if_busy(deps, service.name, env)  # another request won the race: point at it
        raise Conflict(f"Another rollback of {service.name} {env} started a moment ago; try again.") from None
    return row


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
    return found, left_by_rollbacks(found, recorded)


async def _dry_run(tool: DeployTool, service: ServiceConfig, env: str, target: Release) -> DeployResult:
    try:
        return await tool.rollback(service=service, environment=env, target=target, dry_run=True)
    except DeployError as exc:
        return DeployResult(ok=False, dry_run=True, summary=f"dry run failed: {exc}")


async def _refuse_if_busy(deps: Deps, service: str, env: str) -> None:
    """Raise ``Conflict`` pointing at the rollback holding ``service/env``; clear a stale one first."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        row = await store.holding(session, service, env)
        if row is None:
            return
        stale = True
        if row.state == "pending" and row.created_at + PENDING_TTL < now:
            await _close(session, deps, row, state="expired", note="nobody confirmed it in time")
        elif row.state == "running" and row.lease_until is not None and row.lease_until < now:
            await run.interrupt(session, deps, row)
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


# --- confirm, cancel ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approved:
    """Confirmed: the rollback will run."""

    rollback: RollbackRequest


@dataclass(frozen=True)
class AwaitingSecond:
    """A two-person environment: the requester confirmed; one of ``who`` must confirm too."""

    rollback: RollbackRequest
    who: list[str]


def _require_pending(row: RollbackRequest) -> None:
    if row.state != "pending":
        raise Conflict(f"{row.ref} is already {row.state}: there is nothing left to confirm or cancel.")


async def confirm(deps: Deps, *, rollback_id: int, user: str) -> Approved | AwaitingSecond:
    """The Confirm button. In a two-person environment the requester's own Confirm does not count."""
    async with deps.db.session() as session:
        row = await store.load(session, rollback_id)
    _require_pending(row)
    await deps.access.require(
        action="rollback",
        user=user,
        service=row.service,
        environment=row.environment,
        what=f"confirm {row.ref} (roll back {row.service})",
    )
    if row.two_person and user == row.requested_by:
        return await _first_of_two(deps, rollback_id, user)
    return Approved(await _approve(deps, rollback_id, row, user))


async def _first_of_two(deps: Deps, rollback_id: int, user: str) -> AwaitingSecond:
    async with deps.db.session() as session:
        row = await store.load(session, rollback_id)
        _require_pending(row)
        if user not in row.confirmations:
            row.confirmations = [*row.confirmations, user]
            await card.step(session, row)
    return AwaitingSecond(
        row, deps.access.who_may("rollback", service=row.service, environment=row.environment)
    )


async def _approve(deps: Deps, rollback_id: int, row: RollbackRequest, user: str) -> RollbackRequest:
    """pending → approved (once), with the ``rollback.execute`` step, the notice and the card update."""
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
        row = await store.load(session, rollback_id)
        incident = await ledger.open_incident_for(session, row.service)
        row.incident_id = incident.id if incident is not None else None
        await enqueue(
            session,
            key=f"rollback:{row.id}:execute",
            op=run.EXECUTE,
            target="deploy",
            payload={"rollback_id": row.id},
        )
        await chat_ops.post(
            session,
            key=f"rollback:{row.id}:notice",
            channel=deps.config.slack.release_channel,
            message=deps.renderer.message("rollback/notice", rb=row, eta=await store.eta(session, row)),
        )
        await card.step(session, row)
        if incident is not None:
            await _confirmed_on_timeline(session, incident, row, user=user, at=now)
    return row


async def _confirmed_on_timeline(
    session: AsyncSession, incident: Incident, row: RollbackRequest, *, user: str, at: datetime
) -> None:
    await add_timeline(
        session,
        incident,
        kind="rollback",
        at=at,
        author=user,
        text=f"Rollback {row.ref} of {row.service} {row.environment} "
        f"{row.current_version or '?'} → {row.target_version} confirmed"
        + (f": {row.reason}" if row.reason else ""),
    )


async def cancel(deps: Deps, *, rollback_id: int, user: str) -> RollbackRequest:
    """The Cancel button: the requester, or anyone allowed to roll back there."""
    async with deps.db.session() as session:
        row = await store.load(session, rollback_id)
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
        row = await store.load(session, rollback_id)
        _require_pending(row)
        await _close(session, deps, row, state="cancelled", by=user)
    return row


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
    await card.step(session, row)
