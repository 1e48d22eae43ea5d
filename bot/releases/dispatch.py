"""``/rollback`` and its card's Confirm / Cancel buttons: the typed command → the service → the reply.
Every handler here is listed, with what it needs, in ``bot.actions``."""

from __future__ import annotations

from bot.context import Invocation, Reply
from bot.deps import Deps
from bot.errors import NotFound
from bot.help import help_reply
from bot.releases import rollback as rb

CONFIRM_ACTION = rb.CONFIRM_ACTION
CANCEL_ACTION = rb.CANCEL_ACTION


async def show_help(deps: Deps, cmd: rb.Help, inv: Invocation) -> Reply:
    return help_reply(deps, "rollback")


async def history(deps: Deps, cmd: rb.History, inv: Invocation) -> Reply:
    return await rb.show_history(deps, cmd)


async def request(deps: Deps, cmd: rb.Request, inv: Invocation) -> Reply:
    return await rb.request_rollback(deps, cmd, user=inv.user_id, channel=inv.channel_id)


def _rollback_id(text: str) -> int:
    if not text.strip().isdigit():
        raise NotFound("That rollback no longer exists.")
    return int(text)


async def confirm(deps: Deps, inv: Invocation) -> Reply:
    return await rb.confirm(deps, rollback_id=_rollback_id(inv.text), user=inv.user_id)


async def cancel(deps: Deps, inv: Invocation) -> Reply:
    return await rb.cancel(deps, rollback_id=_rollback_id(inv.text), user=inv.user_id)
