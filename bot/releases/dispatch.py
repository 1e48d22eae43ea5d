"""``/rollback`` and its card's Confirm / Cancel buttons: the typed command → the service → the reply.
Every handler here is listed, with what it needs, in ``bot.actions``."""

from __future__ import annotations

from bot.context import Invocation, Reply
from bot.deps import Deps
from bot.errors import NotFound
from bot.help import help_reply
from bot.releases.rollback import card, service
from bot.releases.rollback.parse import Help, History, Request

CONFIRM_ACTION = card.CONFIRM_ACTION
CANCEL_ACTION = card.CANCEL_ACTION


async def show_help(deps: Deps, cmd: Help, inv: Invocation) -> Reply:
    return help_reply(deps, "rollback")


async def history(deps: Deps, cmd: History, inv: Invocation) -> Reply:
    view = await service.show_history(deps, cmd)
    return Reply(message=deps.renderer.message("rollback/history", view=view))


async def request(deps: Deps, cmd: Request, inv: Invocation) -> Reply:
    row = await service.request_rollback(deps, cmd, user=inv.user_id, channel=inv.channel_id)
    return Reply(message=deps.renderer.message("rollback/requested", rb=row))


def _rollback_id(text: str) -> int:
    if not text.strip().isdigit():
        raise NotFound("That rollback no longer exists.")
    return int(text)


async def confirm(deps: Deps, inv: Invocation) -> Reply:
    match await service.confirm(deps, rollback_id=_rollback_id(inv.text), user=inv.user_id):
        case service.AwaitingSecond(rollback=row, who=who):
            return Reply(message=deps.renderer.message("rollback/needs_second", rb=row, who=who))
        case service.Approved(rollback=row):
            return Reply(
                message=deps.renderer.message("rollback/ack", rb=row, text="Confirmed: rolling back.")
            )


async def cancel(deps: Deps, inv: Invocation) -> Reply:
    row = await service.cancel(deps, rollback_id=_rollback_id(inv.text), user=inv.user_id)
    return Reply(message=deps.renderer.message("rollback/ack", rb=row, text="Cancelled: nothing was run."))
