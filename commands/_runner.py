"""The one place where errors become Slack replies (and audit rows).

UserError → its message (ephemeral); UsageError → message + usage; Unavailable → "temporarily
unavailable"; anything else → an error id, logged with the traceback, never ``str(e)``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Invocation, Reply
from bot.db.batch import GroupCommit
from bot.db.models import AuditLog
from bot.db.store import insert_rows
from bot.deps import Deps
from bot.errors import Unavailable, UsageError, UserError, new_error_id
from bot.inbox import command_key

log = logging.getLogger("cmdcenter.commands")

Respond = Callable[..., Awaitable[Any]]
Ack = Callable[..., Awaitable[Any]]
# A command's reply on its way to the listener that waits to put it in the ack. While it is pending
# the listener is waiting; once done (the reply, ``{}`` for none; or None when the time is up, or
# cancelled with the listener) the command replies through its response_url.
Handover = asyncio.Future[dict[str, Any] | None]


def _give_up(handover: Handover) -> None:
    if not handover.done():
        handover.set_result(None)


def _missed(handover: Handover) -> bool:
    """The time for a reply in the ack was up (or the listener was cancelled) before the reply."""
    return not handover.done() or handover.cancelled() or handover.result() is None


class CommandRunner:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        # Its flushes are spawned: a read's audit row, queued after its answer, is written before
        # a graceful shutdown ends (``Deps.tasks.drain``).
        self._audits = GroupCommit(
            deps.db, self._write_audits, start=lambda flush: deps.tasks.spawn(flush, what="audit rows")
        )

    async def _write_audits(
        self, session: AsyncSession, rows: list[tuple[dict[str, Any], str | None, str]]
    ) -> list[None]:
        await self.deps.inbox.mark_rows(session, [(key, status) for _, key, status in rows if key])
        await insert_rows(session, AuditLog, [row for row, _, _ in rows])
        return [None] * len(rows)

    def start(
        self, inv: Invocation, respond: Respond | None, action: Callable[[], Awaitable[Reply | None]]
    ) -> None:
        """Run the command after the listener returns: the listener acks, starts it and returns, so
        Bolt answers Slack at once (``process_before_response``: no polling for the ack)."""
        what = f"{inv.command or 'interaction'} by {inv.user_id}"
        self.deps.tasks.spawn(self.run(inv, respond, action), what=what)

    async def answer(
        self,
        inv: Invocation,
        ack: Ack,
        respond: Respond,
        action: Callable[[], Awaitable[Reply | None]],
        *,
        body: dict[str, Any],
    ) -> None:
        """A slash command: recorded in the inbox, then acked. Its reply goes in the ack when ready
        within ``reply_in_ack_within`` seconds (Slack shows it as the command's reply; no second
        request, to its response_url). Otherwise the ack goes then, and the reply through the
        response_url when the command is done.

        A read-only command (``Inbox.read_only``) is recorded only when its reply misses the ack: a
        reply in the ack leaves nothing to lose after it, so it costs no inbox row."""
        budget = 0.0 if inv.replayed else self.deps.settings.reply_in_ack_within
        deferred = budget > 0 and self.deps.inbox.is_read_only(body)
        if not inv.replayed and not deferred and not await self._record(body):
            await ack()  # the same invocation twice (one trigger id): answered by the first
            return
        if budget <= 0:
            await ack()
            self.start(inv, respond, action)
            return
        loop = asyncio.get_running_loop()
        handover: Handover = loop.create_future()
        recorded: asyncio.Future[None] | None = loop.create_future() if deferred else None
        what = f"{inv.command} by {inv.user_id}"
        self.deps.tasks.spawn(self.run(inv, respond, action, handover=handover, recorded=recorded), what=what)
        timer = loop.call_later(budget, _give_up, handover)
        try:
            payload = await handover
        finally:
            timer.cancel()
            if recorded is not None and _missed(handover):
                # The reply misses the ack: record the command before acking, as any other; the
                # run waits for this to mark it done.
                try:
                    await self._record(body)
                finally:
                    recorded.set_result(None)
        await (ack(payload) if payload else ack())

    async def _record(self, body: dict[str, Any]) -> bool:
        """Record a slash command before its ack; False when this invocation was recorded before.
        Without the database it is not recorded: the command itself answers "temporarily
        unavailable"."""
        try:
            return await self.deps.inbox.record_command(body)
        except Unavailable:
            return True

    async def run(
        self,
        inv: Invocation,
        respond: Respond | None,
        action: Callable[[], Awaitable[Reply | None]],
        *,
        handover: Handover | None = None,
        recorded: asyncio.Future[None] | None = None,
    ) -> None:
        """Run a command and answer it: in the ack (``handover``, while the listener still waits),
        or through its response_url. ``recorded``: a read-only command's inbox row, written by the
        listener only if the reply misses the ack."""
        outcome, error_id, detail = "ok", None, ""
        # The command's inbox row: recorded before the ack, or (``recorded``) only if it missed it.
        key = command_key(inv.trigger_id) if inv.command.startswith("/") and inv.trigger_id else None
        inbox_key = key if recorded is None else None
        try:
            if inbox_key and not self.deps.inbox.is_resumable({"command": inv.command, "text": inv.text}):
                # A crash from here on must not run it again (it may have half happened); a
                # resumable command stays "received" and is simply run again.
                await self.deps.inbox.mark(inbox_key, "processing")
            reply = await action()
        except Exception as exc:  # the failure becomes the reply; a success pays nothing for this
            outcome, error_id, detail, reply = self._failure(inv, exc)
        self.deps.telemetry.commands.labels(inv.command or "?", outcome).inc()
        if outcome not in ("ok", "usage", "refused"):
            self.deps.telemetry.errors.labels(outcome).inc()
        payload = reply.payload() if reply is not None and reply.message is not None else None
        if recorded is not None and handover is not None and not handover.done():
            # A read answered in the ack: the answer goes at once and its audit row is queued for the
            # next group commit. Nothing waits for it, so the command ends here (a finished read
            # holds no memory while its row waits), and shutdown waits for the flush.
            handover.set_result(payload or {})
            self._audits.post((self._audit_row(inv, outcome, error_id, detail), None, "")).add_done_callback(
                functools.partial(_log_lost_audit, inv, outcome)
            )
            return
        # Otherwise the audit row first: whoever sees the answer can find the invocation in the
        # audit log, and the inbox row's final status goes in the same transaction.
        done = "done" if outcome != "unavailable" else "failed"
        await self.audit(inv, outcome, error_id=error_id, detail=detail, inbox=(inbox_key, done))
        if handover is not None and not handover.done():  # the listener puts the reply in the ack
            handover.set_result(payload or {})
            return
        if recorded is not None and key:  # missed the ack: the listener recorded it; now done
            await recorded
            await self._mark(key, done)
        if payload is not None and respond is not None:
            await self._respond(inv, respond, payload)

    def _failure(self, inv: Invocation, exc: Exception) -> tuple[str, str | None, str, Reply]:
        """A command that raised: its outcome, error id and detail (for the audit row), and its reply.
        Called in the ``except`` block, so an unexpected error is logged with its traceback."""
        render = self.deps.renderer
        if isinstance(exc, UsageError):
            usage = render.message("errors/usage", message=str(exc), usage=exc.usage)
            return "usage", None, str(exc), Reply(message=usage)
        if isinstance(exc, UserError):
            refused = render.message("errors/refused", message=str(exc), who=getattr(exc, "who", []))
            return "refused", None, str(exc), Reply(message=refused)
        if isinstance(exc, Unavailable):
            return "unavailable", None, "", Reply(message=render.message("errors/unavailable"))
        error_id = new_error_id()
        log.exception("unexpected error %s in %s %r by %s", error_id, inv.command, inv.text, inv.user_id)
        return "error", error_id, "", Reply(message=render.message("errors/unexpected", error_id=error_id))

    async def _respond(self, inv: Invocation, respond: Respond, payload: dict[str, Any]) -> None:
        """The reply through the command's response_url (it missed the ack, or there was none)."""
        try:
            if inv.response_url:  # through the Chat port (its shared HTTP session)
                await self.deps.chat.respond(response_url=inv.response_url, payload=payload)
            else:
                await respond(**payload)
        except Exception:
            log.exception("could not answer %s for %s", inv.command, inv.user_id)

    async def _mark(self, key: str, status: str) -> None:
        try:
            await self.deps.inbox.mark(key, status)
        except Unavailable:
            log.warning("inbox row %s not marked %s (database unavailable)", key, status)

    async def audit(
        self,
        inv: Invocation,
        outcome: str,
        *,
        error_id: str | None = None,
        detail: str = "",
        inbox: tuple[str | None, str | None] = (None, None),
    ) -> None:
        """The audit row, and the inbox row's final status, in one transaction (shared with the
        other commands finishing at the same time)."""
        key, status = inbox
        row = self._audit_row(inv, outcome, error_id, detail)
        try:
            await self._audits.submit((row, key if status else None, status or ""))
        except Unavailable:
            _warn_lost_audit(inv, outcome, "database unavailable")

    @staticmethod
    def _audit_row(inv: Invocation, outcome: str, error_id: str | None, detail: str) -> dict[str, Any]:
        return {
            "at": datetime.now(UTC),
            "user_id": inv.user_id,
            "channel_id": inv.channel_id,
            "command": inv.command,
            "text": inv.text[:2000],
            "outcome": outcome,
            "error_id": error_id,
            "detail": detail[:1000],
        }


def _log_lost_audit(inv: Invocation, outcome: str, written: asyncio.Future[None]) -> None:
    """A queued audit row that could not be written: logged (nobody else awaits its outcome)."""
    if written.cancelled():
        _warn_lost_audit(inv, outcome, "shutting down")
    elif isinstance(exc := written.exception(), Unavailable):
        _warn_lost_audit(inv, outcome, "database unavailable")
    elif exc is not None:
        log.error("audit row not written: %s %s %s", inv.user_id, inv.command, outcome, exc_info=exc)


def _warn_lost_audit(inv: Invocation, outcome: str, why: str) -> None:
    log.warning("audit row not written (%s): %s %s %s", why, inv.user_id, inv.command, outcome)
